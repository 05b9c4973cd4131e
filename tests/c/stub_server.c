/* stub_server.c: see stub_server.h. */
#include "stub_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* Reads one request: the head up to the blank line, then as many body bytes as it announces.
 * Returns 0, or -1 if the client went away first. */
static int read_request(int fd) {
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        if (have == sizeof buf - 1) {
            return -1;
        }
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t body_have = have - (size_t)(end + 4 - buf);
    size_t body_len = 0;
    for (char *line = strstr(buf, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0) {
            body_len = (size_t)strtoul(line + 2 + 15, NULL, 10);
        }
    }
    while (body_have < body_len) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            return -1;
        }
        body_have += (size_t)n;
    }
    return 0;
}

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) {
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static void *serve(void *arg) {
    stub_server *s = arg;
    while (atomic_load(&s->accepted) < s->requests) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            break;
        }
        atomic_fetch_add(&s->accepted, 1);
        if (read_request(fd) == 0) {
            char head[256];
            int n = snprintf(head, sizeof head,
                             "HTTP/1.1 %d Stub\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                             s->status, s->len);
            write_all(fd, head, (size_t)n);
            write_all(fd, s->body, s->len);
            atomic_fetch_add(&s->served, 1);
        }
        close(fd);
    }
    return NULL;
}

int stub_start(stub_server *s, int status, const char *body, size_t len, int requests) {
    memset(s, 0, sizeof *s);
    atomic_init(&s->accepted, 0);
    atomic_init(&s->served, 0);
    s->status = status;
    s->body = body;
    s->len = len;
    s->requests = requests;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (!CHECK(s->listen_fd >= 0) ||
        !CHECK(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) == 0) ||
        !CHECK(listen(s->listen_fd, 8) == 0) ||
        !CHECK(getsockname(s->listen_fd, (struct sockaddr *)&addr, &addr_len) == 0)) {
        if (s->listen_fd >= 0) {
            close(s->listen_fd);
        }
        return -1;
    }
    s->port = ntohs(addr.sin_port);
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
    if (!CHECK(pthread_create(&s->thread, NULL, serve, s) == 0)) {
        close(s->listen_fd);
        return -1;
    }
    return 0;
}

void stub_stop(stub_server *s) {
    /* Wake a server still waiting in accept with connections that send nothing. */
    for (int i = atomic_load(&s->accepted); i < s->requests; i++) {
        {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in addr;
            memset(&addr, 0, sizeof addr);
            addr.sin_family = AF_INET;
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            addr.sin_port = htons((uint16_t)s->port);
            if (fd >= 0) {
                (void)connect(fd, (struct sockaddr *)&addr, sizeof addr);
                close(fd);
            }
        }
    }
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}
