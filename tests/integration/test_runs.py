"""Runs on a real engine: the original's example, statuses, limits, cleanup."""
import json
import time
import unittest

from harness import PYTHON_IMAGE, ServerTest, engine, our_containers, wait_no_containers

C_IMAGE = "bg-compiler/c:gcc12"


class RunTest(ServerTest):
    flags = ("--timeout", "3", "--memory", "96", "--output", "2", "--workers", "2")
    images = (PYTHON_IMAGE, C_IMAGE)

    def run_py(self, code, **extra):
        payload = {"lang": "python", "script": code}
        payload.update(extra)
        status, _, body = self.server.compile_json(payload)
        self.assertEqual(status, 200, body)
        return body

    def test_original_example_three_random_numbers(self):
        # The original service's README request, in its own form.
        status, _, body = self.server.compile_json({
            "script": "import random\nprint(random.randint(1, 1000000000))",
            "image": PYTHON_IMAGE, "count": 3, "cmd": "python3"})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body), 3)
        numbers = [int(r["stdout"]) for r in body]
        self.assertGreater(len(set(numbers)), 1, "three runs gave one number: shared state?")
        for r in body:
            self.assertEqual(r["status"], "ok")
            self.assertEqual(r["exit_code"], 0)
            self.assertIsNone(r["signal"])
            self.assertFalse(r["timed_out"])
            self.assertFalse(r["oom_killed"])
            self.assertFalse(r["output_truncated"])
            self.assertGreater(r["duration_ms"], 0)

    def test_raw_form(self):
        status, _, body = self.server.compile_raw("python", "print('raw', 6*7)", count=2)
        self.assertEqual(status, 200, body)
        self.assertEqual([r["stdout"] for r in body], ["raw 42\n", "raw 42\n"])

    def test_alias(self):
        status, _, body = self.server.compile_raw("py", "print(1)")
        self.assertEqual(status, 200, body)
        self.assertEqual(body[0]["stdout"], "1\n")

    def test_exit_code_and_stderr(self):
        r = self.run_py("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(7)")[0]
        self.assertEqual((r["status"], r["exit_code"], r["signal"]), ("runtime_error", 7, None))
        self.assertEqual((r["stdout"], r["stderr"]), ("out\n", "err\n"))

    def test_signal(self):
        r = self.run_py("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")[0]
        self.assertEqual((r["status"], r["exit_code"], r["signal"]),
                         ("runtime_error", None, "SIGSEGV"))

    def test_timeout(self):
        r = self.run_py("while True:\n    pass")[0]
        self.assertEqual(r["status"], "timeout")
        self.assertTrue(r["timed_out"])
        self.assertEqual(r["signal"], "SIGKILL")
        self.assertIsNone(r["exit_code"])

    def test_sleep_is_a_timeout_not_cpu(self):
        r = self.run_py("import time\ntime.sleep(60)")[0]
        self.assertEqual(r["status"], "timeout")

    def test_stdin_eof_when_none_given(self):
        r = self.run_py("import sys\ndata = sys.stdin.read()\nprint(len(data))")[0]
        self.assertEqual((r["status"], r["stdout"]), ("ok", "0\n"))

    def test_stdin_given(self):
        r = self.run_py("import sys\nprint(sys.stdin.read().upper())", stdin="abc\ndef")[0]
        self.assertEqual((r["status"], r["stdout"]), ("ok", "ABC\nDEF\n"))

    def test_output_cap_on_stdout(self):
        r = self.run_py("while True:\n    print('x' * 100)")[0]
        self.assertEqual(r["status"], "output_limit")
        self.assertTrue(r["output_truncated"])
        self.assertFalse(r["timed_out"])
        self.assertLessEqual(len(r["stdout"].encode()) + len(r["stderr"].encode()), 2048)
        self.assertGreater(len(r["stdout"]), 1000)

    def test_output_cap_on_stderr(self):
        r = self.run_py("import sys\nwhile True:\n    sys.stderr.write('e' * 100)")[0]
        self.assertEqual(r["status"], "output_limit")
        self.assertTrue(r["output_truncated"])
        self.assertLessEqual(len(r["stderr"].encode()), 2048)
        self.assertGreater(len(r["stderr"]), 1000)

    def test_output_cap_counts_both_streams(self):
        r = self.run_py("import sys\nprint('o' * 1500, flush=True)\n"
                        "sys.stderr.write('e' * 1500)\nsys.stderr.flush()")[0]
        self.assertEqual(r["status"], "output_limit")
        self.assertEqual(len(r["stdout"]) + len(r["stderr"]), 2048)

    def test_output_cap_never_splits_utf8(self):
        # 'é' is two bytes and 'あ' three: at any cut the text stays whole.
        r = self.run_py("import sys\nsys.stdout.write('a' + 'é' * 700 + 'あ' * 700)")[0]
        self.assertEqual(r["status"], "output_limit")
        text = r["stdout"]
        self.assertNotIn("\ufffd", text)
        self.assertTrue(text.startswith("aé"))
        self.assertLessEqual(len(text.encode()), 2048)
        self.assertGreater(len(text.encode()), 2040)

    def test_invalid_utf8_is_replaced(self):
        r = self.run_py("import sys\nsys.stdout.buffer.write(b'ok\\xff\\xfe!')")[0]
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["stdout"], "ok\ufffd\ufffd!")

    def test_memory_limit(self):
        r = self.run_py("x = bytearray(300 * 1024 * 1024)\nprint(len(x))")[0]
        self.assertEqual(r["status"], "memory_limit", r)
        self.assertTrue(r["oom_killed"])

    def test_leftover_children_do_not_hold_the_reply(self):
        # A child that keeps stdout open and outlives the main program: the
        # reply comes when main exits, not at the 3 s timeout.
        r = self.run_py("import subprocess\n"
                        "subprocess.Popen(['sleep', '300'])\n"
                        "print('main done', flush=True)")[0]
        self.assertEqual((r["status"], r["stdout"]), ("ok", "main done\n"))
        self.assertFalse(r["timed_out"])

    def test_runs_as_nobody_without_capabilities(self):
        r = self.run_py(
            "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
            "for line in open('/proc/self/status'):\n"
            "    if line.startswith(('CapEff', 'CapPrm', 'NoNewPrivs')):\n"
            "        print(line.split()[1])")[0]
        self.assertEqual(r["stdout"], "65534 65534 []\n0000000000000000\n0000000000000000\n1\n")

    def test_sandbox_is_closed(self):
        r = self.run_py(
            "import os, socket\n"
            "print(sorted(os.listdir('/sys/class/net')))\n"
            "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print('rootfs', e.errno)\n"
            "print(os.path.exists('/var/run/docker.sock'))\n"
            "print(sorted(k for k in os.environ))\n")[0]
        lines = r["stdout"].splitlines()
        self.assertEqual(lines[0], "['lo']")
        self.assertEqual(lines[1], "rootfs 30")  # EROFS
        self.assertEqual(lines[2], "False")
        self.assertEqual(lines[3], "['HOME', 'LANG', 'PATH', 'TMPDIR']")

    def test_c_compile_and_run(self):
        code = ('#include <stdio.h>\nint main(void){int n; if (scanf("%d", &n) != 1) return 2;'
                ' printf("%d\\n", n * 2); return 0;}')
        status, _, body = self.server.compile_json({"lang": "c", "script": code, "stdin": "21"})
        self.assertEqual(status, 200, body)
        r = body[0]
        self.assertEqual((r["status"], r["stdout"]), ("ok", "42\n"), r)
        self.assertEqual(r["compile"]["exit_code"], 0)

    def test_c_compile_error(self):
        status, _, body = self.server.compile_json({"lang": "c", "script": "int main( {"})
        self.assertEqual(status, 200, body)
        r = body[0]
        self.assertEqual(r["status"], "compile_error")
        self.assertIn("error", r["compile"]["stderr"])
        self.assertEqual(r["stdout"], "")

    def test_c_exit_code(self):
        status, _, body = self.server.compile_json(
            {"lang": "c", "script": "int main(void){return 5;}"})
        self.assertEqual((body[0]["status"], body[0]["exit_code"]), ("runtime_error", 5))

    def test_metrics(self):
        self.run_py("print(1)")
        status, headers, data = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        text = data.decode()
        self.assertIn('bg_runs_total{language="python",status="ok"}', text)
        self.assertIn('bg_requests_total{route="/compile",status="200"}', text)
        for name in ("bg_run_duration_seconds_bucket", "bg_queue_wait_seconds_count",
                     "bg_queue_depth", "bg_workers_busy", "bg_containers_created_total",
                     "bg_containers_removed_total", "bg_engine_errors_total"):
            self.assertIn(name, text)

    def test_no_container_left_but_ready_ones(self):
        # While the server runs, only its pool's ready containers remain
        # (the harness checks that none at all remain once it stops).
        self.run_py("print(1)", count=2)
        deadline = time.time() + 30
        while time.time() < deadline:
            found = [engine("GET", "/containers/%s/json" % c)
                     for c in our_containers(self.server.instance)]
            states = [info["State"] for status, info in found if status == 200]
            if len(states) <= 8 and all(st["Running"] for st in states):
                break
            time.sleep(0.2)
        self.assertLessEqual(len(states), 8)  # --pool's default cap
        self.assertTrue(all(st["Running"] for st in states), states)


