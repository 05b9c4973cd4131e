/*
 * harness.h: the helper of the C tests.
 *
 * - Checks: CHECK/CHECKF and friends print file:line (and the gr_error message) on failure and
 *   count passed/failed checks; they never stop the test. They are safe to use from threads.
 * - Keys: h_key() makes a key string unique to this process run and this test, and remembers it,
 *   so that every check on an error message or a JSON output can assert that no key leaks.
 * - The emulator: emu_start() runs target/release/gemini-emulator (or $GEMINI_EMULATOR_BIN) as a
 *   child process with a JSON configuration written to a temporary file, reads its
 *   "listening on http://127.0.0.1:PORT" line, and talks to its control API (under /_emulator/) with a
 *   minimal HTTP/1.1 client over a loopback socket.
 *
 * Feature macros: the Makefile compiles with -D_POSIX_C_SOURCE=200809L (pipes, sockets,
 * posix_spawn, setenv, clock_gettime under -std=c11).
 */
#ifndef GR_TEST_HARNESS_H
#define GR_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gemini_rotator.h"
#include "json.h"

/* ---- checks --------------------------------------------------------------------------------- */

/* Records one check; prints "FAIL file:line: what" (and the formatted detail) when !ok.
 * Returns ok. */
int h_check(int ok, const char *file, int line, const char *what, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#define CHECK(cond) h_check(!!(cond), __FILE__, __LINE__, #cond, "%s", "")
/* CHECKF(cond, "format", args...): the detail explains a failure. */
#define CHECKF(cond, ...) h_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* The call returned `expected`. On a mismatch it prints both names and the error's message. Also
 * checks that the error (if any) carries no key known to the harness. `error` is the variable the
 * call writes its gr_error to: the macro passes its address, so that it is read after the call
 * (the order in which function arguments are evaluated is unspecified). */
int h_check_status(gr_status got, gr_status expected, gr_error *const *error, const char *file,
                   int line, const char *call);
#define CHECK_STATUS(got, expected, error)                                                      \
    h_check_status((got), (expected), &(error), __FILE__, __LINE__, #got)
#define CHECK_OK(got, error) CHECK_STATUS((got), GR_OK, (error))
/* The same for a call made with out_error NULL. */
#define CHECK_STATUS_NOERR(got, expected)                                                       \
    h_check_status((got), (expected), NULL, __FILE__, __LINE__, #got)
#define CHECK_OK_NOERR(got) CHECK_STATUS_NOERR((got), GR_OK)

/* Integer equality with both values printed. */
#define CHECK_EQ_INT(got, expected)                                                             \
    h_check((long long)(got) == (long long)(expected), __FILE__, __LINE__, #got " == " #expected, \
            "got %lld, expected %lld", (long long)(got), (long long)(expected))

/* String equality (NULL never equals anything). */
#define CHECK_STREQ(got, expected) h_check_streq((got), (expected), __FILE__, __LINE__, #got)
int h_check_streq(const char *got, const char *expected, const char *file, int line,
                  const char *what);

/* `haystack` contains `needle` (or, for CHECK_LACKS, does not). */
#define CHECK_CONTAINS(haystack, needle)                                                        \
    h_check_contains((haystack), (needle), 1, __FILE__, __LINE__, #haystack)
#define CHECK_LACKS(haystack, needle)                                                           \
    h_check_contains((haystack), (needle), 0, __FILE__, __LINE__, #haystack)
int h_check_contains(const char *haystack, const char *needle, int want, const char *file,
                     int line, const char *what);

/* `text` contains none of the keys h_key() has made. */
#define CHECK_NO_KEYS(text) h_check_no_keys((text), __FILE__, __LINE__, #text)
int h_check_no_keys(const char *text, const char *file, int line, const char *what);

long h_passed(void);
long h_failed(void);

/* ---- keys and small utilities --------------------------------------------------------------- */

/* Writes "c-<pid>-<nonce>-<test>-<seq>-<tag><i>" into out (at least 128 bytes) and registers it
 * as a secret that no output may contain. Unique per run and per call: key state is per process
 * (and soon per host), so reused keys would carry counts from one test to the next. */
const char *h_key(char *out, size_t size, const char *tag, int i);

/* Sets the current test's name (used in key strings and messages). */
void h_set_test(const char *name);
const char *h_test_name(void);

/* malloc'd printf; aborts on out-of-memory. */
char *h_strdupf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The key-state location every test pool uses: "shm:<file>", a state file private to this run
 * (under /dev/shm), so that the tests exercise the shared-memory store without filling the
 * host's default state file with test keys. h_cleanup() removes the file. */
const char *h_state(void);
void h_cleanup(void);

/* Milliseconds of a monotonic clock. */
int64_t h_now_ms(void);
void h_sleep_ms(long ms);

/* The fingerprint gr_key_fingerprint gives for `key`, into out (at least 32 bytes); "" on error. */
const char *h_fingerprint(const char *key, char *out, size_t size);

/* A GenerateContentRequest asking with the text "<prefix> <n>". malloc'd. */
char *h_request(const char *prefix, int n);

/* The pool's gr_stats_json, parsed (NULL, after a failed check, if it does not parse). Also
 * checks that the JSON contains no key. */
json_value *h_pool_stats(const gr_pool *pool);

/* The stats object of the key with this fingerprint in a parsed gr_stats_json, or NULL. */
const json_value *h_key_stats(const json_value *stats, const char *fingerprint);

/* A number of the key's stats object (e.g. "upstream_429"), -1 if missing. */
long h_key_stat(const json_value *stats, const char *fingerprint, const char *field);

/* gr_pool_new on a JSON config; NULL (after a failed check) if it fails. */
gr_pool *h_pool(const char *config_json);

/* ---- the emulator --------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int stdin_fd;  /* the child's standard input: closing it stops the emulator */
    int stdout_fd; /* the child's standard output */
    int port;
    char base_url[64];
    char config_path[256];
} emulator;

/* Starts an emulator with this configuration (JSON text). Returns 0, or -1 after a failed check. */
int emu_start(emulator *emu, const char *config_json);

/* Stops it (closes its standard input, waits; kills it by pid if it does not exit). */
void emu_stop(emulator *emu);

/* One HTTP/1.1 request to the emulator. Returns the HTTP status (-1 on a connection failure) and
 * the body in *out_body (malloc'd, NUL-terminated) when out_body is not NULL. */
int emu_http(const emulator *emu, const char *method, const char *path, const char *body,
             char **out_body);

/* POST /_emulator/faults with this fault JSON; checks for 200. */
void emu_fault(const emulator *emu, const char *fault_json);

/* GET /_emulator/stats or /_emulator/log, parsed; NULL after a failed check. */
json_value *emu_stats(const emulator *emu);
json_value *emu_log(const emulator *emu);

/* keys.<label>.<field> of a parsed emulator stats object ("requests", "ok", ...), or 0. */
long emu_label(const json_value *stats, const char *label, const char *field);

/* keys.<label>.by_status.<status>, or 0. */
long emu_label_status(const json_value *stats, const char *label, int http_status);

/* A pool configuration for this emulator: free keys, optional paid key (NULL for none), and extra
 * JSON members (e.g. "\"free_rate_limit\":2", or NULL). Small retry backoffs and the run's
 * private state file unless `extra` sets them. malloc'd. */
char *h_pool_config(const emulator *emu, const char *const *free_keys, size_t n_free,
                    const char *paid_key, const char *extra);

/* An emulator configuration with these keys, labelled by `labels`, each with `limit`
 * (<= 0: unlimited) per `window_ms`. malloc'd. */
char *h_emu_config(const char *const *keys, const char *const *labels, size_t n, long limit,
                   long window_ms);

/* ---- a fixture: an emulator and a pool over it --------------------------------------------- */

#define FX_MAX_KEYS 8

typedef struct {
    emulator emu;
    gr_pool *pool;
    size_t n_free;
    int has_paid;                 /* the paid key is keys[n_free] */
    size_t n;                     /* n_free + has_paid */
    char keys[FX_MAX_KEYS][128];  /* the secrets */
    char labels[FX_MAX_KEYS][16]; /* the emulator's labels: free1.., paid */
    char fps[FX_MAX_KEYS][32];    /* gr_key_fingerprint of each */
} fixture;

/* Starts an emulator knowing every key (each limited to `emu_limit` per minute, <= 0: no limit)
 * and a pool of `n_free` free keys and, if `paid`, a paid key, with the extra config members
 * `pool_extra` (or NULL). Returns 0, or -1 after a failed check (then call fx_stop anyway). */
int fx_start(fixture *fx, size_t n_free, int paid, long emu_limit, const char *pool_extra);
void fx_stop(fixture *fx);

/* The index of the key with this fingerprint or label, or -1. */
int fx_index_of_fp(const fixture *fx, const char *fingerprint);
int fx_index_of_label(const fixture *fx, const char *label);

/* gr_generate with the request "hello <n>" (default model when model is NULL). On GR_OK checks
 * that the response is JSON whose first candidate says "echo: hello <n>", and copies the
 * fingerprint into fp_out (at least 32 bytes; may be NULL). *err gets the error (caller frees). */
gr_status h_generate(const gr_pool *pool, const char *model, int n, uint64_t max_wait_ms,
                     uint64_t timeout_ms, char *fp_out, gr_error **err);

#endif /* GR_TEST_HARNESS_H */
