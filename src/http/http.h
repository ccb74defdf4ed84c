/*
 * http: the front door; the only unit that sees libmicrohttpd.
 *
 * Reads requests (bounding the body: a Content-Length over --max-body is
 * answered 413 before the body is read, a chunked body at the moment it
 * passes the cap), hands them to api.h, and writes the answers. A request
 * that waits for runs is suspended, so it holds no thread; the batch's
 * completion resumes it. Slow clients time out.
 */
#ifndef BG_HTTP_H
#define BG_HTTP_H

#include "../core/service.h"

struct http_server;

struct http_server *http_start(struct service *s, char err[BG_ERRLEN]);
/* Stop accepting connections; requests in progress go on. */
void http_quiesce(struct http_server *h);
/* Wait until no request is in flight (or timeout_ms passes), then stop. */
void http_stop(struct http_server *h, long timeout_ms);

#endif
