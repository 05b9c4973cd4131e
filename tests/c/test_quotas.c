/* test_quotas.c: quotas as Google applies them, through the C ABI: per (project, model), per
 * day, per token; a per-day 429 spends only its model; a model that is not on a key's tier
 * moves the call on, or is GR_ERR_MODEL_UNAVAILABLE when no key has it; model fallback and
 * gr_response_model; the statistics per key and model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

#define DEFAULT_MODEL "gemini-3.6-flash"
#define OTHER_MODEL "gemini-3.1-flash-lite"

/* An emulator whose keys have these extra fields (a JSON fragment each, e.g. "\"daily_limit\":2",
 * or ""), labelled k0, k1, ...; the keys go to keys[i]. Returns 0, or -1 after a failed check. */
static int start_emulator(emulator *emu, char keys[][128], const char *const *fields, size_t n) {
    char *list = h_strdupf("%s", "");
    for (size_t i = 0; i < n; i++) {
        h_key(keys[i], 128, "q", (int)i);
        char *next = h_strdupf("%s%s{\"key\":\"%s\",\"label\":\"k%zu\"%s%s}", list, i ? "," : "",
                               keys[i], i, fields[i][0] ? "," : "", fields[i]);
        free(list);
        list = next;
    }
    char *config = h_strdupf("{\"keys\":[%s]}", list);
    free(list);
    int rc = emu_start(emu, config);
    free(config);
    return rc;
}

/* gr_generate of "hello n" for `model` (NULL: the default); on GR_OK copies the model that
 * served it into served (at least 64 bytes) and the fingerprint into fp (at least 32). */
static gr_status generate(const gr_pool *pool, const char *model, int n, char *served, char *fp,
                          gr_error **err) {
    char *request = h_request("hello", n);
    gr_response *resp = NULL;
    *err = NULL;
    gr_status st = gr_generate(pool, model, request, 0, 0, &resp, err);
    served[0] = '\0';
    if (fp != NULL) {
        fp[0] = '\0';
    }
    if (st == GR_OK) {
        snprintf(served, 64, "%s", gr_response_model(resp));
        if (fp != NULL) {
            snprintf(fp, 32, "%s", gr_response_key_fingerprint(resp));
        }
    }
    gr_response_free(resp);
    free(request);
    return st;
}

/* The stats object of the key's group for `model`, in a parsed gr_stats_json, or NULL. */
static const json_value *key_model(const json_value *stats, const char *fp, const char *model) {
    const json_value *models = json_get(h_key_stats(stats, fp), "models");
    for (size_t i = 0; models != NULL && i < models->count; i++) {
        const char *name = json_string_at(json_at(models, i), "model");
        if (name != NULL && strcmp(name, model) == 0) {
            return json_at(models, i);
        }
    }
    return NULL;
}

