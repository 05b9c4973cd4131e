/* test_forward.c: gr_forward and gr_forward_stream, the SDK transports' entry points: model
 * methods in the API version the path names, the SDK's headers dropped (its placeholder key
 * never reaches the service), the service's raw error body with its details, the models
 * list, refusals that name the method and path, and streams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tests.h"

#define HELLO "{\"contents\":[{\"parts\":[{\"text\":\"hello 1\"}]}]}"
#define PLACEHOLDER "sdk-placeholder-key-never-sent"
#define SDK_HEADERS                                                                             \
    "{\"x-goog-api-key\":\"" PLACEHOLDER "\",\"content-type\":\"application/json\","          \
    "\"user-agent\":\"google-genai-sdk/1.0\",\"authorization\":\"Bearer x\"}"

static gr_status forward(const gr_pool *pool, const char *method, const char *path,
                         const char *body, gr_response **r, gr_error **err) {
    return gr_forward(pool, method, path, SDK_HEADERS, (const uint8_t *)body,
                      body != NULL ? strlen(body) : 0, 0, 0, NULL, r, err);
}

void test_forward_model_methods(void) {
    fixture fx;
    if (fx_start(&fx, 2, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    char seen[2][32] = {"", ""};
    const char *paths[] = {"/v1/models/gemini-3-flash:generateContent?key=" PLACEHOLDER,
                           "/base/prefix/v1beta/models/gemini-3-flash:generateContent"};
    for (int i = 0; i < 2; i++) {
        gr_response *r = NULL;
        gr_error *err = NULL;
        CHECK_OK(forward(fx.pool, "POST", paths[i], HELLO, &r, &err), err);
        gr_error_free(err);
        if (r == NULL) {
            continue;
        }
        CHECK_EQ_INT(gr_response_http_status(r), 200);
        CHECK_CONTAINS(gr_response_body(r, NULL), "echo: hello 1");
        CHECK_CONTAINS(gr_response_header(r, "Content-Type"), "application/json");
        CHECK(gr_response_header(r, "x-goog-api-key") == NULL);
        CHECK(gr_response_header(r, NULL) == NULL);
        snprintf(seen[i], sizeof seen[i], "%s", gr_response_key_fingerprint(r));
        gr_response_free(r);
    }
    CHECKF(strcmp(seen[0], seen[1]) != 0, "both calls went to key %s", seen[0]);
    /* countTokens, and the API version reaching the service: its 404 names it. */
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_OK(forward(fx.pool, "POST", "/v1/models/gemini-3-flash:countTokens", HELLO, &r, &err),
             err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_CONTAINS(gr_response_body(r, NULL), "\"totalTokens\"");
        gr_response_free(r);
    }
    r = NULL;
    err = NULL;
    CHECK_STATUS(forward(fx.pool, "POST", "/v1/models/gemini-1.0-pro:generateContent", HELLO, &r,
                         &err),
                 GR_ERR_API, err);
    CHECK_EQ_INT(gr_error_http_status(err), 404);
    CHECK_CONTAINS(gr_error_api_message(err), "API version v1");
    gr_error_free(err);
    /* The placeholder never left the process: every request carried a key of the pool. */
    json_value *log = emu_log(&fx.emu);
    const json_value *entries = json_get(log, "entries");
    if (entries == NULL) {
        entries = log;
    }
    size_t n = 0;
    for (const json_value *e; (e = json_at(entries, n)) != NULL; n++) {
        CHECKF(json_string_at(e, "label") != NULL, "request %zu carried no key of the pool", n);
    }
    CHECK_EQ_INT(n, 4);
    json_free(log);
    fx_stop(&fx);
}

void test_forward_raw_error_body(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    emu_fault(&fx.emu, "{\"kind\":\"bad_request\",\"count\":1}");
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_STATUS(forward(fx.pool, "POST", "/v1beta/models/gemini-3-flash:generateContent", HELLO,
                         &r, &err),
                 GR_ERR_API, err);
    CHECK(r == NULL);
    size_t len = 0;
    const char *body = gr_error_api_body(err, &len);
    CHECK_EQ_INT(len, strlen(body));
    CHECK_CONTAINS(body, "\"details\"");
    CHECK_CONTAINS(body, "google.rpc.BadRequest");
    CHECK_CONTAINS(body, "\"INVALID_ARGUMENT\"");
    char parse_error[128];
    json_value *parsed = json_parse(body, parse_error, sizeof parse_error);
    CHECKF(parsed != NULL, "the raw body is the service's JSON: %s", parse_error);
    CHECK_EQ_INT(json_number_at(parsed, "error.code", -1), 400);
    json_free(parsed);
    gr_error_free(err);
    /* Any other error has an empty body. */
    err = NULL;
    CHECK_STATUS(forward(fx.pool, "POST", "/v1beta/nothing", HELLO, &r, &err),
                 GR_ERR_INVALID_ARGUMENT, err);
    len = 7;
    CHECK_STREQ(gr_error_api_body(err, &len), "");
    CHECK_EQ_INT(len, 0);
    gr_error_free(err);
    CHECK_STREQ(gr_error_api_body(NULL, NULL), "");
    fx_stop(&fx);
}

