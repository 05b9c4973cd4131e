/* test_endpoints.c: gr_call for countTokens and embeddings (they rotate), gr_list_models, a bad
 * method name, and a cancel token stopping a plain call from another thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

#define WORDS "{\"contents\":[{\"parts\":[{\"text\":\"one two three\"}]}]}"

void test_endpoints_rotate(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    char seen[2][32] = {"", ""};
    for (int i = 0; i < 2; i++) {
        gr_response *r = NULL;
        gr_error *err = NULL;
        CHECK_OK(gr_call(fx.pool, NULL, "countTokens", WORDS, 0, 0, NULL, &r, &err), err);
        gr_error_free(err);
        if (r != NULL) {
            CHECK_CONTAINS(gr_response_body(r, NULL), "\"totalTokens\":3");
            snprintf(seen[i], sizeof seen[i], "%s", gr_response_key_fingerprint(r));
            gr_response_free(r);
        }
    }
    CHECKF(strcmp(seen[0], seen[1]) != 0, "both countTokens calls went to key %s", seen[0]);
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_OK(gr_call(fx.pool, "gemini-embedding-001", "embedContent",
                     "{\"content\":{\"parts\":[{\"text\":\"hi\"}]},\"outputDimensionality\":4}", 0,
                     0, NULL, &r, &err),
             err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_CONTAINS(gr_response_body(r, NULL), "\"embedding\"");
        gr_response_free(r);
    }
    r = NULL;
    err = NULL;
    CHECK_OK(gr_list_models(fx.pool, 2, NULL, NULL, &r, &err), err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_CONTAINS(gr_response_body(r, NULL), "\"nextPageToken\"");
        gr_response_free(r);
    }
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(emu_label(emu, fx.labels[0], "requests") + emu_label(emu, fx.labels[1], "requests"), 4);
    json_free(emu);
    fx_stop(&fx);
}

void test_endpoints_bad_method(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    const char *bad[] = {"generatecontent", "streamGenerateContent", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_response *r = NULL;
        gr_error *err = NULL;
        CHECK_STATUS(gr_call(fx.pool, NULL, bad[i], WORDS, 0, 0, NULL, &r, &err),
                     GR_ERR_INVALID_ARGUMENT, err);
        CHECK_CONTAINS(gr_error_message(err), "method");
        CHECK(r == NULL);
        gr_error_free(err);
    }
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_STATUS(gr_call(fx.pool, NULL, NULL, WORDS, 0, 0, NULL, &r, &err), GR_ERR_NULL_ARGUMENT, err);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 0);
    json_free(emu);
    fx_stop(&fx);
}

static void *trigger_later(void *cancel) {
    h_sleep_ms(150);
    gr_cancel_trigger(cancel);
    return NULL;
}

void test_cancel_plain_call(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"delay\",\"method\":\"countTokens\",\"latency_ms\":5000,\"count\":1}");
    gr_cancel *cancel = NULL;
    gr_error *err = NULL;
    CHECK_OK(gr_cancel_new(&cancel, &err), err);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, trigger_later, cancel) == 0);
    int64_t started = h_now_ms();
    gr_response *r = NULL;
    err = NULL;
    CHECK_STATUS(gr_call(fx.pool, NULL, "countTokens", WORDS, 0, 0, cancel, &r, &err),
                 GR_ERR_CANCELLED, err);
    gr_error_free(err);
    int64_t took = h_now_ms() - started;
    pthread_join(t, NULL);
    CHECKF(took < 1000, "the cancelled call took %lld ms", (long long)took);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "in_flight"), 0);
    json_free(stats);
    gr_cancel_trigger(cancel); /* twice: nothing */
    gr_cancel_free(cancel);
    gr_cancel_free(NULL);
    gr_cancel_trigger(NULL);
    fx_stop(&fx);
}
