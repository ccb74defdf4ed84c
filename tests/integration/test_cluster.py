"""The shared queue on a real redis-server: front doors and worker processes.

Every process here is the real binary; Redis is a real redis-server started
on loopback by the test (with an append-only file, so a restart keeps the
queue). Each class uses its own Redis database so their queues never mix.
"""
import base64
import json
import re
import signal
import threading
import time
import unittest

from harness import (PYTHON_IMAGE, Redis, Server, our_containers, require_images,
                     wait_for, wait_no_containers)

C_IMAGE = "bg-compiler/c:gcc12"

# Short so the tests take seconds, not minutes; production defaults are 30/60.
FAST = ("--claim-after", "3", "--result-ttl", "5")

REDIS = None


def setUpModule():
    global REDIS
    require_images(PYTHON_IMAGE, C_IMAGE)
    REDIS = Redis(password="s3cret-test")


def tearDownModule():
    REDIS.stop()


def front(db, *flags):
    # A front door needs no engine: give it none, so nothing of it can hide
    # a dependence on one.
    return Server("--queue", REDIS.url(db), *FAST, "--docker-host", "unix:///nonexistent.sock",
                  *flags)


def worker(db, *flags):
    return Server("--queue", REDIS.url(db), *FAST, "--pool", "2", *flags, command="worker")


def in_background(fn, *args):
    """Run fn(*args) in a thread; returns a function giving its result."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except Exception as e:  # surfaced by result()
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()

    def result(timeout=300):
        t.join(timeout)
        if t.is_alive():
            raise AssertionError("request still unanswered")
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


def metric(server, name):
    _, _, data = server.request("GET", "/metrics")
    m = re.search(r"^%s (\d+)" % re.escape(name), data.decode(), re.M)
    return int(m.group(1)) if m else None


def stream_length(db):
    """Entries in the shared queue's stream (waiting or running)."""
    return int(REDIS.cli("XLEN", "bg:jobs", db=db))


def stop_all(*servers):
    """SIGTERM each; the exit status of each (0: drained cleanly, and under
    the sanitizers, no leak)."""
    return [s.stop() for s in servers if s]


