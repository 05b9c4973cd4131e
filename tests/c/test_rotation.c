/* test_rotation.c: which key serves: round-robin over free keys, the paid key only when every
 * free key is full, "all API keys have reached their rate limits" when nothing can admit, and key
 * state shared by every pool of the process. Also the shape of gr_stats_json. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tests.h"

extern char **environ;

#define ROTATION_REQUESTS 31

void test_rotation(void) {
    fixture fx;
    if (fx_start(&fx, 3, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    char fps[ROTATION_REQUESTS][32];
    int served[3] = {0, 0, 0};
    gr_error *err = NULL;
    for (int i = 0; i < ROTATION_REQUESTS; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fps[i], &err), err);
        gr_error_free(err);
        int k = fx_index_of_fp(&fx, fps[i]);
        CHECKF(k >= 0 && k < 3, "request %d: fingerprint \"%s\" is none of the pool's keys", i,
               fps[i]);
        if (k >= 0 && k < 3) {
            served[k]++;
        }
    }
    /* Round-robin: consecutive requests on different keys, the same key every third request. */
    for (int i = 0; i + 1 < ROTATION_REQUESTS; i++) {
        CHECKF(strcmp(fps[i], fps[i + 1]) != 0, "requests %d and %d both on %s", i, i + 1, fps[i]);
        if (i + 3 < ROTATION_REQUESTS) {
            CHECKF(strcmp(fps[i], fps[i + 3]) == 0, "request %d on %s, request %d on %s", i,
                   fps[i], i + 3, fps[i + 3]);
        }
    }

    /* What the service saw: per-key counts N/3 +-1, each request on the key whose fingerprint
     * the call reported, every key in the header (never in the URL). */
    json_value *stats = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(stats, "total", -1), ROTATION_REQUESTS);
    CHECK_EQ_INT(json_number_at(stats, "key_in_url", -1), 0);
    CHECK_EQ_INT(json_number_at(stats, "unknown_key", -1), 0);
    CHECK_EQ_INT(json_number_at(stats, "missing_key", -1), 0);
    for (int k = 0; k < 3; k++) {
        long n = emu_label(stats, fx.labels[k], "requests");
        CHECKF(n >= ROTATION_REQUESTS / 3 - 1 && n <= ROTATION_REQUESTS / 3 + 1,
               "%s served %ld of %d", fx.labels[k], n, ROTATION_REQUESTS);
        CHECK_EQ_INT(n, served[k]);
        CHECK_EQ_INT(emu_label(stats, fx.labels[k], "ok"), n);
    }
    json_free(stats);
    json_value *log = emu_log(&fx.emu);
    CHECKF(log != NULL && log->count == ROTATION_REQUESTS, "log of %zu entries",
           log != NULL ? log->count : 0);
    for (size_t i = 0; log != NULL && i < log->count && i < ROTATION_REQUESTS; i++) {
        int k = fx_index_of_label(&fx, json_string_at(json_at(log, i), "label"));
        CHECKF(k >= 0 && strcmp(fx.fps[k], fps[i]) == 0,
               "request %zu: the service saw label %s, the call reported %s", i,
               json_string_at(json_at(log, i), "label"), fps[i]);
    }
    json_free(log);

    /* The pool's own view agrees. */
    json_value *pool = h_pool_stats(fx.pool);
    CHECK_EQ_INT(json_number_at(pool, "pool.requests", -1), ROTATION_REQUESTS);
    CHECK_EQ_INT(json_number_at(pool, "pool.succeeded", -1), ROTATION_REQUESTS);
    CHECK_EQ_INT(json_number_at(pool, "pool.failed", -1), 0);
    CHECK_EQ_INT(json_number_at(pool, "pool.paid_fallbacks", -1), 0);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_INT(h_key_stat(pool, fx.fps[k], "admitted"), served[k]);
        CHECK_EQ_INT(h_key_stat(pool, fx.fps[k], "succeeded"), served[k]);
        CHECK_EQ_INT(h_key_stat(pool, fx.fps[k], "in_window"), served[k]);
        CHECK_EQ_INT(h_key_stat(pool, fx.fps[k], "in_flight"), 0);
    }
    json_free(pool);
    fx_stop(&fx);
}

static const char *const KEY_FIELDS[] = {
    "fingerprint", "tier", "limit", "window_ms", "in_window", "in_flight",
    "cooldown_remaining_ms", "cooldown_cause", "disabled", "admitted", "succeeded", "refused",
    "upstream_429", "invalid_key", "permission_denied", "server_errors", "transport_errors",
    "timeouts", "client_errors", "retries",
};
static const char *const POOL_FIELDS[] = {"requests", "succeeded", "failed", "paid_fallbacks",
                                          "exhausted", "latency"};

