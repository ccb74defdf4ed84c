#!/usr/bin/env python3
"""Host test of bg-supervisor: run the static binary directly (as root), feed
it frames on stdin and decode the frames it writes on stdout.

Usage: supervisor_host_test.py [SUPERVISOR] [unittest args...]
       (or BG_SUPERVISOR=path supervisor_host_test.py)

On a host the supervisor is not PID 1: it measures with rusage and kills a
step by its session instead of kill(-1), which is what lets this test run
without a container. Timing assertions only check that a step ends well
before the sleep it interrupts would have.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

SUPERVISOR = os.environ.get("BG_SUPERVISOR", "")
UID = 65534
GID = 65534
HEADER = struct.Struct(">cI")


def frame(kind, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode()
    return HEADER.pack(kind, len(payload)) + payload


def argv_payload(argv):
    return b"".join(a.encode() + b"\0" for a in argv)


def limits(timeout_ms=5000, output_bytes=65536, compile_timeout_ms=5000):
    return frame(b"L", "timeout_ms=%d\ncompile_timeout_ms=%d\noutput_bytes=%d\n"
                 % (timeout_ms, compile_timeout_ms, output_bytes))


def job(run, stdin=None, files=(), compile_argv=None, env=None, **lim):
    """Encode a whole job; `run`/`compile_argv` are argv lists."""
    data = limits(**lim)
    for name, content in files:
        data += frame(b"F", name.encode() + b"\0" + content)
    for var in env if env is not None else ["PATH=/usr/bin:/bin"]:
        data += frame(b"V", var)
    if compile_argv:
        data += frame(b"C", argv_payload(compile_argv))
    data += frame(b"R", argv_payload(run))
    if stdin is not None:
        data += frame(b"I", stdin)
    return data + frame(b"Z")


def decode(data):
    frames, pos = [], 0
    while pos < len(data):
        kind, length = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        frames.append((kind, data[pos:pos + length]))
        pos += length
    assert pos == len(data), "truncated frame at the end of the output"
    return frames


def parse_result(payload):
    out = {}
    for line in payload.decode().splitlines():
        key, _, value = line.partition("=")
        out[key] = value if key == "step" else int(value)
    return out


class Reply:
    """The decoded reply: frames, and per step its stdout, stderr, result."""

    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.elapsed = elapsed
        self.frames = decode(proc.stdout)
        self.steps, self.fail = {}, None
        current = None
        for kind, payload in self.frames:
            if kind == b"S":
                current = payload.decode()
                self.steps[current] = {"out": b"", "err": b"", "result": None}
            elif kind == b"O":
                self.steps[current]["out"] += payload
            elif kind == b"E":
                self.steps[current]["err"] += payload
            elif kind == b"X":
                self.steps[current]["result"] = parse_result(payload)
            elif kind == b"P":
                self.fail = payload.decode()
        assert self.frames and self.frames[-1] == (b"D", b""), "reply must end with DONE"

    def step(self, name="run"):
        return self.steps[name]

    def result(self, name="run"):
        return self.steps[name]["result"]


@unittest.skipUnless(os.geteuid() == 0, "the supervisor drops to uid 65534: run as root")
class SupervisorHostTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bg-sup-")
        os.chmod(self.tmp, 0o755)  # uid 65534 must reach the workspace
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        os.chmod(self.work, 0o1777)  # like the container's tmpfs

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_job(self, data, timeout=60):
        start = time.monotonic()
        proc = subprocess.run([SUPERVISOR, self.work, str(UID), str(GID)], input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return Reply(proc, time.monotonic() - start)

    def sh(self, script, **kw):
        return self.run_job(job(["/bin/sh", "-c", script], **kw))

    def assert_ok(self, reply, name="run"):
        self.assertIsNone(reply.fail)
        self.assertEqual(reply.rc, 0)
        res = reply.result(name)
        self.assertEqual((res["exit_code"], res["signal"], res["timed_out"],
                          res["output_limit"]), (0, 0, 0, 0), res)
        return res

    # ------------------------------------------------------------- basics

    def test_hello(self):
        r = self.sh("echo hi")
        res = self.assert_ok(r)
        self.assertEqual(r.step()["out"], b"hi\n")
        self.assertEqual([k for k, _ in r.frames], [b"S", b"O", b"X", b"D"])
        self.assertEqual(set(res), {"step", "exit_code", "signal", "timed_out", "output_limit",
                                    "oom_killed", "wall_ms", "cpu_ms", "memory_kb"})
        self.assertEqual(res["step"], "run")

    def test_stdin_echo(self):
        r = self.run_job(job(["cat"], stdin=b"hello\nworld\n"))
        self.assert_ok(r)
        self.assertEqual(r.step()["out"], b"hello\nworld\n")

    def test_big_stdin_through_pipe(self):
        data = os.urandom(3 * 1024 * 1024)
        r = self.run_job(job(["cat"], stdin=data, output_bytes=8 * 1024 * 1024))
        self.assert_ok(r)
        self.assertEqual(r.step()["out"], data)

    def test_stdin_eof_when_none_given(self):
        r = self.run_job(job(["cat"], timeout_ms=20000))
        self.assert_ok(r)
        self.assertLess(r.elapsed, 10)

    def test_exit_code(self):
        res = self.sh("exit 3").result()
        self.assertEqual((res["exit_code"], res["signal"]), (3, 0))

    def test_signal(self):
        res = self.sh("kill -9 $$").result()
        self.assertEqual((res["exit_code"], res["signal"]), (-1, 9))

    def test_runs_as_uid_65534_with_only_env_frames(self):
        r = self.run_job(job(["/bin/sh", "-c", "id -u; id -g; env"],
                             env=["PATH=/usr/bin:/bin", "A=1"]))
        self.assert_ok(r)
        lines = r.step()["out"].decode().splitlines()
        self.assertEqual(lines[:2], [str(UID), str(GID)])
        # sh itself adds PWD (and maybe SHLVL, _); nothing of ours may leak.
        env = {l.split("=", 1)[0] for l in lines[2:]}
        self.assertTrue({"PATH", "A"} <= env, env)
        self.assertFalse(env - {"PATH", "A", "PWD", "SHLVL", "_", "OLDPWD"}, env)

    def test_only_std_descriptors_are_open(self):
        r = self.run_job(job(["/bin/ls", "/proc/self/fd"]))
        self.assert_ok(r)
        # ls itself holds one descriptor on the directory it lists.
        fds = set(r.step()["out"].decode().split())
        self.assertTrue(fds <= {"0", "1", "2", "3"}, fds)

    def test_cwd_is_workspace(self):
        r = self.sh("pwd")
        self.assertEqual(r.step()["out"].decode().strip(), os.path.realpath(self.work))

    # ------------------------------------------------------------- limits

    def test_timeout(self):
        r = self.sh("sleep 10", timeout_ms=300)
        res = r.result()
        self.assertEqual(res["timed_out"], 1)
        self.assertEqual((res["exit_code"], res["signal"]), (-1, 9))
        self.assertEqual(r.rc, 0)
        self.assertLess(r.elapsed, 8)

    def test_output_cap_across_streams(self):
        r = self.sh("head -c 80 /dev/zero; head -c 80 /dev/zero >&2", output_bytes=100)
        res = r.result()
        self.assertEqual(res["output_limit"], 1)
        out, err = r.step()["out"], r.step()["err"]
        self.assertEqual(len(out) + len(err), 100)
        self.assertGreater(len(out), 0)
        self.assertGreater(len(err), 0)

    def test_output_flood_is_cut_exactly(self):
        r = self.run_job(job(["yes"], output_bytes=100000, timeout_ms=20000))
        res = r.result()
        self.assertEqual((res["output_limit"], res["timed_out"]), (1, 0))
        self.assertEqual(len(r.step()["out"]), 100000)
        self.assertLess(r.elapsed, 10)

    def test_output_exactly_at_cap_is_not_a_limit(self):
        r = self.sh("printf 0123456789", output_bytes=10)
        self.assert_ok(r)
        self.assertEqual(r.step()["out"], b"0123456789")

    def test_leftover_child_does_not_delay_result(self):
        r = self.sh("sleep 30 & echo done", timeout_ms=40000)
        self.assert_ok(r)
        self.assertEqual(r.step()["out"], b"done\n")
        self.assertLess(r.elapsed, 15)

    def test_output_written_just_before_exit_is_kept(self):
        r = self.sh("head -c 50000 /dev/zero | tr '\\0' x; echo; echo tail >&2")
        self.assert_ok(r)
        self.assertEqual(len(r.step()["out"]), 50001)
        self.assertEqual(r.step()["err"], b"tail\n")

    # -------------------------------------------------------------- files

    def test_files_in_subfolders_owned_by_program_user(self):
        r = self.run_job(job(["/bin/cat", "a/b/c.txt", "top.txt"],
                             files=[("a/b/c.txt", b"deep\n"), ("top.txt", b"top\n"),
                                    ("a/x.txt", b"")]))
        self.assert_ok(r)
        self.assertEqual(r.step()["out"], b"deep\ntop\n")
        for rel in ("a", "a/b", "a/b/c.txt", "top.txt", "a/x.txt"):
            st = os.lstat(os.path.join(self.work, rel))
            self.assertEqual((st.st_uid, st.st_gid), (UID, GID), rel)
        self.assertEqual(os.stat(os.path.join(self.work, "a/b/c.txt")).st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(os.path.join(self.work, "a/b")).st_mode & 0o777, 0o755)

    def test_bad_file_names_fail(self):
        for name in ("../x", "/abs", "a//b", "a/../../b", "a/./b", "a/", "", "x" * 256):
            with self.subTest(name=name):
                r = self.run_job(job(["/bin/sh", "-c", "echo ran"],
                                     files=[(name, b"data")]))
                self.assertEqual(r.rc, 1)
                self.assertIsNotNone(r.fail)
                self.assertEqual(r.steps, {})
        self.assertEqual(os.listdir(self.work), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))

    def test_duplicate_file_fails(self):
        r = self.run_job(job(["true"], files=[("a", b"1"), ("a", b"2")]))
        self.assertEqual(r.rc, 1)
        self.assertIn("File exists", r.fail)

    # ------------------------------------------------------------- failures

    def test_missing_program_fails(self):
        r = self.run_job(job(["no-such-program-xyz"]))
        self.assertEqual(r.rc, 1)
        self.assertEqual(r.fail, "cannot run 'no-such-program-xyz': No such file or directory")
        self.assertEqual(r.steps, {})

    def test_path_comes_from_env_frames(self):
        r = self.run_job(job(["sh", "-c", "echo ok"], env=["PATH=/nonexistent"]))
        self.assertEqual(r.rc, 1)
        self.assertIn("cannot run 'sh'", r.fail)

    def test_input_without_end_fails(self):
        data = job(["true"])[:-5]
        r = self.run_job(data)
        self.assertEqual(r.rc, 1)
        self.assertIn("before END", r.fail)

    def test_unknown_limit_fails(self):
        data = frame(b"L", "timeout_ms=1000\noutput_bytes=10\nmemory_mb=5\n")
        data += frame(b"R", argv_payload(["true"])) + frame(b"Z")
        r = self.run_job(data)
        self.assertEqual(r.rc, 1)
        self.assertIn("memory_mb", r.fail)

    def test_unknown_frame_type_fails(self):
        r = self.run_job(limits() + frame(b"?", "x") + frame(b"Z"))
        self.assertEqual(r.rc, 1)
        self.assertIsNotNone(r.fail)

    def test_missing_run_fails(self):
        r = self.run_job(limits() + frame(b"Z"))
        self.assertEqual(r.rc, 1)
        self.assertIn("RUN", r.fail)

    # -------------------------------------------------------------- compile

    def test_compile_then_run(self):
        r = self.run_job(job(["/bin/sh", "prog.sh"], compile_argv=[
            "/bin/sh", "-c", "echo compiling; printf 'echo built' > prog.sh"]))
        self.assert_ok(r, "compile")
        self.assert_ok(r, "run")
        self.assertEqual(list(r.steps), ["compile", "run"])
        self.assertEqual(r.step("compile")["out"], b"compiling\n")
        self.assertEqual(r.step("run")["out"], b"built\n")
        self.assertEqual(r.result("compile")["step"], "compile")

    def test_compile_failure_skips_run(self):
        r = self.run_job(job(["/bin/sh", "-c", "echo ran"], compile_argv=[
            "/bin/sh", "-c", "echo bad >&2; exit 1"]))
        self.assertEqual(r.rc, 0)
        self.assertIsNone(r.fail)
        self.assertEqual(list(r.steps), ["compile"])
        self.assertEqual(r.step("compile")["err"], b"bad\n")
        self.assertEqual(r.result("compile")["exit_code"], 1)

    def test_compile_timeout_skips_run(self):
        r = self.run_job(job(["/bin/sh", "-c", "echo ran"], compile_timeout_ms=300,
                             compile_argv=["/bin/sh", "-c", "sleep 10"]))
        self.assertEqual(list(r.steps), ["compile"])
        self.assertEqual(r.result("compile")["timed_out"], 1)
        self.assertLess(r.elapsed, 8)

    def test_compile_gets_no_stdin(self):
        r = self.run_job(job(["/bin/cat"], stdin=b"for run\n",
                             compile_argv=["/bin/cat"]))
        self.assert_ok(r, "compile")
        self.assertEqual(r.step("compile")["out"], b"")
        self.assertEqual(r.step("run")["out"], b"for run\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        SUPERVISOR = sys.argv.pop(1)
    if not SUPERVISOR:
        sys.exit("usage: supervisor_host_test.py SUPERVISOR (or set BG_SUPERVISOR)")
    SUPERVISOR = os.path.abspath(SUPERVISOR)
    unittest.main()
