/*
 * stub_server.h: a one-answer HTTP/1.1 server on loopback, for what the emulator cannot be told
 * to send: an answer whose bytes are given exactly (e.g. with a NUL byte inside).
 *
 * It runs on its own thread, accepts `requests` connections one after the other, reads each
 * request (head and Content-Length body), answers every one with `status` and `body` (`len`
 * bytes, sent verbatim) and "Connection: close", then stops.
 */
#ifndef GR_TEST_STUB_SERVER_H
#define GR_TEST_STUB_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct {
    int listen_fd;
    int port;
    char base_url[64];
    int status;
    const char *body;
    size_t len;
    int requests;
    atomic_int accepted; /* connections taken so far */
    atomic_int served;   /* requests answered so far */
    pthread_t thread;
} stub_server;

/* Starts the server. Returns 0, or -1 after a failed check. */
int stub_start(stub_server *s, int status, const char *body, size_t len, int requests);

/* Waits for the server to finish (it stops after `requests` answers; a server still waiting
 * is woken by a connection of our own). */
void stub_stop(stub_server *s);

#endif /* GR_TEST_STUB_SERVER_H */
