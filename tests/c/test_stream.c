/* test_stream.c: streamGenerateContent through the pool, from C: events as they are sent,
 * failover before the first event and never after, the first-event timeout, gr_stream_close
 * from another thread, and bad input. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

#define FIVE "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"one two three four five\"}]}]}"

/* Requests in flight on every key of the pool. */
static long in_flight(const fixture *fx) {
    json_value *stats = h_pool_stats(fx->pool);
    long n = 0;
    for (size_t i = 0; i < fx->n; i++) {
        n += h_key_stat(stats, fx->fps[i], "in_flight");
    }
    json_free(stats);
    return n;
}

/* Reads events until the stream ends; returns the final status, the number of events in
 * *events, and the time of the first and last event. */
static gr_status drain(gr_stream *s, int *events, int64_t *first_ms, int64_t *last_ms) {
    *events = 0;
    for (;;) {
        gr_response *ev = NULL;
        gr_error *err = NULL;
        gr_status st = gr_stream_next(s, &ev, &err);
        if (st != GR_OK) {
            gr_error_free(err);
            return st;
        }
        int64_t now = h_now_ms();
        if (*events == 0 && first_ms != NULL) {
            *first_ms = now;
        }
        if (last_ms != NULL) {
            *last_ms = now;
        }
        size_t len = 0;
        const char *body = gr_response_body(ev, &len);
        CHECKF(len > 0 && body[0] == '{', "event %d is not a JSON object", *events);
        (*events)++;
        gr_response_free(ev);
    }
}

static gr_stream *open_five(const fixture *fx, gr_error **err) {
    gr_stream *s = NULL;
    gr_status st = gr_stream_open(fx->pool, NULL, FIVE, 0, 0, NULL, &s, err);
    CHECK_OK(st, *err);
    return st == GR_OK ? s : NULL;
}

void test_stream_events_as_sent(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"delay\",\"method\":\"streamGenerateContent\",\"gap_ms\":80}");
    gr_error *err = NULL;
    gr_stream *s = open_five(&fx, &err);
    gr_error_free(err);
    if (s == NULL) {
        fx_stop(&fx);
        return;
    }
    CHECK_EQ_INT(in_flight(&fx), 1);
    CHECK_STREQ(gr_stream_key_fingerprint(s), fx.fps[0]);
    int events = 0;
    int64_t first = 0, last = 0;
    gr_status end = drain(s, &events, &first, &last);
    CHECK_EQ_INT(end, GR_STREAM_END);
    CHECK_EQ_INT(events, 6);
    /* Five gaps of 80 ms between the first event and the last: they came as sent. */
    CHECKF(last - first >= 5 * 80 * 8 / 10, "first to last event: %lld ms", (long long)(last - first));
    CHECK_EQ_INT(gr_stream_prompt_token_count(s), 5);
    CHECK(gr_stream_total_token_count(s) > 5);
    CHECK_EQ_INT(in_flight(&fx), 0);
    /* The end is answered again, without an error object. */
    gr_response *ev = NULL;
    err = NULL;
    CHECK_EQ_INT(gr_stream_next(s, &ev, &err), GR_STREAM_END);
    CHECK(ev == NULL && err == NULL);
    gr_stream_free(s);
    fx_stop(&fx);
}

void test_stream_failover_before_first_event(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"quota_minute\",\"count\":1}");
    gr_error *err = NULL;
    gr_stream *s = open_five(&fx, &err);
    gr_error_free(err);
    if (s != NULL) {
        CHECK_EQ_INT(gr_stream_attempts(s), 2);
        int events = 0;
        gr_status end = drain(s, &events, NULL, NULL);
        CHECK_EQ_INT(end, GR_STREAM_END);
        CHECK_EQ_INT(events, 6);
        gr_stream_free(s);
    }
    fx_stop(&fx);
}

