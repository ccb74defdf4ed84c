#!/usr/bin/env python3
"""bg-compiler benchmark: the raw Docker Engine API floor and the service, in one run.

(a) The floor: one fresh container per run through the Engine API on a
    keep-alive unix-socket connection: create (NetworkDisabled), start, wait,
    logs, delete. Sequential latency, throughput at 1/4/16 clients (each its
    own connection), and a 1 MB output.
(b) The service over HTTP: it is started here (`bg-compiler start`) unless
    --url is given. Sequential latency of python print(1) and of a C program
    (compile + run), throughput at the same concurrencies, and a 1 MB output.

Sequential floor and service runs alternate (A B, B A, ...) with a gap after
each, so both sides see the same (shared, noisy) machine; the service's python
print(1) is also measured back to back. Throughput counts the runs that end in
a window after a warm-up. Every service figure is printed with its ratio to
the floor of the same run, and everything goes into a JSON file. Python 3 standard library only.
See bench/README.md and docs/PERFORMANCE.md.
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

PY_IMAGE = "bg-compiler/python:3.11"
C_IMAGE = "bg-compiler/c:gcc12"
BIG = 1 << 20  # the "1 MB" output: 1,048,576 bytes ('x' * 1048575 + '\n')
BIG_SCRIPT = "import sys\nsys.stdout.write('x' * %d + '\\n')\n" % (BIG - 1)
BIG_EXPECT = "x" * (BIG - 1) + "\n"
PY_SCRIPT = "print(1)"
C_SCRIPT = '#include <stdio.h>\nint main(void){puts("1");}'
LABEL = "org.bg-compiler.bench"
RUN_LABEL = "org.bg-compiler.bench.run"
API_WANTED = (1, 41)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

now = time.perf_counter


class BenchError(Exception):
    """A failure the user must be told about in plain words."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop, clean up, exit."""


# --------------------------------------------------------------------------
# statistics and printing

