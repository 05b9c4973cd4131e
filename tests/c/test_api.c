/* test_api.c: gr_version, gr_status_name, gr_key_fingerprint, the gr_error accessors on NULL,
 * and the free functions on NULL. None of these needs the service. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

void test_version(void) {
    const char *v = gr_version();
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", GR_VERSION_MAJOR, GR_VERSION_MINOR,
             GR_VERSION_PATCH);
    CHECK_STREQ(v, expected);
    /* Static: the same string every time. */
    CHECK(gr_version() == v);
}

void test_status_names(void) {
    static const struct {
        int32_t status;
        const char *name;
    } names[] = {
        {GR_OK, "GR_OK"},
        {GR_ERR_NULL_ARGUMENT, "GR_ERR_NULL_ARGUMENT"},
        {GR_ERR_INVALID_UTF8, "GR_ERR_INVALID_UTF8"},
        {GR_ERR_INVALID_JSON, "GR_ERR_INVALID_JSON"},
        {GR_ERR_INVALID_ARGUMENT, "GR_ERR_INVALID_ARGUMENT"},
        {GR_ERR_CONFIG, "GR_ERR_CONFIG"},
        {GR_ERR_ALL_KEYS_RATE_LIMITED, "GR_ERR_ALL_KEYS_RATE_LIMITED"},
        {GR_ERR_NO_USABLE_KEYS, "GR_ERR_NO_USABLE_KEYS"},
        {GR_ERR_API, "GR_ERR_API"},
        {GR_ERR_TRANSPORT, "GR_ERR_TRANSPORT"},
        {GR_ERR_TIMEOUT, "GR_ERR_TIMEOUT"},
        {GR_ERR_STATE, "GR_ERR_STATE"},
        {GR_STREAM_END, "GR_STREAM_END"},
        {GR_ERR_CANCELLED, "GR_ERR_CANCELLED"},
        {GR_ERR_INCOMPLETE_STREAM, "GR_ERR_INCOMPLETE_STREAM"},
        {GR_ERR_MODEL_UNAVAILABLE, "GR_ERR_MODEL_UNAVAILABLE"},
        {GR_ERR_PANIC, "GR_ERR_PANIC"},
    };
    /* The numbers are ABI: pin them as well as the names. */
    CHECK_EQ_INT(GR_OK, 0);
    CHECK_EQ_INT(GR_ERR_NULL_ARGUMENT, 1);
    CHECK_EQ_INT(GR_ERR_INVALID_UTF8, 2);
    CHECK_EQ_INT(GR_ERR_INVALID_JSON, 3);
    CHECK_EQ_INT(GR_ERR_INVALID_ARGUMENT, 4);
    CHECK_EQ_INT(GR_ERR_CONFIG, 5);
    CHECK_EQ_INT(GR_ERR_ALL_KEYS_RATE_LIMITED, 6);
    CHECK_EQ_INT(GR_ERR_NO_USABLE_KEYS, 7);
    CHECK_EQ_INT(GR_ERR_API, 8);
    CHECK_EQ_INT(GR_ERR_TRANSPORT, 9);
    CHECK_EQ_INT(GR_ERR_TIMEOUT, 10);
    CHECK_EQ_INT(GR_ERR_STATE, 11);
    CHECK_EQ_INT(GR_STREAM_END, 12);
    CHECK_EQ_INT(GR_ERR_CANCELLED, 13);
    CHECK_EQ_INT(GR_ERR_INCOMPLETE_STREAM, 14);
    CHECK_EQ_INT(GR_ERR_MODEL_UNAVAILABLE, 15);
    CHECK_EQ_INT(GR_ERR_PANIC, 100);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK_STREQ(gr_status_name(names[i].status), names[i].name);
    }
    static const int32_t unknown[] = {16, 17, 99, 101, 255, -1, 1000, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECKF(strcmp(gr_status_name(unknown[i]), "GR_UNKNOWN_STATUS") == 0,
               "gr_status_name(%ld) = \"%s\"", (long)unknown[i], gr_status_name(unknown[i]));
    }
}

