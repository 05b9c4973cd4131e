/* test_args.c: bad arguments of every kind. NULL for every pointer argument of every function,
 * invalid UTF-8, malformed JSON, bad configuration values (JSON and environment), bad model
 * names; out-params untouched on failure; out_error NULL accepted. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

/* Sentinels: out-params are pre-set to these and must be untouched by a failing call. */
static char sentinel_text[] = "untouched";
#define SENTINEL_STR sentinel_text
static int sentinel_object;
#define SENTINEL_POOL ((gr_pool *)(void *)&sentinel_object)
#define SENTINEL_ERROR ((gr_error *)(void *)&sentinel_object)
#define SENTINEL_RESPONSE ((gr_response *)(void *)&sentinel_object)

/* Whether `message` names `name` as a word (not as part of a longer identifier, so that "pool"
 * is not found in "out_pool"). */
static int names(const char *message, const char *name) {
    size_t n = strlen(name);
    for (const char *p = message; (p = strstr(p, name)) != NULL; p++) {
        int before_ok = p == message || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after_ok = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (before_ok && after_ok) {
            return 1;
        }
    }
    return 0;
}

#define CHECK_NAMES(err, name)                                                                  \
    CHECKF(names(gr_error_message(err), (name)), "the message \"%s\" does not name %s",         \
           gr_error_message(err), (name))

/* Runs gr_generate with sentinels in every out-param; checks the status, the argument named,
 * and that the out-params are untouched. */
static void expect_generate_fails(const gr_pool *pool, const char *model, const char *request,
                                  gr_status expected, const char *argument, const char *file,
                                  int line) {
    gr_response *response = SENTINEL_RESPONSE;
    gr_error *err = NULL;
    gr_status st = gr_generate(pool, model, request, 0, 0, &response, &err);
    h_check_status(st, expected, &err, file, line, "gr_generate");
    h_check(names(gr_error_message(err), argument), file, line, "the message names the argument",
            "\"%s\" does not name %s", gr_error_message(err), argument);
    h_check(response == SENTINEL_RESPONSE, file, line, "out-param untouched", "%s",
            "out_response was written on failure");
    gr_error_free(err);
}

/* gr_pool_new(config) fails with `expected`, names config_json, mentions `detail` (if not NULL)
 * and leaves the out-param untouched. */
static void expect_pool_new_fails(const char *config, gr_status expected, const char *detail,
                                  const char *file, int line) {
    gr_pool *pool = SENTINEL_POOL;
    gr_error *err = NULL;
    gr_status st = gr_pool_new(config, &pool, &err);
    h_check_status(st, expected, &err, file, line, "gr_pool_new");
    h_check(names(gr_error_message(err), "config_json"), file, line,
            "the message names the argument", "\"%s\" does not name config_json",
            gr_error_message(err));
    if (detail != NULL) {
        h_check(strstr(gr_error_message(err), detail) != NULL, file, line, "the message says why",
                "\"%s\" lacks \"%s\"", gr_error_message(err), detail);
    }
    h_check(pool == SENTINEL_POOL, file, line, "out-param untouched", "%s",
            "out_pool was written on failure");
    gr_error_free(err);
}

#define EACH(array) for (size_t i = 0; i < sizeof(array) / sizeof((array)[0]); i++)

