/*
 * proto: the wire protocol between the service and bg-supervisor.
 *
 * bg-supervisor is our static helper that runs as PID 1 inside every run
 * container (see supervisor/ and docs/ARCHITECTURE.md). The service talks to
 * it over the container's attached stdin and stdout; this unit is the one
 * codec both sides compile, so the two can never disagree on the format.
 *
 * A frame is: type (1 byte) | length (4 bytes, big-endian) | payload.
 *
 * Service -> supervisor (container stdin), in this order, ended by END:
 *   LIMITS  text "key=value\n" lines: timeout_ms, compile_timeout_ms,
 *           output_bytes (stdout+stderr together, per step), and optional
 *           artifact_bytes: when set, the job is a compile only: after a
 *           successful COMPILE the workspace's files come back as ARTIFACT
 *           frames (at most that many bytes) and no RUN is needed. Unknown keys
 *           are an error: a supervisor must not silently ignore a limit.
 *   FILE    name NUL content: one source file, name relative to /work.
 *   FILE_EXEC  the same, written executable (a compiled program carried
 *           from a compile container to a run container).
 *   ENV     "KEY=VALUE": one variable of the program's environment, which
 *           is built only from these (nothing of the supervisor's own).
 *   COMPILE argv, each element NUL-terminated (optional, at most once).
 *   RUN     argv, each element NUL-terminated (exactly once).
 *   STDIN   bytes for the run step's stdin (may repeat; concatenated).
 *   END     empty: no more input. The run's stdin gets EOF after the data.
 *
 * Supervisor -> service (container stdout):
 *   STEP    "compile" or "run": the output frames that follow belong to it.
 *   OUT     a chunk of the step's stdout.
 *   ERR     a chunk of the step's stderr.
 *   RESULT  text "key=value\n" lines for the step: step, exit_code (-1 when
 *           killed by a signal), signal (0 if none), timed_out, output_limit,
 *           oom_killed (0/1), wall_ms, cpu_ms, memory_kb.
 *   ARTIFACT  mode ('x' executable or '-') name NUL content: one regular
 *           file of the workspace after a compile (names starting with '.'
 *           are skipped at every level: scratch, not output).
 *   FAIL    text: the supervisor itself failed (bad input, exec failure);
 *           the service reports it as an internal error.
 *   DONE    empty: the last frame; the supervisor exits after it.
 *
 * Frames from the supervisor cannot be forged by the program: the program's
 * stdout and stderr are pipes that the supervisor reads and wraps, and the
 * supervisor's own descriptors are closed in the program and unreachable
 * through /proc (the program runs under another uid).
 */
#ifndef BG_PROTO_H
#define BG_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum proto_type {
    PROTO_LIMITS = 'L',
    PROTO_FILE = 'F',
    PROTO_FILE_EXEC = 'G',
    PROTO_ENV = 'V',
    PROTO_COMPILE = 'C',
    PROTO_RUN = 'R',
    PROTO_STDIN = 'I',
    PROTO_END = 'Z',
    PROTO_STEP = 'S',
    PROTO_OUT = 'O',
    PROTO_ERR = 'E',
    PROTO_RESULT = 'X',
    PROTO_ARTIFACT = 'A',
    PROTO_FAIL = 'P',
    PROTO_DONE = 'D',
};

#define PROTO_HEADER_SIZE 5
/* Largest payload either side accepts in one frame. */
#define PROTO_MAX_PAYLOAD (64u * 1024 * 1024)

/* Write the 5-byte header of a frame of `type` carrying `len` bytes. */
void proto_put_header(uint8_t out[PROTO_HEADER_SIZE], uint8_t type, uint32_t len);

/*
 * Incremental decoder: feed it bytes as they arrive, in any split; it calls
 * `on_frame` once per complete frame. The payload pointer is valid only
 * during the call. Returns 0, or -1 on a malformed stream (unknown type,
 * payload over `max_payload`) or when on_frame returns non-zero; after an
 * error the decoder refuses further input.
 */
typedef int (*proto_frame_fn)(void *arg, uint8_t type, const uint8_t *payload,
                              uint32_t len);

struct proto_decoder {
    uint8_t header[PROTO_HEADER_SIZE];
    size_t header_have;
    uint8_t type;
    uint32_t len;
    uint8_t *payload;     /* heap, grown as needed, freed by proto_decoder_free */
    size_t payload_cap;
    uint32_t payload_have;
    uint32_t max_payload;
    int failed;
    proto_frame_fn on_frame;
    void *arg;
};

void proto_decoder_init(struct proto_decoder *d, uint32_t max_payload,
                        proto_frame_fn on_frame, void *arg);
int proto_decoder_feed(struct proto_decoder *d, const uint8_t *buf, size_t len);
/* True when no partial frame is buffered. */
int proto_decoder_idle(const struct proto_decoder *d);
void proto_decoder_free(struct proto_decoder *d);

/* True when `type` is one of the enum values above. */
int proto_type_valid(uint8_t type);

/*
 * Look up `key` in a "key=value\n" payload and parse its value as a signed
 * 64-bit decimal. Returns 0 and sets *out, or -1 when missing or malformed.
 */
int proto_kv_int(const uint8_t *payload, uint32_t len, const char *key, int64_t *out);

#endif
