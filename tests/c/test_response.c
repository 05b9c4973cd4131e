/* test_response.c: the gr_response object: the answer as pointer and length, byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "stub_server.h"
#include "tests.h"

/* A service answer with NUL bytes inside (one in a string, one between two values): the bytes
 * a C string would cut at the first NUL. */
static const char NUL_ANSWER[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\0b\"}]}}]}\0"
                                 "{\"tail\":true}";

void test_nul_byte_in_answer(void) {
    stub_server stub;
    const size_t len = sizeof NUL_ANSWER - 1; /* the literal's own terminator is not sent */
    if (stub_start(&stub, 200, NUL_ANSWER, len, 1) != 0) {
        return;
    }
    char key[128];
    char fp[32];
    h_key(key, sizeof key, "nul", 0);
    h_fingerprint(key, fp, sizeof fp);
    char *config = h_strdupf(
        "{\"free_keys\":[\"%s\"],\"base_url\":\"%s\",\"state\":\"%s\",\"max_retries\":0}", key,
        stub.base_url, h_state());
    gr_pool *pool = h_pool(config);
    if (pool != NULL) {
        char *request = h_request("hello", 1);
        gr_response *response = NULL;
        gr_error *err = NULL;
        CHECK_OK(gr_generate(pool, NULL, request, 0, 0, &response, &err), err);
        size_t got = 0;
        const char *body = gr_response_body(response, &got);
        /* The whole answer arrives, NUL bytes included, and one NUL follows it. */
        CHECK_EQ_INT(got, len);
        CHECK(response != NULL && memcmp(body, NUL_ANSWER, len) == 0);
        CHECK(response != NULL && body[got] == '\0');
        CHECK_STREQ(gr_response_key_fingerprint(response), fp);
        CHECK_EQ_INT(gr_response_attempts(response), 1);
        /* Borrowed: the same bytes at the same place until the response is freed. */
        CHECK(gr_response_body(response, NULL) == body);
        gr_response_free(response);
        gr_error_free(err);
        free(request);
        gr_pool_free(pool);
    }
    stub_stop(&stub);
    CHECK_EQ_INT(atomic_load(&stub.served), 1);
    free(config);
}