void test_null_arguments(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL, NULL);

    /* gr_pool_new: out_pool (config_json NULL means "read the environment", tested elsewhere). */
    CHECK_STATUS(gr_pool_new(config, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "out_pool");
    gr_error_free(err);
    err = NULL;

    /* gr_generate: pool, request_json, out_response. */
    char *request = h_request("hello", 1);
    expect_generate_fails(NULL, NULL, request, GR_ERR_NULL_ARGUMENT, "pool", __FILE__, __LINE__);
    expect_generate_fails(fx.pool, NULL, NULL, GR_ERR_NULL_ARGUMENT, "request_json", __FILE__,
                          __LINE__);
    CHECK_STATUS(gr_generate(fx.pool, NULL, request, 0, 0, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "out_response");
    gr_error_free(err);
    err = NULL;
    /* Every pointer NULL at once: still a clean NULL_ARGUMENT. */
    CHECK_STATUS(gr_generate(NULL, NULL, NULL, 0, 0, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    gr_error_free(err);
    err = NULL;

    /* The optional pointers: model NULL (the pool's default) and gr_response_body's out_len. */
    gr_response *response = NULL;
    err = SENTINEL_ERROR;
    CHECK_OK_NOERR(gr_generate(fx.pool, NULL, request, 0, 0, &response, &err));
    CHECK(err == SENTINEL_ERROR); /* out_error untouched on success */
    CHECK_CONTAINS(gr_response_body(response, NULL), "echo: hello 1");
    gr_response_free(response);
    err = NULL;

    /* The response accessors on NULL: empty, zero, no crash. */
    size_t len = 99;
    CHECK_STREQ(gr_response_body(NULL, &len), "");
    CHECK_EQ_INT(len, 0);
    CHECK_STREQ(gr_response_key_fingerprint(NULL), "");
    CHECK_EQ_INT(gr_response_attempts(NULL), 0);

    /* gr_stats_json: pool, out_json. */
    char *json = SENTINEL_STR;
    CHECK_STATUS(gr_stats_json(NULL, &json, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "pool");
    CHECK(json == SENTINEL_STR);
    gr_error_free(err);
    err = NULL;
    CHECK_STATUS(gr_stats_json(fx.pool, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "out_json");
    gr_error_free(err);
    err = NULL;

    /* gr_key_fingerprint: key, out_fingerprint. */
    char *fp = SENTINEL_STR;
    CHECK_STATUS(gr_key_fingerprint(NULL, &fp, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "key");
    CHECK(fp == SENTINEL_STR);
    gr_error_free(err);
    err = NULL;
    CHECK_STATUS(gr_key_fingerprint(fx.keys[0], NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK_NAMES(err, "out_fingerprint");
    gr_error_free(err);
    err = NULL;

    /* Only the one successful call reached the service. */
    json_value *stats = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(stats, "total", -1), 1);
    json_free(stats);
    free(request);
    free(config);
    fx_stop(&fx);
}

void test_null_out_error(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, "\"free_rate_limit\":1") != 0) {
        fx_stop(&fx);
        return;
    }
    gr_pool *pool = SENTINEL_POOL;
    char *text = SENTINEL_STR;
    char *fp = SENTINEL_STR;
    gr_response *resp = SENTINEL_RESPONSE;
    char *request = h_request("hello", 1);

    /* Every fallible function reports its status with out_error NULL, and writes nothing. */
    CHECK_STATUS_NOERR(gr_pool_new("{", &pool, NULL), GR_ERR_INVALID_JSON);
    CHECK_STATUS_NOERR(gr_pool_new("{\"free_keys\":[]}", &pool, NULL), GR_ERR_CONFIG);
    CHECK(pool == SENTINEL_POOL);
    CHECK_STATUS_NOERR(gr_generate(NULL, NULL, request, 0, 0, &resp, NULL), GR_ERR_NULL_ARGUMENT);
    CHECK_STATUS_NOERR(gr_generate(fx.pool, "bad model", request, 0, 0, &resp, NULL),
                 GR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS_NOERR(gr_stats_json(NULL, &text, NULL), GR_ERR_NULL_ARGUMENT);
    CHECK_STATUS_NOERR(gr_key_fingerprint(NULL, &fp, NULL), GR_ERR_NULL_ARGUMENT);
    CHECK(text == SENTINEL_STR && fp == SENTINEL_STR && resp == SENTINEL_RESPONSE);

    /* Failures that come from the service or the limiter, too. */
    gr_response *response = NULL;
    CHECK_OK_NOERR(gr_generate(fx.pool, NULL, request, 0, 0, &response, NULL));
    gr_response_free(response);
    CHECK_STATUS_NOERR(gr_generate(fx.pool, NULL, request, 0, 0, &resp, NULL),
                 GR_ERR_ALL_KEYS_RATE_LIMITED);
    CHECK(resp == SENTINEL_RESPONSE);
    free(request);
    fx_stop(&fx);
}

void test_invalid_utf8(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;

    /* config_json: a bad byte inside a key string, and a truncated sequence at the end. */
    static const char *const bad_configs[] = {
        "{\"free_keys\":[\"abc\xff\"]}",
        "{\"free_keys\":[\"a\xc3\x28\"]}",
        "{\"free_keys\":[\"a\"],\"model\":\"gemini\xe2\x82\"}",
        "\xef\xbb",
    };
    EACH(bad_configs) {
        expect_pool_new_fails(bad_configs[i], GR_ERR_INVALID_UTF8, NULL, __FILE__, __LINE__);
    }

    /* request_json: invalid UTF-8 inside a text part (and an overlong encoding). */
    expect_generate_fails(fx.pool, NULL,
                          "{\"contents\":[{\"parts\":[{\"text\":\"caf\xe9\"}]}]}",
                          GR_ERR_INVALID_UTF8, "request_json", __FILE__, __LINE__);
    expect_generate_fails(fx.pool, NULL,
                          "{\"contents\":[{\"parts\":[{\"text\":\"\xc0\xaf\"}]}]}",
                          GR_ERR_INVALID_UTF8, "request_json", __FILE__, __LINE__);

    /* model. */
    char *request = h_request("hello", 1);
    expect_generate_fails(fx.pool, "gemini-\xff", request, GR_ERR_INVALID_UTF8, "model", __FILE__,
                          __LINE__);
    expect_generate_fails(fx.pool, "\xed\xa0\x80", request, GR_ERR_INVALID_UTF8, "model",
                          __FILE__, __LINE__); /* an encoded surrogate */

    /* key. */
    char *fp = SENTINEL_STR;
    CHECK_STATUS(gr_key_fingerprint("key-\xfe\xff", &fp, &err), GR_ERR_INVALID_UTF8, err);
    CHECK_NAMES(err, "key");
    CHECK(fp == SENTINEL_STR);
    gr_error_free(err);
    err = NULL;

    /* Valid UTF-8 beyond ASCII is fine in a request and comes back intact. */
    gr_response *response = NULL;
    CHECK_OK(gr_generate(fx.pool, NULL,
                         "{\"contents\":[{\"parts\":[{\"text\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}]}]}",
                         0, 0, &response, &err),
             err);
    json_value *v = json_parse(gr_response_body(response, NULL), NULL, 0);
    const char *text = json_string_at(
        json_at(json_path(json_at(json_get(v, "candidates"), 0), "content.parts"), 0), "text");
    CHECK_STREQ(text, "echo: caf\xc3\xa9 \xf0\x9f\x98\x80");
    json_free(v);
    gr_response_free(response);
    gr_error_free(err);

    /* Nothing invalid was sent: the service saw the one valid request only. */
    json_value *stats = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(stats, "total", -1), 1);
    json_free(stats);
    free(request);
    fx_stop(&fx);
}

void test_invalid_json(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;

    /* Text that is not JSON at all: GR_ERR_INVALID_JSON. */
    static const char *const bad_configs[] = {
        "", "{", "not json", "{\"free_keys\":[\"a\",]}", "{\"free_keys\":[\"a\"]} trailing",
        "{'free_keys':['a']}",
    };
    EACH(bad_configs) {
        expect_pool_new_fails(bad_configs[i], GR_ERR_INVALID_JSON, NULL, __FILE__, __LINE__);
    }
    /* Valid JSON of the wrong kind: GR_ERR_INVALID_ARGUMENT. */
    static const char *const wrong_configs[] = {"[1]", "\"free_keys\"", "null", "42"};
    EACH(wrong_configs) {
        expect_pool_new_fails(wrong_configs[i], GR_ERR_INVALID_ARGUMENT, "must be a JSON object",
                              __FILE__, __LINE__);
    }
    /* A syntax error says where. */
    CHECK_STATUS(gr_pool_new("{\"free_keys\": [\"a\" \"b\"]}", &(gr_pool *){NULL}, &err),
                 GR_ERR_INVALID_JSON, err);
    CHECK_CONTAINS(gr_error_message(err), "column");
    gr_error_free(err);
    err = NULL;

    static const char *const bad_requests[] = {
        "", "{", "not json", "{\"contents\": [}", "{\"contents\":[]} x",
    };
    EACH(bad_requests) {
        expect_generate_fails(fx.pool, NULL, bad_requests[i], GR_ERR_INVALID_JSON, "request_json",
                              __FILE__, __LINE__);
    }
    static const char *const wrong_requests[] = {"[]", "null", "42", "\"text\""};
    EACH(wrong_requests) {
        expect_generate_fails(fx.pool, NULL, wrong_requests[i], GR_ERR_INVALID_ARGUMENT,
                              "request_json", __FILE__, __LINE__);
    }

    /* None of them reached the service. */
    json_value *stats = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(stats, "total", -1), 0);
    json_free(stats);
    fx_stop(&fx);
}

void test_config_errors(void) {
    char k1[128], k2[128];
    h_key(k1, sizeof k1, "cfg", 1);
    h_key(k2, sizeof k2, "cfg", 2);
    /* Each case: members after "free_keys":[k1] (or a whole config when it starts with '{'), and
     * the field the message must name. */
    static const struct {
        const char *members;
        const char *field;
    } cases[] = {
        {"{\"free_keys\":[]}", "free_keys"},
        {"{}", "free_keys"},
        {"{\"free_keys\":[\"  \"]}", "free_keys"},
        {"{\"free_keys\":[1]}", "free_keys"},
        {"{\"free_keys\":{\"a\":1}}", "free_keys"},
        {"\"free_rate_limit\":0", "free_rate_limit"},
        {"\"free_rate_limit\":-1", "free_rate_limit"},
        {"\"free_rate_limit\":1.5", "free_rate_limit"},
        {"\"free_rate_limit\":\"x\"", "free_rate_limit"},
        {"\"free_rate_limit\":true", "free_rate_limit"},
        {"\"free_rate_limit\":1000001", "free_rate_limit"},
        {"\"paid_rate_limit\":0", "paid_rate_limit"},
        {"\"window_ms\":0", "window_ms"},
        {"\"window_ms\":[1]", "window_ms"},
        {"\"timeout_ms\":0", "timeout_ms"},
        {"\"max_attempts\":0", "max_attempts"},
        {"\"max_attempts\":101", "max_attempts"},
        {"\"max_retries\":21", "max_retries"},
        {"\"retry_base_ms\":0", "retry_base_ms"},
        {"\"retry_base_ms\":100,\"retry_max_ms\":50", "retry_max_ms"},
        {"\"base_url\":\"ftp://example\"", "base_url"},
        {"\"base_url\":\"not a url\"", "base_url"},
        {"\"base_url\":\"http://127.0.0.1:1/?q=1\"", "base_url"},
        {"\"base_url\":\"\"", "base_url"},
        {"\"model\":\"bad/model\"", "model"},
        {"\"model\":\"\"", "model"},
        {"\"state\":\"disk\"", "state"},
        {"\"state\":\"shm:relative/file\"", "state"},
        {"\"log\":\"loud\"", "log"},
        {"\"paid_key\":5", "paid_key"},
        {"\"frees\":1", "frees"},
    };
    gr_error *err = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *config = cases[i].members[0] == '{'
                           ? h_strdupf("%s", cases[i].members)
                           : h_strdupf("{\"free_keys\":[\"%s\"],%s}", k1, cases[i].members);
        gr_pool *pool = SENTINEL_POOL;
        gr_status st = gr_pool_new(config, &pool, &err);
        CHECKF(st == GR_ERR_CONFIG, "%s: %s (%s)", config, gr_status_name((int32_t)st),
               gr_error_message(err));
        CHECKF(names(gr_error_message(err), cases[i].field), "%s: \"%s\" does not name %s", config,
               gr_error_message(err), cases[i].field);
        CHECK_NO_KEYS(gr_error_message(err));
        CHECK(pool == SENTINEL_POOL);
        gr_error_free(err);
        err = NULL;
        free(config);
    }

    /* Problems with keys: named by position or fingerprint, never shown. */
    char fp1[32];
    h_fingerprint(k1, fp1, sizeof fp1);
    char *configs[] = {
        h_strdupf("{\"free_keys\":[\"%s\",\"%s\",\"%s\"]}", k1, k2, k1),
        h_strdupf("{\"free_keys\":[\"%s\"],\"paid_key\":\"%s\"}", k1, k1),
        h_strdupf("{\"free_keys\":[\"%s x\"]}", k1),
        h_strdupf("{\"free_keys\":[\"%s\xc3\xa9\"]}", k1),
        h_strdupf("{\"free_keys\":[\"%s\"],\"paid_key\":\"%s\\tx\"}", k2, k1),
    };
    static const char *const fields[] = {"free_keys", "paid_key", "free_keys", "free_keys",
                                         "paid_key"};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        gr_pool *pool = SENTINEL_POOL;
        gr_status st = gr_pool_new(configs[i], &pool, &err);
        CHECKF(st == GR_ERR_CONFIG, "case %zu: %s (%s)", i, gr_status_name((int32_t)st),
               gr_error_message(err));
        CHECKF(names(gr_error_message(err), fields[i]), "case %zu: \"%s\" does not name %s", i,
               gr_error_message(err), fields[i]);
        CHECK_NO_KEYS(gr_error_message(err));
        CHECK(pool == SENTINEL_POOL);
        if (i < 2) {
            /* The repeated key is identified by its fingerprint. */
            CHECK_CONTAINS(gr_error_message(err), fp1);
        }
        gr_error_free(err);
        err = NULL;
        free(configs[i]);
    }
}

static const char *const ENV_VARS[] = {
    "GEMINI_FREE_KEYS",      "GEMINI_PAID_KEY",        "GEMINI_FREE_RATE_LIMIT",
    "GEMINI_PAID_RATE_LIMIT", "GEMINI_RATE_WINDOW_MS", "GEMINI_BASE_URL",
    "GEMINI_MODEL",          "GEMINI_TIMEOUT_MS",      "GEMINI_MAX_ATTEMPTS",
    "GEMINI_MAX_RETRIES",    "GEMINI_RETRY_BASE_MS",   "GEMINI_RETRY_MAX_MS",
    "GEMINI_ROTATOR_STATE",  "GEMINI_ROTATOR_LOG",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof ENV_VARS / sizeof ENV_VARS[0]; i++) {
        unsetenv(ENV_VARS[i]);
    }
}

/* gr_pool_new(NULL) with the environment; checks it fails with GR_ERR_CONFIG naming `var`. */
static void expect_env_error(const char *var, const char *value, const char *file, int line) {
    setenv(var, value, 1);
    /* For the messages: the value with non-printable bytes as \xNN. */
    char shown[64] = "";
    for (size_t i = 0, n = 0; value[i] != '\0' && n + 5 < sizeof shown; i++) {
        unsigned char c = (unsigned char)value[i];
        n += (size_t)snprintf(shown + n, sizeof shown - n, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x",
                              c);
    }
    gr_pool *pool = SENTINEL_POOL;
    gr_error *err = NULL;
    gr_status st = gr_pool_new(NULL, &pool, &err);
    h_check(st == GR_ERR_CONFIG, file, line, "gr_pool_new(NULL) fails with GR_ERR_CONFIG",
            "%s=\"%s\": %s (%s)", var, shown, gr_status_name((int32_t)st), gr_error_message(err));
    h_check(names(gr_error_message(err), var), file, line, "the message names the variable",
            "%s=\"%s\": \"%s\"", var, shown, gr_error_message(err));
    h_check(pool == SENTINEL_POOL, file, line, "out_pool untouched", "%s", "");
    h_check_no_keys(gr_error_message(err), file, line, "message");
    if (st == GR_OK && pool != SENTINEL_POOL) {
        gr_pool_free(pool);
    }
    gr_error_free(err);
    unsetenv(var);
}

void test_env_config(void) {
    fixture fx;
    /* The fixture's pool uses the limit the environment will give (a key has one limit). */
    if (fx_start(&fx, 2, 1, 0, "\"free_rate_limit\":1") != 0) {
        fx_stop(&fx);
        return;
    }
    clear_env();
    gr_error *err = NULL;
    gr_pool *pool = SENTINEL_POOL;

    /* Nothing set: the error names the variable to set. */
    CHECK_STATUS(gr_pool_new(NULL, &pool, &err), GR_ERR_CONFIG, err);
    CHECK_NAMES(err, "GEMINI_FREE_KEYS");
    CHECK(pool == SENTINEL_POOL);
    gr_error_free(err);
    err = NULL;

    /* A working environment: keys with white space around them, the paid key, one request per
     * free key per window. */
    char *free_keys = h_strdupf(" %s , %s ", fx.keys[0], fx.keys[1]);
    setenv("GEMINI_FREE_KEYS", free_keys, 1);
    setenv("GEMINI_PAID_KEY", fx.keys[2], 1);
    setenv("GEMINI_BASE_URL", fx.emu.base_url, 1);
    setenv("GEMINI_FREE_RATE_LIMIT", "1", 1);
    setenv("GEMINI_RETRY_BASE_MS", "1", 1);
    setenv("GEMINI_RETRY_MAX_MS", "2", 1);
    setenv("GEMINI_ROTATOR_STATE", h_state(), 1);
    free(free_keys);

    /* Each bad value is named by its variable. */
    expect_env_error("GEMINI_PAID_RATE_LIMIT", "lots", __FILE__, __LINE__);
    expect_env_error("GEMINI_RATE_WINDOW_MS", "0", __FILE__, __LINE__);
    expect_env_error("GEMINI_TIMEOUT_MS", "", __FILE__, __LINE__);
    expect_env_error("GEMINI_MAX_ATTEMPTS", "-3", __FILE__, __LINE__);
    expect_env_error("GEMINI_MAX_RETRIES", "1.5", __FILE__, __LINE__);
    expect_env_error("GEMINI_MODEL", "bad/model", __FILE__, __LINE__);
    expect_env_error("GEMINI_ROTATOR_STATE", "disk", __FILE__, __LINE__);
    expect_env_error("GEMINI_ROTATOR_STATE", "shm:relative/path", __FILE__, __LINE__);
    setenv("GEMINI_ROTATOR_STATE", h_state(), 1);
    expect_env_error("GEMINI_ROTATOR_LOG", "loud", __FILE__, __LINE__);
    expect_env_error("GEMINI_BASE_URL", "localhost:1", __FILE__, __LINE__);
    setenv("GEMINI_BASE_URL", fx.emu.base_url, 1);

    pool = NULL;
    CHECK_OK(gr_pool_new(NULL, &pool, &err), err);
    gr_error_free(err);
    err = NULL;
    if (pool != NULL) {
        char fp[32];
        int served[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            gr_status st = h_generate(pool, NULL, i, 0, 0, fp, &err);
            CHECK_OK(st, err);
            gr_error_free(err);
            err = NULL;
            int k = fx_index_of_fp(&fx, fp);
            CHECKF(k >= 0, "unknown fingerprint %s", fp);
            if (k >= 0) {
                served[k]++;
            }
        }
        /* free_rate_limit 1: each free key once, then the paid key. */
        CHECK_EQ_INT(served[0], 1);
        CHECK_EQ_INT(served[1], 1);
        CHECK_EQ_INT(served[2], 1);
        json_value *stats = h_pool_stats(pool);
        CHECK_EQ_INT(json_number_at(stats, "pool.paid_fallbacks", -1), 1);
        CHECK_EQ_INT(h_key_stat(stats, fx.fps[0], "limit"), 1);
        CHECK_STREQ(json_string_at(h_key_stats(stats, fx.fps[2]), "tier"), "paid");
        json_free(stats);
        gr_pool_free(pool);
    }

    /* With a JSON configuration the environment is not read, even when it is broken. */
    setenv("GEMINI_FREE_RATE_LIMIT", "broken", 1);
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                                 "\"free_rate_limit\":1");
    pool = h_pool(config);
    gr_pool_free(pool);
    free(config);

    /* A variable whose value is not UTF-8 is an error naming it, not a silent default. */
    expect_env_error("GEMINI_FREE_RATE_LIMIT", "\xff\xfe", __FILE__, __LINE__);

    clear_env();
    fx_stop(&fx);
}

