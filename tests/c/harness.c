/* harness.c: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef GR_DEFAULT_EMULATOR
#define GR_DEFAULT_EMULATOR "../../target/release/gemini-emulator"
#endif

/* ---- checks --------------------------------------------------------------------------------- */

static atomic_long passed_count;
static atomic_long failed_count;
static char current_test[64] = "none";

long h_passed(void) { return atomic_load(&passed_count); }
long h_failed(void) { return atomic_load(&failed_count); }

void h_set_test(const char *name) { snprintf(current_test, sizeof current_test, "%s", name); }
const char *h_test_name(void) { return current_test; }

static int record(int ok, const char *file, int line, const char *what, const char *detail) {
    if (ok) {
        atomic_fetch_add(&passed_count, 1);
        return 1;
    }
    atomic_fetch_add(&failed_count, 1);
    /* One call, so that lines from several threads do not interleave. */
    printf("FAIL %s:%d [%s]: %s%s%s\n", file, line, current_test, what,
           detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
    fflush(stdout);
    return 0;
}

int h_check(int ok, const char *file, int line, const char *what, const char *fmt, ...) {
    char detail[1024] = "";
    if (!ok && fmt != NULL) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(detail, sizeof detail, fmt, args);
        va_end(args);
    }
    return record(ok, file, line, what, detail);
}

int h_check_status(gr_status got, gr_status expected, gr_error *const *error_slot,
                   const char *file, int line, const char *call) {
    const gr_error *error = error_slot != NULL ? *error_slot : NULL;
    char detail[1400];
    int ok = got == expected;
    if (!ok) {
        snprintf(detail, sizeof detail, "got %s, expected %s; error message: \"%s\"",
                 gr_status_name((int32_t)got), gr_status_name((int32_t)expected),
                 error != NULL ? gr_error_message(error) : "(no error object)");
    } else {
        detail[0] = '\0';
    }
    int result = record(ok, file, line, call, detail);
    if (error != NULL) {
        /* Every error the tests see is also checked for leaked keys, and for agreeing with the
         * status the call returned. */
        h_check_no_keys(gr_error_message(error), file, line, "gr_error_message(error)");
        h_check_no_keys(gr_error_rpc_status(error), file, line, "gr_error_rpc_status(error)");
        if (got != GR_OK) {
            h_check(gr_error_status(error) == got, file, line, "gr_error_status(error) == status",
                    "%s vs %s", gr_status_name((int32_t)gr_error_status(error)),
                    gr_status_name((int32_t)got));
        }
    }
    return result;
}

int h_check_streq(const char *got, const char *expected, const char *file, int line,
                  const char *what) {
    int ok = got != NULL && expected != NULL && strcmp(got, expected) == 0;
    char detail[1024] = "";
    if (!ok) {
        snprintf(detail, sizeof detail, "got \"%s\", expected \"%s\"", got ? got : "(NULL)",
                 expected ? expected : "(NULL)");
    }
    return record(ok, file, line, what, detail);
}

int h_check_contains(const char *haystack, const char *needle, int want, const char *file,
                     int line, const char *what) {
    int has = haystack != NULL && needle != NULL && strstr(haystack, needle) != NULL;
    int ok = haystack != NULL && has == want;
    char detail[1400] = "";
    if (!ok) {
        snprintf(detail, sizeof detail, "\"%.1000s\" %s \"%s\"", haystack ? haystack : "(NULL)",
                 want ? "lacks" : "contains", needle ? needle : "(NULL)");
    }
    return record(ok, file, line, what, detail);
}

/* ---- keys ----------------------------------------------------------------------------------- */

#define MAX_KEYS 2048
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static char *known_keys[MAX_KEYS];
static size_t n_known_keys;
static char run_nonce[32];