void test_stats_json(void) {
    fixture fx;
    if (fx_start(&fx, 2, 1, 0,
                 "\"free_rate_limit\":7,\"paid_rate_limit\":9,\"window_ms\":30000") != 0) {
        fx_stop(&fx);
        return;
    }
    /* A fresh pool: every key listed, nothing counted. */
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_STREQ(json_string_at(stats, "version"), gr_version());
    CHECK_STREQ(json_string_at(stats, "state"), h_state()); /* the configured state file */
    CHECK_EQ_INT(json_number_at(stats, "pool.requests", -1), 0);
    CHECK_EQ_INT(json_number_at(stats, "pool.latency.count", -1), 0);
    json_free(stats);

    gr_error *err = NULL;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, NULL, &err), err);
        gr_error_free(err);
    }
    stats = h_pool_stats(fx.pool);
    const json_value *keys = json_get(stats, "keys");
    CHECKF(keys != NULL && keys->type == JSON_ARRAY && keys->count == 3, "keys: %zu",
           keys != NULL ? keys->count : 0);
    for (size_t k = 0; k < fx.n; k++) {
        const json_value *key = h_key_stats(stats, fx.fps[k]);
        CHECKF(key != NULL, "no entry for the fingerprint of %s", fx.labels[k]);
        for (size_t f = 0; key != NULL && f < sizeof KEY_FIELDS / sizeof KEY_FIELDS[0]; f++) {
            CHECKF(json_get(key, KEY_FIELDS[f]) != NULL, "%s lacks \"%s\"", fx.labels[k],
                   KEY_FIELDS[f]);
        }
        int paid = (int)k == 2;
        CHECK_STREQ(json_string_at(key, "tier"), paid ? "paid" : "free");
        CHECK_EQ_INT(json_number_at(key, "limit", -1), paid ? 9 : 7);
        CHECK_EQ_INT(json_number_at(key, "window_ms", -1), 30000);
        CHECK(json_get(key, "cooldown_cause") != NULL &&
              json_get(key, "cooldown_cause")->type == JSON_NULL);
        CHECK(json_get(key, "disabled") != NULL && json_get(key, "disabled")->type == JSON_NULL);
        CHECK_EQ_INT(json_number_at(key, "cooldown_remaining_ms", -1), 0);
    }
    for (size_t f = 0; f < sizeof POOL_FIELDS / sizeof POOL_FIELDS[0]; f++) {
        CHECKF(json_get(json_get(stats, "pool"), POOL_FIELDS[f]) != NULL, "pool lacks \"%s\"",
               POOL_FIELDS[f]);
    }
    CHECK_EQ_INT(json_number_at(stats, "pool.requests", -1), 3);
    CHECK_EQ_INT(json_number_at(stats, "pool.succeeded", -1), 3);
    CHECK_EQ_INT(json_number_at(stats, "pool.latency.count", -1), 3);
    CHECK(json_number_at(stats, "pool.latency.sum_seconds", -1) > 0);

    /* Latency buckets: [bound, cumulative count], bounds increasing, counts never decreasing,
     * the last one ["+Inf", count]. */
    const json_value *buckets = json_path(stats, "pool.latency.buckets");
    CHECK(buckets != NULL && buckets->type == JSON_ARRAY && buckets->count >= 2);
    double last_bound = -1, last_count = 0;
    for (size_t i = 0; buckets != NULL && i < buckets->count; i++) {
        const json_value *b = json_at(buckets, i);
        const json_value *bound = json_at(b, 0);
        const json_value *count = json_at(b, 1);
        int ok_shape = b != NULL && b->count == 2 && count != NULL && count->type == JSON_NUMBER;
        CHECKF(ok_shape, "bucket %zu is not [bound, count]", i);
        if (!ok_shape) {
            break;
        }
        CHECKF(count->number >= last_count, "bucket %zu: count %g after %g", i, count->number,
               last_count);
        last_count = count->number;
        if (i + 1 < buckets->count) {
            CHECKF(bound->type == JSON_NUMBER && bound->number > last_bound,
                   "bucket %zu: bound not increasing", i);
            last_bound = bound->type == JSON_NUMBER ? bound->number : last_bound;
        } else {
            CHECK(bound->type == JSON_STRING && strcmp(bound->string, "+Inf") == 0);
            CHECK_EQ_INT(count->number, 3);
        }
    }

    /* Keys appear by fingerprint only. */
    char *raw = NULL;
    CHECK_OK_NOERR(gr_stats_json(fx.pool, &raw, NULL));
    for (size_t k = 0; k < fx.n; k++) {
        CHECK_CONTAINS(raw, fx.fps[k]);
        CHECK_LACKS(raw, fx.keys[k]);
    }
    gr_free(raw);
    json_free(stats);
    fx_stop(&fx);
}

