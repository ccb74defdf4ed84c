#include "rq.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CONNECT_TIMEOUT_MS 2000
/* A command's reply may wait this long past any block it asked for. */
#define REPLY_SLACK_MS 5000

struct rq {
    struct rq_url url;
    redisContext *c;
    char cursor[64]; /* where XAUTOCLAIM goes on: it looks at a few entries a call */
};

/* The backlog check and the queueing, atomically. KEYS: stream, spec key.
 * ARGV: backlog, extra places, spec ttl, spec, headers... Waiting jobs are
 * the stream's entries not handed to a worker yet. */
static const char PUSH_SCRIPT[] =
    "local waiting = redis.call('XLEN', KEYS[1])\n"
    "if waiting > 0 then\n"
    "  local p = redis.pcall('XPENDING', KEYS[1], '" RQ_GROUP "')\n"
    "  if type(p) == 'table' and type(p[1]) == 'number' then waiting = waiting - p[1] end\n"
    "end\n"
    "if waiting < 0 then waiting = 0 end\n"
    "if waiting + #ARGV - 4 + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return -1 end\n"
    "redis.call('HSET', KEYS[2], 'spec', ARGV[4], 'left', #ARGV - 4)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "for i = 5, #ARGV do redis.call('XADD', KEYS[1], '*', 'job', ARGV[i]) end\n"
    "return waiting\n";

/* A result: reply (always: the front door drops duplicates), ack, delete;
 * the spec goes with the last of its jobs (counted once per entry: only
 * when this ack is the first). KEYS: stream, reply list, spec. ARGV: entry
 * id, result ('' drops the job), ttl. */
static const char FINISH_SCRIPT[] =
    "if ARGV[2] ~= '' then\n"
    "  redis.call('RPUSH', KEYS[2], ARGV[2])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "end\n"
    "local acked = redis.call('XACK', KEYS[1], '" RQ_GROUP "', ARGV[1])\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    "if acked == 1 and redis.call('EXISTS', KEYS[3]) == 1 and\n"
    "   redis.call('HINCRBY', KEYS[3], 'left', -1) <= 0 then\n"
    "  redis.call('DEL', KEYS[3])\n"
    "end\n"
    "return acked\n";

static const char STATS_SCRIPT[] =
    "local len = redis.call('XLEN', KEYS[1])\n"
    "local pending = 0\n"
    "if len > 0 then\n"
    "  local p = redis.pcall('XPENDING', KEYS[1], '" RQ_GROUP "')\n"
    "  if type(p) == 'table' and type(p[1]) == 'number' then pending = p[1] end\n"
    "end\n"
    "return {len, pending, tonumber(redis.call('GET', 'bg:stats:claimed') or 0),\n"
    "        tonumber(redis.call('GET', 'bg:stats:dead') or 0)}\n";

/* Worker announcements, timed by Redis's clock (hosts' clocks may differ):
 * bg:workers holds what each said, bg:workers:until until when it holds.
 * ANNOUNCE: KEYS the two hashes; ARGV consumer, info, ttl ms. */
static const char ANNOUNCE_SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], now + tonumber(ARGV[3]))\n"
    "return 1\n";

/* The live workers' texts as one JSON array; lapsed ones go. */
static const char WORKERS_SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "local live = {}\n"
    "for i = 1, #all, 2 do\n"
    "  local untl = tonumber(redis.call('HGET', KEYS[2], all[i]))\n"
    "  if untl and untl >= now then\n"
    "    live[#live + 1] = all[i + 1]\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[1], all[i])\n"
    "    redis.call('HDEL', KEYS[2], all[i])\n"
    "  end\n"
    "end\n"
    "return '[' .. table.concat(live, ',') .. ']'\n";

/* Consumers (worker processes) that left: nothing pending, long idle. */
static const char PRUNE_SCRIPT[] =
    "local ok, cs = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], '" RQ_GROUP "')\n"
    "if not ok then return 0 end\n"
    "local n = 0\n"
    "for _, c in ipairs(cs) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[1]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], '" RQ_GROUP "', f['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