int h_check_no_keys(const char *text, const char *file, int line, const char *what) {
    const char *found = NULL;
    if (text == NULL) {
        return record(0, file, line, what, "is NULL");
    }
    pthread_mutex_lock(&keys_lock);
    for (size_t i = 0; i < n_known_keys && found == NULL; i++) {
        if (strstr(text, known_keys[i]) != NULL) {
            found = known_keys[i];
        }
    }
    pthread_mutex_unlock(&keys_lock);
    char detail[1400] = "";
    if (found != NULL) {
        snprintf(detail, sizeof detail, "contains the key \"%s\": \"%.1000s\"", found, text);
    }
    return record(found == NULL, file, line, what, detail);
}

/* A per-run nonce (with the pid, it keeps keys and files of two runs apart). Called from the main
 * thread, or under keys_lock. */
static void ensure_nonce(void) {
    if (run_nonce[0] == '\0') {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(run_nonce, sizeof run_nonce, "%lx%05lx", (unsigned long)ts.tv_sec,
                 (unsigned long)(ts.tv_nsec / 1000) & 0xFFFFFUL);
    }
}

const char *h_key(char *out, size_t size, const char *tag, int i) {
    pthread_mutex_lock(&keys_lock);
    ensure_nonce();
    static unsigned long sequence;
    sequence++;
    snprintf(out, size, "c-%ld-%s-%s-%lu-%s%d", (long)getpid(), run_nonce, current_test, sequence,
             tag, i);
    if (n_known_keys < MAX_KEYS) {
        known_keys[n_known_keys] = malloc(strlen(out) + 1);
        if (known_keys[n_known_keys] == NULL) {
            abort();
        }
        strcpy(known_keys[n_known_keys], out);
        n_known_keys++;
    }
    pthread_mutex_unlock(&keys_lock);
    return out;
}

/* ---- utilities ------------------------------------------------------------------------------ */

static char state_file[256];
static char state_location[300];

const char *h_state(void) {
    if (state_location[0] == '\0') {
        pthread_mutex_lock(&keys_lock);
        ensure_nonce();
        pthread_mutex_unlock(&keys_lock);
        const char *dir = "/dev/shm";
        if (access(dir, W_OK) != 0) {
            dir = getenv("TMPDIR") != NULL && getenv("TMPDIR")[0] == '/' ? getenv("TMPDIR") : "/tmp";
        }
        snprintf(state_file, sizeof state_file, "%s/gr-c-tests-%ld-%s.state", dir, (long)getpid(),
                 run_nonce);
        snprintf(state_location, sizeof state_location, "shm:%s", state_file);
    }
    return state_location;
}

void h_cleanup(void) {
    if (state_file[0] != '\0') {
        unlink(state_file);
    }
}

char *h_strdupf(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0) {
        abort();
    }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) {
        abort();
    }
    va_start(args, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, args);
    va_end(args);
    return s;
}

int64_t h_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *h_fingerprint(const char *key, char *out, size_t size) {
    char *fp = NULL;
    gr_error *err = NULL;
    gr_status st = gr_key_fingerprint(key, &fp, &err);
    out[0] = '\0';
    if (CHECK_OK(st, err)) {
        snprintf(out, size, "%s", fp);
    }
    gr_free(fp);
    gr_error_free(err);
    return out;
}

char *h_request(const char *prefix, int n) {
    return h_strdupf("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"%s %d\"}]}]}",
                     prefix, n);
}

json_value *h_pool_stats(const gr_pool *pool) {
    char *json = NULL;
    gr_error *err = NULL;
    gr_status st = gr_stats_json(pool, &json, &err);
    json_value *v = NULL;
    if (CHECK_OK(st, err)) {
        char why[200];
        v = json_parse(json, why, sizeof why);
        CHECKF(v != NULL, "gr_stats_json is not JSON (%s): %.500s", why, json);
        CHECK_NO_KEYS(json);
    }
    gr_free(json);
    gr_error_free(err);
    return v;
}