static int is_fingerprint(const char *s) {
    if (s == NULL || strlen(s) != 12) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

void test_key_fingerprint(void) {
    char a[128], b[128];
    h_key(a, sizeof a, "fp", 1);
    h_key(b, sizeof b, "fp", 2);

    char *fp_a = NULL;
    gr_error *err = (gr_error *)&err; /* a sentinel: untouched on success */
    gr_error *const sentinel = err;
    CHECK_OK_NOERR(gr_key_fingerprint(a, &fp_a, &err));
    CHECK(err == sentinel);
    CHECKF(is_fingerprint(fp_a), "\"%s\" is not 12 lower-case hex digits", fp_a ? fp_a : "(NULL)");
    CHECK_NO_KEYS(fp_a);

    /* Deterministic, distinct for distinct keys, independent of surrounding white space (the
     * configuration trims keys, so the fingerprint of " k " must be the one the pool shows). */
    char fp_a2[32], fp_b[32], fp_padded[32];
    h_fingerprint(a, fp_a2, sizeof fp_a2);
    h_fingerprint(b, fp_b, sizeof fp_b);
    char padded[160];
    snprintf(padded, sizeof padded, "  %s\t", a);
    h_fingerprint(padded, fp_padded, sizeof fp_padded);
    CHECK_STREQ(fp_a2, fp_a);
    CHECKF(strcmp(fp_a, fp_b) != 0, "two keys share the fingerprint %s", fp_a);
    CHECK_STREQ(fp_padded, fp_a);
    /* Each call returns a fresh string. */
    char *fp_again = NULL;
    CHECK_OK_NOERR(gr_key_fingerprint(a, &fp_again, NULL));
    CHECK(fp_again != NULL && fp_again != fp_a);
    gr_free(fp_again);
    gr_free(fp_a);

    /* out_error NULL is accepted on success too. */
    char *fp_c = NULL;
    CHECK_OK_NOERR(gr_key_fingerprint(b, &fp_c, NULL));
    CHECK_STREQ(fp_c, fp_b);
    gr_free(fp_c);
}

void test_error_accessors_on_null(void) {
    CHECK_EQ_INT(gr_error_status(NULL), GR_ERR_PANIC);
    CHECK_STREQ(gr_error_message(NULL), "");
    CHECK_EQ_INT(gr_error_retry_after_ms(NULL), 0);
    CHECK_EQ_INT(gr_error_http_status(NULL), 0);
    CHECK_STREQ(gr_error_rpc_status(NULL), "");
    CHECK_STREQ(gr_error_api_message(NULL), "");
    CHECK_STREQ(gr_error_key_fingerprint(NULL), "");

    /* A real error that is not an API or rate-limit error: the other accessors say 0 / "". */
    gr_error *err = NULL;
    CHECK_STATUS(gr_key_fingerprint(NULL, NULL, &err), GR_ERR_NULL_ARGUMENT, err);
    CHECK(err != NULL);
    CHECK_EQ_INT(gr_error_status(err), GR_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(gr_error_retry_after_ms(err), 0);
    CHECK_EQ_INT(gr_error_http_status(err), 0);
    CHECK_STREQ(gr_error_rpc_status(err), "");
    /* The message is borrowed: the same pointer until the error is freed. */
    CHECK(gr_error_message(err) == gr_error_message(err));
    CHECK(strchr(gr_error_message(err), '\n') == NULL);
    gr_error_free(err);
}

void test_free_null(void) {
    /* Freeing NULL does nothing, with each free function... */
    gr_free(NULL);
    gr_pool_free(NULL);
    gr_response_free(NULL);
    gr_error_free(NULL);
    /* ...and leaves the library working: a real allocation and free afterwards (ASan checks
     * that nothing was double-freed). */
    char *fp = NULL;
    CHECK_OK_NOERR(gr_key_fingerprint("k", &fp, NULL));
    CHECK(fp != NULL);
    gr_free(fp);
}