static int parse_auth(const char *p, size_t n, struct rq_url *out, char *err)
{
    const char *colon = memchr(p, ':', n);
    size_t ulen = colon ? (size_t)(colon - p) : 0;
    const char *pw = colon ? colon + 1 : p;
    size_t plen = n - (size_t)(pw - p);
    if (ulen >= sizeof out->user || plen >= sizeof out->password)
        return bg_fail(err, BG_EINVAL, "--queue: user or password too long");
    memcpy(out->user, p, ulen);
    out->user[ulen] = '\0';
    memcpy(out->password, pw, plen);
    out->password[plen] = '\0';
    return 0;
}

static int parse_number(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int rq_parse_url(const char *url, struct rq_url *out, char err[BG_ERRLEN])
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return bg_fail(err, BG_EINVAL, "--queue takes redis://[[user]:password@]host[:port][/db]");
    const char *p = url + sizeof scheme - 1;
    const char *at = strrchr(p, '@');
    if (at && parse_auth(p, (size_t)(at - p), out, err) < 0)
        return BG_EINVAL;
    if (at)
        p = at + 1;
    size_t hlen = strcspn(p, ":/");
    if (hlen == 0 || hlen >= sizeof out->host)
        return bg_fail(err, BG_EINVAL, "--queue: missing or too long host in '%s'", url);
    memcpy(out->host, p, hlen);
    p += hlen;
    char part[32];
    long v;
    if (*p == ':') {
        size_t n = strcspn(++p, "/");
        snprintf(part, sizeof part, "%.*s", (int)(n < 31 ? n : 31), p);
        if (n >= sizeof part || parse_number(part, 1, 65535, &v) < 0)
            return bg_fail(err, BG_EINVAL, "--queue: the port must be 1-65535");
        out->port = (int)v;
        p += n;
    }
    if (*p == '/' && p[1]) {
        if (parse_number(p + 1, 0, 1000000, &v) < 0)
            return bg_fail(err, BG_EINVAL, "--queue: the database must be a number");
        out->db = (int)v;
    }
    const char *env = getenv("BG_REDIS_PASSWORD");
    if (!out->password[0] && env && *env)
        snprintf(out->password, sizeof out->password, "%s", env);
    return 0;
}

struct rq *rq_new(const struct rq_url *url)
{
    struct rq *r = calloc(1, sizeof *r);
    if (r)
        r->url = *url;
    return r;
}

