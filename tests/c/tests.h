/* tests.h: every test function of the C test program, run in this order by main.c. */
#ifndef GR_TESTS_H
#define GR_TESTS_H

/* test_api.c: the functions that need no service */
void test_version(void);
void test_status_names(void);
void test_key_fingerprint(void);
void test_error_accessors_on_null(void);
void test_free_null(void);

/* test_response.c: the result object */
void test_nul_byte_in_answer(void);

/* test_args.c: bad arguments of every kind */
void test_null_arguments(void);
void test_null_out_error(void);
void test_invalid_utf8(void);
void test_invalid_json(void);
void test_config_errors(void);
void test_env_config(void);
void test_model_argument(void);

/* test_rotation.c: key choice and rate limits */
void test_rotation(void);
void test_stats_json(void);
void test_paid_fallback(void);
void test_paid_only(void);
void test_exhaustion(void);
void test_key_state_shared_between_pools(void);
void test_shared_state_across_processes(void);

/* test_failures.c: every class of upstream failure */
void test_quota_minute(void);
void test_quota_day(void);
void test_quota_on_every_key(void);
void test_invalid_key(void);
void test_dead_keys(void);
void test_http503_once(void);
void test_http503_persistent(void);
void test_bad_request(void);
void test_location(void);
void test_safety_block(void);
void test_close(void);
void test_timeout(void);

/* test_quotas.c: quotas per (project, model), per day, per token; fallback */
void test_quota_per_model(void);
void test_daily_limit(void);
void test_project_groups(void);
void test_model_unavailable(void);
void test_model_fallback(void);
void test_capacity_429(void);

/* test_observability.c: logging and Prometheus metrics */
void test_log_level(void);
void test_log_callback(void);
void test_metrics_prometheus(void);

/* test_stream.c: streams through the pool */
void test_stream_events_as_sent(void);
void test_stream_failover_before_first_event(void);
void test_stream_no_retry_after_first_event(void);
void test_stream_stall_moves_on(void);
void test_stream_close_from_another_thread(void);
void test_stream_bad_input(void);

/* test_endpoints.c: the other model methods, the models list, cancel tokens */
void test_endpoints_rotate(void);
void test_endpoints_bad_method(void);
void test_cancel_plain_call(void);

/* test_forward.c: requests as an SDK built them (gr_forward, gr_forward_stream) */
void test_forward_model_methods(void);
void test_forward_raw_error_body(void);
void test_forward_refusals(void);
void test_forward_stream_and_models(void);
void test_forward_pins(void);

/* test_threads.c */
void test_threads(void);

#endif /* GR_TESTS_H */