const json_value *h_key_stats(const json_value *stats, const char *fingerprint) {
    const json_value *keys = json_get(stats, "keys");
    for (size_t i = 0; keys != NULL && i < keys->count; i++) {
        const char *fp = json_string_at(keys->items[i], "fingerprint");
        if (fp != NULL && strcmp(fp, fingerprint) == 0) {
            return keys->items[i];
        }
    }
    return NULL;
}

long h_key_stat(const json_value *stats, const char *fingerprint, const char *field) {
    return (long)json_number_at(h_key_stats(stats, fingerprint), field, -1);
}

gr_pool *h_pool(const char *config_json) {
    gr_pool *pool = NULL;
    gr_error *err = NULL;
    gr_status st = gr_pool_new(config_json, &pool, &err);
    if (!CHECK_OK(st, err)) {
        pool = NULL;
    }
    gr_error_free(err);
    return pool;
}

/* ---- the emulator --------------------------------------------------------------------------- */

static void set_cloexec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }

int emu_start(emulator *emu, const char *config_json) {
    memset(emu, 0, sizeof *emu);
    emu->pid = -1;
    emu->stdin_fd = -1;
    emu->stdout_fd = -1;

    const char *bin = getenv("GEMINI_EMULATOR_BIN");
    if (bin == NULL || bin[0] == '\0') {
        bin = GR_DEFAULT_EMULATOR;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(emu->config_path, sizeof emu->config_path, "%s/gr-c-emulator-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    int fd = mkstemp(emu->config_path);
    if (!CHECKF(fd >= 0, "mkstemp(%s): %s", emu->config_path, strerror(errno))) {
        emu->config_path[0] = '\0';
        return -1;
    }
    size_t len = strlen(config_json);
    ssize_t written = write(fd, config_json, len);
    close(fd);
    if (!CHECKF(written == (ssize_t)len, "writing the emulator config: %s", strerror(errno))) {
        return -1;
    }

    int in[2], out[2];
    if (!CHECK(pipe(in) == 0)) {
        return -1;
    }
    if (!CHECK(pipe(out) == 0)) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    /* The parent's ends must not leak into this or any later child: an emulator holding another
     * emulator's stdin open would keep it alive. */
    set_cloexec(in[1]);
    set_cloexec(out[0]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, in[0]);
    posix_spawn_file_actions_addclose(&actions, out[1]);
    char *argv[] = {(char *)bin, "--config", emu->config_path, "--exit-on-stdin-eof", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    if (!CHECKF(rc == 0, "cannot run the emulator %s: %s (build it with cargo build --release "
                         "--workspace, or set GEMINI_EMULATOR_BIN)", bin, strerror(rc))) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    emu->pid = pid;
    emu->stdin_fd = in[1];
    emu->stdout_fd = out[0];

    /* Read the one line it prints once it accepts connections. */
    char line[256];
    size_t n = 0;
    int64_t deadline = h_now_ms() + 20000;
    while (n + 1 < sizeof line && memchr(line, '\n', n) == NULL) {
        int64_t left = deadline - h_now_ms();
        if (left <= 0) {
            break;
        }
        struct pollfd p = {emu->stdout_fd, POLLIN, 0};
        int ready = poll(&p, 1, (int)left);
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            break;
        }
        ssize_t got = read(emu->stdout_fd, line + n, sizeof line - 1 - n);
        if (got <= 0) {
            break;
        }
        n += (size_t)got;
    }
    line[n] = '\0';
    const char *prefix = "listening on http://127.0.0.1:";
    const char *at = strstr(line, prefix);
    int port = at != NULL ? atoi(at + strlen(prefix)) : 0;
    if (!CHECKF(port > 0, "the emulator did not announce its port; it printed \"%s\"", line)) {
        emu_stop(emu);
        return -1;
    }
    emu->port = port;
    snprintf(emu->base_url, sizeof emu->base_url, "http://127.0.0.1:%d", port);
    /* It has read its configuration: remove the file now, so that nothing is left behind even if
     * this process dies. */
    unlink(emu->config_path);
    emu->config_path[0] = '\0';
    return 0;
}

void emu_stop(emulator *emu) {
    if (emu->stdin_fd >= 0) {
        close(emu->stdin_fd); /* --exit-on-stdin-eof: this asks it to exit */
        emu->stdin_fd = -1;
    }
    if (emu->pid > 0) {
        int status;
        int64_t deadline = h_now_ms() + 5000;
        int signalled = 0;
        for (;;) {
            pid_t r = waitpid(emu->pid, &status, WNOHANG);
            if (r == emu->pid || (r < 0 && errno != EINTR)) {
                break;
            }
            if (h_now_ms() > deadline) {
                /* Only this child, by its own pid. */
                kill(emu->pid, signalled ? SIGKILL : SIGTERM);
                signalled = 1;
                deadline = h_now_ms() + 2000;
            }
            h_sleep_ms(5);
        }
        emu->pid = -1;
    }
    if (emu->stdout_fd >= 0) {
        close(emu->stdout_fd);
        emu->stdout_fd = -1;
    }
    if (emu->config_path[0] != '\0') {
        unlink(emu->config_path);
        emu->config_path[0] = '\0';
    }
}

/* Decodes a chunked body in place; returns its length, or -1. */
static long dechunk(char *body) {
    char *in = body;
    char *out = body;
    for (;;) {
        char *end;
        long size = strtol(in, &end, 16);
        if (end == in || size < 0) {
            return -1;
        }
        char *data = strstr(end, "\r\n");
        if (data == NULL) {
            return -1;
        }
        data += 2;
        if (size == 0) {
            break;
        }
        if ((long)strlen(data) < size) {
            return -1;
        }
        memmove(out, data, (size_t)size);
        out += size;
        in = data + size;
        if (strncmp(in, "\r\n", 2) == 0) {
            in += 2;
        }
    }
    *out = '\0';
    return (long)(out - body);
}

int emu_http(const emulator *emu, const char *method, const char *path, const char *body,
             char **out_body) {
    if (out_body != NULL) {
        *out_body = NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    set_cloexec(fd);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)emu->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    size_t body_len = body != NULL ? strlen(body) : 0;
    char *request = h_strdupf("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                              method, path, emu->port, body_len, body != NULL ? body : "");
    size_t len = strlen(request);
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            free(request);
            close(fd);
            return -1;
        }
        sent += (size_t)n;
    }
    free(request);

    size_t cap = 8192, used = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        abort();
    }
    for (;;) {
        if (used + 4096 + 1 > cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap);
            if (bigger == NULL) {
                abort();
            }
            buf = bigger;
        }
        ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';

    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        free(buf);
        return -1;
    }
    char *payload = strstr(buf, "\r\n\r\n");
    if (payload == NULL) {
        free(buf);
        return -1;
    }
    *payload = '\0'; /* end the head, for the header search below */
    payload += 4;
    int chunked = 0;
    for (char *h = strstr(buf, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n")) {
        const char *name = "transfer-encoding:";
        size_t i = 0;
        while (name[i] != '\0' && (h[2 + i] | 0x20) == name[i]) {
            i++;
        }
        if (name[i] == '\0' && strstr(h + 2 + i, "chunked") != NULL) {
            chunked = 1;
        }
    }
    if (chunked && dechunk(payload) < 0) {
        free(buf);
        return -1;
    }
    if (out_body != NULL) {
        *out_body = h_strdupf("%s", payload);
    }
    free(buf);
    return status;
}

