/* main.c: runs the C tests (all, or those named on the command line) and prints the closing
 * line "N passed, M failed" (checks). Exits 1 if any check failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

typedef struct {
    const char *name;
    void (*run)(void);
} test_case;

#define TEST(name) {#name, test_##name}

static const test_case TESTS[] = {
    TEST(version),
    TEST(status_names),
    TEST(key_fingerprint),
    TEST(error_accessors_on_null),
    TEST(free_null),
    TEST(nul_byte_in_answer),
    TEST(null_arguments),
    TEST(null_out_error),
    TEST(invalid_utf8),
    TEST(invalid_json),
    TEST(config_errors),
    TEST(env_config),
    TEST(model_argument),
    TEST(rotation),
    TEST(stats_json),
    TEST(paid_fallback),
    TEST(paid_only),
    TEST(exhaustion),
    TEST(key_state_shared_between_pools),
    TEST(shared_state_across_processes),
    TEST(quota_minute),
    TEST(quota_day),
    TEST(quota_on_every_key),
    TEST(invalid_key),
    TEST(dead_keys),
    TEST(http503_once),
    TEST(http503_persistent),
    TEST(bad_request),
    TEST(location),
    TEST(safety_block),
    TEST(close),
    TEST(timeout),
    TEST(quota_per_model),
    TEST(daily_limit),
    TEST(project_groups),
    TEST(model_unavailable),
    TEST(model_fallback),
    TEST(capacity_429),
    TEST(log_level),
    TEST(log_callback),
    TEST(metrics_prometheus),
    TEST(stream_events_as_sent),
    TEST(stream_failover_before_first_event),
    TEST(stream_no_retry_after_first_event),
    TEST(stream_stall_moves_on),
    TEST(stream_close_from_another_thread),
    TEST(stream_bad_input),
    TEST(endpoints_rotate),
    TEST(endpoints_bad_method),
    TEST(cancel_plain_call),
    TEST(forward_model_methods),
    TEST(forward_raw_error_body),
    TEST(forward_refusals),
    TEST(forward_stream_and_models),
    TEST(forward_pins),
    TEST(threads),
};

/* `--child-generate CONFIG_JSON N`: the other process of test_shared_state_across_processes.
 * Makes a pool and N requests; exits 0 if all succeeded. */
static int child_generate(const char *config, int n) {
    gr_pool *pool = NULL;
    gr_error *err = NULL;
    if (gr_pool_new(config, &pool, &err) != GR_OK) {
        fprintf(stderr, "child: gr_pool_new: %s\n", gr_error_message(err));
        gr_error_free(err);
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < n; i++) {
        gr_response *response = NULL;
        gr_status st = gr_generate(pool, NULL, "{\"contents\":[{\"parts\":[{\"text\":\"child\"}]}]}",
                                   0, 0, &response, &err);
        if (st != GR_OK) {
            fprintf(stderr, "child: gr_generate %d: %s\n", i, gr_error_message(err));
            gr_error_free(err);
            err = NULL;
            failures++;
        }
        gr_response_free(response);
    }
    gr_pool_free(pool);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--child-generate") == 0) {
        return child_generate(argv[2], atoi(argv[3]));
    }
    /* Line-buffered, so that FAIL lines and the emulator's stderr appear in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t n_tests = sizeof TESTS / sizeof TESTS[0];
    int ran = 0;
    for (int a = 1; a < argc; a++) {
        int known = 0;
        for (size_t i = 0; i < n_tests; i++) {
            known |= strcmp(argv[a], TESTS[i].name) == 0;
        }
        if (!known) {
            fprintf(stderr, "unknown test '%s'\n", argv[a]);
            return 2;
        }
    }
    for (size_t i = 0; i < n_tests; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc; a++) {
            wanted |= strcmp(argv[a], TESTS[i].name) == 0;
        }
        if (!wanted) {
            continue;
        }
        h_set_test(TESTS[i].name);
        long failed_before = h_failed();
        long passed_before = h_passed();
        int64_t started = h_now_ms();
        TESTS[i].run();
        printf("%-4s %-36s %4ld checks %6lld ms\n", h_failed() > failed_before ? "FAIL" : "ok",
               TESTS[i].name, h_passed() - passed_before + h_failed() - failed_before,
               (long long)(h_now_ms() - started));
        ran++;
    }
    h_cleanup();
    if (ran == 0 || h_passed() + h_failed() == 0) {
        printf("no checks ran\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%ld passed, %ld failed\n", h_passed(), h_failed());
    return h_failed() == 0 ? 0 : 1;
}
