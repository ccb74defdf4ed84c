"""Languages without recompiling: profiles, multi-file programs, args and
stdin, compile once, measured CPU and memory, request limits, reload."""
import base64
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, LANGUAGES, ROOT, PYTHON_IMAGE, Server, ServerTest, wait_no_containers

C_IMAGE = "bg-compiler/c:gcc12"


def shipped_languages():
    out = subprocess.run([BINARY, "images", "--languages", LANGUAGES], capture_output=True,
                         text=True, check=True).stdout
    return [line.split("\t")[0] for line in out.strip().splitlines()]


class SelfTest(unittest.TestCase):
    def test_every_shipped_profile_passes_its_selftest(self):
        r = subprocess.run([BINARY, "selftest", "--languages", LANGUAGES, "--workers", "2"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
        print(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = [l.split() for l in r.stdout.splitlines()[:-1]]
        self.assertGreaterEqual(len(rows), 10)
        self.assertTrue(all(row[1] == "ok" for row in rows), r.stdout)
        names = {row[0] for row in rows}
        for must in ("python", "javascript", "c", "cpp", "go", "rust", "java", "bash"):
            self.assertIn(must, names)

    def test_selftest_fails_on_a_wrong_expectation(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write('language "python" { image = "%s", file = "main.py",\n'
                    '  run = {"python3", "main.py"},\n'
                    '  test = { code = "print(41)", stdout = "42\\n" } }\n' % PYTHON_IMAGE)
        self.addCleanup(os.unlink, f.name)
        r = subprocess.run([BINARY, "selftest", "--languages", f.name], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL", r.stdout)
        self.assertIn("41", r.stdout)


class ProgramsTest(ServerTest):
    flags = ("--workers", "2", "--timeout", "20", "--max-count", "4")
    images = (PYTHON_IMAGE, C_IMAGE)

    def ok(self, payload):
        status, headers, body = self.server.compile_json(payload)
        self.assertEqual(status, 200, body)
        for r in body:
            self.assertEqual(r["status"], "ok", r)
        return headers, body

    def test_python_package_in_a_subfolder(self):
        _, body = self.ok({"lang": "python", "files": [
            {"name": "main.py", "content": "from pkg.util import shout\nprint(shout('hi'))"},
            {"name": "pkg/__init__.py", "content": ""},
            {"name": "pkg/util.py", "content": "def shout(s):\n    return s.upper() + '!'"}]})
        self.assertEqual(body[0]["stdout"], "HI!\n")

    def test_main_names_another_file(self):
        _, body = self.ok({"lang": "python", "main": "app.py", "files": [
            {"name": "lib.py", "content": "X = 5"},
            {"name": "app.py", "content": "import lib\nprint(lib.X * 2)"}]})
        self.assertEqual(body[0]["stdout"], "10\n")

    def test_c_of_three_files(self):
        _, body = self.ok({"lang": "c", "files": [
            {"name": "main.c", "content": '#include <stdio.h>\n#include "util.h"\n'
                                         'int main(void){printf("%d\\n", twice(21));return 0;}'},
            {"name": "util.c", "content": '#include "util.h"\nint twice(int x){return 2*x;}'},
            {"name": "util.h", "content": "int twice(int x);"}]})
        self.assertEqual(body[0]["stdout"], "42\n")

    def test_base64_file(self):
        data = bytes(range(256))
        _, body = self.ok({"lang": "python", "files": [
            {"name": "main.py", "content": "d = open('blob.bin', 'rb').read()\n"
                                           "print(len(d), d == bytes(range(256)))"},
            {"name": "blob.bin", "content": base64.b64encode(data).decode(),
             "encoding": "base64"}]})
        self.assertEqual(body[0]["stdout"], "256 True\n")

    def test_args_and_stdin(self):
        programs = {
            "python": "import sys\nprint(' '.join(sys.argv[1:]), sys.stdin.read().strip())",
            "c": '#include <stdio.h>\nint main(int c, char **v){char b[64]={0};'
                 'if(!fgets(b,64,stdin))return 3;'
                 'for(int i=1;i<c;i++)printf("%s ",v[i]);printf("%s",b);return 0;}',
        }
        for lang, code in programs.items():
            with self.subTest(lang=lang):
                _, body = self.ok({"lang": lang, "script": code, "args": ["a b", "$HOME", ";ls"],
                                   "stdin": "in\n"})
                self.assertEqual(body[0]["stdout"], "a b $HOME ;ls in\n")

    def test_compile_once_for_count_runs(self):
        code = '#include <stdio.h>\nint main(void){puts("once");return 0;}'
        headers, body = self.ok({"lang": "c", "script": code, "count": 3})
        self.assertEqual([r["stdout"] for r in body], ["once\n"] * 3)
        # One compile: the same record in every result, and one compile in the log.
        self.assertEqual(len({json.dumps(r["compile"], sort_keys=True) for r in body}), 1)
        rid = headers["X-Request-Id"]
        log = self.server.log_text()
        self.assertEqual(len(re.findall(r"\[%s\] compile of c" % rid, log)), 1, log)
        self.assertEqual(len(re.findall(r"\[%s\] run \d of c" % rid, log)), 3)

    def test_compile_error_runs_nothing(self):
        status, headers, body = self.server.compile_json(
            {"lang": "c", "script": "int main(void) { return x; }", "count": 2})
        self.assertEqual(status, 200)
        for r in body:
            self.assertEqual(r["status"], "compile_error")
            self.assertIn("x", r["compile"]["stderr"])
            self.assertNotEqual(r["compile"]["exit_code"], 0)
        log = self.server.log_text()
        self.assertNotIn("[%s] run" % headers["X-Request-Id"], log)

    def test_compile_that_never_ends_is_stopped(self):
        status, _, body = self.server.compile_json(
            {"lang": "c", "script": '#include "/dev/zero"\nint main(void){return 0;}'})
        self.assertEqual(status, 200)
        r = body[0]
        self.assertEqual(r["status"], "compile_error")
        c = r["compile"]
        self.assertTrue(c["timed_out"] or c["oom_killed"] or c["output_truncated"] or
                        c["signal"], c)

    def test_cpu_time_of_a_busy_loop(self):
        _, body = self.ok({"lang": "python", "script":
                           "import time\nt = time.process_time()\n"
                           "while time.process_time() - t < 1.0:\n    pass\nprint('done')"})
        r = body[0]
        # The loop ran until it had used 1 s of CPU; it cannot have used
        # more CPU than the wall time of the run (one thread).
        self.assertGreaterEqual(r["cpu_time_ms"], 1000)
        self.assertLessEqual(r["cpu_time_ms"], r["duration_ms"] + 50)

    def test_cpu_time_of_a_sleep(self):
        _, body = self.ok({"lang": "python", "script": "import time\ntime.sleep(1.5)"})
        r = body[0]
        self.assertGreaterEqual(r["duration_ms"], 1500)
        self.assertLess(r["cpu_time_ms"], 1000, "a sleep is not CPU time")

    def test_memory_of_a_known_allocation(self):
        _, body = self.ok({"lang": "python", "script":
                           "x = bytearray(150 * 1024 * 1024)\n"
                           "for i in range(0, len(x), 4096):\n    x[i] = 1\nprint(len(x))"})
        r = body[0]
        self.assertGreaterEqual(r["memory_kb"], 150 * 1024)
        self.assertLess(r["memory_kb"], 256 * 1024)  # the profile's memory limit

    def test_lowered_timeout(self):
        status, _, body = self.server.compile_json(
            {"lang": "python", "script": "import time\ntime.sleep(30)",
             "limits": {"timeout_ms": 500}})
        self.assertEqual(status, 200)
        self.assertEqual(body[0]["status"], "timeout")

    def test_lowered_output(self):
        status, _, body = self.server.compile_json(
            {"lang": "python", "script": "print('x' * 5000)", "limits": {"output_kb": 1}})
        self.assertEqual(body[0]["status"], "output_limit")
        self.assertLessEqual(len(body[0]["stdout"]), 1024)

    def test_lowered_memory(self):
        status, _, body = self.server.compile_json(
            {"lang": "python", "script": "x = bytearray(100 * 1024 * 1024)",
             "limits": {"memory_mb": 48}})
        self.assertEqual(body[0]["status"], "memory_limit")

    def test_bad_file_names(self):
        for name in ["../x.py", "/etc/passwd", "a/../../b", "a//b", "", "a\u0001b", "./x",
                     "a/./b", "x" * 256, "dir/", "a\\b"]:
            with self.subTest(name=name):
                status, headers, body = self.server.compile_json({"lang": "python", "files": [
                    {"name": "main.py", "content": "print(1)"}, {"name": name, "content": "x"}]})
                self.assertError(status, headers, body, 400, "bad_file_name")
                self.assertIn("file name", body["error"])

    def test_bad_files(self):
        cases = [
            ({"lang": "python", "files": []}, "bad_type"),
            ({"lang": "python", "files": "main.py"}, "bad_type"),
            ({"lang": "python", "files": [{"name": "main.py"}]}, "bad_type"),
            ({"lang": "python", "files": [{"name": "main.py", "content": "x", "mode": 7}]},
             "unknown_field"),
            ({"lang": "python", "files": [{"name": "m.py", "content": "!!",
                                           "encoding": "base64"}]}, "bad_encoding"),
            ({"lang": "python", "files": [{"name": "m.py", "content": "x",
                                           "encoding": "latin1"}]}, "bad_encoding"),
            ({"lang": "python", "files": [{"name": "m.py", "content": "x"},
                                          {"name": "m.py", "content": "y"}]}, "bad_file_name"),
            ({"lang": "python", "files": [{"name": "m.py", "content": ""}]}, "empty_script"),
            ({"lang": "python", "main": "nope.py",
              "files": [{"name": "m.py", "content": "x"}]}, "bad_main"),
            ({"lang": "python", "script": "x", "files": [{"name": "m.py", "content": "x"}]},
             "bad_request"),
            ({"lang": "python", "script": "x", "args": "a"}, "bad_type"),
            ({"lang": "python", "script": "x", "args": [1]}, "bad_args"),
        ]
        for payload, code in cases:
            with self.subTest(payload=payload):
                status, headers, body = self.server.compile_json(payload)
                self.assertError(status, headers, body, 400, code)

    def test_bad_limits(self):
        for limits, word in [({"timeout_ms": 0}, "10000"), ({"timeout_ms": -5}, "10000"),
                             ({"timeout_ms": 10001}, "10000"), ({"memory_mb": 257}, "256"),
                             ({"output_kb": 31}, "30"), ({"timeout_ms": "5"}, "10000"),
                             ({"timeout_ms": 1.5}, "10000")]:
            with self.subTest(limits=limits):
                status, headers, body = self.server.compile_json(
                    {"lang": "python", "script": "print(1)", "limits": limits})
                self.assertError(status, headers, body, 400, "bad_limit")
                self.assertIn(word, body["error"])
        status, headers, body = self.server.compile_json(
            {"lang": "python", "script": "print(1)", "limits": {"cpus": 2}})
        self.assertError(status, headers, body, 400, "unknown_field")

    def test_languages_route(self):
        status, _, data = self.server.request("GET", "/languages")
        langs = {l["name"]: l for l in json.loads(data)}
        self.assertTrue(langs["c"]["compiled"])
        self.assertFalse(langs["python"]["compiled"])
        self.assertEqual(langs["python"]["limits"]["timeout_ms"], 10000)
        self.assertIn("compile_limits", langs["c"])
        self.assertTrue(langs["python"]["version"])


PY_PROFILE = ('language "py1" { image = "%s", file = "main.py", run = {"python3", "main.py"} }\n'
              % PYTHON_IMAGE)
PY2_PROFILE = ('language "py2" { image = "%s", file = "main.py", run = {"python3", "-S", '
               '"main.py"} }\n' % PYTHON_IMAGE)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp(suffix=".lua")
        os.write(fd, PY_PROFILE.encode())
        os.close(fd)
        self.server = Server("--languages", self.path)

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        os.unlink(self.path)
        wait_no_containers(self)

    def rewrite(self, text):
        with open(self.path, "w") as f:
            f.write(text)
        self.server.proc.send_signal(signal.SIGHUP)

    def wait_log(self, needle):
        deadline = time.time() + 20
        while time.time() < deadline:
            if needle in self.server.log_text():
                return
            time.sleep(0.1)
        self.fail("log never said %r:\n%s" % (needle, self.server.log_text()))

    def test_reload_adds_a_language(self):
        status, _, body = self.server.compile_raw("py2", "print(2)")
        self.assertEqual(status, 404)
        self.rewrite(PY_PROFILE + PY2_PROFILE)
        self.wait_log("reload: 2 language(s)")
        status, _, body = self.server.compile_raw("py2", "print(2)")
        self.assertEqual((status, body[0]["stdout"]), (200, "2\n"))

    def test_reload_of_a_broken_file_keeps_the_old_profiles(self):
        self.rewrite(PY_PROFILE + 'language "bad" {\n  image = "x",\n  file = 5,\n}\n')
        self.wait_log("reload rejected")
        log = self.server.log_text()
        self.assertIn(self.path + ":2", log)  # the file and line of the bad profile
        self.assertIn("'bad'", log)
        status, _, body = self.server.compile_raw("py1", "print(1)")
        self.assertEqual((status, body[0]["stdout"]), (200, "1\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
