/* test_failures.c: every class of upstream failure the emulator can inject, and what the pool
 * does about it: 429s cool the key and move on; dead keys are disabled and the call moves on;
 * 5xx and broken connections are retried with backoff; the caller's errors come back at once;
 * a call's time budget is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

/* The label of log entry i, or "". */
static const char *log_label(const json_value *log, size_t i) {
    const char *label = json_string_at(json_at(log, i), "label");
    return label != NULL ? label : "";
}

static long log_status(const json_value *log, size_t i) {
    return (long)json_number_at(json_at(log, i), "status", -1);
}

void test_quota_minute(void) {
    fixture fx;
    if (fx_start(&fx, 3, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    /* The first request, on whichever key, gets a per-minute 429 that asks for 30 s. */
    emu_fault(&fx.emu, "{\"kind\":\"quota_minute\",\"count\":1,\"retry_delay\":\"30s\"}");
    gr_error *err = NULL;
    char fp[32];
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, fp, &err), err);
    gr_error_free(err);

    json_value *log = emu_log(&fx.emu);
    CHECKF(log != NULL && log->count == 2, "log of %zu entries", log != NULL ? log->count : 0);
    CHECK_EQ_INT(log_status(log, 0), 429);
    CHECK_EQ_INT(log_status(log, 1), 200);
    int cooled = fx_index_of_label(&fx, log_label(log, 0));
    int served = fx_index_of_label(&fx, log_label(log, 1));
    CHECK(cooled >= 0 && served >= 0 && cooled != served);
    /* The call reports the key that actually served it. */
    CHECK(served >= 0 && strcmp(fp, fx.fps[served]) == 0);
    json_free(log);
    if (cooled < 0) {
        fx_stop(&fx);
        return;
    }

    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[cooled], "upstream_429"), 1);
    CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[cooled]), "cooldown_cause"),
                "per_minute");
    long remaining = h_key_stat(stats, fx.fps[cooled], "cooldown_remaining_ms");
    /* The service's retryDelay (30 s), not the 60 s window. */
    CHECKF(remaining > 1000 && remaining <= 30000, "cooldown_remaining_ms %ld", remaining);
    CHECK(json_get(h_key_stats(stats, fx.fps[cooled]), "disabled") != NULL &&
          json_get(h_key_stats(stats, fx.fps[cooled]), "disabled")->type == JSON_NULL);
    json_free(stats);

    /* While it cools, the key gets nothing; the others share the work. */
    for (int i = 1; i <= 6; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
        CHECKF(strcmp(fp, fx.fps[cooled]) != 0, "request %d went to the cooling key", i);
    }
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(emu_label(emu, fx.labels[cooled], "requests"), 1);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 8);
    json_free(emu);
    stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(json_number_at(stats, "pool.succeeded", -1), 7);
    CHECK_EQ_INT(json_number_at(stats, "pool.failed", -1), 0);
    json_free(stats);
    fx_stop(&fx);
}

void test_quota_day(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"quota_day\",\"label\":\"free1\",\"count\":1}");
    gr_error *err = NULL;
    char fp[32];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
    }
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "upstream_429"), 1);
    CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[0]), "cooldown_cause"), "per_day");
    CHECK(h_key_stat(stats, fx.fps[0], "cooldown_remaining_ms") > 0);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[1], "succeeded"), 3);
    json_free(stats);
    fx_stop(&fx);
}

/* Every key answers 429 with this fault; returns the retry_after_ms of the resulting error. */
static uint64_t quota_everywhere(const char *fault) {
    fixture fx;
    uint64_t retry = 0;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return 0;
    }
    emu_fault(&fx.emu, fault);
    gr_error *err = NULL;
    CHECK_STATUS(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    CHECK_CONTAINS(gr_error_message(err), "all API keys have reached their rate limits");
    retry = gr_error_retry_after_ms(err);
    gr_error_free(err);
    /* Each key was tried once, then cooled. */
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 2);
    CHECK_EQ_INT(emu_label_status(emu, "free1", 429), 1);
    CHECK_EQ_INT(emu_label_status(emu, "free2", 429), 1);
    json_free(emu);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "upstream_429"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[1], "upstream_429"), 1);
    CHECK_EQ_INT(json_number_at(stats, "pool.exhausted", -1), 1);
    json_free(stats);
    /* A cooled key is not asked again: the next call fails without reaching the service. */
    CHECK_STATUS(h_generate(fx.pool, NULL, 1, 0, 0, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 2);
    json_free(emu);
    fx_stop(&fx);
    return retry;
}