class ErrorTest(ServerTest):
    flags = ("--max-body", "4", "--max-count", "3")

    def test_bad_json(self):
        for body in ['{"lang": "python", "script": ', "nope", "", "[1, 2]", "null", "42",
                     '"text"']:
            with self.subTest(body=body):
                status, headers, data = self.server.request(
                    "POST", "/compile", body=body, headers={"Content-Type": "application/json"})
                self.assertError(status, headers, json.loads(data), 400)

    def test_wrong_types_and_missing_fields(self):
        cases = [({"lang": "python"}, "missing_field"),
                 ({"script": "print(1)"}, "missing_field"),
                 ({"lang": "python", "script": 5}, "bad_type"),
                 ({"lang": 5, "script": "x"}, "bad_type"),
                 ({"lang": "python", "script": "x", "count": "3"}, "bad_count"),
                 ({"lang": "python", "script": "x", "count": 0}, "bad_count"),
                 ({"lang": "python", "script": "x", "count": 4}, "bad_count"),
                 ({"lang": "python", "script": "x", "count": 1.5}, "bad_count"),
                 ({"lang": "python", "script": ""}, "empty_script"),
                 ({"lang": "python", "script": "x", "scirpt": "y"}, "unknown_field"),
                 ({"lang": "python", "script": "a\u0000b"}, "bad_json"),
                 ({"image": PYTHON_IMAGE, "script": "x", "extension": "../../etc/x"},
                  "bad_extension")]
        for payload, code in cases:
            with self.subTest(payload=payload):
                status, headers, body = self.server.compile_json(payload)
                self.assertError(status, headers, body, 400, code)

    def test_image_not_allowed(self):
        status, headers, body = self.server.compile_json(
            {"script": "x", "image": "alpine:latest", "cmd": "sh"})
        self.assertError(status, headers, body, 403, "image_not_allowed")
        self.assertIn("alpine:latest", body["error"])

    def test_unknown_language(self):
        status, headers, body = self.server.compile_raw("cobol85", "x")
        self.assertError(status, headers, body, 404, "unknown_language")
        status, headers, body = self.server.compile_json({"lang": "cobol85", "script": "x"})
        self.assertError(status, headers, body, 404, "unknown_language")

    def test_raw_without_lang(self):
        status, headers, data = self.server.request("POST", "/compile", body=b"print(1)")
        self.assertError(status, headers, json.loads(data), 400, "missing_field")

    def test_wrong_method_and_path(self):
        status, headers, data = self.server.request("GET", "/compile")
        self.assertError(status, headers, json.loads(data), 405, "method_not_allowed")
        self.assertEqual(headers.get("Allow"), "POST")
        status, headers, data = self.server.request("DELETE", "/languages")
        self.assertError(status, headers, json.loads(data), 405)
        status, headers, data = self.server.request("GET", "/nope")
        self.assertError(status, headers, json.loads(data), 404, "not_found")

    def test_body_too_large(self):
        status, headers, data = self.server.request(
            "POST", "/compile?lang=python", body=b"#" * 10000,
            headers={"Content-Type": "text/plain"})
        self.assertError(status, headers, json.loads(data), 413, "body_too_large")

    def test_body_too_large_chunked(self):
        # No Content-Length: past the cap the server discards the rest and
        # answers 413 at its end (libmicrohttpd takes no response mid-body).
        import socket
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        sock.sendall(b"POST /compile?lang=python HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(20):
                sock.sendall(b"%x\r\n%s\r\n" % (1000, b"#" * 1000))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
        self.assertEqual(json.loads(body)["code"], "body_too_large")

    def test_server_still_up(self):
        status, _, data = self.server.request("GET", "/")
        self.assertEqual(status, 200)
        status, _, data = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200, data)
        self.assertIn("engine", json.loads(data))

    def test_languages(self):
        status, _, data = self.server.request("GET", "/languages")
        self.assertEqual(status, 200)
        langs = {l["name"]: l for l in json.loads(data)}
        self.assertIn("python", langs)
        self.assertIn("c", langs)
        self.assertTrue(langs["python"]["available"])
        self.assertIn("py", langs["python"]["aliases"])
        self.assertEqual(langs["python"]["image"], PYTHON_IMAGE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