static void drop(struct rq *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

void rq_free(struct rq *r)
{
    if (!r)
        return;
    drop(r);
    free(r);
}

static struct timeval tv_ms(long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static redisReply *call(struct rq *r, int argc, const char **argv, const size_t *lens,
                        long block_ms, char *err);

/* One command made of plain strings (no binary arguments). */
static redisReply *callv(struct rq *r, long block_ms, char *err, int argc, const char **argv)
{
    return call(r, argc, argv, NULL, block_ms, err);
}

static int hello(struct rq *r, char *err)
{
    char db[16];
    if (r->url.password[0]) { /* AUTH [user] password */
        const char *argv[] = {"AUTH", r->url.user, r->url.password};
        int with_user = r->url.user[0] != '\0';
        const char *pw_only[] = {"AUTH", r->url.password};
        redisReply *rep = callv(r, 0, err, with_user ? 3 : 2, with_user ? argv : pw_only);
        if (!rep)
            return BG_EQUEUE;
        freeReplyObject(rep);
    }
    if (r->url.db) {
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[] = {"SELECT", db};
        redisReply *rep = callv(r, 0, err, 2, argv);
        if (!rep)
            return BG_EQUEUE;
        freeReplyObject(rep);
    }
    return 0;
}

static int connect_once(struct rq *r, char *err)
{
    r->c = redisConnectWithTimeout(r->url.host, r->url.port, tv_ms(CONNECT_TIMEOUT_MS));
    if (!r->c)
        return bg_fail(err, BG_EQUEUE, "out of memory connecting to Redis");
    if (r->c->err) {
        bg_fail(err, BG_EQUEUE, "cannot connect to Redis at %s:%d: %s", r->url.host, r->url.port,
                r->c->errstr);
        drop(r);
        return BG_EQUEUE;
    }
    if (hello(r, err) < 0) {
        drop(r);
        return BG_EQUEUE;
    }
    return 0;
}

/*
 * Send one command; NULL with err on an I/O failure (the connection is
 * dropped, the next call reconnects) or an error reply (kept open).
 */
static redisReply *call(struct rq *r, int argc, const char **argv, const size_t *lens,
                        long block_ms, char *err)
{
    if (!r->c && connect_once(r, err) < 0)
        return NULL;
    redisSetTimeout(r->c, tv_ms(block_ms + REPLY_SLACK_MS));
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (!rep) {
        bg_fail(err, BG_EQUEUE, "Redis at %s:%d: %s", r->url.host, r->url.port,
                r->c->errstr[0] ? r->c->errstr : "connection lost");
        drop(r);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        bg_fail(err, BG_EQUEUE, "Redis refused %s: %.180s", argv[0], rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Expect an integer reply. */
static int call_int(struct rq *r, int argc, const char **argv, const size_t *lens,
                    long long *out, char *err)
{
    redisReply *rep = call(r, argc, argv, lens, 0, err);
    if (!rep)
        return BG_EQUEUE;
    int rc = 0;
    if (rep->type != REDIS_REPLY_INTEGER)
        rc = bg_fail(err, BG_EPROTO, "Redis answered %s with a non-number", argv[0]);
    else if (out)
        *out = rep->integer;
    freeReplyObject(rep);
    return rc;
}

int rq_ping(struct rq *r, char version[32], char err[BG_ERRLEN])
{
    const char *argv[] = {"INFO", "server"};
    redisReply *rep = callv(r, 0, err, 2, argv);
    if (!rep)
        return BG_EQUEUE;
    const char *v = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "redis_version:") : NULL;
    snprintf(version, 32, "%.*s", v ? (int)strcspn(v + 14, "\r\n") : 7, v ? v + 14 : "unknown");
    freeReplyObject(rep);
    return 0;
}

int rq_push(struct rq *r, const char *spec_key, const char *spec, size_t spec_len,
            long spec_ttl_s, const char *const *headers, size_t njobs, long backlog, long extra,
            char err[BG_ERRLEN])
{
    char nums[3][24];
    snprintf(nums[0], sizeof nums[0], "%ld", backlog);
    snprintf(nums[1], sizeof nums[1], "%ld", extra);
    snprintf(nums[2], sizeof nums[2], "%ld", spec_ttl_s);
    const char *fixed[] = {"EVAL", PUSH_SCRIPT, "2", RQ_STREAM, spec_key,
                           nums[0], nums[1], nums[2], spec};
    size_t nfixed = sizeof fixed / sizeof fixed[0], argc = nfixed + njobs;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    int rc = BG_ENOMEM;
    if (!argv || !lens)
        goto out;
    for (size_t i = 0; i < argc; i++) {
        argv[i] = i < nfixed ? fixed[i] : headers[i - nfixed];
        lens[i] = i == nfixed - 1 ? spec_len : strlen(argv[i]);
    }
    long long waiting = 0;
    rc = call_int(r, (int)argc, argv, lens, &waiting, err);
    if (rc == 0 && waiting < 0)
        rc = bg_fail(err, BG_EFULL, "the cluster's backlog (%ld jobs) is full", backlog);
out:
    free(argv);
    free(lens);
    return rc;
}

static int take_string(redisReply *rep, struct buf *out)
{
    buf_reset(out);
    return buf_append(out, rep->str, rep->len) < 0 ? BG_ENOMEM : 1;
}

int rq_pop_reply(struct rq *r, const char *key, int timeout_s, struct buf *out,
                 char err[BG_ERRLEN])
{
    char t[16];
    snprintf(t, sizeof t, "%d", timeout_s);
    const char *argv[] = {"BLPOP", key, t};
    redisReply *rep = callv(r, timeout_s * 1000L, err, 3, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING)
        rc = take_string(rep->element[1], out);
    freeReplyObject(rep);
    return rc;
}

int rq_del(struct rq *r, const char *key, char err[BG_ERRLEN])
{
    const char *argv[] = {"DEL", key};
    return call_int(r, 2, argv, NULL, NULL, err);
}

int rq_get_spec(struct rq *r, const char *key, struct buf *out, char err[BG_ERRLEN])
{
    const char *argv[] = {"HGET", key, "spec"};
    redisReply *rep = callv(r, 0, err, 3, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = rep->type == REDIS_REPLY_STRING ? take_string(rep, out) : 0;
    freeReplyObject(rep);
    return rc;
}

static int make_group(struct rq *r, char *err)
{
    const char *argv[] = {"XGROUP", "CREATE", RQ_STREAM, RQ_GROUP, "0", "MKSTREAM"};
    char why[BG_ERRLEN];
    redisReply *rep = callv(r, 0, why, 6, argv);
    if (rep) {
        freeReplyObject(rep);
        return 0;
    }
    if (strstr(why, "BUSYGROUP"))
        return 0; /* another worker made it first */
    return bg_fail(err, BG_EQUEUE, "%s", why);
}

/* An entry [id, [field, value, ...]] into msg: 1, or 0 when it is no
 * entry. One without a job field comes with an empty job, so the worker
 * drops it rather than leave it pending for ever. */
static int read_entry(redisReply *e, struct rq_msg *msg)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    snprintf(msg->id, sizeof msg->id, "%s", e->element[0]->str);
    buf_reset(&msg->job);
    redisReply *f = e->element[1];
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "job") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING)
            return take_string(f->element[i + 1], &msg->job);
    return 1;
}

/* How often the entry was handed out (XPENDING's delivery counter). */
static long deliveries(struct rq *r, const char *id, char *err)
{
    const char *argv[] = {"XPENDING", RQ_STREAM, RQ_GROUP, id, id, "1"};
    redisReply *rep = callv(r, 0, err, 6, argv);
    long n = 1;
    if (!rep)
        return 1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 4 &&
        rep->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
        n = (long)rep->element[0]->element[3]->integer;
    freeReplyObject(rep);
    return n;
}

/* XAUTOCLAIM one entry idle longer than idle_ms: 1 taken, 0 none. Each
 * call looks at a few pending entries from the cursor on, so the whole
 * pending list is covered over successive takes. */
static int claim(struct rq *r, const char *consumer, long idle_ms, struct rq_msg *msg, char *err)
{
    char idle[24];
    snprintf(idle, sizeof idle, "%ld", idle_ms);
    const char *from = r->cursor[0] ? r->cursor : "0-0";
    const char *argv[] = {"XAUTOCLAIM", RQ_STREAM, RQ_GROUP, consumer, idle, from, "COUNT", "1"};
    redisReply *rep = callv(r, 0, err, 8, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING)
        snprintf(r->cursor, sizeof r->cursor, "%s", rep->element[0]->str);
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_ARRAY && rep->element[1]->elements >= 1)
        rc = read_entry(rep->element[1]->element[0], msg);
    freeReplyObject(rep);
    if (rc == 1) {
        msg->claimed = 1;
        msg->deliveries = deliveries(r, msg->id, err);
    }
    return rc;
}

static int read_new(struct rq *r, const char *consumer, long block_ms, struct rq_msg *msg,
                    char *err)
{
    char block[24];
    snprintf(block, sizeof block, "%ld", block_ms);
    const char *argv[] = {"XREADGROUP", "GROUP", RQ_GROUP, consumer, "COUNT", "1",
                          "BLOCK", block, "STREAMS", RQ_STREAM, ">"};
    redisReply *rep = callv(r, block_ms, err, 11, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = 0;
    /* [[stream, [entry]]] or nil after the block. */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        redisReply *s = rep->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
            s->element[1]->type == REDIS_REPLY_ARRAY && s->element[1]->elements == 1)
            rc = read_entry(s->element[1]->element[0], msg);
    }
    freeReplyObject(rep);
    if (rc == 1)
        msg->deliveries = 1;
    return rc;
}

