/* test_observability.c: gr_set_log_level, gr_set_log_callback (and the stderr sink it replaces),
 * gr_metrics_prometheus. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tests.h"

static char sentinel_text[] = "untouched";
static int sentinel_object;
#define SENTINEL_ERROR ((gr_error *)(void *)&sentinel_object)

void test_log_level(void) {
    for (int32_t level = 0; level <= 4; level++) {
        gr_error *err = SENTINEL_ERROR;
        CHECK_OK_NOERR(gr_set_log_level(level, &err));
        CHECK(err == SENTINEL_ERROR);
    }
    static const int32_t bad[] = {5, -1, 100, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_error *err = NULL;
        CHECK_STATUS(gr_set_log_level(bad[i], &err), GR_ERR_INVALID_ARGUMENT, err);
        CHECK_CONTAINS(gr_error_message(err), "level");
        gr_error_free(err);
        CHECK_STATUS_NOERR(gr_set_log_level(bad[i], NULL), GR_ERR_INVALID_ARGUMENT);
    }
    CHECK_OK_NOERR(gr_set_log_level(0, NULL));
}

/* What the log callback received. */
#define MAX_EVENTS 256
typedef struct {
    pthread_mutex_t lock;
    int count;
    int wrong_user_data;
    int32_t levels[MAX_EVENTS];
    char *events[MAX_EVENTS];
} collector;

static collector events = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, {NULL}};

static void collect(void *user_data, int32_t level, const char *event_json) {
    collector *c = &events;
    pthread_mutex_lock(&c->lock);
    if (user_data != &events) {
        c->wrong_user_data++;
    }
    if (c->count < MAX_EVENTS) {
        c->levels[c->count] = level;
        c->events[c->count] = h_strdupf("%s", event_json != NULL ? event_json : "(NULL)");
        c->count++;
    }
    pthread_mutex_unlock(&c->lock);
}

static void clear_events(void) {
    pthread_mutex_lock(&events.lock);
    for (int i = 0; i < events.count; i++) {
        free(events.events[i]);
        events.events[i] = NULL;
    }
    events.count = 0;
    pthread_mutex_unlock(&events.lock);
}

static int event_count(void) {
    pthread_mutex_lock(&events.lock);
    int n = events.count;
    pthread_mutex_unlock(&events.lock);
    return n;
}

/* The first event named `name`, parsed (caller frees), after checking every event's shape. */
static json_value *find_event(const char *name, int32_t *level_out) {
    static const char *const level_names[] = {"", "error", "warn", "info", "debug"};
    json_value *found = NULL;
    pthread_mutex_lock(&events.lock);
    for (int i = 0; i < events.count; i++) {
        json_value *v = json_parse(events.events[i], NULL, 0);
        int32_t level = events.levels[i];
        const char *level_name = json_string_at(v, "level");
        const char *event = json_string_at(v, "event");
        CHECKF(v != NULL && event != NULL && level >= 1 && level <= 4 && level_name != NULL &&
                   strcmp(level_name, level_names[level]) == 0,
               "event %d (level %d): %s", i, (int)level, events.events[i]);
        CHECK_NO_KEYS(events.events[i]);
        if (found == NULL && event != NULL && strcmp(event, name) == 0) {
            found = v;
            *level_out = level;
        } else {
            json_free(v);
        }
    }
    pthread_mutex_unlock(&events.lock);
    return found;
}

#define CHECK_EVENT(name, want_level, field, want_value)                                        \
    do {                                                                                        \
        int32_t level_ = 0;                                                                     \
        json_value *ev_ = find_event((name), &level_);                                          \
        CHECKF(ev_ != NULL, "no \"%s\" event", (name));                                         \
        if (ev_ != NULL) {                                                                      \
            CHECK_EQ_INT(level_, (want_level));                                                 \
            if ((field) != NULL) {                                                              \
                CHECK_STREQ(json_string_at(ev_, (field)), (want_value));                        \
            }                                                                                   \
        }                                                                                       \
        json_free(ev_);                                                                         \
    } while (0)

