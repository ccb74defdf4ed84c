/*
 * api: the HTTP API's routes and JSON, without HTTP.
 *
 * The HTTP module hands in a parsed request and sends back what comes out;
 * it alone sees libmicrohttpd. POST /compile is asynchronous: api_handle
 * queues a batch and returns API_PENDING; when the batch's on_done fires
 * (on a worker thread), the HTTP module calls api_finish for the reply.
 * Every error is {"error", "code", "request_id"} with the right status.
 */
#ifndef BG_API_H
#define BG_API_H

#include <stddef.h>

#include "../script/plugins.h"
#include "job.h"
#include "service.h"

struct api_request {
    const char *method;
    const char *path;
    const char *content_type;
    const char *query_lang;
    const char *query_count;
    const char *body;
    size_t body_len;
    const char *request_id;
    const char *client;              /* the peer's address */
    const struct plugin_kv *headers; /* all request headers */
    size_t nheaders;
    const struct plugin_kv *query;   /* all query arguments */
    size_t nquery;
};

struct api_response {
    int status;
    char *body;        /* JSON, malloc'd; the HTTP side frees it */
    int retry_after;   /* seconds, 0 for none */
    const char *allow; /* for 405 */
    const char *content_type; /* NULL: application/json */
    struct buf headers; /* more headers, "Name: value\n" lines (plugins);
                         * kept from api_handle to api_finish */
};

enum { API_READY = 0, API_PENDING = 1 };

int api_handle(struct service *s, const struct api_request *req, struct api_response *resp,
               struct batch **pending, batch_done_fn on_done, void *arg);
void api_finish(struct service *s, const struct api_request *req, const struct batch *b,
                struct api_response *resp);
void api_error(struct api_response *resp, int status, const char *code, const char *message,
               const char *request_id);
/* A fresh random request id (32 hex digits). */
void api_request_id(char out[33]);
/* "SIGKILL" and so on; NULL for 0. */
const char *api_signal_name(int sig);
/* The JSON of one result, with the compile's record when compile is set
 * (exposed for unit tests). */
char *api_result_json(const struct run_result *r, const struct run_result *compile);

#endif
