/* test_threads.c: 8 threads calling gr_generate on one pool at once (8 x 50 requests), while
 * another thread reads gr_stats_json and computes fingerprints. Under ThreadSanitizer-free ASan
 * this still catches use-after-free and double-free across threads in the C boundary. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#include "harness.h"
#include "tests.h"

#define THREADS 8
#define PER_THREAD 50
#define THREAD_KEYS 4

typedef struct {
    fixture *fx;
    int id;
    int ok;
    int served[THREAD_KEYS];
} worker;

static atomic_int workers_done;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char fp[32];
        gr_error *err = NULL;
        gr_status st = h_generate(w->fx->pool, NULL, w->id * 1000 + i, 0, 0, fp, &err);
        if (CHECK_OK(st, err)) {
            w->ok++;
            int k = fx_index_of_fp(w->fx, fp);
            if (CHECKF(k >= 0, "unknown fingerprint %s", fp)) {
                w->served[k]++;
            }
        }
        gr_error_free(err);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* Reads the statistics and makes fingerprints while the workers run. */
static void *observe(void *arg) {
    fixture *fx = arg;
    int rounds = 0;
    while (atomic_load(&workers_done) < THREADS || rounds == 0) {
        json_value *stats = h_pool_stats(fx->pool);
        CHECK(stats != NULL);
        json_free(stats);
        char fp[32];
        h_fingerprint(fx->keys[rounds % THREAD_KEYS], fp, sizeof fp);
        CHECK_STREQ(fp, fx->fps[rounds % THREAD_KEYS]);
        rounds++;
        h_sleep_ms(2);
    }
    return NULL;
}

void test_threads(void) {
    fixture fx;
    if (fx_start(&fx, THREAD_KEYS, 0, 0, "\"free_rate_limit\":1000") != 0) {
        fx_stop(&fx);
        return;
    }
    atomic_store(&workers_done, 0);
    worker workers[THREADS];
    pthread_t threads[THREADS];
    pthread_t observer;
    memset(workers, 0, sizeof workers);
    int observer_started = pthread_create(&observer, NULL, observe, &fx) == 0;
    CHECK(observer_started);
    int started[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t].fx = &fx;
        workers[t].id = t;
        started[t] = pthread_create(&threads[t], NULL, work, &workers[t]) == 0;
        CHECKF(started[t], "pthread_create %d", t);
        if (!started[t]) {
            atomic_fetch_add(&workers_done, 1);
        }
    }
    int ok = 0;
    int served[THREAD_KEYS] = {0};
    for (int t = 0; t < THREADS; t++) {
        if (started[t]) {
            pthread_join(threads[t], NULL);
        }
        ok += workers[t].ok;
        for (int k = 0; k < THREAD_KEYS; k++) {
            served[k] += workers[t].served[k];
        }
    }
    if (observer_started) {
        pthread_join(observer, NULL);
    }
    CHECK_EQ_INT(ok, THREADS * PER_THREAD);

    /* Round-robin from one shared cursor: exactly even when nothing failed. */
    json_value *emu = emu_stats(&fx.emu);
    CHECK_EQ_INT(json_number_at(emu, "total", -1), THREADS * PER_THREAD);
    for (int k = 0; k < THREAD_KEYS; k++) {
        long n = emu_label(emu, fx.labels[k], "requests");
        CHECKF(n == THREADS * PER_THREAD / THREAD_KEYS, "%s served %ld of %d", fx.labels[k], n,
               THREADS * PER_THREAD);
        CHECK_EQ_INT(served[k], n);
    }
    json_free(emu);

    json_value *stats = h_pool_stats(fx.pool);
    CHECK_EQ_INT(json_number_at(stats, "pool.requests", -1), THREADS * PER_THREAD);
    CHECK_EQ_INT(json_number_at(stats, "pool.succeeded", -1), THREADS * PER_THREAD);
    CHECK_EQ_INT(json_number_at(stats, "pool.latency.count", -1), THREADS * PER_THREAD);
    for (int k = 0; k < THREAD_KEYS; k++) {
        CHECK_EQ_INT(h_key_stat(stats, fx.fps[k], "in_flight"), 0);
        CHECK_EQ_INT(h_key_stat(stats, fx.fps[k], "in_window"), served[k]);
    }
    json_free(stats);
    fx_stop(&fx);
}
