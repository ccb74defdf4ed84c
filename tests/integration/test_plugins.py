"""Policy plugins on the real server: auth, rate limits, policy, audit,
ordering, hostile plugins failing closed, reloads, and load."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BINARY, PYTHON_IMAGE, ROOT, Server, require_images, wait_no_containers

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "plugins")


def post(server, code="print(1)", key=None, headers=None, lang="python", **extra):
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    payload = {"lang": lang, "script": code}
    payload.update(extra)
    status, hdrs, data = server.request("POST", "/compile", body=json.dumps(payload), headers=h)
    return status, hdrs, json.loads(data)


class ShippedPluginsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_images(PYTHON_IMAGE)
        cls.audit = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
        # Two environment variables and one flag: auth and rate limits on.
        cls.server = Server("--plugins", "auth,ratelimit,audit", env={
            "BG_API_KEYS": "alpha-key,beta-key", "BG_RATE_LIMIT": "4/3600",
            "BG_AUDIT_FILE": cls.audit})

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0
        os.unlink(cls.audit)

    def test_missing_and_wrong_keys(self):
        status, headers, body = post(self.server)
        self.assertEqual(status, 401)
        self.assertTrue(headers["WWW-Authenticate"].startswith("Bearer"))
        self.assertEqual(body["code"], "refused")
        self.assertTrue(body["request_id"])
        status, headers, body = post(self.server, key="alpha-keyX")
        self.assertEqual(status, 401)
        self.assertNotIn("alpha", self.server.log_text())  # keys are never logged

    def test_other_routes_are_gated_but_probes_are_not(self):
        status, _, _ = self.server.request("GET", "/languages")
        self.assertEqual(status, 401)
        for path in ("/", "/healthz"):
            status, _, _ = self.server.request("GET", path)
            self.assertEqual(status, 200, path)

    def test_rate_limit_per_key_then_429(self):
        seen = []
        for _ in range(4):
            status, headers, body = post(self.server, key="beta-key")
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["RateLimit-Limit"], "4")
            seen.append(int(headers["RateLimit-Remaining"]))
        self.assertEqual(seen, [3, 2, 1, 0])
        status, headers, body = post(self.server, key="beta-key")
        self.assertEqual(status, 429)
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        self.assertEqual(body["code"], "refused")
        # Each key has its own bucket.
        status, _, _ = post(self.server, key="alpha-key")
        self.assertEqual(status, 200)

    def test_audit_line_per_request(self):
        status, headers, _ = post(self.server, key="alpha-key", code="print(2)")
        self.assertEqual(status, 200)
        rid = headers["X-Request-Id"]
        deadline = time.time() + 10
        while time.time() < deadline:
            lines = [json.loads(l) for l in open(self.audit) if l.strip()]
            mine = [l for l in lines if l["request_id"] == rid]
            if mine:
                break
            time.sleep(0.1)
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["key_id"], "key1")
        self.assertEqual(mine[0]["language"], "python")
        self.assertEqual(mine[0]["statuses"], ["ok"])


class HostilePluginsTest(unittest.TestCase):
    """Each hostile plugin: a fast 500 JSON error with the request id, the
    traceback in the log and not in the answer, and a healthy server."""

    def test_each_hostile_plugin_fails_closed(self):
        require_images(PYTHON_IMAGE)
        for name in ("loop", "loop_pcall", "loop_xpcall", "gc", "alloc", "error", "garbage",
                     "raise", "escape"):
            with self.subTest(plugin=name):
                s = Server("--plugin-dir", FIXTURES, "--plugins", name)
                try:
                    for _ in range(2):
                        status, headers, body = post(s)
                        self.assertEqual(status, 500, body)
                        self.assertEqual(body["code"], "plugin_error")
                        self.assertEqual(body["request_id"], headers["X-Request-Id"])
                        self.assertNotIn("traceback", json.dumps(body))
                    self.assertIn(headers["X-Request-Id"], s.log_text())
                    status, _, _ = s.request("GET", "/healthz")
                    self.assertEqual(status, 200)
                finally:
                    self.assertEqual(s.stop(), 0)

    def test_plugin_that_fails_to_load_stops_start_up(self):
        r = subprocess.run([BINARY, "start", "--plugin-dir", FIXTURES, "--plugins", "badload",
                            "--port", "0"], capture_output=True, text=True, cwd=ROOT, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("badload.lua:3", r.stderr)

    def test_observer_failure_is_logged_and_ignored(self):
        require_images(PYTHON_IMAGE)
        s = Server("--plugin-dir", FIXTURES, "--plugins", "observer_error")
        try:
            status, _, body = post(s)
            self.assertEqual(status, 200)
            self.assertEqual(body[0]["stdout"], "1\n")
            self.assertIn("observer broke", s.log_text())
        finally:
            self.assertEqual(s.stop(), 0)


class OrderingAndReloadTest(unittest.TestCase):
    def setUp(self):
        require_images(PYTHON_IMAGE)
        self.dir = tempfile.mkdtemp()
        for name in ("first", "second"):
            shutil.copy(os.path.join(FIXTURES, name + ".lua"), self.dir)
        self.server = Server("--plugin-dir", self.dir, "--plugins", "first,second")

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        shutil.rmtree(self.dir)
        wait_no_containers(self)

    def test_order_refusal_and_result_changes(self):
        status, headers, body = post(self.server, code="import time\ntime.sleep(3)")
        self.assertEqual(status, 200)
        self.assertEqual(headers["X-Trail"], "first,second")
        r = body[0]
        self.assertEqual(r["status"], "timeout")  # second lowered timeout_ms to 1000
        self.assertEqual(r["trail"], "first,second")  # on_result annotated
        self.assertEqual(r["stderr"], "[redacted]")
        status, _, body = post(self.server, headers={"X-Refuse": "first"})
        self.assertEqual((status, body["error"]), (418, "first says no"))
        status, _, body = post(self.server, headers={"X-Refuse": "second"})
        self.assertEqual((status, body["error"]), (403, "second says no"))
        # Plugins run before validation: a bad request is refused by policy first.
        status, _, body = post(self.server, headers={"X-Refuse": "first"}, lang="nope")
        self.assertEqual(status, 418)

    def test_broken_plugin_on_reload_keeps_the_old_set(self):
        with open(os.path.join(self.dir, "second.lua"), "w") as f:
            f.write("return {\n  on_request = function( end\n}\n")
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "plugin reload rejected" not in self.server.log_text() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("second.lua:2", self.server.log_text())
        status, headers, _ = post(self.server)
        self.assertEqual(status, 200)
        self.assertEqual(headers["X-Trail"], "first,second")


class LoadTest(unittest.TestCase):
    def test_many_concurrent_requests_with_plugins(self):
        require_images(PYTHON_IMAGE)
        s = Server("--plugins", "auth,ratelimit", "--workers", "2", env={
            "BG_API_KEYS": "k", "BG_RATE_LIMIT": "100000/1"})
        results = []
        lock = threading.Lock()

        def client(n):
            for i in range(n):
                # Refused before any container (wrong key) and real runs.
                key = "k" if i % 5 == 0 else "bad"
                status, _, body = post(s, key=key, code="print(%d)" % i)
                with lock:
                    results.append((key, status, body))
        try:
            threads = [threading.Thread(target=client, args=(20,)) for _ in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(results), 200)
            for key, status, body in results:
                self.assertEqual(status, 200 if key == "k" else 401, body)
            status, _, _ = s.request("GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(s.stop(), 0)
        wait_no_containers(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)
