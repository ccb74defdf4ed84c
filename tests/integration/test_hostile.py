"""Hostile programs on a real engine: every family of threats.md, with the
exact result each must get, in several languages where it matters.

One server for the module, started with a secret in its environment. After
every test the service must answer a tiny python program normally and no
container of this server may be left but the idle ready ones of its warm
pool (running, holding only the supervisor that waits for a job); once the
server has stopped, none at all. Runs use short limits through the
request's "limits" field, so the module takes a few minutes, not hours.

A language whose image is absent is skipped (and said so on stdout); python
is required.
"""
import ast
import fcntl
import json
import os
import re
import socket
import struct
import time
import unittest

from harness import PYTHON_IMAGE, Server, ServerTest, engine, our_containers

CANARY_NAME = "BG_SECRET_CANARY"
CANARY_VALUE = "xyz-canary-" + os.urandom(8).hex()

# Two seconds is plenty for a python print; runs that must time out use it.
SHORT = {"timeout_ms": 2000}


def host_ipv4_addresses():
    """Every IPv4 address of this host (the engine's bridge included)."""
    addrs = set()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                  struct.pack("256s", name.encode()[:15]))
                addrs.add(socket.inet_ntoa(raw[20:24]))
            except OSError:
                pass
    finally:
        s.close()
    addrs.discard("127.0.0.1")
    return sorted(addrs)


POOL_CAP = 8


def leftover_containers(instance, pool_cap=POOL_CAP):
    """Containers of `instance` that are not ready ones of its warm pool.

    A ready container is running and holds one process, the supervisor
    waiting for its job; anything else (a used container not removed, one
    still running a program) is left over. More ready ones than the pool's
    cap count as left over too."""
    left = []
    ids = our_containers(instance)
    for cid in ids:
        status, info = engine("GET", "/containers/%s/json" % cid)
        if status == 404:
            continue  # removed meanwhile
        state = info.get("State", {}) if isinstance(info, dict) else {}
        if state.get("Status") == "created":
            continue  # the pool's refill, a moment before start
        if state.get("Status") == "running":
            status, top = engine("GET", "/containers/%s/top" % cid)
            procs = (top.get("Processes") if isinstance(top, dict) else None) or []
            if status == 404 or (len(procs) == 1 and "bg-supervisor" in " ".join(procs[0])):
                continue
        left.append((cid[:12], state.get("Status"), info.get("Config", {}).get("Image")
                     if isinstance(info, dict) else None))
    if len(ids) > pool_cap:
        left.append(("more containers than the pool's cap", len(ids), pool_cap))
    return left


def wait_no_leftovers(test, instance, timeout=30):
    deadline = time.time() + timeout
    left = leftover_containers(instance)
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = leftover_containers(instance)
    test.assertEqual(left, [], "containers left behind (besides the warm pool's ready ones)")


def hex_bytes_c(data):
    return "".join("\\x%02x" % b for b in data)


# What a program may write to pass for the engine or for our supervisor:
# the engine's 8-byte stream headers, then whole supervisor frames
# (src/proto/proto.h): STEP, OUT, a RESULT claiming success, DONE, FAIL,
# and a header announcing a 1 MiB payload that never comes. Every byte is
# below 0x80, so the text that comes back must be exactly these bytes.
_RESULT = (b"step=run\nexit_code=0\nsignal=0\ntimed_out=0\noutput_limit=0\n"
           b"oom_killed=0\nwall_ms=1\ncpu_ms=1\nmemory_kb=1\n")
FORGERY = (b"\x01\x00\x00\x00\x00\x00\x00\x05hello"
           b"\x02\x00\x00\x00\x00\x00\x00\x03err"
           b"S\x00\x00\x00\x03run"
           b"O\x00\x00\x00\x06FORGED"
           b"X" + len(_RESULT).to_bytes(4, "big") + _RESULT +
           b"D\x00\x00\x00\x00"
           b"P\x00\x00\x00\x04fail"
           b"O\x00\x10\x00\x00")
assert max(FORGERY) < 0x80