void test_paid_fallback(void) {
    fixture fx;
    if (fx_start(&fx, 2, 1, 0, "\"free_rate_limit\":2") != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    char fp[32];
    int served[3] = {0, 0, 0};
    for (int i = 0; i < 6; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
        int k = fx_index_of_fp(&fx, fp);
        if (CHECKF(k >= 0, "unknown fingerprint %s", fp)) {
            served[k]++;
        }
        /* The free keys first: the paid key only once both have used their 2. */
        if (i < 4) {
            CHECKF(k == 0 || k == 1, "request %d went to %s while a free key had room", i,
                   k >= 0 ? fx.labels[k] : "?");
        } else {
            CHECKF(k == 2, "request %d went to %s, not the paid key", i,
                   k >= 0 ? fx.labels[k] : "?");
        }
    }
    CHECK_EQ_INT(served[0], 2);
    CHECK_EQ_INT(served[1], 2);
    CHECK_EQ_INT(served[2], 2);

    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(json_number_at(stats, "pool.paid_fallbacks", -1), 2);
    CHECK_EQ_INT(json_number_at(stats, "pool.exhausted", -1), 0);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[2], "admitted"), 2);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "in_window"), 2);
    CHECK(h_key_stat(stats, fx.fps[0], "refused") >= 1);
    CHECK(h_key_stat(stats, fx.fps[1], "refused") >= 1);
    json_free(stats);

    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(emu_label(emu, "free1", "requests"), 2);
    CHECK_EQ_INT(emu_label(emu, "free2", "requests"), 2);
    CHECK_EQ_INT(emu_label(emu, "paid", "requests"), 2);
    json_free(emu);
    fx_stop(&fx);
}

void test_paid_only(void) {
    fixture fx;
    /* Also the one test on the in-process store. */
    if (fx_start(&fx, 0, 1, 0, "\"state\":\"memory\"") != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    char fp[32];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
        CHECK_STREQ(fp, fx.fps[0]);
    }
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_STREQ(json_string_at(stats, "state"), "memory");
    /* With no free keys the paid key is not a fallback: it is the pool. */
    CHECK_EQ_INT(json_number_at(stats, "pool.paid_fallbacks", -1), 0);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "succeeded"), 3);
    json_free(stats);
    fx_stop(&fx);
}

#define EXHAUSTION_WINDOW_MS 1500

