/*
 * transport: how the Docker client reaches the engine.
 *
 * A small vtable so unit tests can put a fake engine behind the client.
 * The real one (transport_curl.c) is the only unit that sees libcurl. One
 * transport is used by one thread at a time: each worker owns its own, so
 * its keep-alive connection to the engine is never shared.
 */
#ifndef BG_TRANSPORT_H
#define BG_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

#include "../common/buf.h"

struct dk_response {
    long status;     /* HTTP status, 0 when no answer came */
    struct buf body;
};

/* A raw byte stream taken over from an HTTP connection (attach). */
struct dk_stream;

struct dk_transport_ops {
    /* One HTTP request; body may be NULL. Fills resp (caller frees body). */
    int (*request)(void *self, const char *method, const char *path,
                   const char *content_type, const void *body, size_t len,
                   long timeout_ms, struct dk_response *resp);
    /* POST path with "Upgrade: tcp"; on 101/200 returns the raw stream. */
    int (*hijack)(void *self, const char *path, long timeout_ms, struct dk_stream **out);
    /* Send all of buf; 0 or a BG_E* code. */
    int (*send)(struct dk_stream *s, const void *buf, size_t len, int timeout_ms);
    /* Up to len bytes: >0 bytes read, 0 end of stream, BG_ETIMEOUT, BG_E*. */
    ssize_t (*recv)(struct dk_stream *s, void *buf, size_t len, int timeout_ms);
    /* Half-close the write side (EOF for the container's stdin). */
    void (*shutdown_write)(struct dk_stream *s);
    void (*close)(struct dk_stream *s);
    void (*free)(void *self);
};

struct dk_transport {
    const struct dk_transport_ops *ops;
    void *self;
};

/*
 * The libcurl transport. `host` is "unix:///path", "tcp://host:port" or a
 * plain socket path. Returns NULL on allocation failure.
 */
struct dk_transport *transport_curl_new(const char *host);
void transport_free(struct dk_transport *t);

/* Call once at start, before threads (curl_global_init). */
int transport_global_init(void);

#endif