class ClusterTest(unittest.TestCase):
    """One front door, two worker processes, many requests."""
    DB = 1

    @classmethod
    def setUpClass(cls):
        cls.front = front(cls.DB)
        cls.workers = [worker(cls.DB, "--workers", "2") for _ in range(2)]

    @classmethod
    def tearDownClass(cls):
        codes = stop_all(cls.front, *cls.workers)
        assert codes == [0] * len(codes), "exit statuses %r" % codes
        for w in cls.workers:
            left = our_containers(w.instance)
            assert left == [], "containers left behind by %s: %r" % (w.instance, left)

    def run_python(self, token, count=1, sleep=0):
        code = "import time\ntime.sleep(%s)\nprint(%r)" % (sleep, token)
        return self.front.compile_raw("python", code, count=count, timeout=300)

    def test_health_names_redis_and_role(self):
        status, _, data = self.front.request("GET", "/healthz")
        body = json.loads(data)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["role"], "front")
        self.assertRegex(body["redis"], r"^\d+\.\d+")
        self.assertNotIn("engine", body)  # a front door needs no engine
        status, _, data = self.front.request("GET", "/languages")
        self.assertEqual(status, 200, data)
        python = [p for p in json.loads(data) if p["name"] == "python"][0]
        self.assertIs(python["available"], True)  # a live worker's engine has it
        # The workers announce themselves: the front door counts them.
        wait_for("both workers announced",
                 lambda: health(self.front).get("cluster_workers") == len(self.workers))
        status, _, data = self.workers[0].request("GET", "/healthz")
        body = json.loads(data)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["role"], "worker")
        self.assertIn("engine", body)

    def test_worker_takes_no_requests(self):
        status, headers, data = self.workers[0].request(
            "POST", "/compile?lang=python", body=b"print(1)")
        body = json.loads(data)
        self.assertEqual(status, 404, body)
        self.assertEqual(body["code"], "not_a_front_door")

    def test_many_requests_each_get_their_own_output(self):
        pending = [(i, in_background(self.run_python, "token-%d" % i, 2)) for i in range(12)]
        c_code = '#include <stdio.h>\nint main(void){puts("compiled-%d");return 0;}'
        compiled = [(i, in_background(self.front.compile_raw, "c", c_code % i, 2, 300))
                    for i in range(3)]
        for i, result in pending:
            status, _, body = result()
            self.assertEqual(status, 200, body)
            self.assertEqual(len(body), 2)
            for r in body:
                self.assertEqual(r["status"], "ok", r)
                self.assertEqual(r["stdout"], "token-%d\n" % i)
        for i, result in compiled:
            status, _, body = result()
            self.assertEqual(status, 200, body)
            for r in body:
                self.assertEqual(r["status"], "ok", r)
                self.assertEqual(r["stdout"], "compiled-%d\n" % i)
                self.assertEqual(r["compile"]["status"], "ok")
        # Both worker processes took part.
        busy = [metric(w, 'bg_runs_total{language="python",status="ok"}') for w in self.workers]
        self.assertTrue(all(busy), "runs per worker: %r" % busy)

    def test_metrics_show_the_shared_queue(self):
        for s in (self.front, self.workers[0]):
            self.assertEqual(metric(s, "bg_redis_up"), 1)
            for name in ("bg_cluster_queue_length", "bg_cluster_queue_pending",
                         "bg_cluster_jobs_claimed_total", "bg_cluster_jobs_dead_total",
                         "bg_cluster_workers"):
                self.assertIsNotNone(metric(s, name), name)

    def test_killed_worker_job_is_finished_by_another(self):
        # A third worker, so two stay after one is killed.
        self.workers.append(worker(self.DB, "--workers", "1"))
        claimed_before = metric(self.front, "bg_cluster_jobs_claimed_total")
        # A run long enough to kill its worker in the middle of it.
        result = in_background(self.run_python, "survived", 1, 6)
        victim = wait_for("a worker running the job", lambda: next(
            (w for w in self.workers if busy(w)), None), timeout=120)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        self.workers.remove(victim)
        status, _, body = result()
        self.assertEqual(status, 200, body)
        self.assertEqual(body[0]["status"], "ok", body)
        self.assertEqual(body[0]["stdout"], "survived\n")
        self.assertGreater(metric(self.front, "bg_cluster_jobs_claimed_total"), claimed_before)
        # The dead worker stops being counted once its announcement lapses.
        wait_for("the dead worker no longer counted",
                 lambda: metric(self.front, "bg_cluster_workers") == len(self.workers))
        # The dead worker's containers go within 30 s (a live worker's
        # reaper on the same engine removes them); allow for a slow machine.
        wait_no_containers(self, timeout=90, instance=victim.instance)

    def test_redis_restart(self):
        before = [in_background(self.run_python, "before-%d" % i, 1, 2) for i in range(3)]
        time.sleep(0.5)
        REDIS.stop()
        try:
            status, headers, data = self.front.request(
                "POST", "/compile?lang=python", body=b"print(1)")
            body = json.loads(data)
            self.assertEqual(status, 503, body)
            self.assertEqual(body["code"], "queue_unavailable")
            self.assertIn("Retry-After", headers)
            status, _, data = self.front.request("GET", "/healthz")
            self.assertEqual(status, 503, data)
            self.assertEqual(json.loads(data)["code"], "queue_unavailable")
            # Stay down while the runs end, so their results meet a dead Redis.
            time.sleep(3)
        finally:
            REDIS.start()
        # Accepted work is finished (a result that could not be delivered
        # while Redis was away is run again), and new work is accepted.
        for i, result in enumerate(before):
            status, _, body = result()
            self.assertEqual(status, 200, body)
            self.assertEqual(body[0]["status"], "ok", body)
            self.assertEqual(body[0]["stdout"], "before-%d\n" % i)
        status, _, body = self.run_python("after")
        self.assertEqual(status, 200, body)
        self.assertEqual(body[0]["stdout"], "after\n")


def health(server):
    _, _, data = server.request("GET", "/healthz")
    return json.loads(data)


def busy(server):
    return health(server).get("busy_workers", 0) > 0