void test_log_callback(void) {
    fixture fx;
    if (fx_start(&fx, 2, 1, 0, "\"free_rate_limit\":1") != 0) {
        fx_stop(&fx);
        return;
    }
    clear_events();
    gr_set_log_callback(collect, &events);
    CHECK_OK_NOERR(gr_set_log_level(4, NULL));
    gr_error *err = NULL;

    /* free1 answers 429 (cooldown, warn), free2 serves. */
    emu_fault(&fx.emu, "{\"kind\":\"quota_minute\",\"label\":\"free1\",\"count\":1,"
                       "\"retry_delay\":\"30s\"}");
    emu_fault(&fx.emu, "{\"kind\":\"http503\",\"label\":\"paid\",\"count\":1}");
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), err);
    gr_error_free(err);
    /* Both free keys out: the paid key (fallback, info), which fails once (retry, info). */
    CHECK_OK(h_generate(fx.pool, NULL, 1, 0, 0, NULL, &err), err);
    gr_error_free(err);
    /* The paid key turns out invalid (disabled, error), then nothing can admit (exhausted, warn). */
    emu_fault(&fx.emu, "{\"kind\":\"invalid_key\",\"label\":\"paid\"}");
    CHECK_STATUS(h_generate(fx.pool, NULL, 2, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);

    CHECK_EVENT("key_cooldown", 2, "key", fx.fps[0]);
    CHECK_EVENT("key_cooldown", 2, "cause", "per_minute");
    CHECK_EVENT("key_cooldown", 2, "model", "gemini-3.6-flash");
    CHECK_EVENT("paid_fallback", 3, "key", fx.fps[2]);
    CHECK_EVENT("retry", 3, (const char *)NULL, "");
    CHECK_EVENT("key_disabled", 1, "key", fx.fps[2]);
    CHECK_EVENT("key_disabled", 1, "reason", "API_KEY_INVALID");
    CHECK_EVENT("exhausted", 2, (const char *)NULL, "");
    CHECK_EQ_INT(events.wrong_user_data, 0);

    /* Level error: the warn-level "exhausted" is not delivered. */
    CHECK_OK_NOERR(gr_set_log_level(1, NULL));
    clear_events();
    CHECK_STATUS(h_generate(fx.pool, NULL, 3, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    CHECK_EQ_INT(event_count(), 0);
    /* Level 0: off. */
    CHECK_OK_NOERR(gr_set_log_level(0, NULL));
    CHECK_STATUS(h_generate(fx.pool, NULL, 4, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    CHECK_EQ_INT(event_count(), 0);

    /* A NULL callback restores stderr: the event goes there (one line, fingerprints only), not
     * to the old callback. Standard error is captured in a file for the call. */
    gr_set_log_callback(NULL, NULL);
    CHECK_OK_NOERR(gr_set_log_level(2, NULL));
    char path[] = "/tmp/gr-c-stderr-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    if (fd >= 0 && saved >= 0) {
        dup2(fd, STDERR_FILENO);
        CHECK_STATUS(h_generate(fx.pool, NULL, 5, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED,
                     err);
        gr_error_free(err);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        char text[4096] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        CHECK_CONTAINS(text, "exhausted");
        CHECK_NO_KEYS(text);
    }
    if (saved >= 0) {
        close(saved);
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    CHECK_EQ_INT(event_count(), 0);
    CHECK_OK_NOERR(gr_set_log_level(0, NULL));
    clear_events();
    fx_stop(&fx);
}

/* The value of the first sample line `name` + `labels_prefix` (e.g. "{key=\"ab\""), or -1. */
static double sample(const char *text, const char *name, const char *labels) {
    size_t name_len = strlen(name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (len > name_len && strncmp(line, name, name_len) == 0 &&
            (line[name_len] == ' ' || line[name_len] == '{')) {
            const char *rest = line + name_len;
            int labels_ok = labels == NULL || labels[0] == '\0'
                                ? rest[0] == ' '
                                : strstr(rest, labels) != NULL && strstr(rest, labels) < line + len;
            if (labels_ok) {
                const char *value = memchr(rest, '}', len - name_len) != NULL
                                        ? (const char *)memchr(rest, '}', len - name_len) + 1
                                        : rest;
                return strtod(value, NULL);
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return -1;
}

void test_metrics_prometheus(void) {
    fixture fx;
    if (fx_start(&fx, 2, 1, 0, "\"free_rate_limit\":1,\"paid_rate_limit\":2") != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    char *text = sentinel_text;

    /* NULL arguments. */
    CHECK_STATUS(gr_metrics_prometheus(NULL, &text, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "pool");
    CHECK(text == sentinel_text);
    gr_error_free(err);
    err = NULL;
    CHECK_STATUS(gr_metrics_prometheus(fx.pool, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "out_text");
    gr_error_free(err);
    err = NULL;
    CHECK_STATUS_NOERR(gr_metrics_prometheus(NULL, &text, NULL), GR_ERR_NULL_ARGUMENT);

    /* Four requests: free1, free2, then the paid key twice; a fifth is refused. */
    for (int i = 0; i < 4; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, NULL, &err), err);
        gr_error_free(err);
    }
    CHECK_STATUS(h_generate(fx.pool, NULL, 4, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    err = SENTINEL_ERROR;
    text = NULL;
    CHECK_OK_NOERR(gr_metrics_prometheus(fx.pool, &text, &err));
    CHECK(err == SENTINEL_ERROR);
    if (text == NULL) {
        fx_stop(&fx);
        return;
    }
    CHECK_NO_KEYS(text);
    CHECK_CONTAINS(text, "# TYPE ");
    CHECK_CONTAINS(text, "# HELP ");

    /* Every line is a comment or "name[{labels}] value"; every key label is a fingerprint of the
     * pool. */
    int samples = 0;
    for (char *line = text; *line != '\0';) {
        char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        if (buf[0] != '#' && buf[0] != '\0') {
            samples++;
            size_t name_len = strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_:");
            CHECKF(name_len > 0 && (buf[name_len] == ' ' || buf[name_len] == '{'),
                   "malformed sample line: %s", buf);
            char *value = strrchr(buf, ' ');
            char *parsed_end = NULL;
            if (value != NULL) {
                strtod(value + 1, &parsed_end);
            }
            CHECKF(value != NULL && parsed_end != NULL && *parsed_end == '\0' &&
                       parsed_end != value + 1,
                   "sample without a number: %s", buf);
            char *key = strstr(buf, "key=\"");
            if (key != NULL) {
                char fp[32];
                snprintf(fp, sizeof fp, "%.12s", key + 5);
                CHECKF(fx_index_of_fp(&fx, fp) >= 0, "label key=\"%s\" is not a fingerprint of "
                                                     "the pool", fp);
            }
        }
        line = end != NULL ? end + 1 : line + len;
    }
    CHECK(samples > 10);

    /* The figures agree with what happened. */
    CHECK_EQ_INT(sample(text, "gemini_rotator_requests_total", NULL), 5);
    CHECK_EQ_INT(sample(text, "gemini_rotator_requests_succeeded_total", NULL), 4);
    CHECK_EQ_INT(sample(text, "gemini_rotator_requests_failed_total", NULL), 1);
    CHECK_EQ_INT(sample(text, "gemini_rotator_paid_fallbacks_total", NULL), 2);
    CHECK_EQ_INT(sample(text, "gemini_rotator_exhausted_total", NULL), 1);
    for (size_t k = 0; k < fx.n; k++) {
        char label[64];
        snprintf(label, sizeof label, "key=\"%s\"", fx.fps[k]);
        CHECKF(sample(text, "gemini_rotator_key_admitted_total", label) == (k < 2 ? 1 : 2),
               "%s admitted %g", fx.labels[k],
               sample(text, "gemini_rotator_key_admitted_total", label));
        CHECKF(sample(text, "gemini_rotator_key_window_limit_requests", label) ==
                   (k < 2 ? 1 : 2),
               "%s limit %g", fx.labels[k],
               sample(text, "gemini_rotator_key_window_limit_requests", label));
    }
    CHECK_EQ_INT(sample(text, "gemini_rotator_upstream_latency_seconds_count", NULL), 4);
    CHECK_EQ_INT(sample(text, "gemini_rotator_upstream_latency_seconds_bucket", "le=\"+Inf\""), 4);
    gr_free(text);
    fx_stop(&fx);
}
