"""The service's life: backlog, reaping after kill -9, draining on SIGTERM."""
import json
import os
import signal
import tempfile
import threading
import time
import unittest

from harness import (PYTHON_IMAGE, Server, our_containers, require_images,
                     wait_no_containers)

SLEEP = "import time\nprint('start', flush=True)\ntime.sleep(%d)\nprint('end')"


def in_thread(fn, *args):
    box = {}

    def target():
        try:
            box["result"] = fn(*args)
        except Exception as e:  # reported by the test through box
            box["error"] = e
    t = threading.Thread(target=target)
    t.start()
    return t, box


def wait_for(cond, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class BacklogTest(unittest.TestCase):
    def setUp(self):
        require_images(PYTHON_IMAGE)
        self.server = Server("--workers", "1", "--backlog", "1", "--timeout", "20")

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        wait_no_containers(self)

    def busy(self):
        _, _, data = self.server.request("GET", "/healthz")
        return json.loads(data)

    def test_full_backlog_is_503_at_once(self):
        run = lambda: self.server.compile_json({"lang": "python", "script": SLEEP % 3})
        t1, box1 = in_thread(run)
        wait_for(lambda: self.busy()["busy_workers"] == 1, what="the worker to take job 1")
        # Two jobs do not fit a backlog of one: refused whole, at once.
        status, headers, body = self.server.compile_json(
            {"lang": "python", "script": "print(2)", "count": 2})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["code"], "queue_full")
        self.assertIn("Retry-After", headers)
        t2, box2 = in_thread(run)
        wait_for(lambda: self.busy()["queued"] == 1, what="job 2 to wait")
        status, headers, body = self.server.compile_json({"lang": "python", "script": "print(3)"})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["code"], "queue_full")
        self.assertTrue(headers.get("Retry-After"))
        # Nothing accepted is lost.
        for t, box in ((t1, box1), (t2, box2)):
            t.join()
            self.assertNotIn("error", box)
            status, _, body = box["result"]
            self.assertEqual(status, 200)
            self.assertEqual(body[0]["stdout"], "start\nend\n")


class ReaperTest(unittest.TestCase):
    def setUp(self):
        require_images(PYTHON_IMAGE)

    def test_leftovers_of_a_killed_server_are_reaped(self):
        a = Server("--timeout", "120")
        t, box = in_thread(lambda: a.compile_json({"lang": "python", "script": SLEEP % 100}))
        wait_for(lambda: our_containers(), what="a run container")
        orphans = our_containers()
        a.stop(signal.SIGKILL)
        t.join()
        # The engine keeps the container: nobody removed it.
        self.assertTrue(set(orphans) & set(our_containers()))
        b = Server()
        try:
            wait_for(lambda: not (set(orphans) & set(our_containers())), timeout=30,
                     what="the reaper")
        finally:
            self.assertEqual(b.stop(), 0)

    def test_a_live_siblings_runs_are_left_alone(self):
        # The run outlives B's first sweep and a periodic one (every 10 s),
        # so it needs a profile with a longer timeout than the shipped one.
        langs = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        langs.write('language "python" { image = "%s", file = "main.py",\n'
                    '  run = {"python3", "main.py"}, limits = { timeout_ms = 60000 } }\n'
                    % PYTHON_IMAGE)
        langs.close()
        self.addCleanup(os.unlink, langs.name)
        a = Server("--timeout", "60", "--languages", langs.name)
        try:
            t, box = in_thread(lambda: a.compile_json({"lang": "python", "script": SLEEP % 12}))
            wait_for(lambda: our_containers(), what="a run container")
            # A second instance starts (its first sweep runs at once) and
            # keeps sweeping every 10 s while the run goes on.
            b = Server("--languages", langs.name)
            t.join()
            self.assertEqual(b.stop(), 0)
            status, _, body = box["result"]
            self.assertEqual(status, 200)
            self.assertEqual((body[0]["status"], body[0]["stdout"]), ("ok", "start\nend\n"))
        finally:
            self.assertEqual(a.stop(), 0)
        wait_no_containers(self)


class DrainTest(unittest.TestCase):
    def setUp(self):
        require_images(PYTHON_IMAGE)

    def test_sigterm_finishes_runs_in_flight(self):
        s = Server("--grace", "30")
        t, box = in_thread(lambda: s.compile_json({"lang": "python", "script": SLEEP % 2}))
        wait_for(lambda: our_containers(), what="a run container")
        s.proc.send_signal(signal.SIGTERM)
        t.join()
        self.assertEqual(s.stop(), 0)
        status, _, body = box["result"]
        self.assertEqual(status, 200)
        self.assertEqual(body[0]["stdout"], "start\nend\n")
        wait_no_containers(self)

    def test_sigterm_after_grace_kills_and_cleans(self):
        s = Server("--grace", "1", "--timeout", "60")
        t, box = in_thread(lambda: s.compile_json({"lang": "python", "script": SLEEP % 50}))
        wait_for(lambda: our_containers(), what="a run container")
        s.proc.send_signal(signal.SIGTERM)
        t.join()
        self.assertEqual(s.stop(), 0)
        status, _, body = box["result"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body[0]["status"], "internal_error")
        self.assertTrue(body[0]["message"])
        wait_no_containers(self)



class PoolTest(unittest.TestCase):
    """The pool never reuses a container: under concurrency, no run sees a
    file another run wrote, and no two runs share a container."""

    def test_no_run_sees_another_runs_files(self):
        require_images(PYTHON_IMAGE)
        s = Server("--workers", "4", "--pool", "8")
        code = ("import os\n"
                "mine = os.urandom(16).hex()\n"
                "seen = sorted(os.listdir('/work')) + sorted(os.listdir('/tmp'))\n"
                "open('/work/' + mine, 'w').write('x')\n"
                "open('/tmp/' + mine, 'w').write('x')\n"
                "cg = open('/proc/self/cgroup').read()\n"
                "print(mine, len(seen), seen, cg.splitlines()[-1].rsplit('/', 1)[-1])\n")
        outputs = []
        lock = threading.Lock()

        def client():
            for _ in range(8):
                status, _, body = s.compile_json({"lang": "python", "script": code,
                                                  "count": 2})
                with lock:
                    outputs.append((status, body))
        try:
            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            containers = set()
            for status, body in outputs:
                self.assertEqual(status, 200, body)
                for r in body:
                    self.assertEqual(r["status"], "ok", r)
                    mine, n, *rest = r["stdout"].split(" ", 2)
                    # Only the program's own main.py was there before it wrote.
                    self.assertEqual(n, "1", r["stdout"])
                    containers.add(r["stdout"].rsplit(" ", 1)[-1].strip())
            self.assertEqual(len(containers), 64, "a container served two runs")
            _, _, data = s.request("GET", "/metrics")
            self.assertIn("bg_pool_ready", data.decode())
        finally:
            self.assertEqual(s.stop(), 0)
        wait_no_containers(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)