void emu_fault(const emulator *emu, const char *fault_json) {
    char *answer = NULL;
    int status = emu_http(emu, "POST", "/_emulator/faults", fault_json, &answer);
    CHECKF(status == 200, "POST /_emulator/faults %s: HTTP %d %s", fault_json, status,
           answer != NULL ? answer : "");
    free(answer);
}

static json_value *emu_get_json(const emulator *emu, const char *path) {
    char *answer = NULL;
    int status = emu_http(emu, "GET", path, NULL, &answer);
    json_value *v = NULL;
    if (CHECKF(status == 200, "GET %s: HTTP %d", path, status)) {
        char why[200];
        v = json_parse(answer, why, sizeof why);
        CHECKF(v != NULL, "GET %s is not JSON (%s): %.300s", path, why, answer);
    }
    free(answer);
    return v;
}

json_value *emu_stats(const emulator *emu) { return emu_get_json(emu, "/_emulator/stats"); }
json_value *emu_log(const emulator *emu) { return emu_get_json(emu, "/_emulator/log"); }

long emu_label(const json_value *stats, const char *label, const char *field) {
    const json_value *entry = json_get(json_get(stats, "keys"), label);
    return (long)json_number_at(entry, field, 0);
}

long emu_label_status(const json_value *stats, const char *label, int http_status) {
    char code[16];
    snprintf(code, sizeof code, "%d", http_status);
    const json_value *by = json_path(json_get(json_get(stats, "keys"), label), "by_status");
    return (long)json_number_at(by, code, 0);
}