void test_quota_on_every_key(void) {
    /* RetryInfo says 1 s. */
    uint64_t retry = quota_everywhere("{\"kind\":\"quota_minute\",\"retry_delay\":\"1s\"}");
    CHECKF(retry > 0 && retry <= 1000, "retry_after_ms %llu", (unsigned long long)retry);
    /* Only the message says "Please retry in 2s". */
    retry = quota_everywhere("{\"kind\":\"quota_message\",\"retry_delay\":\"2s\"}");
    CHECKF(retry > 1000 && retry <= 2000, "retry_after_ms %llu", (unsigned long long)retry);
    /* No quota named at all (the service's capacity): a short backoff of about a second on the
     * key's group and model, not a window. */
    retry = quota_everywhere("{\"kind\":\"quota_bare\"}");
    CHECKF(retry > 0 && retry <= 1000, "retry_after_ms %llu", (unsigned long long)retry);
}

void test_invalid_key(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    /* The service stops knowing free2's key (its label now has another secret): a genuine
     * 400 API_KEY_INVALID from the emulator, not an injected one. */
    char other[128];
    h_key(other, sizeof other, "replacement", 2);
    char *spec = h_strdupf("{\"key\":\"%s\",\"label\":\"free2\",\"limit\":null,\"window_ms\":60000}",
                           other);
    CHECK_EQ_INT(emu_http(&fx.emu, "POST", "/_emulator/keys", spec, NULL), 200);
    free(spec);

    gr_error *err = NULL;
    char fp[32];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
        CHECK_STREQ(fp, fx.fps[0]);
    }
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[1]), "disabled"), "API_KEY_INVALID");
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[1], "invalid_key"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "succeeded"), 4);
    json_free(stats);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "unknown_key", -1), 1); /* tried once, never again */
    CHECK_EQ_INT(emu_label(emu, "free1", "ok"), 4);
    json_free(emu);

    /* Now free1 turns invalid too: once it is disabled, no key is left. */
    emu_fault(&fx.emu, "{\"kind\":\"invalid_key\",\"label\":\"free1\"}");
    CHECK_STATUS(h_generate(fx.pool, NULL, 10, 0, 0, NULL, &err), GR_ERR_NO_USABLE_KEYS, err);
    CHECK_CONTAINS(gr_error_message(err), fx.fps[0]); /* keys named by fingerprint */
    CHECK_CONTAINS(gr_error_message(err), fx.fps[1]);
    CHECK_EQ_INT(gr_error_retry_after_ms(err), 0);
    gr_error_free(err);
    /* And the next call fails at once, without asking the service. */
    CHECK_STATUS(h_generate(fx.pool, NULL, 11, 60000, 0, NULL, &err), GR_ERR_NO_USABLE_KEYS, err);
    gr_error_free(err);
    emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 6);
    json_free(emu);
    stats = h_pool_stats(fx.pool);
    CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[0]), "disabled"), "API_KEY_INVALID");
    json_free(stats);
    fx_stop(&fx);
}

void test_dead_keys(void) {
    fixture fx;
    if (fx_start(&fx, 4, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"leaked\",\"label\":\"free1\"}");
    emu_fault(&fx.emu, "{\"kind\":\"suspended\",\"label\":\"free2\"}");
    emu_fault(&fx.emu, "{\"kind\":\"service_disabled\",\"label\":\"free3\"}");
    gr_error *err = NULL;
    char fp[32];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(h_generate(fx.pool, NULL, i, 0, 0, fp, &err), err);
        gr_error_free(err);
        CHECK_STREQ(fp, fx.fps[3]);
    }
    static const char *const reasons[] = {"LEAKED", "CONSUMER_SUSPENDED", "SERVICE_DISABLED"};
    json_value *stats = h_pool_stats(fx.pool);
    json_value *emu = emu_stats(&fx.emu);
    for (int k = 0; k < 3; k++) {
        CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[k]), "disabled"), reasons[k]);
        CHECK_EQ_INT(h_key_stat(stats, fx.fps[k], "permission_denied"), 1);
        CHECK_EQ_INT(emu_label(emu, fx.labels[k], "requests"), 1); /* never asked again */
    }
    CHECK_EQ_INT(emu_label(emu, "free4", "ok"), 4);
    json_free(stats);
    json_free(emu);

    /* A pool whose only key is reported leaked: GR_ERR_NO_USABLE_KEYS naming its fingerprint. */
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[3]}, 1, NULL, NULL);
    gr_pool *pool = h_pool(config);
    free(config);
    emu_fault(&fx.emu, "{\"kind\":\"leaked\",\"label\":\"free4\"}");
    CHECK_STATUS(h_generate(pool, NULL, 9, 0, 0, NULL, &err), GR_ERR_NO_USABLE_KEYS, err);
    CHECK_CONTAINS(gr_error_message(err), fx.fps[3]);
    CHECK_CONTAINS(gr_error_message(err), "LEAKED");
    gr_error_free(err);
    gr_pool_free(pool);
    fx_stop(&fx);
}