void test_quota_per_model(void) {
    emulator emu;
    char keys[1][128];
    const char *fields[] = {""};
    if (start_emulator(&emu, keys, fields, 1) != 0) {
        emu_stop(&emu);
        return;
    }
    const char *free_keys[] = {keys[0]};
    char *config = h_pool_config(&emu, free_keys, 1, NULL, NULL);
    gr_pool *pool = h_pool(config);
    free(config);
    emu_fault(&emu, "{\"kind\":\"quota_day\",\"model\":\"" DEFAULT_MODEL "\",\"count\":1}");
    gr_error *err = NULL;
    char served[64], fp[32];
    CHECK_STATUS(generate(pool, NULL, 1, served, fp, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    /* Until Pacific midnight, not the answer's short retryDelay. */
    CHECKF(gr_error_retry_after_ms(err) > 60000, "retry_after_ms %llu",
           (unsigned long long)gr_error_retry_after_ms(err));
    gr_error_free(err);
    /* The same key still serves another model. */
    CHECK_OK(generate(pool, OTHER_MODEL, 2, served, fp, &err), err);
    gr_error_free(err);
    CHECK_STREQ(served, OTHER_MODEL);
    json_value *stats = h_pool_stats(pool);
    char key_fp[32];
    h_fingerprint(keys[0], key_fp, sizeof key_fp);
    CHECK_STREQ(json_string_at(key_model(stats, key_fp, DEFAULT_MODEL), "cooldown_cause"),
                "per_day");
    const json_value *other = key_model(stats, key_fp, OTHER_MODEL);
    CHECK(other != NULL && json_get(other, "cooldown_cause") != NULL &&
          json_get(other, "cooldown_cause")->type == JSON_NULL);
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}

void test_daily_limit(void) {
    emulator emu;
    char keys[1][128];
    const char *fields[] = {"\"daily_limit\":2"};
    if (start_emulator(&emu, keys, fields, 1) != 0) {
        emu_stop(&emu);
        return;
    }
    const char *free_keys[] = {keys[0]};
    char *config = h_pool_config(&emu, free_keys, 1, NULL, "\"free_daily_limit\":2");
    gr_pool *pool = h_pool(config);
    free(config);
    gr_error *err = NULL;
    char served[64];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(generate(pool, NULL, i, served, NULL, &err), err);
        gr_error_free(err);
    }
    CHECK_STATUS(generate(pool, NULL, 3, served, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    uint64_t retry = gr_error_retry_after_ms(err);
    /* The next Pacific midnight: at most 25 hours away. */
    CHECKF(retry > 0 && retry <= 25ull * 3600 * 1000, "retry_after_ms %llu",
           (unsigned long long)retry);
    gr_error_free(err);
    json_value *e = emu_stats(&emu);
    CHECK_EQ_INT(emu_label(e, "k0", "requests"), 2);
    CHECK_EQ_INT(emu_label(e, "k0", "rate_limited"), 0);
    json_free(e);
    json_value *stats = h_pool_stats(pool);
    char fp[32];
    h_fingerprint(keys[0], fp, sizeof fp);
    CHECK_EQ_INT(json_number_at(key_model(stats, fp, DEFAULT_MODEL), "today", -1), 2);
    CHECK_EQ_INT(json_number_at(key_model(stats, fp, DEFAULT_MODEL), "daily_limit", -1), 2);
    CHECK_EQ_INT(json_number_at(json_at(json_get(stats, "models"), 0), "requests_left_today", -1),
                 0);
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}

void test_project_groups(void) {
    emulator emu;
    char keys[2][128];
    const char *fields[] = {"\"project\":\"p\",\"limit\":2", "\"project\":\"p\",\"limit\":2"};
    if (start_emulator(&emu, keys, fields, 2) != 0) {
        emu_stop(&emu);
        return;
    }
    char entries[2][140];
    snprintf(entries[0], sizeof entries[0], "p:%s", keys[0]);
    snprintf(entries[1], sizeof entries[1], "p:%s", keys[1]);
    const char *free_keys[] = {entries[0], entries[1]};
    char *config = h_pool_config(&emu, free_keys, 2, NULL, "\"free_rate_limit\":2");
    gr_pool *pool = h_pool(config);
    free(config);
    gr_error *err = NULL;
    char served[64];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(generate(pool, NULL, i, served, NULL, &err), err);
        gr_error_free(err);
    }
    /* The project's two, not two per key. */
    CHECK_STATUS(generate(pool, NULL, 2, served, NULL, &err), GR_ERR_ALL_KEYS_RATE_LIMITED, err);
    gr_error_free(err);
    json_value *e = emu_stats(&emu);
    CHECK_EQ_INT(json_number_at(e, "total", -1), 2);
    CHECK_EQ_INT(emu_label(e, "k0", "rate_limited") + emu_label(e, "k1", "rate_limited"), 0);
    json_free(e);
    json_value *stats = h_pool_stats(pool);
    char fp[32];
    h_fingerprint(keys[1], fp, sizeof fp);
    CHECK_STREQ(json_string_at(h_key_stats(stats, fp), "group"), "p");
    CHECK_EQ_INT(h_key_stat(stats, fp, "in_window"), 2);
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}

void test_model_unavailable(void) {
    emulator emu;
    char keys[3][128];
    const char *zero = "\"models\":{\"gemini-3-pro\":{\"limit\":0}}";
    const char *fields[] = {zero, "", zero};
    if (start_emulator(&emu, keys, fields, 3) != 0) {
        emu_stop(&emu);
        return;
    }
    /* One key lacks the model, the other has it: the call moves on at once. */
    const char *two[] = {keys[0], keys[1]};
    char *config = h_pool_config(&emu, two, 2, NULL, NULL);
    gr_pool *pool = h_pool(config);
    free(config);
    gr_error *err = NULL;
    char served[64], fp[32], fp1[32];
    h_fingerprint(keys[1], fp1, sizeof fp1);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(generate(pool, "gemini-3-pro", i, served, fp, &err), err);
        gr_error_free(err);
        CHECK_STREQ(fp, fp1);
        CHECK_STREQ(served, "gemini-3-pro");
    }
    json_value *e = emu_stats(&emu);
    CHECK_EQ_INT(emu_label(e, "k0", "requests"), 1);
    json_free(e);
    json_value *stats = h_pool_stats(pool);
    char fp0[32];
    h_fingerprint(keys[0], fp0, sizeof fp0);
    const json_value *unavailable = json_get(key_model(stats, fp0, "gemini-3-pro"), "unavailable");
    CHECK(unavailable != NULL && unavailable->type == JSON_BOOL && unavailable->boolean);
    json_free(stats);
    gr_pool_free(pool);

    /* No key has it: GR_ERR_MODEL_UNAVAILABLE naming the model, not a rate limit. */
    const char *none[] = {keys[2]};
    config = h_pool_config(&emu, none, 1, NULL, NULL);
    pool = h_pool(config);
    free(config);
    CHECK_STATUS(generate(pool, "gemini-3-pro", 9, served, NULL, &err), GR_ERR_MODEL_UNAVAILABLE,
                 err);
    CHECK_CONTAINS(gr_error_message(err), "gemini-3-pro");
    CHECK_EQ_INT(gr_error_retry_after_ms(err), 0);
    CHECK_STREQ(gr_status_name(GR_ERR_MODEL_UNAVAILABLE), "GR_ERR_MODEL_UNAVAILABLE");
    gr_error_free(err);
    gr_pool_free(pool);
    emu_stop(&emu);
}

void test_model_fallback(void) {
    emulator emu;
    char keys[1][128];
    const char *fields[] = {""};
    if (start_emulator(&emu, keys, fields, 1) != 0) {
        emu_stop(&emu);
        return;
    }
    const char *free_keys[] = {keys[0]};
    char *config = h_pool_config(
        &emu, free_keys, 1, NULL,
        "\"models\":{\"" DEFAULT_MODEL "\":{\"free_daily_limit\":1,\"fallback\":[\"" OTHER_MODEL
        "\"]}}");
    gr_pool *pool = h_pool(config);
    free(config);
    gr_error *err = NULL;
    char served[64];
    CHECK_OK(generate(pool, NULL, 1, served, NULL, &err), err);
    gr_error_free(err);
    CHECK_STREQ(served, DEFAULT_MODEL);
    CHECK_OK(generate(pool, NULL, 2, served, NULL, &err), err);
    gr_error_free(err);
    CHECK_STREQ(served, OTHER_MODEL);
    CHECK_STREQ(gr_response_model(NULL), "");
    json_value *stats = h_pool_stats(pool);
    CHECK_EQ_INT(json_number_at(stats, "pool.model_fallbacks", -1), 1);
    const json_value *models = json_get(stats, "models");
    long fallbacks = -1;
    for (size_t i = 0; models != NULL && i < models->count; i++) {
        const char *name = json_string_at(json_at(models, i), "model");
        if (name != NULL && strcmp(name, OTHER_MODEL) == 0) {
            fallbacks = (long)json_number_at(json_at(models, i), "fallbacks", -1);
        }
    }
    CHECK_EQ_INT(fallbacks, 1);
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}

void test_capacity_429(void) {
    emulator emu;
    char keys[2][128];
    const char *fields[] = {"", ""};
    if (start_emulator(&emu, keys, fields, 2) != 0) {
        emu_stop(&emu);
        return;
    }
    const char *free_keys[] = {keys[0], keys[1]};
    char *config = h_pool_config(&emu, free_keys, 2, NULL, NULL);
    gr_pool *pool = h_pool(config);
    free(config);
    emu_fault(&emu, "{\"kind\":\"quota_bare\",\"count\":1}");
    gr_error *err = NULL;
    char served[64], fp[32];
    CHECK_OK(generate(pool, NULL, 1, served, fp, &err), err);
    gr_error_free(err);
    json_value *log = emu_log(&emu);
    const char *cooled_label = json_string_at(json_at(log, 0), "label");
    CHECK(cooled_label != NULL);
    int cooled = cooled_label != NULL && strcmp(cooled_label, "k1") == 0 ? 1 : 0;
    json_free(log);
    char cooled_fp[32];
    h_fingerprint(keys[cooled], cooled_fp, sizeof cooled_fp);
    CHECK(strcmp(fp, cooled_fp) != 0);
    json_value *stats = h_pool_stats(pool);
    const json_value *m = key_model(stats, cooled_fp, DEFAULT_MODEL);
    CHECK_STREQ(json_string_at(m, "cooldown_cause"), "capacity");
    long left = (long)json_number_at(m, "cooldown_remaining_ms", -1);
    /* A second at first, not a whole window. */
    CHECKF(left > 0 && left <= 1000, "cooldown_remaining_ms %ld", left);
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}