void test_forward_refusals(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    struct {
        const char *method, *path, *headers, *needle;
        gr_status status;
    } bad[] = {
        {"POST", "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", NULL,
         "streamGenerateContent", GR_ERR_INVALID_ARGUMENT},
        {"POST", "/v1beta/tunedModels/x:generateContent", NULL,
         "POST /v1beta/tunedModels/x:generateContent", GR_ERR_INVALID_ARGUMENT},
        {"GET", "/v1beta/models/gemini-3-flash:generateContent", NULL, "GET", GR_ERR_INVALID_ARGUMENT},
        {"OPTIONS", "/v1beta/models", NULL, "http_method", GR_ERR_INVALID_ARGUMENT},
        {"POST", "/models/gemini-3-flash:generateContent", NULL, "API version",
         GR_ERR_INVALID_ARGUMENT},
        {"POST", "/v1beta/models/gemini-3-flash:generateContent", "[1]", "headers_json",
         GR_ERR_INVALID_JSON},
        {"POST", "/v1beta/models/gemini-3-flash:generateContent", "{\"a\":1}", "headers_json",
         GR_ERR_INVALID_JSON},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gr_response *r = NULL;
        gr_error *err = NULL;
        CHECK_STATUS(gr_forward(fx.pool, bad[i].method, bad[i].path, bad[i].headers,
                                (const uint8_t *)HELLO, strlen(HELLO), 0, 0, NULL, &r, &err),
                     bad[i].status, err);
        CHECK_CONTAINS(gr_error_message(err), bad[i].needle);
        CHECK(r == NULL);
        gr_error_free(err);
    }
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_STATUS(gr_forward(fx.pool, "POST", "/v1beta/models/m:generateContent", NULL, NULL, 3,
                            0, 0, NULL, &r, &err),
                 GR_ERR_NULL_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "body");
    gr_error_free(err);
    err = NULL;
    gr_stream *s = NULL;
    CHECK_STATUS(gr_forward_stream(fx.pool, "/v1beta/models/gemini-3-flash:generateContent", NULL,
                                   (const uint8_t *)HELLO, strlen(HELLO), 0, 0, NULL, &s, &err),
                 GR_ERR_INVALID_ARGUMENT, err);
    CHECK_CONTAINS(gr_error_message(err), "streamGenerateContent");
    CHECK(s == NULL);
    gr_error_free(err);
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), 0);
    json_free(emu);
    fx_stop(&fx);
}

void test_forward_stream_and_models(void) {
    fixture fx;
    if (fx_start(&fx, 1, 0, 0, NULL) != 0) {
        fx_stop(&fx);
        return;
    }
    gr_stream *s = NULL;
    gr_error *err = NULL;
    CHECK_OK(gr_forward_stream(fx.pool,
                               "/v1/models/gemini-3-flash:streamGenerateContent?alt=sse&key=x",
                               SDK_HEADERS, (const uint8_t *)HELLO, strlen(HELLO), 0, 0, NULL, &s,
                               &err),
             err);
    gr_error_free(err);
    int events = 0;
    if (s != NULL) {
        for (;;) {
            gr_response *event = NULL;
            err = NULL;
            gr_status st = gr_stream_next(s, &event, &err);
            if (st == GR_STREAM_END) {
                break;
            }
            if (!CHECK_OK(st, err)) {
                gr_error_free(err);
                break;
            }
            events++;
            CHECK_EQ_INT(gr_response_http_status(event), 200);
            gr_response_free(event);
        }
        gr_stream_free(s);
    }
    CHECK(events >= 1);
    gr_response *r = NULL;
    err = NULL;
    CHECK_OK(forward(fx.pool, "GET", "/v1beta/models?pageSize=2", NULL, &r, &err), err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_CONTAINS(gr_response_body(r, NULL), "\"models\"");
        CHECK_EQ_INT(gr_response_http_status(r), 200);
        gr_response_free(r);
    }
    fx_stop(&fx);
}

/* The project ("pa" or "pb") of the key with fingerprint `fp` among `fps`. */
static const char *project_of(const char *fp, char fps[3][32]) {
    for (int i = 0; i < 3; i++) {
        if (strcmp(fp, fps[i]) == 0) {
            return i < 2 ? "pa" : "pb";
        }
    }
    return "none";
}