void test_http503_once(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"http503\",\"count\":1}");
    gr_error *err = NULL;
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), err);
    gr_error_free(err);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "server_errors"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "retries"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "succeeded"), 1);
    CHECK(json_get(h_key_stats(stats, fx.fps[0]), "disabled") != NULL &&
          json_get(h_key_stats(stats, fx.fps[0]), "disabled")->type == JSON_NULL);
    json_free(stats);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(emu_label_status(emu, "free1", 503), 1);
    CHECK_EQ_INT(emu_label_status(emu, "free1", 200), 1);
    json_free(emu);

    /* The other transient statuses are retried the same way. */
    emu_fault(&fx.emu, "{\"kind\":\"http500\",\"count\":1}");
    emu_fault(&fx.emu, "{\"kind\":\"http502\",\"count\":1}");
    emu_fault(&fx.emu, "{\"kind\":\"http504\",\"count\":1}");
    CHECK_OK(h_generate(fx.pool, NULL, 1, 0, 0, NULL, &err), err);
    gr_error_free(err);
    stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "server_errors"), 4);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "retries"), 4);
    json_free(stats);
    fx_stop(&fx);
}

void test_http503_persistent(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, "\"max_retries\":2") != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"http503\"}");
    gr_error *err = NULL;
    CHECK_STATUS(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), GR_ERR_API, err);
    CHECK_EQ_INT(gr_error_http_status(err), 503);
    CHECK_STREQ(gr_error_rpc_status(err), "UNAVAILABLE");
    CHECK_CONTAINS(gr_error_message(err), "503");
    CHECK_EQ_INT(gr_error_retry_after_ms(err), 0);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 3); /* 1 + max_retries */
    json_free(emu);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "server_errors"), 3);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "retries"), 2);
    CHECK_EQ_INT(json_number_at(stats, "pool.failed", -1), 1);
    /* Server errors are not held against the key. */
    CHECK(json_get(h_key_stats(stats, fx.fps[0]), "disabled") != NULL &&
          json_get(h_key_stats(stats, fx.fps[0]), "disabled")->type == JSON_NULL);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "cooldown_remaining_ms"), 0);
    json_free(stats);
    fx_stop(&fx);
}

/* A fault that is the caller's problem: GR_ERR_API at once, one attempt, the key untouched. */
static void caller_error(const char *fault, int http, const char *rpc) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, fault);
    gr_error *err = NULL;
    CHECK_STATUS(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), GR_ERR_API, err);
    CHECK_EQ_INT(gr_error_http_status(err), http);
    CHECK_STREQ(gr_error_rpc_status(err), rpc);
    /* The service's message alone, and the key that received it. */
    const char *api_message = gr_error_api_message(err);
    CHECK(api_message[0] != '\0' && strstr(gr_error_message(err), api_message) != NULL);
    CHECK(strncmp(api_message, "Gemini API error", 16) != 0);
    const char *key_fp = gr_error_key_fingerprint(err);
    CHECK(strcmp(key_fp, fx.fps[0]) == 0 || strcmp(key_fp, fx.fps[1]) == 0);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 1); /* exactly one upstream attempt */
    json_free(emu);
    json_value *stats = h_pool_stats(fx.pool);
    long client_errors = h_key_stat(stats, fx.fps[0], "client_errors") +
                         h_key_stat(stats, fx.fps[1], "client_errors");
    CHECK_EQ_INT(client_errors, 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "retries") + h_key_stat(stats, fx.fps[1], "retries"),
                 0);
    for (int k = 0; k < 2; k++) {
        CHECK(json_get(h_key_stats(stats, fx.fps[k]), "disabled") != NULL &&
              json_get(h_key_stats(stats, fx.fps[k]), "disabled")->type == JSON_NULL);
    }
    json_free(stats);
    fx_stop(&fx);
}

