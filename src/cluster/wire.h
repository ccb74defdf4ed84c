/*
 * wire: a run_spec and a run_result as JSON text, so a job and its outcome
 * can travel between processes through Redis.
 *
 * Uses: cJSON, common/base64 (every byte content), sandbox/run.h (the
 * structs, run_status_name, run_result_init/free, run_spec_free).
 *
 * The decoders are a trust boundary: whatever sits in Redis may have been
 * written by anyone who reached it, so they check every type, refuse
 * unknown and repeated keys (a sender newer than us fails closed instead
 * of having a field, say a new limit, silently dropped), and name the
 * offending field in err ("limits.pids: must be an integer from 0 to
 * ...", "files[2].name: must not be empty"). They cap no sizes: the
 * sender bounded those.
 *
 * The format (keys in any order; "?" marks keys left out for NULL, as is
 * any NULL string):
 *   spec:   {"language": s, "image": s, "compile"?: [s], "run": [s],
 *            "env"?: [s], "files": [file], "stdin"?: b64, "args"?: [s],
 *            "limits": limits, "compile_limits": limits}
 *   file:   {"name": s, "data": b64, "exec": bool}
 *   limits: {"timeout_ms", "compile_timeout_ms", "memory_mb",
 *            "output_bytes", "pids", "nofile", "tmpfs_mb", "cpu_shares",
 *            "artifact_bytes": integers >= 0, "custom_memory": bool}
 *   result: {"status": run_status_name, "compile": step, "run": step,
 *            "artifacts": [file], "message": s, "duration_ms": int,
 *            "artifact_total": int >= 0, "engine_down": bool,
 *            "image_missing": bool}
 *   step:   {"out": b64, "err": b64, "present", "timed_out",
 *            "output_limit", "oom_killed", "artifact_limit": bool,
 *            "exit_code", "signal", "wall_ms", "cpu_ms", "memory_kb": int}
 * Every key is required except the "?" ones and the file arrays (absent:
 * none). Decoded, run (and compile, when given) must not be empty and
 * file names not empty.
 *
 * Integers are written exactly but read through a double (cJSON), so a
 * value beyond 2^53 comes back as the nearest double; nothing we carry
 * comes near. No string may hold a NUL (raw or \u0000): C strings could
 * not carry it, and cJSON would cut it short without a word.
 */
#ifndef BG_WIRE_H
#define BG_WIRE_H

#include <stddef.h>

#include "../common/err.h"
#include "../sandbox/run.h"

/* Malloc'd JSON text (NUL-terminated) and its length, or NULL when out of
 * memory. s must be complete: language, image and run set. */
char *wire_spec_encode(const struct run_spec *s, size_t *len);
/* Fill out (zeroed first; caller frees with run_spec_free even on
 * failure). BG_EINVAL with a precise message in err on anything
 * malformed, BG_ENOMEM. */
int wire_spec_decode(const char *text, size_t len, struct run_spec *out, char err[BG_ERRLEN]);

/* As wire_spec_encode; the status goes by name. */
char *wire_result_encode(const struct run_result *r, size_t *len);
/* out is run_result_init'ed first; caller frees with run_result_free even
 * on failure. A message longer than out->message is cut at a character
 * boundary. */
int wire_result_decode(const char *text, size_t len, struct run_result *out,
                       char err[BG_ERRLEN]);

#endif