void test_forward_pins(void) {
    /* Keys a0, a1 of project pa and b0 of project pb, for the emulator and the pool. */
    char keys[3][128], fps[3][32], entries[3][200];
    int pid = (int)getpid();
    const char *projects[] = {"pa", "pa", "pb"};
    for (int i = 0; i < 3; i++) {
        h_key(keys[i], sizeof keys[i], "pin", i);
        h_fingerprint(keys[i], fps[i], sizeof fps[i]);
        snprintf(entries[i], sizeof entries[i], "c%d-%s:%s", pid, projects[i], keys[i]);
    }
    char *emu_config = h_strdupf(
        "{\"keys\":[{\"key\":\"%s\",\"label\":\"a0\",\"project\":\"pa\"},"
        "{\"key\":\"%s\",\"label\":\"a1\",\"project\":\"pa\"},"
        "{\"key\":\"%s\",\"label\":\"b0\",\"project\":\"pb\"}]}",
        keys[0], keys[1], keys[2]);
    emulator emu;
    int started = emu_start(&emu, emu_config);
    free(emu_config);
    if (started != 0) {
        emu_stop(&emu);
        return;
    }
    const char *free_keys[] = {entries[0], entries[1], entries[2]};
    char *config = h_pool_config(&emu, free_keys, 3, NULL, NULL);
    gr_pool *pool = h_pool(config);
    free(config);
    if (pool == NULL) {
        emu_stop(&emu);
        return;
    }
    /* The resumable upload, as both SDKs send it. */
    char *start = h_strdupf("{\"file\":{\"name\":\"files/c%d\",\"displayName\":\"notes\"}}", pid);
    gr_response *r = NULL;
    gr_error *err = NULL;
    CHECK_OK(gr_forward(pool, "POST", "/upload/v1beta/files",
                        "{\"x-goog-upload-protocol\":\"resumable\",\"x-goog-upload-command\":"
                        "\"start\",\"x-goog-upload-header-content-length\":\"5\","
                        "\"x-goog-upload-header-content-type\":\"text/plain\","
                        "\"content-type\":\"application/json\",\"x-goog-api-key\":\"" PLACEHOLDER
                        "\"}",
                        (const uint8_t *)start, strlen(start), 0, 0, NULL, &r, &err),
             err);
    free(start);
    gr_error_free(err);
    char path[512] = "", starter[32] = "";
    if (r != NULL) {
        const char *url = gr_response_header(r, "X-Goog-Upload-URL");
        CHECKF(url != NULL && strstr(url, "/upload/") != NULL, "upload URL %s", url ? url : "NULL");
        if (url != NULL && strstr(url, "/upload/") != NULL) {
            snprintf(path, sizeof path, "%s", strstr(url, "/upload/"));
        }
        CHECK_STREQ(gr_response_header(r, "x-goog-upload-status"), "active");
        snprintf(starter, sizeof starter, "%s", gr_response_key_fingerprint(r));
        gr_response_free(r);
    }
    r = NULL;
    err = NULL;
    CHECK_OK(gr_forward(pool, "POST", path,
                        "{\"x-goog-upload-command\":\"upload, finalize\","
                        "\"x-goog-upload-offset\":\"0\"}",
                        (const uint8_t *)"hello", 5, 0, 0, NULL, &r, &err),
             err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_STREQ(gr_response_key_fingerprint(r), starter);
        CHECK_CONTAINS(gr_response_body(r, NULL), "\"name\":\"files/c");
        gr_response_free(r);
    }
    const char *project = project_of(starter, fps);
    /* Model calls naming the file: only its project's keys. */
    char *ask = h_strdupf("{\"contents\":[{\"parts\":[{\"text\":\"sum up\"},{\"fileData\":"
                          "{\"fileUri\":\"files/c%d\",\"mimeType\":\"text/plain\"}}]}]}",
                          pid);
    for (int i = 0; i < 4; i++) {
        r = NULL;
        err = NULL;
        CHECK_OK(forward(pool, "POST", "/v1beta/models/gemini-3-flash:generateContent", ask, &r,
                         &err),
                 err);
        gr_error_free(err);
        if (r != NULL) {
            CHECK_STREQ(project_of(gr_response_key_fingerprint(r), fps), project);
            gr_response_free(r);
        }
    }
    free(ask);
    /* Deleted, then gone: the service's 403, raw, and no key disabled for it. */
    char *file_path = h_strdupf("/v1beta/files/c%d", pid);
    r = NULL;
    err = NULL;
    CHECK_OK(forward(pool, "DELETE", file_path, NULL, &r, &err), err);
    gr_error_free(err);
    if (r != NULL) {
        CHECK_STREQ(project_of(gr_response_key_fingerprint(r), fps), project);
        gr_response_free(r);
    }
    r = NULL;
    err = NULL;
    CHECK_STATUS(forward(pool, "GET", file_path, NULL, &r, &err), GR_ERR_API, err);
    CHECK_EQ_INT(gr_error_http_status(err), 403);
    CHECK_CONTAINS(gr_error_api_body(err, NULL), "PERMISSION_DENIED");
    gr_error_free(err);
    free(file_path);
    json_value *stats = h_pool_stats(pool);
    for (int i = 0; i < 3; i++) {
        CHECK(h_key_stats(stats, fps[i]) != NULL);
        CHECKF(json_get(h_key_stats(stats, fps[i]), "disabled") == NULL ||
                   json_string_at(h_key_stats(stats, fps[i]), "disabled") == NULL,
               "key %d disabled", i);
    }
    json_free(stats);
    gr_pool_free(pool);
    emu_stop(&emu);
}