void test_bad_request(void) {
    caller_error("{\"kind\":\"bad_request\",\"count\":1}", 400, "INVALID_ARGUMENT");
}

void test_location(void) {
    caller_error("{\"kind\":\"location\",\"count\":1}", 400, "FAILED_PRECONDITION");
}

void test_safety_block(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"safety_block\",\"count\":1}");
    char *request = h_request("something unsafe", 1);
    gr_response *response = NULL;
    gr_error *err = NULL;
    CHECK_OK(gr_generate(fx.pool, NULL, request, 0, 0, &response, &err), err);
    json_value *v = json_parse(gr_response_body(response, NULL), NULL, 0);
    CHECK(v != NULL);
    CHECK_STREQ(json_string_at(v, "promptFeedback.blockReason"), "SAFETY");
    CHECK_STREQ(gr_response_key_fingerprint(response), fx.fps[0]);
    CHECK_EQ_INT(gr_response_attempts(response), 1);
    json_free(v);
    gr_response_free(response);
    gr_error_free(err);
    free(request);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "succeeded"), 1);
    CHECK_EQ_INT(json_number_at(stats, "pool.failed", -1), 0);
    json_free(stats);
    fx_stop(&fx);
}

void test_close(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, "\"max_retries\":1") != 0) {
        fx_stop(&fx);
        return;
    }
    /* The connection is closed without an answer once: retried, then served. */
    emu_fault(&fx.emu, "{\"kind\":\"close\",\"count\":1}");
    gr_error *err = NULL;
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 0, NULL, &err), err);
    gr_error_free(err);
    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "transport_errors"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "retries"), 1);
    json_free(stats);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(emu_label_status(emu, "free1", 0), 1);
    CHECK_EQ_INT(emu_label_status(emu, "free1", 200), 1);
    json_free(emu);

    /* Always closed: GR_ERR_TRANSPORT after 1 + max_retries attempts. */
    emu_fault(&fx.emu, "{\"kind\":\"close\"}");
    CHECK_STATUS(h_generate(fx.pool, NULL, 1, 0, 0, NULL, &err), GR_ERR_TRANSPORT, err);
    CHECK_EQ_INT(gr_error_http_status(err), 0);
    CHECK(gr_error_message(err)[0] != '\0');
    gr_error_free(err);
    emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 4);
    json_free(emu);
    fx_stop(&fx);
}

void test_timeout(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    /* A delay within the budget is only a slow success. */
    emu_fault(&fx.emu, "{\"kind\":\"delay\",\"latency_ms\":100,\"count\":1}");
    CHECK_OK(h_generate(fx.pool, NULL, 0, 0, 5000, NULL, &err), err);
    gr_error_free(err);

    /* A delay longer than timeout_ms: GR_ERR_TIMEOUT (had the call waited for the answer, it
     * would have succeeded). */
    emu_fault(&fx.emu, "{\"kind\":\"delay\",\"latency_ms\":4000}");
    CHECK_STATUS(h_generate(fx.pool, NULL, 1, 0, 300, NULL, &err), GR_ERR_TIMEOUT, err);
    gr_error_free(err);

    /* The pool's timeout_ms is the budget when the call gives 0, and a call cannot lengthen it. */
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                                 "\"timeout_ms\":300");
    gr_pool *pool = h_pool(config);
    free(config);
    CHECK_STATUS(h_generate(pool, NULL, 2, 0, 0, NULL, &err), GR_ERR_TIMEOUT, err);
    gr_error_free(err);
    CHECK_STATUS(h_generate(pool, NULL, 3, 0, 60000, NULL, &err), GR_ERR_TIMEOUT, err);
    gr_error_free(err);
    gr_pool_free(pool);

    json_value *stats = h_pool_stats(fx.pool);
    /* Key state (and so its counters) is the key's, shared by both pools. */
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "timeouts"), 3);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "succeeded"), 1);
    CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "in_flight"), 0);
    json_free(stats);
    fx_stop(&fx);
}