void test_stream_no_retry_after_first_event(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"stream_error_mid\",\"after_events\":2,\"error\":\"http503\",\"count\":1}");
    gr_error *err = NULL;
    gr_stream *s = open_five(&fx, &err);
    gr_error_free(err);
    if (s != NULL) {
        int events = 0;
        gr_status end = drain(s, &events, NULL, NULL);
        CHECK_EQ_INT(end, GR_ERR_API);
        CHECK_EQ_INT(events, 2);
        gr_response *ev = NULL;
        err = NULL;
        CHECK_STATUS(gr_stream_next(s, &ev, &err), GR_ERR_INVALID_ARGUMENT, err);
        gr_error_free(err);
        gr_stream_free(s);
    }
    emu_fault(&fx.emu, "{\"kind\":\"stream_cut\",\"after_events\":3,\"count\":1}");
    err = NULL;
    s = open_five(&fx, &err);
    gr_error_free(err);
    if (s != NULL) {
        int events = 0;
        gr_status end = drain(s, &events, NULL, NULL);
        CHECK_EQ_INT(end, GR_ERR_INCOMPLETE_STREAM);
        CHECK_EQ_INT(events, 3);
        gr_stream_free(s);
    }
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 2); /* two streams, two requests */
    json_free(emu);
    CHECK_EQ_INT(in_flight(&fx), 0);
    fx_stop(&fx);
}

void test_stream_stall_moves_on(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, "\"stream_first_event_timeout_ms\":300") != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"stream_stall_first\",\"count\":1}");
    gr_error *err = NULL;
    int64_t started = h_now_ms();
    gr_stream *s = open_five(&fx, &err);
    int64_t took = h_now_ms() - started;
    gr_error_free(err);
    if (s != NULL) {
        CHECKF(took >= 300 && took < 1300, "opened after %lld ms", (long long)took);
        CHECK_EQ_INT(gr_stream_attempts(s), 2);
        int events = 0;
        gr_status end = drain(s, &events, NULL, NULL);
        CHECK_EQ_INT(end, GR_STREAM_END);
        CHECK_EQ_INT(events, 6);
        gr_stream_free(s);
    }
    CHECK_EQ_INT(in_flight(&fx), 0);
    fx_stop(&fx);
}

static void *close_later(void *stream) {
    h_sleep_ms(150);
    gr_stream_close(stream);
    return NULL;
}

void test_stream_close_from_another_thread(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"stream_stall_mid\",\"after_events\":1}");
    gr_error *err = NULL;
    gr_stream *s = open_five(&fx, &err);
    gr_error_free(err);
    if (s == NULL) {
        fx_stop(&fx);
        return;
    }
    gr_response *ev = NULL;
    err = NULL;
    CHECK_OK(gr_stream_next(s, &ev, &err), err);
    gr_response_free(ev);
    gr_error_free(err);
    pthread_t closer;
    CHECK(pthread_create(&closer, NULL, close_later, s) == 0);
    int64_t started = h_now_ms();
    ev = NULL;
    err = NULL;
    /* Blocked on the stalled body until the other thread closes the stream. */
    CHECK_STATUS(gr_stream_next(s, &ev, &err), GR_ERR_CANCELLED, err);
    gr_error_free(err);
    int64_t took = h_now_ms() - started;
    pthread_join(closer, NULL);
    CHECKF(took >= 100 && took < 1000, "next returned %lld ms after it started", (long long)took);
    CHECK_EQ_INT(in_flight(&fx), 0);
    /* Next after close: a status naming the stream. */
    err = NULL;
    CHECK_STATUS(gr_stream_next(s, &ev, &err), GR_ERR_INVALID_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "stream");
    gr_error_free(err);
    gr_stream_close(s); /* twice: nothing */
    gr_stream_free(s);
    fx_stop(&fx);
}

void test_stream_bad_input(void) {
    gr_response *ev = NULL;
    gr_error *err = NULL;
    CHECK_STATUS(gr_stream_next(NULL, &ev, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "stream");
    gr_error_free(err);
    gr_stream_close(NULL);
    gr_stream_free(NULL);
    CHECK_EQ_INT(gr_stream_prompt_token_count(NULL), -1);
    CHECK_EQ_INT(gr_stream_attempts(NULL), 0);
    CHECK_STREQ(gr_stream_key_fingerprint(NULL), "");
    err = NULL;
    CHECK_STATUS(gr_stream_open(NULL, NULL, FIVE, 0, 0, NULL, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    gr_error_free(err);
}