/* Appends `"a","b",...` of `items` to a growing string. */
static char *join_quoted(const char *const *items, size_t n) {
    char *out = h_strdupf("%s", "");
    for (size_t i = 0; i < n; i++) {
        char *next = h_strdupf("%s%s\"%s\"", out, i > 0 ? "," : "", items[i]);
        free(out);
        out = next;
    }
    return out;
}

char *h_pool_config(const emulator *emu, const char *const *free_keys, size_t n_free,
                    const char *paid_key, const char *extra) {
    char *keys = join_quoted(free_keys, n_free);
    char *paid = paid_key != NULL ? h_strdupf(",\"paid_key\":\"%s\"", paid_key) : h_strdupf("%s", "");
    int has_extra = extra != NULL && extra[0] != '\0';
    /* Small backoffs keep the retry tests fast; a test may set its own. */
    int own_base = has_extra && strstr(extra, "\"retry_base_ms\"") != NULL;
    int own_max = has_extra && strstr(extra, "\"retry_max_ms\"") != NULL;
    int own_state = has_extra && strstr(extra, "\"state\"") != NULL;
    char *state = own_state ? h_strdupf("%s", "") : h_strdupf(",\"state\":\"%s\"", h_state());
    char *config = h_strdupf("{\"free_keys\":[%s]%s,\"base_url\":\"%s\"%s%s%s%s%s}", keys, paid,
                             emu->base_url, own_base ? "" : ",\"retry_base_ms\":1",
                             own_max ? "" : ",\"retry_max_ms\":4", state, has_extra ? "," : "",
                             has_extra ? extra : "");
    free(state);
    free(keys);
    free(paid);
    return config;
}

char *h_emu_config(const char *const *keys, const char *const *labels, size_t n, long limit,
                   long window_ms) {
    char *list = h_strdupf("%s", "");
    for (size_t i = 0; i < n; i++) {
        char lim[32];
        if (limit > 0) {
            snprintf(lim, sizeof lim, "%ld", limit);
        } else {
            snprintf(lim, sizeof lim, "null");
        }
        char *next = h_strdupf("%s%s{\"key\":\"%s\",\"label\":\"%s\",\"limit\":%s,\"window_ms\":%ld}",
                               list, i > 0 ? "," : "", keys[i], labels[i], lim, window_ms);
        free(list);
        list = next;
    }
    char *config = h_strdupf("{\"keys\":[%s],\"faults\":[],\"record_bodies\":false}", list);
    free(list);
    return config;
}

/* ---- fixture -------------------------------------------------------------------------------- */