void test_model_argument(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_error *err = NULL;
    char *request = h_request("hello", 1);

    /* Bad names never reach the service. */
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    static const char *const bad[] = {"bad/model", "", "   ", "a b", "gemini?x=1", "../../etc",
                                      "models/", "gemini#1", "gemini%2F"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_generate_fails(fx.pool, bad[i], request, GR_ERR_INVALID_ARGUMENT, "model",
                              __FILE__, __LINE__);
    }
    expect_generate_fails(fx.pool, long_name, request, GR_ERR_INVALID_ARGUMENT, "model", __FILE__,
                          __LINE__);

    /* NULL: the pool's default; a name with or without "models/". */
    static const char *const models[] = {NULL, "gemini-custom-1.5_b", "models/gemini-3.6-flash"};
    static const char *const in_path[] = {"gemini-3.6-flash", "gemini-custom-1.5_b",
                                          "gemini-3.6-flash"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(h_generate(fx.pool, models[i], i, 0, 0, NULL, &err), err);
        gr_error_free(err);
        err = NULL;
    }
    /* A pool's own default model. */
    char *config = h_pool_config(&fx.emu, (const char *const[]){fx.keys[0]}, 1, NULL,
                                 "\"model\":\"gemini-pool-default\"");
    gr_pool *pool = h_pool(config);
    free(config);
    if (pool != NULL) {
        CHECK_OK(h_generate(pool, NULL, 3, 0, 0, NULL, &err), err);
        gr_error_free(err);
        err = NULL;
        gr_pool_free(pool);
    }

    json_value *log = emu_log(&fx.emu);
    CHECKF(log != NULL && log->count == 4, "the service saw %zu requests, expected 4",
           log != NULL ? log->count : 0);
    for (size_t i = 0; log != NULL && i < log->count && i < 3; i++) {
        CHECK_STREQ(json_string_at(json_at(log, i), "model"), in_path[i]);
    }
    CHECK_STREQ(json_string_at(json_at(log, 3), "model"), "gemini-pool-default");
    json_free(log);
    free(request);
    fx_stop(&fx);
}
