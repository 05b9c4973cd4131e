/*
 * worker.c: the C worker of the cross-language process tests (tests/cross).
 *
 * Every mode configures its pool from the environment (gr_pool_new(NULL)): GEMINI_FREE_KEYS,
 * GEMINI_PAID_KEY, GEMINI_*_RATE_LIMIT, GEMINI_RATE_WINDOW_MS, GEMINI_BASE_URL,
 * GEMINI_TIMEOUT_MS, GEMINI_ROTATOR_STATE, ...
 *
 *   worker run THREADS START_MS DEADLINE_MS MAX_WAIT_MS TIMEOUT_MS PROGRESS RESULT
 *       THREADS threads wait until START_MS (Unix time, ms), then call gr_generate in a loop
 *       until DEADLINE_MS. Each call waits at most min(MAX_WAIT_MS, DEADLINE_MS - now) for a
 *       key, so nothing is admitted after the deadline. The prompt names the process, thread
 *       and call ("p<pid> t<thread> n<seq>"); the answer must echo it. Each success appends
 *       "<fingerprint> <thread> <seq>\n" to PROGRESS with one write(2) on an O_APPEND
 *       descriptor, so a process killed at any moment leaves a readable record of what it got.
 *       At the end RESULT receives {"lang","pid","calls","ok","exhausted","errors",
 *       "first_error"}.
 *   worker stats-json     prints gr_stats_json
 *   worker prometheus     prints gr_metrics_prometheus
 *   worker pool-new       prints "<status number> <status name>\n<message>\n" of gr_pool_new
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemini_rotator.h"

static long long unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static gr_pool *new_pool_or_die(void) {
    gr_pool *pool = NULL;
    gr_error *err = NULL;
    gr_status st = gr_pool_new(NULL, &pool, &err);
    if (st != GR_OK) {
        fprintf(stderr, "worker: gr_pool_new: %s: %s\n", gr_status_name(st), gr_error_message(err));
        gr_error_free(err);
        exit(3);
    }
    return pool;
}

/* ---- run ------------------------------------------------------------------------------------ */

struct shared {
    gr_pool *pool;
    long long start_ms, deadline_ms, max_wait_ms, timeout_ms;
    int progress_fd;
};

struct thread_state {
    const struct shared *shared;
    int index;
    long calls, ok, exhausted, errors;
    char first_error[512];
};

static void *run_thread(void *arg) {
    struct thread_state *t = arg;
    const struct shared *s = t->shared;
    sleep_ms(s->start_ms - unix_ms());
    long pid = (long)getpid();
    for (long seq = 0;; seq++) {
        long long left = s->deadline_ms - unix_ms();
        if (left <= 0)
            break;
        long long wait = left < s->max_wait_ms ? left : s->max_wait_ms;
        char text[96], body[192], echo[128];
        snprintf(text, sizeof text, "p%ld t%d n%ld", pid, t->index, seq);
        snprintf(body, sizeof body, "{\"contents\":[{\"parts\":[{\"text\":\"%s\"}]}]}", text);
        snprintf(echo, sizeof echo, "echo: %s\"", text);
        gr_response *response = NULL;
        gr_error *err = NULL;
        t->calls++;
        gr_status st = gr_generate(s->pool, NULL, body, (uint64_t)wait, (uint64_t)s->timeout_ms,
                                   &response, &err);
        if (st == GR_OK && strstr(gr_response_body(response, NULL), echo) != NULL) {
            char line[96];
            int n = snprintf(line, sizeof line, "%s %d %ld\n",
                             gr_response_key_fingerprint(response), t->index, seq);
            if (write_all(s->progress_fd, line, (size_t)n) != 0) {
                perror("worker: progress");
                exit(4);
            }
            t->ok++;
        } else if (st == GR_ERR_ALL_KEYS_RATE_LIMITED) {
            /* No key frees before the deadline (or within the wait): sleep until one does. */
            t->exhausted++;
            long long retry = (long long)gr_error_retry_after_ms(err);
            long long rest = s->deadline_ms - unix_ms();
            sleep_ms(retry < rest ? retry : rest);
        } else {
            t->errors++;
            if (t->first_error[0] == '\0')
                snprintf(t->first_error, sizeof t->first_error, "%s: %s", gr_status_name(st),
                         st == GR_OK ? "the answer does not echo the prompt" : gr_error_message(err));
        }
        gr_response_free(response);
        gr_error_free(err);
    }
    return NULL;
}