class BacklogTest(unittest.TestCase):
    """The backlog counts the jobs waiting in Redis, from every front door."""
    DB = 2

    def test_cluster_wide_backlog(self):
        a = front(self.DB, "--backlog", "3")
        b = front(self.DB, "--backlog", "3")
        w = None
        try:
            waiting = [in_background(a.compile_raw, "python", "print('a%d')" % i, None, 300)
                       for i in range(2)]
            wait_for("two jobs in the stream",
                     lambda: stream_length(self.DB) == 2)
            waiting.append(in_background(b.compile_raw, "python", "print('b0')", None, 300))
            wait_for("three jobs in the stream",
                     lambda: stream_length(self.DB) == 3)
            # No worker runs: the fourth job anywhere is refused.
            for s in (a, b):
                status, headers, body = s.compile_raw("python", "print('over')")
                self.assertEqual(status, 503, body)
                self.assertEqual(body["code"], "queue_full")
                self.assertIn("Retry-After", headers)
            w = worker(self.DB, "--workers", "2")
            outs = sorted(r()[2][0]["stdout"] for r in waiting)
            self.assertEqual(outs, ["a0\n", "a1\n", "b0\n"])
        finally:
            stop_all(w, a, b)


class ExpiryTest(unittest.TestCase):
    """Nothing grows without bound: a dead front door's results expire."""
    DB = 3

    def test_results_of_a_dead_front_door_expire(self):
        f = front(self.DB)
        w = worker(self.DB, "--workers", "1")
        try:
            pending = in_background(f.compile_raw, "python",
                                    "import time\ntime.sleep(2)\nprint('late')", None, 60)
            wait_for("the job taken", lambda: busy(w), timeout=120)
            f.proc.send_signal(signal.SIGKILL)
            f.proc.wait()
            self.assertRaises(Exception, pending)
            reply = "bg:reply:" + f.instance.replace("/", ":")
            # The result lands on the dead front door's list ...
            wait_for("the result in Redis", lambda: REDIS.cli(
                "EXISTS", reply, db=self.DB).strip() == "1", timeout=120)
            ttl = int(REDIS.cli("TTL", reply, db=self.DB))
            self.assertTrue(0 < ttl <= 5, ttl)
            # ... and goes after --result-ttl, with its spec.
            wait_for("the result to expire", lambda: REDIS.cli(
                "EXISTS", reply, db=self.DB).strip() == "0", timeout=60)
            keys = REDIS.cli("KEYS", "bg:spec:*", db=self.DB).split()
            self.assertEqual(keys, [], "specs of answered jobs stay")
            self.assertEqual(stream_length(self.DB), 0)
        finally:
            stop_all(w, f)


class DrainTest(unittest.TestCase):
    """SIGTERM: a front door waits for its jobs' results, a worker finishes
    its run; both exit 0 and leave nothing."""
    DB = 5

    def test_front_door_and_worker_drain(self):
        f = front(self.DB, "--grace", "60")
        w = worker(self.DB, "--workers", "1", "--grace", "60")
        other = None
        try:
            pending = in_background(f.compile_raw, "python",
                                    "import time\ntime.sleep(8)\nprint('drained')", None, 120)
            wait_for("the job taken", lambda: busy(w), timeout=120)
            # Another worker stands by: the draining worker's run must stay
            # its own (kept alive) through the grace, not be taken over.
            other = worker(self.DB, "--workers", "1")
            claimed = metric(other, "bg_cluster_jobs_claimed_total")
            f.proc.send_signal(signal.SIGTERM)
            w.proc.send_signal(signal.SIGTERM)
            status, _, body = pending()
            self.assertEqual(status, 200, body)
            self.assertEqual(body[0]["status"], "ok", body)
            self.assertEqual(body[0]["stdout"], "drained\n")
            self.assertEqual(f.proc.wait(60), 0, f.log_text())
            self.assertEqual(w.proc.wait(60), 0, w.log_text())
            self.assertEqual(our_containers(w.instance), [])
            self.assertEqual(metric(other, "bg_cluster_jobs_claimed_total"), claimed)
            self.assertEqual(metric(other, 'bg_runs_total{language="python",status="ok"}'), None)
        finally:
            stop_all(w, f, other)