int fx_start(fixture *fx, size_t n_free, int paid, long emu_limit, const char *pool_extra) {
    memset(fx, 0, sizeof *fx);
    fx->emu.pid = -1;
    fx->emu.stdin_fd = -1;
    fx->emu.stdout_fd = -1;
    fx->n_free = n_free;
    fx->has_paid = paid != 0;
    fx->n = n_free + (size_t)fx->has_paid;
    if (!CHECK(fx->n <= FX_MAX_KEYS)) {
        return -1;
    }
    const char *keys[FX_MAX_KEYS];
    const char *labels[FX_MAX_KEYS];
    for (size_t i = 0; i < fx->n; i++) {
        int is_paid = i == n_free;
        h_key(fx->keys[i], sizeof fx->keys[i], is_paid ? "paid" : "free", (int)i + 1);
        if (is_paid) {
            snprintf(fx->labels[i], sizeof fx->labels[i], "paid");
        } else {
            snprintf(fx->labels[i], sizeof fx->labels[i], "free%d", (int)i + 1);
        }
        h_fingerprint(fx->keys[i], fx->fps[i], sizeof fx->fps[i]);
        keys[i] = fx->keys[i];
        labels[i] = fx->labels[i];
    }
    char *emu_config = h_emu_config(keys, labels, fx->n, emu_limit, 60000);
    int rc = emu_start(&fx->emu, emu_config);
    free(emu_config);
    if (rc != 0) {
        return -1;
    }
    char *config = h_pool_config(&fx->emu, keys, n_free, fx->has_paid ? keys[n_free] : NULL,
                                 pool_extra);
    fx->pool = h_pool(config);
    free(config);
    return fx->pool != NULL ? 0 : -1;
}

void fx_stop(fixture *fx) {
    gr_pool_free(fx->pool);
    fx->pool = NULL;
    emu_stop(&fx->emu);
}

int fx_index_of_fp(const fixture *fx, const char *fingerprint) {
    for (size_t i = 0; fingerprint != NULL && i < fx->n; i++) {
        if (strcmp(fx->fps[i], fingerprint) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int fx_index_of_label(const fixture *fx, const char *label) {
    for (size_t i = 0; label != NULL && i < fx->n; i++) {
        if (strcmp(fx->labels[i], label) == 0) {
            return (int)i;
        }
    }
    return -1;
}

gr_status h_generate(const gr_pool *pool, const char *model, int n, uint64_t max_wait_ms,
                     uint64_t timeout_ms, char *fp_out, gr_error **err) {
    char *request = h_request("hello", n);
    gr_response *resp = NULL;
    *err = NULL;
    gr_status st = gr_generate(pool, model, request, max_wait_ms, timeout_ms, &resp, err);
    if (fp_out != NULL) {
        fp_out[0] = '\0';
    }
    if (st == GR_OK) {
        size_t len = 0;
        const char *response = gr_response_body(resp, &len);
        const char *fp = gr_response_key_fingerprint(resp);
        CHECKF(len == strlen(response), "length %zu, C string length %zu", len, strlen(response));
        CHECKF(gr_response_attempts(resp) >= 1, "attempts %u", gr_response_attempts(resp));
        char why[200];
        json_value *v = json_parse(response, why, sizeof why);
        CHECKF(v != NULL, "the response is not JSON (%s): %.300s", why, response);
        const json_value *parts = json_path(json_at(json_get(v, "candidates"), 0), "content.parts");
        const char *text = json_string_at(json_at(parts, 0), "text");
        char expected[64];
        snprintf(expected, sizeof expected, "echo: hello %d", n);
        CHECK_STREQ(text, expected);
        CHECK_NO_KEYS(response);
        CHECKF(strlen(fp) == 12, "fingerprint \"%s\"", fp);
        if (fp_out != NULL) {
            snprintf(fp_out, 32, "%s", fp);
        }
        json_free(v);
    } else {
        CHECKF(resp == NULL, "out_response written on %s", gr_status_name((int32_t)st));
    }
    gr_response_free(resp);
    free(request);
    return st;
}