/* Writes `s` as a JSON string body (without quotes), escaping what JSON requires. */
static void json_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static int run(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: worker run THREADS START_MS DEADLINE_MS MAX_WAIT_MS TIMEOUT_MS "
                        "PROGRESS RESULT\n");
        return 2;
    }
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "worker: bad THREADS %s\n", argv[2]);
        return 2;
    }
    struct shared s = {
        .pool = new_pool_or_die(),
        .start_ms = atoll(argv[3]),
        .deadline_ms = atoll(argv[4]),
        .max_wait_ms = atoll(argv[5]),
        .timeout_ms = atoll(argv[6]),
        .progress_fd = open(argv[7], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600),
    };
    if (s.progress_fd < 0) {
        perror("worker: open progress");
        return 3;
    }
    struct thread_state state[64];
    pthread_t ids[64];
    memset(state, 0, sizeof state);
    for (int i = 0; i < threads; i++) {
        state[i].shared = &s;
        state[i].index = i;
        if (pthread_create(&ids[i], NULL, run_thread, &state[i]) != 0) {
            fprintf(stderr, "worker: pthread_create failed\n");
            return 3;
        }
    }
    long calls = 0, ok = 0, exhausted = 0, errors = 0;
    const char *first_error = "";
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        calls += state[i].calls;
        ok += state[i].ok;
        exhausted += state[i].exhausted;
        errors += state[i].errors;
        if (first_error[0] == '\0')
            first_error = state[i].first_error;
    }
    gr_pool_free(s.pool);
    close(s.progress_fd);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[8]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        perror("worker: open result");
        return 3;
    }
    fprintf(f,
            "{\"lang\":\"c\",\"pid\":%ld,\"calls\":%ld,\"ok\":%ld,\"exhausted\":%ld,"
            "\"errors\":%ld,\"first_error\":\"",
            (long)getpid(), calls, ok, exhausted, errors);
    json_escape(f, first_error);
    fprintf(f, "\"}\n");
    if (fclose(f) != 0 || rename(tmp, argv[8]) != 0) {
        perror("worker: write result");
        return 3;
    }
    return 0;
}

/* ---- statistics and pool creation ----------------------------------------------------------- */

static int print_stats(int prometheus) {
    gr_pool *pool = new_pool_or_die();
    char *text = NULL;
    gr_error *err = NULL;
    gr_status st = prometheus ? gr_metrics_prometheus(pool, &text, &err)
                              : gr_stats_json(pool, &text, &err);
    if (st != GR_OK) {
        fprintf(stderr, "worker: %s: %s: %s\n", prometheus ? "gr_metrics_prometheus" : "gr_stats_json",
                gr_status_name(st), gr_error_message(err));
        gr_error_free(err);
        gr_pool_free(pool);
        return 3;
    }
    fputs(text, stdout);
    if (!prometheus)
        fputc('\n', stdout);
    gr_free(text);
    gr_pool_free(pool);
    return 0;
}

static int pool_new(void) {
    gr_pool *pool = NULL;
    gr_error *err = NULL;
    gr_status st = gr_pool_new(NULL, &pool, &err);
    printf("%d %s\n%s\n", (int)st, gr_status_name(st), st == GR_OK ? "" : gr_error_message(err));
    gr_error_free(err);
    gr_pool_free(pool);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return run(argc, argv);
    if (argc == 2 && strcmp(argv[1], "stats-json") == 0)
        return print_stats(0);
    if (argc == 2 && strcmp(argv[1], "prometheus") == 0)
        return print_stats(1);
    if (argc == 2 && strcmp(argv[1], "pool-new") == 0)
        return pool_new();
    fprintf(stderr, "usage: worker run|stats-json|prometheus|pool-new ...\n");
    return 2;
}