class PoisonTest(unittest.TestCase):
    """A job whose workers keep dying is answered internal_error, once."""
    DB = 4

    def test_job_handed_out_too_often_is_given_up(self):
        f = front(self.DB)
        w = None
        try:
            REDIS.cli("XGROUP", "CREATE", "bg:jobs", "bg-workers", "0", "MKSTREAM", db=self.DB)
            pending = in_background(f.compile_raw, "python", "print('never')", None, 300)
            wait_for("the job in the stream",
                     lambda: stream_length(self.DB) == 1)
            # Three workers take it and die (as Redis sees it: a consumer
            # that read the entry and never answered).
            out = REDIS.cli("XREADGROUP", "GROUP", "bg-workers", "ghost-1", "COUNT", "1",
                            "STREAMS", "bg:jobs", ">", db=self.DB)
            entry = re.search(r"\d+-\d+", out).group(0)
            for ghost in ("ghost-2", "ghost-3"):
                REDIS.cli("XCLAIM", "bg:jobs", "bg-workers", ghost, "0", entry, db=self.DB)
            w = worker(self.DB, "--workers", "1")
            status, _, body = pending()
            self.assertEqual(status, 200, body)
            self.assertEqual(body[0]["status"], "internal_error", body)
            self.assertIn("none finished it", body[0]["message"])
            self.assertEqual(metric(w, "bg_cluster_jobs_dead_total"), 1)
            self.assertEqual(stream_length(self.DB), 0)
            # The queue goes on: the next job runs normally.
            status, _, body = f.compile_raw("python", "print('next')")
            self.assertEqual(body[0]["stdout"], "next\n", body)
        finally:
            stop_all(w, f)


def forged_spec(image, code, memory_mb):
    """A run_spec as src/cluster/wire.h writes it, made by hand: what anyone
    who can write to Redis could queue."""
    limits = {"timeout_ms": 600000, "compile_timeout_ms": 600000, "memory_mb": memory_mb,
              "output_bytes": 1 << 30, "pids": 100000, "nofile": 100000, "tmpfs_mb": 100000,
              "cpu_shares": 262144, "artifact_bytes": 0, "custom_memory": False}
    return json.dumps({
        "language": "python", "image": image, "run": ["python3", "main.py"],
        "env": ["PATH=/usr/bin:/bin", "HOME=/work"],
        "files": [{"name": "main.py", "data": base64.b64encode(code.encode()).decode(),
                   "exec": False}],
        "limits": limits, "compile_limits": limits})


class ForgedJobTest(unittest.TestCase):
    """Redis is not trusted with what a worker runs: a job written straight
    into the queue gets only an image of the worker's profiles and no more
    than the worker's own limits."""
    DB = 6

    def queue_forged(self, n, image, code, memory_mb=100000):
        spec = "bg:spec:forger:%d" % n
        REDIS.cli("HSET", spec, "spec", forged_spec(image, code, memory_mb), "left", 1, db=self.DB)
        header = json.dumps({"job": n, "reply": "bg:reply:forger", "spec": spec,
                             "queued": int(time.time() * 1000),
                             "deadline": int(time.time() * 1000) + 600000, "request": "forged"})
        REDIS.cli("XADD", "bg:jobs", "*", "job", header, db=self.DB)
        out = REDIS.cli("BLPOP", "bg:reply:forger", 120, db=self.DB).splitlines()
        self.assertEqual(out[0], "bg:reply:forger")
        # The reply is "<job>\n<result JSON>": redis-cli prints it over two lines.
        self.assertEqual(out[1], str(n))
        return json.loads("\n".join(out[2:]))

    def test_forged_jobs_are_held_to_the_workers_rules(self):
        w = worker(self.DB, "--workers", "1", "--memory", "256", "--timeout", "5")
        try:
            r = self.queue_forged(1, "alpine:latest", "print(1)")
            self.assertEqual(r["status"], "internal_error", r)
            self.assertIn("do not name image alpine:latest", r["message"])
            # The spec asks for 100 GB; the worker's --memory 256 holds.
            code = "b = bytearray(400 * 1024 * 1024)\nprint(len(b))"
            r = self.queue_forged(2, PYTHON_IMAGE, code)
            self.assertEqual(r["status"], "memory_limit", r)
            self.assertTrue(r["run"]["oom_killed"], r)
            r = self.queue_forged(3, PYTHON_IMAGE, "print('held')")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(base64.b64decode(r["run"]["out"]), b"held\n")
            # Entries no worker can answer are dropped, not left pending for ever.
            REDIS.cli("XADD", "bg:jobs", "*", "nonsense", "1", db=self.DB)
            REDIS.cli("XADD", "bg:jobs", "*", "job", "not a header", db=self.DB)
            wait_for("malformed entries dropped", lambda: stream_length(self.DB) == 0)
            self.assertIn("0", REDIS.cli("XPENDING", "bg:jobs", "bg-workers", db=self.DB)
                          .split()[:1])
        finally:
            stop_all(w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