int rq_take(struct rq *r, const char *consumer, long claim_idle_ms, long block_ms,
            struct rq_msg *msg, char err[BG_ERRLEN])
{
    msg->claimed = 0;
    msg->deliveries = 0;
    msg->id[0] = '\0';
    int rc = claim(r, consumer, claim_idle_ms, msg, err);
    if (rc < 0 && strstr(err, "NOGROUP")) /* a new stream, or Redis lost it */
        rc = make_group(r, err);
    if (rc != 0)
        return rc;
    return read_new(r, consumer, block_ms, msg, err);
}

int rq_keepalive(struct rq *r, const char *consumer, const char *const *ids, size_t n,
                 char err[BG_ERRLEN])
{
    if (n == 0)
        return 0;
    const char **argv = calloc(n + 6, sizeof *argv);
    if (!argv)
        return BG_ENOMEM;
    const char *head[] = {"XCLAIM", RQ_STREAM, RQ_GROUP, consumer, "0"};
    memcpy(argv, head, sizeof head);
    memcpy(argv + 5, ids, n * sizeof *ids);
    argv[n + 5] = "JUSTID"; /* JUSTID: no delivery is counted */
    redisReply *rep = callv(r, 0, err, (int)n + 6, argv);
    free(argv);
    if (!rep)
        return BG_EQUEUE;
    freeReplyObject(rep);
    return 0;
}

