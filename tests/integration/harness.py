"""Shared pieces of the integration tests: a real server, a real engine.

Each test module starts the real bg-compiler binary (BG_BINARY) on a free
loopback port with the flags it needs, talks to it over HTTP, and checks
through the engine's own API that no container of ours is left behind.
Only the standard library is used.
"""
import http.client
import json
import re
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.environ.get("BG_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BINARY = os.environ.get("BG_BINARY") or os.path.join(ROOT, "build", "bg-compiler")
LANGUAGES = os.path.join(ROOT, "lua", "languages.lua")
DOCKER_SOCK = "/var/run/docker.sock"
PYTHON_IMAGE = "bg-compiler/python:3.11"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def engine(method, path, body=None):
    """One call to the Docker engine (the tests' independent view of it)."""
    conn = UnixHTTPConnection(DOCKER_SOCK)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, "/v1.41" + path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data and data[:1] in b"[{" else data)


# Instance ids of the servers this test process started: "no container
# left" is about them (other suites may run servers on the same engine).
STARTED = set()


def our_containers(instance=None):
    """Ids of the containers (any state) of one instance, or of every
    server this process started."""
    filters = json.dumps({"label": ["org.bg-compiler.service"]})
    status, items = engine("GET", "/containers/json?all=1&filters=" +
                           __import__("urllib.parse").parse.quote(filters))
    assert status == 200, items
    wanted = {instance} if instance else STARTED
    return [c["Id"] for c in items
            if c.get("Labels", {}).get("org.bg-compiler.instance") in wanted]


def wait_no_containers(test, timeout=30, instance=None):
    """Removal happens just after the answer: allow it a moment."""
    deadline = time.time() + timeout
    left = our_containers(instance)
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = our_containers(instance)
    test.assertEqual(left, [], "containers left behind")


class Server:
    """The real binary on a free port; stop() sends SIGTERM and waits."""

    def __init__(self, *flags, env=None, cwd=None, command="start"):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bg-server-", suffix=".log", delete=False)
        args = [BINARY, command, "--port", str(self.port)]
        if not any(f == "--languages" or f.startswith("--languages=") for f in flags):
            args += ["--languages", LANGUAGES]
        args += list(flags)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=full_env, cwd=cwd or ROOT)
        self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited early:\n" + self.log_text())
            try:
                status, _, data = self.request("GET", "/")
                if status == 200:
                    self.instance = json.loads(data)["instance"]
                    STARTED.add(self.instance)
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server never answered:\n" + self.log_text())

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), data

    def compile_json(self, payload, timeout=120):
        status, headers, data = self.request(
            "POST", "/compile", body=json.dumps(payload),
            headers={"Content-Type": "application/json"}, timeout=timeout)
        return status, headers, json.loads(data)

    def compile_raw(self, lang, code, count=None, timeout=120):
        path = "/compile?lang=" + lang + ("&count=%d" % count if count else "")
        status, headers, data = self.request("POST", path, body=code.encode(),
                                             headers={"Content-Type": "text/plain"},
                                             timeout=timeout)
        return status, headers, json.loads(data)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def image_present(name):
    status, _ = engine("GET", "/images/%s/json" % name)
    return status == 200


def require_images(*names):
    """Integration tests need the real images; their absence is a failure
    of set-up (scripts/test builds them), so say so loudly."""
    missing = [n for n in names if not image_present(n)]
    if missing:
        raise RuntimeError("images missing (run scripts/build-images): " + ", ".join(missing))


class ServerTest(unittest.TestCase):
    """A test case with one server for the whole class."""
    flags = ()
    images = (PYTHON_IMAGE,)

    @classmethod
    def setUpClass(cls):
        require_images(*cls.images)
        cls.server = Server(*cls.flags)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        if rc != 0:
            print(cls.server.log_text())
        assert rc == 0, "server exit status %r" % rc
        # While a server runs, its pool keeps ready containers; once it has
        # stopped, nothing of it may remain on the engine.
        deadline = time.time() + 30
        left = our_containers(cls.server.instance)
        while left and time.time() < deadline:
            time.sleep(0.2)
            left = our_containers(cls.server.instance)
        assert left == [], "containers left behind by %s: %r" % (cls.server.instance, left)

    def assertError(self, status, headers, body, want_status, want_code=None):
        self.assertEqual(status, want_status, body)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertIsInstance(body, dict)
        self.assertTrue(body.get("error"), body)
        self.assertTrue(body.get("request_id"), body)
        if want_code:
            self.assertEqual(body.get("code"), want_code, body)


class Redis:
    """A real redis-server on a free loopback port, in its own folder, with
    an append-only file so a restart keeps the queue (as a deployment
    would run it)."""

    def __init__(self, password=None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bg-redis-")
        self.password = password
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
                "--save", ""]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.cli("PING").strip() == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file
            self.proc.wait(30)
        self.log.close()

    def url(self, db=0):
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d/%d" % (auth, self.port, db)

    def cli(self, *args, db=0):
        cmd = ["redis-cli", "-p", str(self.port), "-n", str(db)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return subprocess.run(cmd + [str(a) for a in args], check=True, capture_output=True,
                              text=True, timeout=30, env=env).stdout


def wait_for(what, check, timeout=60, every=0.1):
    """Poll check() until it returns something true; fail naming what."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting for " + what)