def percentile(sorted_vals, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return None
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def stats(samples_s):
    """Latency statistics in milliseconds from samples in seconds."""
    ms = sorted(x * 1000.0 for x in samples_s)
    if not ms:
        return {"n": 0}
    r = lambda v: round(v, 2)
    return {
        "n": len(ms),
        "median_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "mean_ms": r(sum(ms) / len(ms)),
        "min_ms": r(ms[0]),
        "max_ms": r(ms[-1]),
        "samples_ms": [r(x * 1000.0) for x in samples_s],  # in run order
    }


def fmt_ratio(value, floor):
    if value is None or not floor:
        return ""
    return " = %.2fx floor" % (value / floor)


def say(msg=""):
    print(msg, flush=True)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


# --------------------------------------------------------------------------
# the engine

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket; keep-alive like any HTTPConnection."""

    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path
        self.connects = 0

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.connects += 1


class CountingHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.connects = 0

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connects += 1


def demux(payload):
    """Split a non-TTY logs/attach stream (8-byte frame headers) into (stdout, stderr)."""
    out, err = [], []
    i, n = 0, len(payload)
    while i + 8 <= n:
        kind = payload[i]
        size = int.from_bytes(payload[i + 4:i + 8], "big")
        chunk = payload[i + 8:i + 8 + size]
        (err if kind == 2 else out).append(chunk)
        i += 8 + size
    if i != n:
        raise BenchError("engine log stream: %d stray bytes after the last frame" % (n - i))
    return b"".join(out), b"".join(err)


class Engine:
    """One keep-alive connection to the Engine API. Not shared between threads."""

    def __init__(self, sock_path, api, run_id, registry):
        self.sock_path = sock_path
        self.api = api
        self.run_id = run_id
        self.registry = registry
        self.conn = UnixHTTPConnection(sock_path)

    def request(self, method, path, body=None, expect=(200,)):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = "/v%s%s" % (self.api, path) if self.api else path
        try:
            self.conn.request(method, url, body=data, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise BenchError("Docker engine at %s: %s %s failed: %s: %s"
                             % (self.sock_path, method, path, type(e).__name__, e))
        if resp.status not in expect:
            raise BenchError("Docker engine: %s %s answered %d: %s"
                             % (method, path, resp.status,
                                payload[:300].decode("utf-8", "replace").strip()))
        return resp, payload

    def close(self):
        self.conn.close()

    # one run of the floor: create, start, wait, logs, delete
    def run(self, image, cmd, expect_stdout, env=None, steps=None):
        labels = {LABEL: "1", RUN_LABEL: self.run_id}
        cfg = {
            "Image": image,
            "Cmd": cmd,
            "NetworkDisabled": True,
            "Labels": labels,
            "HostConfig": {"NetworkMode": "none"},
        }
        if env:
            cfg["Env"] = env
        t0 = now()
        _, b = self.request("POST", "/containers/create", cfg, expect=(201,))
        cid = json.loads(b)["Id"]
        self.registry.add(cid)
        t1 = t2 = t3 = t4 = None
        try:
            t1 = now()
            self.request("POST", "/containers/%s/start" % cid, expect=(204,))
            t2 = now()
            _, b = self.request("POST", "/containers/%s/wait" % cid)
            code = json.loads(b).get("StatusCode")
            t3 = now()
            _, b = self.request("GET", "/containers/%s/logs?stdout=1&stderr=1" % cid)
            out, err = demux(b)
            t4 = now()
        finally:
            try:
                self.request("DELETE", "/containers/%s?force=1&v=1" % cid, expect=(204,))
                self.registry.discard(cid)
            except BenchError:
                pass  # left for the final sweep by label
        t5 = now()
        if code != 0:
            raise BenchError("floor run in %s exited %s: %s" % (image, code, err[:300]))
        if out.decode("utf-8", "replace") != expect_stdout:
            raise BenchError("floor run in %s: wrong output (%d bytes, wanted %d): %r"
                             % (image, len(out), len(expect_stdout), out[:100]))
        if steps is not None:
            steps["create"].append(t1 - t0)
            steps["start"].append(t2 - t1)
            steps["wait"].append(t3 - t2)
            steps["logs"].append(t4 - t3)
            steps["delete"].append(t5 - t4)
        return t5 - t0


def socket_path(arg):
    if arg:
        return arg[len("unix://"):] if arg.startswith("unix://") else arg
    dh = os.environ.get("DOCKER_HOST", "")
    if dh.startswith("unix://"):
        return dh[len("unix://"):]
    if dh:
        raise BenchError("DOCKER_HOST=%s is not a unix socket; the floor needs the local "
                         "engine's socket: pass --socket PATH" % dh)
    return "/var/run/docker.sock"


def engine_probe(sock_path, images):
    """Ping, negotiate the API version, read /version, check the images."""
    if not os.path.exists(sock_path):
        raise BenchError("the Docker engine is not running: no socket at %s "
                         "(start it: scripts/start-dockerd, or scripts/run)" % sock_path)
    e = Engine(sock_path, None, "", set())
    try:
        resp, _ = e.request("GET", "/_ping")
    except BenchError as ex:
        raise BenchError("the Docker engine does not answer at %s: %s" % (sock_path, ex))
    have = resp.getheader("Api-Version") or "1.41"
    hv = tuple(int(x) for x in have.split("."))
    api = "%d.%d" % min(hv, API_WANTED)
    e.api = api
    _, b = e.request("GET", "/version")
    version = json.loads(b)
    for img in images:
        try:
            e.request("GET", "/images/%s/json" % urllib.parse.quote(img, safe=""))
        except BenchError as ex:
            if "answered 404" in str(ex):
                raise BenchError("image %s is missing on the engine: build it with "
                                 "scripts/build-images" % img)
            raise
    _, b = e.request("GET", "/containers/json")
    running = len(json.loads(b))
    e.close()
    return api, version, running


def sweep(sock_path, api, run_id):
    """Remove every container labelled with this run (even ones we lost track of)."""
    e = Engine(sock_path, api, run_id, set())
    filters = urllib.parse.quote(json.dumps({"label": ["%s=%s" % (RUN_LABEL, run_id)]}))
    _, b = e.request("GET", "/containers/json?all=1&filters=" + filters)
    removed = 0
    for c in json.loads(b):
        try:
            e.request("DELETE", "/containers/%s?force=1&v=1" % c["Id"], expect=(204, 404))
            removed += 1
        except BenchError as ex:
            say("warning: could not remove container %s: %s" % (c["Id"][:12], ex))
    e.close()
    return removed


def service_leftovers(sock_path, api, pid, remove):
    """Containers still labelled with the service instance of this pid."""
    e = Engine(sock_path, api, "", set())
    filters = urllib.parse.quote(json.dumps({"label": ["org.bg-compiler.service"]}))
    _, b = e.request("GET", "/containers/json?all=1&filters=" + filters)
    host = socket.gethostname()
    mine = [c for c in json.loads(b)
            if c.get("Labels", {}).get("org.bg-compiler.instance", "")
            .startswith("%s/%d/" % (host, pid))]
    if remove:
        for c in mine:
            try:
                e.request("DELETE", "/containers/%s?force=1&v=1" % c["Id"], expect=(204, 404))
            except BenchError:
                pass
    e.close()
    return [c["Id"][:12] for c in mine]


# --------------------------------------------------------------------------
# the service

def check_binary(binary):
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise BenchError("no bg-compiler binary at %s: build it (cmake -S . -B build && "
                         "cmake --build build -j) or pass --binary PATH" % binary)


class Service:
    def __init__(self, args):
        self.args = args
        self.proc = None
        self.log = None
        self.url = args.url
        self.port = None
        self.stopped = None

    def start(self):
        a = self.args
        if self.url:
            u = urllib.parse.urlsplit(self.url)
            self.host, self.port = u.hostname, u.port or 80
            self.wait_healthy(30)
            return
        binary = a.binary
        check_binary(binary)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.host = "127.0.0.1"
        self.cmd = [binary, "start", "--port", str(self.port), "--workers", str(a.workers),
                    "--output", str(a.output)]
        if a.languages:
            self.cmd += ["--languages", a.languages]
        self.cmd += a.service_arg
        self.log = tempfile.NamedTemporaryFile(prefix="bench-service-", suffix=".log",
                                               delete=False)
        env = dict(os.environ)
        if a.socket:
            env["DOCKER_HOST"] = "unix://" + socket_path(a.socket)
        # Its own session: a Ctrl-C on the terminal reaches us, and we stop it
        # with SIGTERM as an operator would.
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        self.url = "http://127.0.0.1:%d" % self.port
        self.wait_healthy(30)

    def log_tail(self, n=20):
        if not self.log:
            return ""
        try:
            with open(self.log.name, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_healthy(self, timeout):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise BenchError("the service exited at start (status %s); its log:\n%s"
                                 % (self.proc.returncode, self.log_tail()))
            try:
                c = http.client.HTTPConnection(self.host, self.port, timeout=5)
                c.request("GET", "/healthz")
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status == 200:
                    self.health = json.loads(body)
                    return
                last = "HTTP %d %s" % (r.status, body[:200])
            except (OSError, http.client.HTTPException) as e:
                last = str(e)
            time.sleep(0.1)
        raise BenchError("the service at %s did not become healthy in %d s (last: %s)\n%s"
                         % (self.url, timeout, last, self.log_tail()))

    def languages(self):
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        c.request("GET", "/languages")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            raise BenchError("GET /languages answered %d" % r.status)
        return json.loads(body)

    def client(self):
        return CountingHTTPConnection(self.host, self.port, timeout=300)

    def stop(self):
        """SIGTERM, as an operator would; returns (exit status, seconds to exit)."""
        if not self.proc or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=self.args.grace + 20)
        except subprocess.TimeoutExpired:
            say("warning: the service did not exit %d s after SIGTERM; killing pid %d"
                % (self.args.grace + 20, self.proc.pid))
            self.proc.kill()
            rc = self.proc.wait()
        self.stopped = (rc, round(time.time() - t0, 3))
        return self.stopped


def service_run(conn, body, expect_stdout, path="/compile"):
    """One POST: body a dict (the JSON form) or bytes (the raw form, its
    language in path); returns (wall seconds, the result object)."""
    raw = isinstance(body, bytes)
    data = body if raw else json.dumps(body).encode()
    t0 = now()
    try:
        conn.request("POST", path, body=data,
                     headers={"Content-Type": "text/plain" if raw else "application/json"})
        r = conn.getresponse()
        payload = r.read()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        raise BenchError("POST /compile failed: %s: %s" % (type(e).__name__, e))
    t = now() - t0
    if r.status != 200:
        raise BenchError("POST /compile answered %d: %s"
                         % (r.status, payload[:300].decode("utf-8", "replace")))
    try:
        res = json.loads(payload)
    except ValueError:
        raise BenchError("POST /compile: not JSON: %r" % payload[:200])
    if not isinstance(res, list) or len(res) != 1 or not isinstance(res[0], dict):
        raise BenchError("POST /compile: expected one result, got %r" % payload[:200])
    res = res[0]
    if res.get("status") != "ok":
        raise BenchError("run status %s (message: %s, stderr: %r, compile: %r)"
                         % (res.get("status"), res.get("message"),
                            (res.get("stderr") or "")[:200], res.get("compile")))
    out = res.get("stdout")
    if out != expect_stdout:
        raise BenchError("wrong stdout: %d chars, wanted %d (truncated: %s): %r"
                         % (len(out or ""), len(expect_stdout), res.get("output_truncated"),
                            (out or "")[:80]))
    return t, res


# --------------------------------------------------------------------------
# phases

def paired(n, warmup, fa, fb, stop, order="interleaved", gap=0.0):
    """Take n samples of fa (the floor) and of fb (the service), after `warmup` of each.

    interleaved: A B, B A, A B ... so that both see the same machine (on a shared,
    noisy machine, figures taken minutes apart are not comparable).
    blocked: all of A, then all of B.
    `gap` seconds are slept after every run, so that work a side defers past its
    answer (the service removes its container after answering; a pool refills) does
    not land on the next run of the other side.
    Each function returns (seconds, extra). Returns (a_samples, a_extras, b_samples,
    b_extras, a_after_b) where a_after_b[k] tells whether A's k-th counted run came
    right after a run of B."""
    a_s, a_x, b_s, b_x, a_after_b = [], [], [], [], []
    last = [None]

    def one(fn, samples, extras, counted):
        if stop.is_set():
            raise Interrupted()
        t, extra = fn()
        if counted:
            samples.append(t)
            extras.append(extra)
            if fn is fa:
                a_after_b.append(last[0] is fb)
        last[0] = fn
        if gap > 0:
            time.sleep(gap)

    if order == "blocked":
        for fn, samples, extras in ((fa, a_s, a_x), (fb, b_s, b_x)):
            for i in range(warmup + n):
                one(fn, samples, extras, i >= warmup)
        return a_s, a_x, b_s, b_x, a_after_b
    for i in range(warmup + n):
        sides = [(fa, a_s, a_x), (fb, b_s, b_x)]
        if i % 2:
            sides.reverse()
        for fn, samples, extras in sides:
            one(fn, samples, extras, i >= warmup)
    return a_s, a_x, b_s, b_x, a_after_b


def neighbour_bias(name, fs, after, result):
    """Floor runs right after a service run against those right after a floor run."""
    x = sorted(t for t, f in zip(fs, after) if f)
    y = sorted(t for t, f in zip(fs, after) if not f)
    if not x or not y:
        return None
    mx, my = percentile(x, 50) * 1000, percentile(y, 50) * 1000
    out = {"floor_after_service_median_ms": round(mx, 1),
           "floor_after_floor_median_ms": round(my, 1),
           "n_after_service": len(x), "n_after_floor": len(y)}
    if my > 0 and mx / my > 1.1:
        note = ("%s: floor runs right after a service run took %.0f ms (median), after a "
                "floor run %.0f ms: work the service does after answering overlaps the "
                "floor's next run and flatters the ratio; raise --gap" % (name, mx, my))
        result["notes"].append(note)
        say("  note: " + note)
    return out


def check_phase(name, tp, result):
    """A throughput phase with errors is not a figure: stop when none succeeded, warn else."""
    if not tp["errors"]:
        return
    first = tp["error_samples"][0] if tp["error_samples"] else "?"
    if tp["runs"] == 0:
        raise BenchError("%s: every run failed (%d errors), stopping; first: %s"
                         % (name, tp["errors"], first))
    note = "%s: %d runs failed (of %d): the figure is not reliable; first: %s" \
        % (name, tp["errors"], tp["errors"] + tp["runs"], first)
    result["notes"].append(note)
    say("warning: " + note)


def pair_ratio(a_s, b_s, order):
    """The median of the per-pair ratios service/floor (robust to drifts in load)."""
    if order != "interleaved":
        return None
    r = sorted(b / a for a, b in zip(a_s, b_s) if a > 0)
    return round(percentile(r, 50), 3) if r else None


def throughput(make_client, do_run, close_client, concurrency, duration, warmup, stop):
    """`concurrency` threads, each its own client, run back to back.

    Steady state only: runs that end in the first `warmup` seconds are not counted
    (they include anything prepared ahead of the phase); then the runs that end
    within the next `duration` seconds are counted, and runs/s is their number over
    `duration`. Clients start no run after the window and finish the one in flight."""
    lock = threading.Lock()
    done, errors = [], []  # (start, end) of each successful run; error messages
    start = [None]

    def begin():
        start[0] = now()

    barrier = threading.Barrier(concurrency, action=begin)
    setup_errors = []

    def worker():
        try:
            client = make_client()
        except BenchError as e:
            setup_errors.append(str(e))
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            close_client(client)
            return
        deadline = start[0] + warmup + duration
        while not stop.is_set() and now() < deadline:
            t0 = now()
            try:
                do_run(client)
                t1 = now()
                with lock:
                    done.append((t0, t1))
            except BenchError as e:
                t1 = now()
                if start[0] + warmup <= t1 <= deadline:
                    with lock:
                        errors.append(str(e))
                if len(errors) > 50:
                    break
        close_client(client)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        # Let every client finish (and delete) its run in flight before the sweep.
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for t in threads:
            t.join(120)
        raise Interrupted()
    if setup_errors:
        raise BenchError(setup_errors[0])
    if stop.is_set():
        raise Interrupted()
    w0, w1 = start[0] + warmup, start[0] + warmup + duration
    lat = [t1 - t0 for t0, t1 in done if w0 <= t1 <= w1]
    out = {
        "concurrency": concurrency,
        "window_s": duration,
        "warmup_s": warmup,
        "runs": len(lat),
        "runs_total": len(done),
        "errors": len(errors),
        "error_samples": errors[:5],
        "runs_per_s": round(len(lat) / duration, 3),
        "latency": stats(lat),
    }
    out["latency"].pop("samples_ms", None)
    return out


# --------------------------------------------------------------------------

def machine_info(version, running):
    info = {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "engine_version": version.get("Version"),
        "engine_api": version.get("ApiVersion"),
        "engine_components": {c.get("Name"): c.get("Version")
                              for c in version.get("Components", [])},
        "containers_running_at_start": running,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["mem_total_kb"] = int(line.split()[1])
                    break
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return info


def binary_info(path):
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return {"path": os.path.abspath(path), "size": st.st_size, "sha256": digest[:16],
                "mtime": datetime.datetime.fromtimestamp(
                    st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")}
    except OSError as e:
        return {"path": path, "error": str(e)}


def git_head():
    try:
        r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=5)
        head = r.stdout.strip()
        r = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5)
        return head + ("+dirty" if r.stdout.strip() else "") if head else None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark bg-compiler against the raw Docker Engine API floor.")
    p.add_argument("--runs", type=int, default=30, help="sequential runs per latency figure (30)")
    p.add_argument("--big-runs", type=int, default=10,
                   help="sequential runs of the 1 MB output (10)")
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds per throughput phase (10)")
    p.add_argument("--tp-warmup", type=float, default=2.0,
                   help="seconds of each throughput phase not counted, before its window (2)")
    p.add_argument("--order", choices=("interleaved", "blocked"), default="interleaved",
                   help="sequential figures: floor and service runs alternated (default), "
                   "or all floor runs then all service runs")
    p.add_argument("--gap", type=float, default=0.5,
                   help="seconds slept after each sequential run, so that work done after "
                   "an answer does not land on the next run (0.5)")
    p.add_argument("--concurrency", default="1,4,16",
                   help="comma-separated client counts for throughput (1,4,16)")
    p.add_argument("--warmup", type=int, default=2,
                   help="uncounted runs before each sequential figure (2)")
    p.add_argument("--workers", type=int, default=4, help="the service's --workers (4)")
    p.add_argument("--output", type=int, default=2048,
                   help="the service's --output in KB; must hold 1 MB (2048)")
    p.add_argument("--grace", type=int, default=10, help="seconds to allow for the service's drain")
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "bg-compiler"),
                   help="bg-compiler binary (build/bg-compiler)")
    p.add_argument("--languages", help="the service's --languages (its default when absent)")
    p.add_argument("--service-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for `bg-compiler start` (repeatable)")
    p.add_argument("--url", help="benchmark an already running service (not started nor stopped)")
    p.add_argument("--socket", help="Docker engine socket (DOCKER_HOST, else /var/run/docker.sock)")
    p.add_argument("--out", help="JSON results file (bench/results-<timestamp>.json)")
    p.add_argument("--no-c", action="store_true", help="skip the C figures")
    p.add_argument("--quick", action="store_true",
                   help="small counts for a smoke run, not figures (runs 5, big-runs 2, duration 3, "
                   "warmup 1, tp-warmup 0.5, gap 0.2)")
    a = p.parse_args(argv)
    if a.quick:
        a.runs, a.big_runs, a.duration, a.warmup, a.tp_warmup, a.gap = 5, 2, 3.0, 1, 0.5, 0.2
    try:
        a.concurrency = [int(x) for x in a.concurrency.split(",") if x.strip()]
    except ValueError:
        p.error("--concurrency wants numbers like 1,4,16")
    if a.runs < 1 or a.big_runs < 1 or a.duration <= 0 or not a.concurrency or \
            min(a.concurrency) < 1 or a.warmup < 0 or a.tp_warmup < 0 or a.gap < 0:
        p.error("counts and durations must be positive")
    if not a.url and a.output < BIG // 1024 + 1:
        p.error("--output must be over 1024 KB for the 1 MB figure")
    return a


def begin_run():
    """Ctrl-C and SIGTERM interrupt the run (its clean-up still runs).
    Returns the stop event, the run's id and its start time."""
    stop = threading.Event()

    def on_term(signum, frame):
        stop.set()
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    # Even when started with SIGINT ignored (a background job), Ctrl-C must clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_id = "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
    return stop, run_id, datetime.datetime.now(datetime.timezone.utc)


def failure_status(e, stop, result):
    """An interrupt or a BenchError ended the run: note it, give the exit status."""
    stop.set()
    if isinstance(e, BenchError):
        say("\nerror: %s" % e)
        result["notes"].append("error: %s" % e)
        return 1
    say("\ninterrupted: cleaning up")
    result["notes"].append("interrupted")
    return 130


def begin_cleanup(stop):
    """A second Ctrl-C during clean-up must not leave anything behind."""
    stop.set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def finish_result(result, out_path):
    """Stamp the end and write the JSON file; False when it could not be written."""
    result["load"].setdefault("end", loadavg())
    result["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        say("results: %s" % out_path)
        return True
    except OSError as e:
        say("error: could not write %s: %s" % (out_path, e))
        return False


def main(argv):
    a = parse_args(argv)
    stop, run_id, started = begin_run()
    sock = socket_path(a.socket)
    if not a.url:
        check_binary(a.binary)
    images = [PY_IMAGE] + ([] if a.no_c else [C_IMAGE])
    api, version, running = engine_probe(sock, images)
    registry = set()  # containers of ours alive right now
    result = {
        "date": started.isoformat(timespec="seconds"),
        "run_id": run_id,
        "machine": machine_info(version, running),
        "options": {k: v for k, v in vars(a).items()},
        # the checkout bench.py runs from; with --binary the service may be built elsewhere
        "checkout_git": git_head(),
        "load": {"start": loadavg()},
        "floor": {},
        "service": {},
        "ratios": {},
        "notes": [],
    }
    out_path = a.out or os.path.join(
        ROOT, "bench", "results-%s.json" % started.strftime("%Y%m%dT%H%M%SZ"))
    m = result["machine"]
    say("bg-compiler bench  %s  run %s" % (result["date"], run_id))
    say("machine: %s cores, kernel %s, %s; engine %s (API %s, using %s); runc %s"
        % (m["nproc"], m["kernel"], m.get("cpu", "?"), m["engine_version"], m["engine_api"],
           api, m["engine_components"].get("runc", "?")))
    say("load average %s; %d containers already running (the machine is shared: expect noise)"
        % (result["load"]["start"], running))

    service = Service(a)
    engines = []
    exit_code = 0
    try:
        eng = Engine(sock, api, run_id, registry)
        engines.append(eng)

        # ----------------------------------------------------------- the service
        say("\n== the service")
        service.start()
        result["service"]["url"] = service.url
        result["service"]["command"] = getattr(service, "cmd", None)
        result["service"]["pid"] = service.proc.pid if service.proc else None
        result["service"]["health"] = getattr(service, "health", None)
        if service.proc:
            result["service"]["binary"] = binary_info(a.binary)
            try:
                r = subprocess.run([a.binary, "version"], capture_output=True, text=True,
                                   timeout=10)
                result["service"]["version"] = r.stdout.strip()
            except (OSError, subprocess.SubprocessError):
                pass
        langs = {l["name"]: l for l in service.languages()}
        for name in ["python"] + ([] if a.no_c else ["c"]):
            if name not in langs:
                raise BenchError("the service has no language %r" % name)
            if not langs[name].get("available"):
                raise BenchError("the service says language %r is not available (image %s)"
                                 % (name, langs[name].get("image")))
        out_kb = langs["python"].get("limits", {}).get("output_kb")
        result["service"]["python_output_kb"] = out_kb
        say("service %s (%s), workers %s, python output cap %s KB"
            % (service.url, result["service"].get("version", "?"),
               a.workers if service.proc else "?", out_kb))
        if out_kb is not None and out_kb * 1024 < BIG:
            say("warning: the python output cap (%s KB) is under 1 MB: the 1 MB figure will "
                "fail (the language profile's own limit wins if lower)" % out_kb)
        conn = service.client()
        ratios = result["ratios"]

        # ---------------------------------------------------- sequential latency
        say("\n== sequential latency: floor (Engine API: create, start, wait, logs, delete; "
            "one keep-alive unix socket) and service (POST /compile, one keep-alive "
            "connection), %s, %d each after %d warm-up runs, %g s between runs"
            % ("runs interleaved A B B A" if a.order == "interleaved"
               else "all floor runs, then all service runs", a.runs, a.warmup, a.gap))
        py_cmd = ["python3", "-c", PY_SCRIPT]
        py_body = {"lang": "python", "script": PY_SCRIPT}
        steps = {k: [] for k in ("create", "start", "wait", "logs", "delete")}
        result["load"]["python_seq"] = loadavg()
        fs, _, ss, sx, after = paired(
            a.runs, a.warmup,
            lambda: (eng.run(PY_IMAGE, py_cmd, "1\n", steps=steps), None),
            lambda: service_run(conn, py_body, "1\n"), stop, a.order, a.gap)
        # the step lists also hold the warm-up runs: drop them
        steps = {k: stats(v[a.warmup:]) for k, v in steps.items()}
        for v in steps.values():
            v.pop("samples_ms", None)
        fl = stats(fs)
        fl["steps"] = steps
        fl["neighbours"] = neighbour_bias("python print(1)", fs, after, result)
        result["floor"]["python_seq"] = fl
        sp = stats(ss)
        sp["server_duration"] = stats([r["duration_ms"] / 1000.0 for r in sx])
        sp["server_duration"].pop("samples_ms", None)
        result["service"]["python_seq"] = sp
        for q in ("median", "p95", "p99"):
            ratios["python_seq_" + q] = round(sp[q + "_ms"] / fl[q + "_ms"], 3)
        ratios["python_seq_paired"] = pair_ratio(fs, ss, a.order)
        say("floor python print(1) seq median %.0f ms, p95 %.0f ms, p99 %.0f ms (n=%d)"
            % (fl["median_ms"], fl["p95_ms"], fl["p99_ms"], fl["n"]))
        say("  floor steps (median ms): " + ", ".join(
            "%s %.1f" % (k, v["median_ms"]) for k, v in steps.items()))
        say("service python seq median %.0f ms%s; p95 %.0f ms%s; p99 %.0f ms%s"
            % (sp["median_ms"], fmt_ratio(sp["median_ms"], fl["median_ms"]),
               sp["p95_ms"], fmt_ratio(sp["p95_ms"], fl["p95_ms"]),
               sp["p99_ms"], fmt_ratio(sp["p99_ms"], fl["p99_ms"])))
        say("  %sserver-reported duration_ms median %.0f (container create to result)"
            % ("median of the per-pair ratios %.2fx; " % ratios["python_seq_paired"]
               if ratios["python_seq_paired"] else "", sp["server_duration"]["median_ms"]))

        if a.order == "interleaved" or a.gap > 0:
            # With a gap (or the floor's run) between two service runs, whatever the
            # service does after answering or prepares ahead (a warm pool) has time to
            # finish: also show the service's runs back to back, as a busy client sends.
            result["load"]["python_seq_back_to_back"] = loadavg()
            ss = []
            for i in range(a.warmup + a.runs):
                if stop.is_set():
                    raise Interrupted()
                t, _ = service_run(conn, py_body, "1\n")
                if i >= a.warmup:
                    ss.append(t)
            sbb = stats(ss)
            result["service"]["python_seq_back_to_back"] = sbb
            for q in ("median", "p95", "p99"):
                ratios["python_seq_back_to_back_" + q] = round(sbb[q + "_ms"] / fl[q + "_ms"], 3)
            say("service python seq back to back (no gap) median %.0f ms%s; p95 %.0f ms%s; "
                "p99 %.0f ms%s"
                % (sbb["median_ms"], fmt_ratio(sbb["median_ms"], fl["median_ms"]),
                   sbb["p95_ms"], fmt_ratio(sbb["p95_ms"], fl["p95_ms"]),
                   sbb["p99_ms"], fmt_ratio(sbb["p99_ms"], fl["p99_ms"])))

        if not a.no_c:
            c_cmd = ["sh", "-c", 'printf "%s" "$SRC" > /tmp/m.c && '
                     'gcc -O2 -std=c17 -o /tmp/m /tmp/m.c -lm && /tmp/m']
            c_body = {"lang": "c", "script": C_SCRIPT}
            result["load"]["c_seq"] = loadavg()
            fs, _, ss, sx, c_after = paired(
                a.runs, a.warmup,
                lambda: (eng.run(C_IMAGE, c_cmd, "1\n", env=["SRC=" + C_SCRIPT]), None),
                lambda: service_run(conn, c_body, "1\n"), stop, a.order, a.gap)
            fc = stats(fs)
            fc["neighbours"] = neighbour_bias("C", fs, c_after, result)
            result["floor"]["c_seq_one_container"] = fc
            sc = stats(ss)
            sc["server_duration_run"] = stats([r["duration_ms"] / 1000.0 for r in sx])
            sc["server_duration_compile"] = stats(
                [(r.get("compile") or {}).get("duration_ms", 0) / 1000.0 for r in sx])
            sc["server_duration_run"].pop("samples_ms", None)
            sc["server_duration_compile"].pop("samples_ms", None)
            result["service"]["c_seq"] = sc
            for q in ("median", "p95", "p99"):
                ratios["c_seq_%s" % q] = round(sc[q + "_ms"] / fl[q + "_ms"], 3)
                ratios["c_seq_%s_vs_c_floor" % q] = round(sc[q + "_ms"] / fc[q + "_ms"], 3)
            ratios["c_seq_paired_vs_c_floor"] = pair_ratio(fs, ss, a.order)
            say("floor C compile+run, one container (sh -c 'gcc ... && ./m') seq median %.0f ms, "
                "p95 %.0f ms, p99 %.0f ms" % (fc["median_ms"], fc["p95_ms"], fc["p99_ms"]))
            say("service C compile+run seq median %.0f ms%s; p95 %.0f ms%s; p99 %.0f ms%s"
                % (sc["median_ms"], fmt_ratio(sc["median_ms"], fl["median_ms"]),
                   sc["p95_ms"], fmt_ratio(sc["p95_ms"], fl["p95_ms"]),
                   sc["p99_ms"], fmt_ratio(sc["p99_ms"], fl["p99_ms"])))
            say("  = %.2fx the C one-container floor%s; server-reported "
                "compile %.0f ms + run %.0f ms (medians)"
                % (sc["median_ms"] / fc["median_ms"],
                   " (per-pair %.2fx)" % ratios["c_seq_paired_vs_c_floor"]
                   if ratios["c_seq_paired_vs_c_floor"] else "",
                   sc["server_duration_compile"]["median_ms"],
                   sc["server_duration_run"]["median_ms"]))

        big_body = {"lang": "python", "script": BIG_SCRIPT}
        result["load"]["python_1mb"] = loadavg()
        fs, _, ss, _, big_after = paired(
            a.big_runs, 1,
            lambda: (eng.run(PY_IMAGE, ["python3", "-c", BIG_SCRIPT], BIG_EXPECT), None),
            lambda: service_run(conn, big_body, BIG_EXPECT), stop, a.order, a.gap)
        fb = stats(fs)
        fb["neighbours"] = neighbour_bias("1 MB", fs, big_after, result)
        result["floor"]["python_1mb"] = fb
        sb = stats(ss)
        sb["stdout_bytes"] = len(BIG_EXPECT)
        result["service"]["python_1mb"] = sb
        ratios["python_1mb_median"] = round(sb["median_ms"] / fb["median_ms"], 3)
        ratios["python_1mb_paired"] = pair_ratio(fs, ss, a.order)
        say("floor python 1 MB output median %.0f ms, p95 %.0f ms (n=%d)"
            % (fb["median_ms"], fb["p95_ms"], fb["n"]))
        say("service python 1 MB output median %.0f ms%s; p95 %.0f ms%s "
            "(stdout checked: %d bytes)"
            % (sb["median_ms"], fmt_ratio(sb["median_ms"], fb["median_ms"]), sb["p95_ms"],
               fmt_ratio(sb["p95_ms"], fb["p95_ms"]), len(BIG_EXPECT)))
        result["floor"]["connects_sequential"] = eng.conn.connects
        result["service"]["connects_sequential"] = conn.connects
        say("connections opened for all sequential runs: floor %d, service %d (keep-alive)"
            % (eng.conn.connects, conn.connects))
        conn.close()

        # ------------------------------------------------------------ throughput
        say("\n== throughput, python print(1): at each concurrency the floor, then the "
            "service; runs ending in a %g s window after %g s of warm-up; every client its "
            "own keep-alive connection" % (a.duration, a.tp_warmup))
        result["floor"]["throughput"] = {}
        result["service"]["throughput"] = {}
        for c in a.concurrency:
            result["load"]["throughput_%d" % c] = loadavg()
            tp = throughput(lambda: Engine(sock, api, run_id, registry),
                            lambda e: e.run(PY_IMAGE, py_cmd, "1\n"),
                            lambda e: e.close(), c, a.duration, a.tp_warmup, stop)
            result["floor"]["throughput"][str(c)] = tp
            say("floor   %2d clients  %.2f runs/s  (%d runs in %g s, %d errors, latency "
                "median %.0f ms)" % (c, tp["runs_per_s"], tp["runs"], tp["window_s"],
                                     tp["errors"], tp["latency"].get("median_ms", 0)))
            check_phase("floor throughput at %d clients" % c, tp, result)
            floor_rate = tp["runs_per_s"]
            tp = throughput(service.client,
                            lambda cl: service_run(cl, py_body, "1\n"),
                            lambda cl: cl.close(), c, a.duration, a.tp_warmup, stop)
            result["service"]["throughput"][str(c)] = tp
            ratios["throughput_%d" % c] = round(tp["runs_per_s"] / floor_rate, 3) \
                if floor_rate else None
            say("service %2d clients  %.2f runs/s = %.2fx floor (%.2f runs/s)  (%d runs in "
                "%g s, %d errors, latency median %.0f ms)"
                % (c, tp["runs_per_s"], tp["runs_per_s"] / floor_rate if floor_rate else 0,
                   floor_rate, tp["runs"], tp["window_s"], tp["errors"],
                   tp["latency"].get("median_ms", 0)))
            check_phase("service throughput at %d clients" % c, tp, result)

    except (KeyboardInterrupt, Interrupted, BenchError) as e:
        exit_code = failure_status(e, stop, result)
    finally:
        begin_cleanup(stop)
        for e in engines:
            e.close()
        if service.proc:
            rc, secs = service.stop()
            result["service"]["exit"] = {"status": rc, "seconds_after_sigterm": secs}
            say("service stopped with SIGTERM: exit status %s after %.2f s" % (rc, secs))
            if rc != 0:
                say("its log (tail):\n" + service.log_tail())
            try:
                left = service_leftovers(sock, api, service.proc.pid, remove=True)
                result["service"]["containers_left_after_exit"] = left
                if left:
                    say("warning: the service left %d containers behind (removed now): %s"
                        % (len(left), " ".join(left)))
            except BenchError as e:
                say("warning: could not check the service's leftovers: %s" % e)
            result["service"]["log"] = service.log.name
        try:
            n = sweep(sock, api, run_id)
            result["floor"]["containers_swept_at_end"] = n
            if n:
                say("removed %d leftover bench containers" % n)
        except BenchError as e:
            say("warning: final clean-up failed: %s (remove containers labelled %s=%s)"
                % (e, RUN_LABEL, run_id))
        if not finish_result(result, out_path):
            exit_code = exit_code or 1
    return exit_code


def run_main(main):
    """Exit with main's status: 2 for a BenchError before the run began,
    130 for Ctrl-C."""
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run_main(main)