int rq_finish(struct rq *r, const char *entry_id, const char *reply_key, const char *spec_key,
              const char *result, size_t len, long ttl_s, char err[BG_ERRLEN])
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", ttl_s);
    const char *argv[] = {"EVAL", FINISH_SCRIPT, "3", RQ_STREAM, reply_key, spec_key,
                          entry_id, result, ttl};
    size_t lens[9];
    for (size_t i = 0; i < 9; i++)
        lens[i] = strlen(argv[i]);
    lens[7] = len;
    return call_int(r, 9, argv, lens, NULL, err);
}

int rq_count(struct rq *r, const char *name, char err[BG_ERRLEN])
{
    char key[64];
    snprintf(key, sizeof key, "bg:stats:%s", name);
    const char *argv[] = {"INCR", key};
    return call_int(r, 2, argv, NULL, NULL, err);
}

int rq_stats(struct rq *r, struct rq_stats *out, char err[BG_ERRLEN])
{
    const char *argv[] = {"EVAL", STATS_SCRIPT, "1", RQ_STREAM};
    redisReply *rep = callv(r, 0, err, 4, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = 0;
    long *fields[] = {&out->length, &out->pending, &out->claimed, &out->dead};
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4)
        rc = bg_fail(err, BG_EPROTO, "Redis answered the statistics oddly");
    for (size_t i = 0; rc == 0 && i < 4; i++)
        *fields[i] = rep->element[i]->type == REDIS_REPLY_INTEGER
                         ? (long)rep->element[i]->integer : 0;
    freeReplyObject(rep);
    return rc;
}

int rq_prune_consumers(struct rq *r, long idle_ms, char err[BG_ERRLEN])
{
    char idle[24];
    snprintf(idle, sizeof idle, "%ld", idle_ms);
    const char *argv[] = {"EVAL", PRUNE_SCRIPT, "1", RQ_STREAM, idle};
    return call_int(r, 5, argv, NULL, NULL, err);
}

int rq_announce(struct rq *r, const char *consumer, const char *info, long ttl_ms,
                char err[BG_ERRLEN])
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
    const char *set[] = {"EVAL", ANNOUNCE_SCRIPT, "2", "bg:workers", "bg:workers:until",
                         consumer, info, ttl};
    const char *del[] = {"HDEL", "bg:workers", consumer};
    const char *del_until[] = {"HDEL", "bg:workers:until", consumer};
    if (!info) {
        int rc = call_int(r, 3, del, NULL, NULL, err);
        return rc < 0 ? rc : call_int(r, 3, del_until, NULL, NULL, err);
    }
    return call_int(r, 8, set, NULL, NULL, err);
}

int rq_workers(struct rq *r, struct buf *out, char err[BG_ERRLEN])
{
    const char *argv[] = {"EVAL", WORKERS_SCRIPT, "2", "bg:workers", "bg:workers:until"};
    redisReply *rep = callv(r, 0, err, 5, argv);
    if (!rep)
        return BG_EQUEUE;
    int rc = rep->type == REDIS_REPLY_STRING
                 ? take_string(rep, out)
                 : bg_fail(err, BG_EPROTO, "Redis answered the worker list oddly");
    freeReplyObject(rep);
    return rc < 0 ? rc : 0;
}