class HostileTest(ServerTest):
    """Every family of threats.md that a program (not a request) can try."""
    flags = ("--workers", "2", "--timeout", "6", "--pool", str(POOL_CAP))
    images = (PYTHON_IMAGE,)

    @classmethod
    def setUpClass(cls):
        from harness import require_images
        require_images(*cls.images)
        cls.server = Server(*cls.flags, env={CANARY_NAME: CANARY_VALUE})
        cls.instance = cls.server.instance
        status, _, data = cls.server.request("GET", "/languages")
        assert status == 200, data
        cls.available = {l["name"]: l["available"] for l in json.loads(data)}

    # ServerTest.tearDownClass checks that nothing of the server remains.

    # ---- helpers ----

    def langs(self, *names):
        """The languages of `names` whose image the engine has."""
        out = []
        for n in names:
            if self.available.get(n):
                out.append(n)
            else:
                print("\n  [%s] skipped for %s: its image is absent" % (self.id(), n))
        return out

    def run_all(self, lang, code, stdin=None, count=None, **limits):
        payload = {"lang": lang, "script": code}
        if stdin is not None:
            payload["stdin"] = stdin
        if count:
            payload["count"] = count
        if limits:
            payload["limits"] = limits
        status, _, body = self.server.compile_json(payload, timeout=120)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body, list)
        self.assertEqual(len(body), count or 1)
        return body

    def run1(self, lang, code, stdin=None, **limits):
        if not limits:
            limits = dict(SHORT)
        return self.run_all(lang, code, stdin=stdin, **limits)[0]

    def check(self, r, **want):
        """The named fields of result r are exactly these."""
        got = {k: r.get(k) for k in want}
        self.assertEqual(got, want, "full result: %s" % json.dumps(r)[:3000])

    def killed_at(self, r, status, **more):
        """A run the service ended with SIGKILL because of a limit."""
        flags = {"timeout": ("timed_out", True), "memory_limit": ("oom_killed", True),
                 "output_limit": ("output_truncated", True)}
        key, value = flags[status]
        self.check(r, status=status, exit_code=None, signal="SIGKILL", **{key: value}, **more)

    def tearDown(self):
        # After every hostile program: the next request is served normally...
        r = self.run1("python", "print('still here')")
        self.check(r, status="ok", stdout="still here\n", stderr="", exit_code=0)
        # ... and no container of this server is left (but the ready ones
        # of its warm pool, which wait for a job and have run nothing).
        wait_no_leftovers(self, self.instance)

    # ---- fork and thread bombs: the pids limit ends them ----

    def test_fork_bomb_c_endless(self):
        for lang in self.langs("c"):
            r = self.run1(lang, "#define _GNU_SOURCE\n#include <unistd.h>\n"
                                "int main(void) { while (1) fork(); }\n")
            self.killed_at(r, "timeout", stdout="", oom_killed=False)

    def test_fork_bomb_c_meets_the_pids_limit(self):
        code = r"""#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) {
            printf("fork failed: %s, below 64: %d\n", errno == EAGAIN ? "EAGAIN" : "other", n < 64);
            return 3;
        }
        n++;
    }
}
"""
        for lang in self.langs("c"):
            r = self.run1(lang, code)
            self.check(r, status="runtime_error", exit_code=3, signal=None, timed_out=False,
                       stdout="fork failed: EAGAIN, below 64: 1\n")

    def test_fork_bomb_shell(self):
        # The classic; the main script then spins on builtins only (`:` is
        # the bomb now) for two seconds and must still finish normally.
        code = (":(){ :|:& };:\n"
                "end=$((SECONDS + 2)); while [ $SECONDS -lt $end ]; do true; done\n"
                "echo survived\n")
        for lang in self.langs("bash"):
            r = self.run1(lang, code, timeout_ms=5000)
            self.check(r, status="ok", exit_code=0, signal=None, timed_out=False,
                       stdout="survived\n")

    def test_fork_bomb_python(self):
        for lang in self.langs("python"):
            r = self.run1(lang, "import os\nwhile True:\n    os.fork()\n", timeout_ms=5000)
            self.check(r, status="runtime_error", exit_code=1, signal=None, timed_out=False)
            self.assertIn("BlockingIOError", r["stderr"])

    def test_thread_bomb_python(self):
        code = ("import threading, time\nts = []\ntry:\n"
                "    for i in range(10000):\n"
                "        t = threading.Thread(target=time.sleep, args=(100,), daemon=True)\n"
                "        t.start()\n        ts.append(t)\n"
                "except RuntimeError as e:\n    print('stopped:', e, len(ts) < 64)\n")
        r = self.run1("python", code)
        self.check(r, status="ok", exit_code=0, timed_out=False,
                   stdout="stopped: can't start new thread True\n")

    def test_thread_bomb_c(self):
        code = r"""#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *sleeper(void *a) { (void)a; pause(); return NULL; }
int main(void) {
    int n = 0;
    for (; n < 10000; n++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, sleeper, NULL);
        if (e) { printf("stopped below 64: %d\n", n < 64); return 0; }
    }
    puts("10000 threads");
    return 0;
}
"""
        for lang in self.langs("c"):
            r = self.run1(lang, code)
            self.check(r, status="ok", exit_code=0, stdout="stopped below 64: 1\n")

    # ---- memory bombs: the memory limit, reported as memory_limit ----

    def test_memory_one_large_allocation(self):
        programs = {
            "python": "x = bytearray(512 * 1024 * 1024)\nprint(len(x))\n",
            "c": "#include <stdio.h>\n#include <stdlib.h>\nint main(void) {\n"
                 "  size_t n = (size_t)1 << 30; volatile char *p = malloc(n);\n"
                 "  if (!p) { puts(\"null\"); return 1; }\n"
                 "  for (size_t i = 0; i < n; i += 4096) p[i] = 1;\n"
                 "  puts(\"touched\"); return 0;\n}\n",
            "bash": "x=$(head -c 300000000 /dev/zero | tr '\\0' a)\necho ${#x}\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang], timeout_ms=5000, memory_mb=64)
                self.killed_at(r, "memory_limit", stdout="", timed_out=False)

    def test_memory_slow_growth(self):
        programs = {
            "python": "import time\nchunks = []\nwhile True:\n"
                      "    chunks.append(b'x' * (1 << 20))\n    time.sleep(0.002)\n",
            "c": "#define _GNU_SOURCE\n#include <stdlib.h>\n#include <string.h>\n"
                 "#include <unistd.h>\nint main(void) {\n"
                 "  for (;;) { char *p = malloc(1 << 20); if (p) memset(p, 1, 1 << 20);"
                 " usleep(2000); }\n}\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang], timeout_ms=5000, memory_mb=64)
                self.killed_at(r, "memory_limit", timed_out=False)

    def test_memory_filling_tmpfs(self):
        # tmpfs pages count against the memory limit: 64 MB of tmpfs under
        # a 32 MB limit ends as memory_limit, wherever the files go (/dev/shm
        # is the engine's own 64 MB tmpfs, writable too).
        code = ("import sys\nd = sys.stdin.read()\nn = 0\nwhile True:\n"
                "    with open('%s/f%d' % (d, n), 'wb') as f:\n"
                "        f.write(b'\\1' * (1 << 20))\n    n += 1\n")
        for where in ("/tmp", "/work", "/dev/shm"):
            with self.subTest(where=where):
                r = self.run1("python", code, stdin=where, timeout_ms=5000, memory_mb=32)
                self.killed_at(r, "memory_limit", timed_out=False)

    # ---- output floods: the byte cap across both streams ----

    CAP = 2048

    def flood(self, lang, code):
        return self.run1(lang, code, timeout_ms=5000, output_kb=self.CAP // 1024)

    def test_flood_stdout(self):
        programs = {
            "python": "while True:\n    print('y')\n",
            "c": "#include <stdio.h>\nint main(void) { for (;;) fputs(\"y\\n\", stdout); }\n",
            "bash": "yes\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.flood(lang, programs[lang])
                self.killed_at(r, "output_limit", timed_out=False, stdout="y\n" * (self.CAP // 2),
                               stderr="")

    def test_flood_stderr(self):
        programs = {
            "python": "import sys\nwhile True:\n    sys.stderr.write('e\\n')\n",
            "c": "#include <stdio.h>\nint main(void) { for (;;) fputs(\"e\\n\", stderr); }\n",
            "bash": "yes e >&2\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.flood(lang, programs[lang])
                self.killed_at(r, "output_limit", timed_out=False, stdout="",
                               stderr="e\n" * (self.CAP // 2))

    def test_flood_both_streams_share_the_cap(self):
        # Alternating, with pauses so each chunk is read before the next:
        # 100 bytes on each stream in turn, the cap falls in the 11th pair.
        code = ("import os, time\nwhile True:\n    os.write(2, b'e' * 100)\n"
                "    time.sleep(0.02)\n    os.write(1, b'o' * 100)\n    time.sleep(0.02)\n")
        r = self.flood("python", code)
        self.killed_at(r, "output_limit", timed_out=False)
        self.assertEqual(len(r["stdout"]) + len(r["stderr"]), self.CAP)
        self.assertEqual(set(r["stdout"]), {"o"})
        self.assertEqual(set(r["stderr"]), {"e"})
        self.assertGreaterEqual(min(len(r["stdout"]), len(r["stderr"])), 900, r)

    def test_flood_one_giant_line(self):
        programs = {
            "python": "import sys\nsys.stdout.write('a' * 10000000)\n",
            "c": "#include <stdio.h>\nint main(void) { for (;;) putchar('a'); }\n",
            "bash": "tr '\\0' a < /dev/zero\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.flood(lang, programs[lang])
                self.killed_at(r, "output_limit", timed_out=False, stdout="a" * self.CAP,
                               stderr="")

    def test_flood_invalid_utf8(self):
        # "ok" then an invalid byte: cut at 2048 raw bytes, each 0xff is
        # one U+FFFD and the JSON stays valid.
        programs = {
            "python": "import os\nwhile True:\n    os.write(1, b'ok\\xff' * 1000)\n",
            "c": "#include <stdio.h>\nint main(void) { for (;;) fputs(\"ok\\xff\", stdout); }\n",
            "bash": "while true; do printf 'ok\\377'; done\n",
        }
        n, rest = divmod(self.CAP, 3)
        want = "ok\ufffd" * n + "ok\ufffd"[:rest]
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.flood(lang, programs[lang])
                self.killed_at(r, "output_limit", timed_out=False, stdout=want, stderr="")

    def test_output_exactly_at_the_cap(self):
        # The cap itself is allowed; one byte more is output_limit.
        r = self.flood("python", "import os\nos.write(1, b'x' * %d)\n" % self.CAP)
        self.check(r, status="ok", exit_code=0, output_truncated=False, stdout="x" * self.CAP)
        r = self.flood("python", "import os\nos.write(1, b'x' * %d)\n" % (self.CAP + 1))
        self.check(r, status="output_limit", output_truncated=True, timed_out=False,
                   stdout="x" * self.CAP)

    def test_nul_bytes_in_output_come_back(self):
        # NUL is valid UTF-8; JSON carries it as \u0000. The output must
        # not be cut at the first NUL (that would hide everything after).
        programs = {
            "python": "import os\nos.write(1, b'a\\x00b\\n')\nos.write(2, b'c\\x00d\\n')\n",
            "c": "#include <unistd.h>\nint main(void) { write(1, \"a\\0b\\n\", 4);"
                 " write(2, \"c\\0d\\n\", 4); return 0; }\n",
            "bash": "printf 'a\\0b\\n'\nprintf 'c\\0d\\n' >&2\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, stdout="a\x00b\n", stderr="c\x00d\n")

    # ---- endless loops, sleeps, blocked reads: the wall clock ----

    def test_endless_loop(self):
        programs = {
            "python": "while True:\n    pass\n",
            "c": "int main(void) { volatile int x = 0; for (;;) x++; }\n",
            "bash": "while :; do :; done\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.killed_at(r, "timeout", oom_killed=False, output_truncated=False)

    def test_sleep(self):
        programs = {
            "python": "import time\ntime.sleep(1000000)\n",
            "c": "#include <unistd.h>\nint main(void) { sleep(1000000); return 0; }\n",
            "bash": "sleep 1000000\n",
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.killed_at(r, "timeout", oom_killed=False)
                self.assertLess(r["cpu_time_ms"], 1500, r)

    def test_read_without_stdin_sees_eof(self):
        programs = {
            "python": "import sys\nprint(repr(sys.stdin.read()))\n",
            "c": "#include <stdio.h>\n#include <unistd.h>\nint main(void) { char b[16];"
                 " printf(\"read %zd\\n\", read(0, b, sizeof b)); return 0; }\n",
            "bash": "read x; echo \"read $? [$x]\"\n",
        }
        want = {"python": "''\n", "c": "read 0\n", "bash": "read 1 []\n"}
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, timed_out=False, stdout=want[lang])

    def test_stopped_program(self):
        # A program that stops itself (SIGSTOP) never exits: the clock ends it.
        r = self.run1("python", "import os, signal\nprint('stopping', flush=True)\n"
                                "os.kill(os.getpid(), signal.SIGSTOP)\n")
        self.killed_at(r, "timeout", stdout="stopping\n")

    def test_read_that_never_ends(self):
        # A read on a pipe nobody will ever write: only the clock ends it.
        r = self.run1("python", "import os\nr, w = os.pipe()\nos.read(r, 1)\n")
        self.killed_at(r, "timeout")

    def test_stdin_the_program_never_reads(self):
        # 900 KB of stdin to a program that ignores it and exits: the
        # supervisor must not block on the full pipe.
        r = self.run1("python", "print('done')", stdin="z" * 900000)
        self.check(r, status="ok", exit_code=0, stdout="done\n", timed_out=False)
        r = self.run1("python", "import sys\nprint(len(sys.stdin.read()))", stdin="z" * 900000)
        self.check(r, status="ok", stdout="900000\n")

    # ---- survivors: the reply does not wait for them ----

    def test_survivors_do_not_hold_the_reply(self):
        # Each program leaves processes behind that hold stdout and stderr
        # and would live far past the 2 s limit. The status must be the
        # main program's, not timeout, and the output its own.
        programs = {
            "python": (
                "import os, subprocess, time\n"
                "subprocess.Popen(['setsid', 'sleep', '300'])\n"
                "if os.fork() == 0:\n"
                "    if os.fork() == 0:\n"
                "        os.setsid()\n        time.sleep(300)\n"
                "    os._exit(0)\n"
                "subprocess.Popen(['sleep', '300'])\n"
                "print('main done', flush=True)\n"),
            "c": r"""#define _GNU_SOURCE
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    if (fork() == 0) { setsid(); sleep(300); _exit(0); }          /* new session */
    pid_t p = fork();
    if (p == 0) { if (fork() == 0) { sleep(300); _exit(0); } _exit(0); }  /* double fork */
    waitpid(p, NULL, 0);
    if (fork() == 0) { sleep(300); _exit(0); }                    /* holds stdout */
    printf("main done\n");
    return 0;
}
""",
            "bash": ("setsid sleep 300 &\n(sleep 300 &)\nnohup sleep 300 >/dev/null 2>&1 &\n"
                     "sleep 300 &\necho main done\n"),
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, signal=None, timed_out=False,
                           stdout="main done\n", stderr="")

    def test_survivor_flooding_after_main_exits(self):
        # A child waits for main to exit, then writes without end.
        code = ("import os, time\nif os.fork() == 0:\n    ppid = os.getppid()\n"
                "    while os.getppid() == ppid:\n        time.sleep(0.01)\n"
                "    while True:\n        os.write(1, b'late ' * 100)\n"
                "print('main done', flush=True)\n")
        r = self.run1("python", code, timeout_ms=3000, output_kb=4)
        self.assertNotEqual(r["status"], "timeout", r)
        self.assertFalse(r["timed_out"])
        self.assertEqual(r["exit_code"], 0)
        self.assertTrue(r["stdout"].startswith("main done\n"), r["stdout"][:100])

    # ---- disk: size- and inode-capped tmpfs, read-only root ----

    def test_disk_fill_many_files(self):
        code = ("import sys\nd = sys.stdin.read()\nn = 0\ntry:\n    while True:\n"
                "        with open('%s/f%d' % (d, n), 'wb') as f:\n"
                "            f.write(b'\\1' * (1 << 20))\n        n += 1\n"
                "except OSError as e:\n    print('stopped', e.errno, 55 <= n <= 64)\n")
        for where in ("/tmp", "/work"):
            with self.subTest(where=where):
                r = self.run1("python", code, stdin=where, timeout_ms=5000)
                self.check(r, status="ok", exit_code=0, stdout="stopped 28 True\n")

    def test_disk_fill_one_file(self):
        programs = {
            "python": ("f = open('/work/big', 'wb')\ntry:\n    while True:\n"
                       "        f.write(b'\\1' * (1 << 20))\n        f.flush()\n"
                       "except OSError as e:\n    print('stopped', e.errno in (27, 28))\n"),
            "c": r"""#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
int main(void) {
    static char buf[1 << 20];
    signal(SIGXFSZ, SIG_IGN);
    memset(buf, 1, sizeof buf);
    int fd = open("/tmp/big", O_WRONLY | O_CREAT, 0644);
    for (;;) if (write(fd, buf, sizeof buf) < 0) break;
    printf("stopped %s\n", errno == ENOSPC || errno == EFBIG ? "True" : strerror(errno));
    return 0;
}
"""}
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang], timeout_ms=5000)
                self.check(r, status="ok", exit_code=0, stdout="stopped True\n")

    def test_inode_fill(self):
        # threats.md: "size- and inode-capped tmpfs". Empty files cost no
        # size; only an inode cap stops them with ENOSPC, quickly.
        code = ("import os, sys\nd = sys.stdin.read()\nn = 0\ntry:\n    while True:\n"
                "        os.close(os.open('%s/%d' % (d, n), os.O_CREAT | os.O_WRONLY, 0o644))\n"
                "        n += 1\nexcept OSError as e:\n    print('stopped', e.errno)\n")
        for where in ("/tmp", "/work"):
            with self.subTest(where=where):
                r = self.run1("python", code, stdin=where, timeout_ms=5000, memory_mb=64)
                self.check(r, status="ok", exit_code=0, stdout="stopped 28\n")

    # ---- escape: read-only root, no privileges ----

    def test_root_filesystem_is_read_only(self):
        # New files anywhere but the tmpfs mounts: EROFS (even in /var/tmp,
        # mode 1777). Existing root-owned files: refused before that (EACCES).
        new = ["/x", "/etc/x", "/usr/bin/x", "/var/tmp/x", "/run/x", "/bg/x"]
        existing = ["/etc/passwd", "/bin/sh", "/bg/bg-supervisor"]
        programs = {
            "python": ("import errno, sys\nfor p in sys.stdin.read().split():\n    try:\n"
                       "        open(p, 'a')\n        print(p, 'WRITABLE')\n"
                       "    except OSError as e:\n        print(p, errno.errorcode[e.errno])\n"),
            "c": r"""#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    char p[256];
    while (scanf("%255s", p) == 1) {
        int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
        printf("%s %s\n", p, fd >= 0 ? "WRITABLE" : strerrorname_np(errno));
    }
    return 0;
}
""",
            "bash": ("for p in $(cat); do\n"
                     "  msg=$( { : >> \"$p\"; } 2>&1 ) && msg=WRITABLE\n"
                     "  case $msg in *Read-only*) msg=EROFS;; *denied*) msg=EACCES;; esac\n"
                     "  echo \"$p $msg\"\n"
                     "done\n"),
        }
        want = "".join("%s EROFS\n" % p for p in new) + "".join("%s EACCES\n" % p for p in existing)
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang], stdin=" ".join(new + existing))
                self.check(r, status="ok", exit_code=0, stdout=want)

    def test_identity_and_privileges_from_inside(self):
        keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb", "NoNewPrivs")
        want = ("Uid 65534 65534 65534 65534\nGid 65534 65534 65534 65534\nGroups\n"
                "CapInh 0000000000000000\nCapPrm 0000000000000000\nCapEff 0000000000000000\n"
                "CapAmb 0000000000000000\nNoNewPrivs 1\n")
        programs = {
            "python": ("keys = %r\nfor line in open('/proc/self/status'):\n"
                       "    k, _, v = line.partition(':')\n"
                       "    if k in keys:\n        print(' '.join([k] + v.split()))\n" % (keys,)),
            "c": r"""#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
int main(void) {
    const char *keys[] = {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "NoNewPrivs:"};
    char line[512];
    FILE *f = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, f)) {
        for (int i = 0; i < 8; i++) {
            size_t n = strlen(keys[i]);
            if (strncmp(line, keys[i], n) == 0) {
                char out[512], *tok, *save;
                snprintf(out, sizeof out, "%.*s", (int)n - 1, line);
                for (tok = strtok_r(line + n, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
                    strcat(out, " ");
                    strcat(out, tok);
                }
                puts(out);
            }
        }
    }
    return 0;
}
""",
            "bash": ("while IFS=: read -r k v; do\n  case $k in\n"
                     "    Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs) echo $k $v;;\n"
                     "  esac\ndone < /proc/self/status\n"),
        }
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, stdout=want)

    def test_privileged_operations_fail(self):
        code = r"""#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
static void show(const char *what, int rc) {
    printf("%s %s\n", what, rc == 0 ? "SUCCEEDED" : errno == EPERM ? "EPERM" : strerrorname_np(errno));
}
int main(void) {
    show("setuid", setuid(0));
    show("setgid", setgid(0));
    show("mknod", mknod("/work/null", S_IFCHR | 0666, makedev(1, 3)));
    show("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    show("chroot", chroot("/tmp"));
    show("unshare", unshare(CLONE_NEWUSER | CLONE_NEWNS));
    show("ptrace1", (int)ptrace(PTRACE_ATTACH, 1, NULL, NULL));
    return 0;
}
"""
        for lang in self.langs("c"):
            r = self.run1(lang, code)
            self.check(r, status="ok", exit_code=0,
                       stdout="setuid EPERM\nsetgid EPERM\nmknod EPERM\nmount EPERM\n"
                              "chroot EPERM\nunshare EPERM\nptrace1 EPERM\n")

    def test_setuid_binaries_do_not_raise_privileges(self):
        code = ("mkdir -p /tmp/m\nmount -t tmpfs x /tmp/m 2>/dev/null; echo \"mount $?\"\n"
                "umount /work 2>/dev/null; echo \"umount $?\"\nid -u\n")
        for lang in self.langs("bash"):
            r = self.run1(lang, code)
            self.check(r, status="ok", exit_code=0, stdout="mount 32\numount 32\n65534\n")

    # ---- secrets: nothing of the service's environment ----

    def test_service_environment_is_invisible(self):
        # The server runs with CANARY_NAME=CANARY_VALUE in its environment.
        # The program dumps everything it can read that could hold it.
        code = (
            "import glob, os\n"
            "print('ENV', sorted(os.environ))\n"
            "for p in sorted(glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline')"
            " + ['/proc/self/environ', '/proc/1/environ']):\n"
            "    try:\n        data = open(p, 'rb').read()\n"
            "        print(p, 'readable', data.decode('latin-1').replace('\\0', ' '))\n"
            "    except OSError as e:\n        print(p, 'error', e.errno)\n")
        r = self.run1("python", code)
        self.check(r, status="ok", exit_code=0)
        out = r["stdout"]
        self.assertIn("ENV ['HOME', 'LANG', 'PATH', 'TMPDIR']\n", out)
        self.assertIn("/proc/1/environ error 13\n", out)  # EACCES: the supervisor's
        self.assertIn("/proc/self/environ readable", out)
        self.assertNotIn(CANARY_VALUE, out)
        self.assertNotIn(CANARY_NAME, out)
        for lang in self.langs("bash"):
            r = self.run1(lang, "env\nset\ncat /proc/self/environ /proc/$$/environ "
                                "/proc/*/environ 2>/dev/null | tr '\\0' '\\n'\n")
            self.assertEqual(r["status"], "ok", r)
            self.assertNotIn(CANARY_VALUE, r["stdout"] + r["stderr"])
            self.assertNotIn(CANARY_NAME, r["stdout"] + r["stderr"])

    # ---- the engine socket ----

    def test_no_engine_socket(self):
        code = ("import os, socket\n"
                "for p in ['/var/run/docker.sock', '/run/docker.sock',"
                " '/run/containerd/containerd.sock', '/var/run/containerd/containerd.sock']:\n"
                "    s = socket.socket(socket.AF_UNIX)\n"
                "    try:\n        s.connect(p)\n        print(p, 'CONNECTED')\n"
                "    except OSError as e:\n        print(p, os.path.exists(p), e.errno)\n")
        r = self.run1("python", code)
        self.check(r, status="ok", stdout="/var/run/docker.sock False 2\n/run/docker.sock False 2\n"
                                          "/run/containerd/containerd.sock False 2\n"
                                          "/var/run/containerd/containerd.sock False 2\n")

    # ---- network: loopback only, nothing reachable ----

    def test_only_loopback_interface(self):
        programs = {
            "python": "import os\nprint(sorted(os.listdir('/sys/class/net')))\n",
            "c": "#define _GNU_SOURCE\n#include <net/if.h>\n#include <stdio.h>\n"
                 "int main(void) { struct if_nameindex *i = if_nameindex();\n"
                 "  for (; i && i->if_name; i++) puts(i->if_name); return 0; }\n",
            "bash": "ls /sys/class/net\n",
        }
        want = {"python": "['lo']\n", "c": "lo\n", "bash": "lo\n"}
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, stdout=want[lang])

    def test_cannot_reach_the_service_nor_the_host(self):
        targets = [("127.0.0.1", self.server.port)]
        targets += [(a, self.server.port) for a in host_ipv4_addresses()]
        targets += [(a, 2375) for a in host_ipv4_addresses()]  # an engine on TCP
        targets += [("8.8.8.8", 53), ("1.1.1.1", 443)]
        code = (
            "import socket, sys\n"
            "for line in sys.stdin.read().splitlines():\n"
            "    host, port = line.split()\n    port = int(port)\n"
            "    s = socket.socket()\n    s.settimeout(1.5)\n"
            "    try:\n        s.connect((host, port))\n        print(host, port, 'CONNECTED')\n"
            "    except OSError as e:\n        print(host, port, 'refused' if e.errno else e)\n"
            "try:\n    socket.getaddrinfo('example.com', 80)\n    print('dns WORKS')\n"
            "except OSError:\n    print('dns fails')\n")
        r = self.run1("python", code, stdin="".join("%s %d\n" % t for t in targets),
                      timeout_ms=5000)
        want = "".join("%s %d refused\n" % t for t in targets) + "dns fails\n"
        self.check(r, status="ok", exit_code=0, stdout=want)
        for lang in self.langs("c"):
            c = r"""#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    char host[64]; int port;
    while (scanf("%63s %d", host, &port) == 2) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, host, &a.sin_addr);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        printf("%s %d %s\n", host, port, connect(s, (void *)&a, sizeof a) == 0 ? "CONNECTED" : "refused");
        close(s);
    }
    return 0;
}
"""
            r = self.run1(lang, c, stdin="".join("%s %d\n" % t for t in targets[:-2]),
                          timeout_ms=5000)
            self.check(r, status="ok", exit_code=0,
                       stdout="".join("%s %d refused\n" % t for t in targets[:-2]))
        for lang in self.langs("bash"):
            r = self.run1(lang, "if echo x > /dev/tcp/127.0.0.1/%d; then echo CONNECTED;"
                                " else echo refused; fi 2>/dev/null\n" % self.server.port)
            self.check(r, status="ok", stdout="refused\n")

    # ---- kill(-1) and PID 1 ----

    def test_kill_minus_one(self):
        # kill(-1, SIGKILL) reaches every process the program may signal:
        # its own children, never the supervisor. The reply comes back.
        programs = {
            "python": ("import os, signal, subprocess\n"
                       "kids = [subprocess.Popen(['sleep', '300']) for _ in range(3)]\n"
                       "print('before', flush=True)\nos.kill(-1, signal.SIGKILL)\n"
                       "print('killed', [k.wait() for k in kids])\nprint('after')\n"),
            "c": r"""#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t kids[3];
    for (int i = 0; i < 3; i++) if ((kids[i] = fork()) == 0) { pause(); _exit(0); }
    printf("before\n"); fflush(stdout);
    int rc = kill(-1, SIGKILL);
    int n = 0;
    for (int i = 0; i < 3; i++) { int st; waitpid(kids[i], &st, 0); n += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL; }
    printf("kill %d, killed %d\nafter\n", rc, n);
    return 0;
}
""",
            "bash": "sleep 300 &\nsleep 300 &\necho before\nkill -9 -1\nwait\necho after\n",
        }
        want = {"python": "before\nkilled [-9, -9, -9]\nafter\n",
                "c": "before\nkill 0, killed 3\nafter\n", "bash": "before\nafter\n"}
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="ok", exit_code=0, signal=None, timed_out=False,
                           stdout=want[lang])

    def test_kill_own_group_reports_the_signal(self):
        r = self.run1("python", "import os, signal\nprint('x', flush=True)\n"
                                "os.kill(0, signal.SIGKILL)\n")
        self.check(r, status="runtime_error", exit_code=None, signal="SIGKILL", timed_out=False,
                   oom_killed=False, output_truncated=False, stdout="x\n")

    def test_pid1_is_out_of_reach(self):
        code = (
            "import errno, os, signal\n"
            "def t(what, f):\n    try:\n        f()\n        print(what, 'ALLOWED')\n"
            "    except OSError as e:\n        print(what, errno.errorcode[e.errno])\n"
            "t('environ', lambda: open('/proc/1/environ', 'rb').read())\n"
            "t('fd', lambda: os.listdir('/proc/1/fd'))\n"
            "t('fd1', lambda: os.open('/proc/1/fd/1', os.O_WRONLY))\n"
            "t('fd0', lambda: os.open('/proc/1/fd/0', os.O_RDONLY))\n"
            "t('mem', lambda: open('/proc/1/mem', 'rb').read(1))\n"
            "t('root', lambda: os.listdir('/proc/1/root'))\n"
            "t('kill9', lambda: os.kill(1, signal.SIGKILL))\n"
            "t('kill15', lambda: os.kill(1, signal.SIGTERM))\n"
            "t('kill0', lambda: os.kill(1, 0))\n")
        r = self.run1("python", code)
        self.check(r, status="ok", exit_code=0,
                   stdout="environ EACCES\nfd EACCES\nfd1 EACCES\nfd0 EACCES\nmem EACCES\n"
                          "root EACCES\nkill9 EPERM\nkill15 EPERM\nkill0 EPERM\n")
        for lang in self.langs("c"):
            r = self.run1(lang, "#define _GNU_SOURCE\n#include <errno.h>\n#include <signal.h>\n"
                                "#include <stdio.h>\nint main(void) { int rc = kill(1, SIGKILL);"
                                " printf(\"%d %d\\n\", rc, errno == EPERM); return 0; }\n")
            self.check(r, status="ok", stdout="-1 1\n")

    # ---- isolation: a fresh container per run, nothing shared ----

    ISOLATION = (
        "import os, re\n"
        "cg = set(re.findall(r'[0-9a-f]{64}', open('/proc/self/cgroup').read()))\n"
        "mi = set(re.findall(r'containers/([0-9a-f]{64})/', open('/proc/self/mountinfo').read()))\n"
        "seen = {'work': sorted(os.listdir('/work')), 'tmp': sorted(os.listdir('/tmp'))}\n"
        "mark = 'left-' + os.urandom(8).hex()\n"
        "for d in ('/work', '/tmp'):\n"
        "    open(os.path.join(d, mark), 'w').write('x')\n"
        "print(repr({'cgroup': sorted(cg), 'mountinfo': sorted(mi), 'mark': mark, **seen}))\n")

    def test_runs_share_nothing(self):
        first = [ast.literal_eval(r["stdout"])
                 for r in self.run_all("python", self.ISOLATION, count=3, **SHORT)]
        second = [ast.literal_eval(r["stdout"])
                  for r in self.run_all("python", self.ISOLATION, **SHORT)]
        runs = first + second
        ids = []
        for run in runs:
            self.assertEqual(len(run["cgroup"]), 1, run)
            self.assertEqual(run["mountinfo"], run["cgroup"], run)
            ids.append(run["cgroup"][0])
            # Nothing another run wrote is visible: only our own main file.
            self.assertEqual(run["work"], ["main.py"], run)
            self.assertEqual(run["tmp"], [], run)
        self.assertEqual(len(set(ids)), 4, "two runs shared a container: %r" % ids)
        # Every one of those containers is gone from the engine.
        deadline = time.time() + 30
        alive = ids
        while alive and time.time() < deadline:
            alive = [i for i in alive if engine("GET", "/containers/%s/json" % i)[0] != 404]
            time.sleep(0.1)
        self.assertEqual(alive, [], "run containers still exist")

    def test_compiled_runs_share_nothing(self):
        # count=3 of one compile: each run gets its own copy of the compiled
        # workspace. Each run counts what earlier runs left and replaces
        # the program itself; the next run must see none of it.
        code = r"""#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static long bump(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) { write(fd, "x", 1); close(fd); }
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}
int main(void) {
    long w = bump("/work/counter"), t = bump("/tmp/counter"), s = bump("/dev/shm/counter");
    unlink("/work/main");
    int fd = open("/work/main", O_WRONLY | O_CREAT | O_EXCL, 0755);
    if (fd >= 0) { write(fd, "#!/bin/sh\necho REPLACED\n", 25); close(fd); }
    printf("counters %ld %ld %ld\n", w, t, s);
    return 0;
}
"""
        for lang in self.langs("c"):
            for r in self.run_all(lang, code, count=3, **SHORT):
                self.check(r, status="ok", exit_code=0, stdout="counters 1 1 1\n")

    # ---- forged frames: the program's bytes are only ever its output ----

    def forgers(self):
        h = FORGERY.hex()
        python = (
            "import errno, os, sys\n"
            "F = bytes.fromhex('%s')\n"
            "os.write(1, F)\nos.write(2, F)\n"
            "for fd in sorted(os.listdir('/proc/self/fd'), key=int):\n"
            "    try:\n        w = os.open('/proc/self/fd/' + fd, os.O_WRONLY | os.O_NONBLOCK)\n"
            "    except OSError:\n        continue\n"
            "    try:\n        os.write(w, F)\n    except OSError:\n        pass\n"
            "    os.close(w)\n"
            "refused = []\n"
            "for f in (lambda: os.listdir('/proc/1/fd'),"
            " lambda: os.open('/proc/1/fd/1', os.O_WRONLY),"
            " lambda: os.open('/proc/1/fd/0', os.O_WRONLY)):\n"
            "    try:\n        fd = f()\n        if isinstance(fd, int):\n"
            "            os.write(fd, F)\n        refused.append('OPEN')\n"
            "    except OSError as e:\n        refused.append(errno.errorcode[e.errno])\n"
            "os.write(1, ('pid1 fds: %%s\\n' %% ' '.join(refused)).encode())\n"
            "sys.exit(3)\n" % h)
        c = r"""#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static const char F[] = "%s";
static void put(int fd) { write(fd, F, sizeof F - 1); }
static const char *try_open(const char *p) {
    int fd = open(p, O_WRONLY);
    if (fd >= 0) { put(fd); return "OPEN"; }
    return errno == EACCES ? "EACCES" : strerror(errno);
}
int main(void) {
    put(1); put(2);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fds[64], n = 0;
    while (d && (e = readdir(d)) && n < 64) {
        if (e->d_name[0] != '.') fds[n++] = atoi(e->d_name);
    }
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        char p[64]; snprintf(p, sizeof p, "/proc/self/fd/%%d", fds[i]);
        int fd = open(p, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) { put(fd); close(fd); }
    }
    DIR *one = opendir("/proc/1/fd");
    const char *a = one ? "OPEN" : errno == EACCES ? "EACCES" : strerror(errno);
    const char *b = try_open("/proc/1/fd/1");
    const char *c = try_open("/proc/1/fd/0");
    char line[128];
    int len = snprintf(line, sizeof line, "pid1 fds: %%s %%s %%s\n", a, b, c);
    write(1, line, len);
    return 3;
}
""" % hex_bytes_c(FORGERY)
        bash_f = "".join("\\x%02x" % b for b in FORGERY)
        bash = ("F='%s'\nprintf \"$F\"\nprintf \"$F\" >&2\nprintf \"$F\" > /proc/self/fd/1\n"
                "printf \"$F\" > /proc/self/fd/2\n"
                "r1=EACCES; ls /proc/1/fd >/dev/null 2>&1 && r1=OPEN\n"
                "r2=EACCES; (printf \"$F\" > /proc/1/fd/1) 2>/dev/null && r2=OPEN\n"
                "r3=EACCES; (printf \"$F\" > /proc/1/fd/0) 2>/dev/null && r3=OPEN\n"
                "echo \"pid1 fds: $r1 $r2 $r3\"\nexit 3\n" % bash_f)
        return {"python": python, "c": c, "bash": bash}

    def test_forged_frames_do_not_change_the_result(self):
        programs = self.forgers()
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                # The real exit is 3, whatever the bytes claimed.
                self.check(r, status="runtime_error", exit_code=3, signal=None, timed_out=False,
                           oom_killed=False, output_truncated=False)

    def test_forged_frames_come_back_verbatim(self):
        programs = self.forgers()
        text = FORGERY.decode("ascii")
        for lang in self.langs(*programs):
            with self.subTest(lang=lang):
                r = self.run1(lang, programs[lang])
                self.check(r, status="runtime_error", exit_code=3)
                # Written to fd 1 and 2 directly: back verbatim. Reopening
                # them through /proc/self/fd may be refused (the pipes belong
                # to the supervisor's uid); what does get through comes back
                # verbatim too, never as a frame.
                self.assertIn(r["stdout"], (text + "pid1 fds: EACCES EACCES EACCES\n",
                                            text * 2 + "pid1 fds: EACCES EACCES EACCES\n"))
                self.assertTrue(r["stderr"].startswith(text), r["stderr"][:200])
                rest = r["stderr"][len(text):]
                # bash says why its reopen failed, on stderr.
                self.assertTrue(rest in ("", text) or "Permission denied" in rest, rest)

    # ---- compile bombs: the compile runs in the sandbox with its limits ----

    def compile_bomb(self, lang, code):
        r = self.run1(lang, code)
        self.assertEqual(r["status"], "compile_error", json.dumps(r)[:3000])
        self.assertIn("compile", r)
        self.assertEqual((r["stdout"], r["stderr"]), ("", ""))
        return r["compile"]

    def test_compile_bomb_include_dev_zero(self):
        for lang in self.langs("c", "cpp"):
            with self.subTest(lang=lang):
                c = self.compile_bomb(lang, '#include "/dev/zero"\nint main(void) { return 0; }\n')
                self.assertTrue(c["oom_killed"] or c["timed_out"], c)
                self.assertEqual(c["status"], "compile_error")

    def test_compile_bomb_huge_initialised_array(self):
        # 1 TiB of initialised data: the object file would be 1 TiB; the
        # file size limit stops the assembler.
        for lang in self.langs("c"):
            c = self.compile_bomb(lang, "char a[1L << 40] = {1};\nint main(void) { return a[5]; }\n")
            self.assertNotEqual(c["exit_code"], 0, c)

    def test_huge_static_array_fails_at_run(self):
        # 1 TiB of bss compiles (nothing to write) and cannot be loaded.
        for lang in self.langs("c"):
            r = self.run1(lang, "static char a[1L << 40];\n"
                                "int main(void) { a[12345] = 1; return a[5]; }\n")
            self.assertEqual(r["compile"]["status"], "ok", r)
            self.assertEqual(r["status"], "runtime_error", r)
            self.assertIn(r["signal"], ("SIGSEGV", "SIGKILL"), r)

    def test_compile_output_over_the_artifact_cap(self):
        # 50 MB of initialised data compiles to a 50 MB program, over what a
        # compile may carry to its runs (32 MB). That is the program's doing:
        # a compile_error saying so, not the service's internal_error.
        for lang in self.langs("c"):
            r = self.run1(lang, "char a[50 << 20] = {1};\nint main(void) { return a[5]; }\n")
            self.assertEqual(r["status"], "compile_error", json.dumps(r)[:2000])
            self.assertEqual(r["compile"]["status"], "compile_error", r)
            self.assertEqual((r["stdout"], r["stderr"]), ("", ""))

    def test_compile_bomb_template_explosion(self):
        code = ("template<class A, class B> struct P {};\n"
                "template<int N, class T> struct B { typedef typename B<N - 1, P<T, T> >::type type; };\n"
                "template<class T> struct B<0, T> { typedef T type; };\n"
                "B<28, int>::type x = 1;\nint main() {}\n")
        for lang in self.langs("cpp"):
            c = self.compile_bomb(lang, code)
            self.assertTrue(c["timed_out"] or c["oom_killed"] or c["output_truncated"], c)

    def test_compile_bomb_macro_output_flood(self):
        lines = ['#define M0 _Pragma("message(\\"flood flood flood flood\\")")']
        lines += ["#define M%d %s" % (i, " ".join(["M%d" % (i - 1)] * 10)) for i in range(1, 7)]
        code = "\n".join(lines) + "\nM6\nint main(void) { return 0; }\n"
        for lang in self.langs("c"):
            c = self.compile_bomb(lang, code)
            self.check(c, output_truncated=True, timed_out=False, oom_killed=False,
                       signal="SIGKILL", exit_code=None, status="compile_error")
            size = len(c["stdout"].encode()) + len(c["stderr"].encode())
            self.assertEqual(size, 30 * 1024)
        for lang in self.langs("cpp"):
            # g++ holds its diagnostics: it meets the memory limit first, or
            # on a slow machine the compile time limit. Either limit stops it.
            c = self.compile_bomb(lang, code)
            self.assertTrue(c["output_truncated"] or c["oom_killed"] or c["timed_out"], c)
            # (When the kernel kills cc1plus, g++ itself exits 1: no signal.)
            self.assertEqual(c["status"], "compile_error", c)
            self.assertLessEqual(len(c["stdout"].encode()) + len(c["stderr"].encode()), 30 * 1024)

    # ---- last: the service is fine and nothing is left ----

    def test_zz_still_serving_and_nothing_left(self):
        status, _, data = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["busy_workers"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
