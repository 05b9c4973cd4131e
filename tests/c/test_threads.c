/* test_threads.c: 8 threads calling gr_generate on one pool at once (8 x 50 requests), while
 * another thread reads gr_stats_json and computes fingerprints. In the ASan build this also
 * catches use-after-free and double-free of strings and errors crossing threads. */
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

/* Reads the statistics and makes fingerprints while the workers run. It counts what went wrong
 * and the main thread checks the counts, so that the number of checks does not depend on how
 * many rounds it managed. */
typedef struct {
    fixture *fx;
    int rounds;
    int bad_stats;
    int bad_fingerprints;
} observer_state;

static void *observe(void *arg) {
    observer_state *o = arg;
    while (atomic_load(&workers_done) < THREADS || o->rounds == 0) {
        char *json = NULL;
        gr_error *err = NULL;
        json_value *stats = NULL;
        if (gr_stats_json(o->fx->pool, &json, &err) == GR_OK) {
            stats = json_parse(json, NULL, 0);
        }
        if (stats == NULL || json_get(stats, "keys") == NULL ||
            json_get(stats, "keys")->count != THREAD_KEYS) {
            o->bad_stats++;
        }
        json_free(stats);
        gr_free(json);
        gr_error_free(err);
        char *fp = NULL;
        int k = o->rounds % THREAD_KEYS;
        if (gr_key_fingerprint(o->fx->keys[k], &fp, NULL) != GR_OK || fp == NULL ||
            strcmp(fp, o->fx->fps[k]) != 0) {
            o->bad_fingerprints++;
        }
        gr_free(fp);
        o->rounds++;
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
    observer_state watch = {&fx, 0, 0, 0};
    int observer_started = pthread_create(&observer, NULL, observe, &watch) == 0;
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
    CHECK(watch.rounds > 0);
    CHECK_EQ_INT(watch.bad_stats, 0);
    CHECK_EQ_INT(watch.bad_fingerprints, 0);
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