void test_exhaustion(void) {
    fixture fx;
    char extra[96];
    snprintf(extra, sizeof extra, "\"free_rate_limit\":1,\"window_ms\":%d", EXHAUSTION_WINDOW_MS);
    if (fx_start(&fx, 2, 0, 0, extra) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, NULL, &err), err);
        gr_error_free(err);
    }
    /* Both keys used their one request: fail at once, saying when to retry. */
    CHECK_STATUS(h_generate(fx.pool, NULL, 2, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    CHECK_EQ_INT(gr_error_status(err), GR_ERR_ALL_KEYS_RATE_LIMITED);
    CHECK_CONTAINS(gr_error_message(err), "all API keys have reached their rate limits");
    /* At most one window: admissions of one slot are kept more than window_ms apart, counted
     * from when the earlier response came back, so the wait is at most window_ms + 1. */
    uint64_t retry = gr_error_retry_after_ms(err);
    CHECKF(retry > 0 && retry <= EXHAUSTION_WINDOW_MS + 1, "retry_after_ms %llu",
           (unsigned long long)retry);
    CHECK_EQ_INT(gr_error_http_status(err), 0);
    CHECK_STREQ(gr_error_rpc_status(err), "");
    gr_error_free(err);

    /* A wait shorter than the time until a key frees, or a call budget shorter than that, does
     * not help: still rate-limited. */
    CHECK_STATUS(h_generate(fx.pool, NULL, 3, 1, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    CHECK_STATUS(h_generate(fx.pool, NULL, 4, 60000, 1, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED,
                 err);
    gr_error_free(err);

    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 2); /* refusals never reach the service */
    json_free(emu);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(json_number_at(stats, "pool.exhausted", -1), 3);
    CHECK_EQ_INT(json_number_at(stats, "pool.failed", -1), 3);
    /* Each key's limiter refused at least once (later calls may skip a key known to be full
     * without asking its limiter again). */
    CHECK(h_key_stat(stats, fx.fps[0], "refused") >= 1);
    CHECK(h_key_stat(stats, fx.fps[1], "refused") >= 1);
    json_free(stats);

    /* With max_wait_ms the call waits for the window to free a slot, and succeeds. */
    CHECK_OK(h_generate(fx.pool, NULL, 5, 10000, 0, NULL, &err), err);
    gr_error_free(err);
    CHECK_OK(h_generate(fx.pool, NULL, 6, 10000, 0, NULL, &err), err);
    gr_error_free(err);

    /* The rolling window held: no key was used twice within window_ms (as the service saw it,
     * allowing for the difference between the library's clock and the service's arrival). */
    json_value *log = emu_log(&fx.emu);
    CHECKF(log != NULL && log->count == 4, "log of %zu entries", log != NULL ? log->count : 0);
    for (size_t i = 0; log != NULL && i < log->count; i++) {
        for (size_t j = i + 1; j < log->count; j++) {
            const char *a = json_string_at(json_at(log, i), "label");
            const char *b = json_string_at(json_at(log, j), "label");
            if (a != NULL && b != NULL && strcmp(a, b) == 0) {
                double gap = json_number_at(json_at(log, j), "t_ms", 0) -
                             json_number_at(json_at(log, i), "t_ms", 0);
                CHECKF(gap >= EXHAUSTION_WINDOW_MS - 100, "%s used twice %.1f ms apart", a, gap);
            }
        }
    }
    json_free(log);
    fx_stop(&fx);
}

void test_key_state_shared_between_pools(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, "\"free_rate_limit\":2") != 0) {
        fx_stop(&fx);
        return;
    }
    /* A second pool of the same key (another config object, same secret). */
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                                 "\"free_rate_limit\":2");
    gr_pool *other = h_pool(config);
    free(config);
    gr_error *err = NULL;
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), err);
    gr_error_free(err);
    CHECK_OK(h_generate(other, NULL, 1, 0, 0, NULL, &err), err);
    gr_error_free(err);
    /* The key's 2 are spent, whichever pool asks. */
    CHECK_STATUS(h_generate(fx.pool, NULL, 2, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    CHECK_STATUS(h_generate(other, NULL, 3, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    json_value *stats = h_pool_stats(other);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "in_window"), 2);
    json_free(stats);
    /* Freeing one pool does not free the key's slots. */
    gr_pool_free(other);
    CHECK_STATUS(h_generate(fx.pool, NULL, 4, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 2);
    json_free(emu);

    /* One key has one limit: another pool may not configure it differently (the key is named by
     * its fingerprint). */
    static const char *const conflicting[] = {"\"free_rate_limit\":3",
                                              "\"free_rate_limit\":2,\"window_ms\":30000"};
    for (size_t i = 0; i < 2; i++) {
        config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                               conflicting[i]);
        gr_pool *pool = NULL;
        CHECK_STATUS(gr_pool_new(config, &pool, &err), GR_ERR_CONFIG, err);
        CHECK_CONTAINS(gr_error_message(err), fx.fps[0]);
        CHECK(pool == NULL);
        gr_error_free(err);
        gr_pool_free(pool);
        free(config);
    }
    fx_stop(&fx);
}

/* Key state lives in the shared state file: another process using the same key (through the same
 * state file) spends the same window. */
void test_shared_state_across_processes(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, "\"free_rate_limit\":3") != 0) {
        fx_stop(&fx);
        return;
    }
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                                 "\"free_rate_limit\":3");
    /* This very program, in its child mode, makes 2 requests with its own pool. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (!CHECK(n > 0)) {
        free(config);
        fx_stop(&fx);
        return;
    }
    self[n] = '\0';
    char *argv[] = {self, "--child-generate", config, "2", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, self, NULL, NULL, argv, environ);
    CHECKF(rc == 0, "posix_spawn: %s", strerror(rc));
    int status = -1;
    if (rc == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    CHECKF(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "the child process failed (status %d)", status);
    free(config);

    /* This process's pool sees the child's two requests in the key's window. */
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "in_window"), 2);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "admitted"), 2);
    json_free(stats);
    gr_error *err = NULL;
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), err);
    gr_error_free(err);
    CHECK_STATUS(h_generate(fx.pool, NULL, 1, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 3);
    json_free(emu);
    fx_stop(&fx);
}
