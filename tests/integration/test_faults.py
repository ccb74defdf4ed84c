"""Faults: the engine going away mid-run and coming back, and the runtime
switch (--gvisor) used for real. These stop and start the local dockerd,
so they run alone (ctest RUN_SERIAL) and restore it whatever happens."""
import json
import os
import subprocess
import threading
import time
import unittest

from harness import (PYTHON_IMAGE, ROOT, Server, engine, our_containers, require_images,
                     wait_no_containers)


def engine_up():
    try:
        status, _ = engine("GET", "/_ping")
        return status == 200
    except OSError:
        return False


def start_engine():
    subprocess.run([os.path.join(ROOT, "scripts", "start-dockerd")], check=True, timeout=120)


class EngineFaultTest(unittest.TestCase):
    def setUp(self):
        require_images(PYTHON_IMAGE)
        self.server = Server("--timeout", "60")

    def tearDown(self):
        if not engine_up():
            start_engine()
        self.assertEqual(self.server.stop(), 0)

    def test_engine_stops_mid_run_and_comes_back(self):
        box = {}
        t = threading.Thread(target=lambda: box.update(r=self.server.compile_json(
            {"lang": "python", "script": "import time\nprint('a', flush=True)\ntime.sleep(30)"})))
        t.start()
        deadline = time.time() + 60
        while not our_containers() and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(our_containers(), "the run never started")
        subprocess.run(["pkill", "-KILL", "-x", "dockerd"], check=True)
        deadline = time.time() + 30
        while engine_up() and time.time() < deadline:
            time.sleep(0.1)
        t.join(120)
        status, _, body = box["r"]
        # The run in flight fails with a clear internal error, not a hang.
        self.assertIn(status, (200, 503), body)
        if status == 200:
            self.assertEqual(body[0]["status"], "internal_error")
            self.assertTrue(body[0]["message"])
        else:
            self.assertEqual(body["code"], "engine_unavailable")
        # Meanwhile health says so, and new work is refused clearly.
        status, headers, data = self.server.request("GET", "/healthz")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(data)["code"], "engine_unavailable")
        status, _, body = self.server.compile_json({"lang": "python", "script": "print(1)"})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["code"], "engine_unavailable")
        # The engine returns: the same server recovers without a restart.
        start_engine()
        deadline = time.time() + 60
        status = None
        while time.time() < deadline and status != 200:
            status, _, _ = self.server.request("GET", "/healthz")
            time.sleep(0.2)
        self.assertEqual(status, 200)
        status, _, body = self.server.compile_json({"lang": "python", "script": "print(2)"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body[0]["stdout"], "2\n")
        # The container of the interrupted run is removed too (the reaper
        # retries what could not be removed while the engine was away): after
        # a sweep, only the pool's ready containers are left, all running.
        time.sleep(12)  # one reaper interval
        for c in our_containers(self.server.instance):
            status, info = engine("GET", "/containers/%s/json" % c)
            if status == 200:
                self.assertTrue(info["State"]["Running"], "a dead run's container is left")
        self.assertEqual(self.server.stop(), 0)
        wait_no_containers(self, timeout=40)


class RuntimeSwitchTest(unittest.TestCase):
    """gVisor cannot be installed here: scripts/test registers the name
    "runsc" as an alias of runc, so this checks that --gvisor really makes
    the engine use the runsc runtime, not gVisor's sandbox itself."""

    def test_gvisor_flag_uses_the_runsc_runtime(self):
        require_images(PYTHON_IMAGE)
        status, info = engine("GET", "/info")
        self.assertIn("runsc", info.get("Runtimes", {}),
                      "the engine has no runsc runtime (scripts/test registers one)")
        s = Server("--gvisor")
        try:
            box = {}
            t = threading.Thread(target=lambda: box.update(r=s.compile_json(
                {"lang": "python", "script": "import time\ntime.sleep(3)\nprint('ran')"})))
            t.start()
            deadline = time.time() + 30
            while not our_containers(s.instance) and time.time() < deadline:
                time.sleep(0.05)
            ids = our_containers(s.instance)
            self.assertTrue(ids)
            status, c = engine("GET", "/containers/%s/json" % ids[0])
            self.assertEqual(c["HostConfig"]["Runtime"], "runsc")
            t.join()
            status, _, body = box["r"]
            self.assertEqual((status, body[0]["stdout"]), (200, "ran\n"))
        finally:
            self.assertEqual(s.stop(), 0)
        s = Server("--runtime", "no-such-runtime")
        try:
            status, _, body = s.compile_json({"lang": "python", "script": "print(1)"})
            self.assertEqual(status, 200)
            self.assertEqual(body[0]["status"], "internal_error")
            self.assertIn("no-such-runtime", body[0]["message"])
        finally:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
