#!/usr/bin/env python3
"""bg-compiler cluster benchmark: throughput of the shared queue on Redis, as
ratios to the raw Docker Engine API floor measured in the same run.

Configurations, each started here and stopped with SIGTERM after its window:
  standalone   `bg-compiler start --workers 4` (the in-process queue)
  cluster-W    a redis-server of our own (loopback, free port, temporary
               folder, no persistence), one front door (`start --queue ...`,
               runs no jobs) and W worker processes (`worker --queue ...
               --workers T`), for each W of --processes (1,2)
Every configuration gets the same total warm pool (--pool, split between the
worker processes of a cluster).

Throughput is python print(1) at C concurrent clients (raw
`POST /compile?lang=python`, each client its own keep-alive connection):
runs ending in the first --tp-warmup seconds are not counted, then the runs
ending in a --duration window are. Every answer is checked (status ok, stdout
"1\\n"); failures are counted apart. The floor (bench.py's: create, start,
wait, logs, delete through the Engine API) is measured at the same
concurrency in a window before and after each configuration:
F S F C1 F C2 F ..., so both see the same (shared, noisy) machine, and each
configuration's ratio is to the mean of the two floor windows around it.

Python 3 standard library only; the floor, the throughput loop, the engine
clean-up and the service wrapper are bench.py's. See bench/README.md.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: reused, not copied)
from bench import BenchError, Interrupted, say, loadavg, now  # noqa: E402

ROOT = bench.ROOT
PY_IMAGE = bench.PY_IMAGE
PY_SCRIPT = bench.PY_SCRIPT
EXPECT = "1\n"
RUNS_OK = 'bg_runs_total{language="python",status="ok"}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# redis-server

class Redis:
    """Our own redis-server: loopback, a free port, a temporary folder, no
    persistence (`--save "" --appendonly no`), its own session (a Ctrl-C on
    the terminal must not stop it before the workers have drained)."""

    def __init__(self, binary):
        self.binary = binary
        self.proc = None
        self.dir = None
        self.port = None

    def start(self):
        path = shutil.which(self.binary)
        if not path:
            raise BenchError("no redis-server (%s) on PATH: install it (apt-get install "
                             "redis-server) or pass --redis-server PATH" % self.binary)
        self.dir = tempfile.mkdtemp(prefix="bench-cluster-redis-")
        self.port = free_port()
        self.cmd = [path, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", self.dir, "--save", "", "--appendonly", "no",
                    "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 20
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("redis-server exited at start (status %s); its log:\n%s"
                                 % (self.proc.returncode, self.log_tail()))
            try:
                if self.command("PING") == "PONG":
                    info = self.command("INFO", "server")
                    m = re.search(r"redis_version:(\S+)", info)
                    self.version = m.group(1) if m else None
                    return
            except (OSError, BenchError) as e:
                last = e
            time.sleep(0.1)
        raise BenchError("redis-server did not answer PING on port %d in 20 s (last: %s)\n%s"
                         % (self.port, last, self.log_tail()))

    def command(self, *args, db=None):
        """One command over RESP; returns a simple, integer or bulk reply as str."""
        def enc(parts):
            out = b"*%d\r\n" % len(parts)
            for p in parts:
                p = str(p).encode()
                out += b"$%d\r\n%s\r\n" % (len(p), p)
            return out
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            f = s.makefile("rb")
            replies = []
            for cmd in ([("SELECT", db)] if db is not None else []) + [args]:
                s.sendall(enc(cmd))
                line = f.readline()
                if not line:
                    raise BenchError("redis closed the connection")
                kind, rest = line[:1], line[1:].rstrip(b"\r\n")
                if kind == b"-":
                    raise BenchError("redis %s: %s" % (cmd[0], rest.decode()))
                if kind == b"$":
                    n = int(rest)
                    rest = f.read(n + 2)[:n] if n >= 0 else b""
                replies.append(rest.decode("utf-8", "replace"))
            return replies[-1]

    def url(self, db):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def log_tail(self, n=20):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except (OSError, TypeError):
            return ""

    def stop(self):
        """SIGTERM; returns the exit status. Removes the temporary folder."""
        rc = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    say("warning: redis-server (pid %d) did not exit 30 s after SIGTERM; "
                        "killing it" % self.proc.pid)
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


# --------------------------------------------------------------------------
# processes of the service

class Proc(bench.Service):
    """A front door or a worker: bench.Service's health wait, log and SIGTERM
    stop, with our own command line (`start --queue ...` / `worker --queue ...`)."""

    def __init__(self, args, name, command, flags):
        super().__init__(argparse.Namespace(url=None, grace=args.grace))
        self.name = name
        self.binary = args.binary
        self.command = command
        self.flags = flags
        self.socket = args.socket

    def start(self):
        self.port = free_port()
        self.host = "127.0.0.1"
        self.cmd = [self.binary, self.command, "--port", str(self.port)] + self.flags
        self.log = tempfile.NamedTemporaryFile(prefix="bench-cluster-%s-" % self.name,
                                               suffix=".log", delete=False)
        env = dict(os.environ)
        if self.socket:
            env["DOCKER_HOST"] = "unix://" + bench.socket_path(self.socket)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        self.url = "http://127.0.0.1:%d" % self.port
        try:
            self.wait_healthy(30)
        except BenchError as e:
            raise BenchError("%s (`%s`): %s" % (self.name, " ".join(self.cmd), e))


def get(proc, path):
    c = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def metric(proc, name):
    """A counter or gauge from GET /metrics, or None."""
    try:
        status, data = get(proc, "/metrics")
    except (OSError, http.client.HTTPException):
        return None
    m = re.search(r"^%s (\d+(?:\.\d+)?)" % re.escape(name), data.decode(errors="replace"), re.M)
    return float(m.group(1)) if m and status == 200 else None


def raw_run(conn):
    """One raw POST /compile?lang=python of print(1), checked; returns seconds."""
    return bench.service_run(conn, PY_SCRIPT.encode(), EXPECT, path="/compile?lang=python")[0]


# --------------------------------------------------------------------------
# configurations

class Config:
    """The processes of one configuration; started, measured, stopped."""

    def __init__(self, a, name, label, redis=None, db=None, processes=0):
        self.a = a
        self.name = name
        self.label = label
        self.redis = redis
        self.db = db
        self.processes = processes
        self.front = None
        self.workers = []
        self.procs = []  # in start order

    def describe(self):
        a = self.a
        if not self.redis:
            return {"kind": "standalone", "workers": a.standalone_workers, "pool": a.pool}
        return {"kind": "cluster", "worker_processes": self.processes,
                "threads_per_process": a.worker_threads,
                "threads_total": self.processes * a.worker_threads,
                "pool_per_process": pool_share(a.pool, self.processes), "pool_total": a.pool,
                "redis_db": self.db}

    def start(self, started):
        a = self.a
        if not self.redis:
            args = argparse.Namespace(
                url=None, binary=a.binary, workers=a.standalone_workers, output=a.output,
                languages=a.languages, socket=a.socket, grace=a.grace,
                service_arg=["--pool", str(a.pool)] + a.standalone_arg)
            s = bench.Service(args)
            s.name = "standalone"
            started.append(s)
            self.procs.append(s)
            self.front = s
            s.start()
            check_instance(s)
            return
        self.redis.command("FLUSHDB", db=self.db)
        url = self.redis.url(self.db)
        lang = ["--languages", a.languages] if a.languages else []
        shares = pool_share(a.pool, self.processes)
        for i in range(self.processes):
            w = Proc(a, "worker%d" % (i + 1), "worker",
                     ["--queue", url, "--workers", str(a.worker_threads),
                      "--pool", str(shares[i])] + lang + a.worker_arg)
            started.append(w)
            self.procs.append(w)
            self.workers.append(w)
            w.start()
            check_instance(w)
        f = Proc(a, "front", "start", ["--queue", url] + lang + a.front_arg)
        started.append(f)
        self.procs.append(f)
        self.front = f
        f.start()
        check_instance(f)

    def prime(self, n):
        """A few sequential requests: the path works before anything is timed."""
        c = self.front.client()
        try:
            for _ in range(n):
                raw_run(c)
        finally:
            c.close()

    def info(self):
        out = []
        for p in self.procs:
            d = {"name": p.name, "pid": p.proc.pid if p.proc else None,
                 "instance": getattr(p, "instance", None),
                 "command": getattr(p, "cmd", None), "log": p.log.name if p.log else None,
                 "health": getattr(p, "health", None)}
            if p is not self.front or not self.redis:
                d["python_runs_ok"] = metric(p, RUNS_OK)
            out.append(d)
        return out


def pool_share(total, n):
    """Split the total pool between n processes (the first ones get the remainder)."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def check_instance(p):
    """The process that answered is ours (another session may use the same port)."""
    status, data = get(p, "/")
    inst = json.loads(data).get("instance", "") if status == 200 else ""
    if not inst.startswith("%s/%d/" % (socket.gethostname(), p.proc.pid)):
        raise BenchError("port %d answers as instance %r, not %s (pid %d): another "
                         "process holds the port" % (p.port, inst, p.name, p.proc.pid))
    p.instance = inst


def stop_procs(procs, sock, api, result_list):
    """SIGTERM every process of ours still running (front doors first, so no new
    job comes in; then the workers, which need Redis while they drain), then
    check through the engine that no container of theirs remains."""
    for p in sorted(procs, key=lambda p: 0 if getattr(p, "command", "start") == "start" else 1):
        if not p.proc:
            continue
        was_running = p.proc.poll() is None
        rc, secs = p.stop()
        entry = {"name": p.name, "pid": p.proc.pid, "exit_status": rc,
                 "seconds_after_sigterm": secs if was_running else None}
        if was_running:
            say("  %s (pid %d) stopped with SIGTERM: exit status %s after %.2f s"
                % (p.name, p.proc.pid, rc, secs))
        if rc not in (0, None):
            say("  warning: %s exited %s; its log (tail):\n%s" % (p.name, rc, p.log_tail()))
        result_list.append(entry)
    for p in procs:
        if not p.proc:
            continue
        try:
            left = bench.service_leftovers(sock, api, p.proc.pid, remove=True)
        except BenchError as e:
            say("  warning: could not check the containers of %s (pid %d): %s"
                % (p.name, p.proc.pid, e))
            continue
        for entry in result_list:
            if entry["pid"] == p.proc.pid:
                entry["containers_left_after_exit"] = left
        if left:
            say("  warning: %s (pid %d) left %d containers behind (removed now): %s"
                % (p.name, p.proc.pid, len(left), " ".join(left)))


def remaining(sock, api, pids, remove):
    """Containers labelled org.bg-compiler.service of any of these pids (removed
    first when `remove`)."""
    left = []
    for pid in pids:
        left += bench.service_leftovers(sock, api, pid, remove=remove)
    return left


# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Throughput of bg-compiler's shared queue on Redis (front door + "
        "worker processes) and of the standalone service, against the raw Docker "
        "Engine API floor of the same run.")
    p.add_argument("--processes", default="1,2",
                   help="comma-separated worker-process counts W to measure (1,2)")
    p.add_argument("--worker-threads", type=int, default=2,
                   help="--workers of each worker process (2)")
    p.add_argument("--pool", type=int, default=8,
                   help="total warm pool of each configuration, split between worker "
                   "processes (8)")
    p.add_argument("--standalone-workers", type=int, default=4,
                   help="--workers of the standalone service (4)")
    p.add_argument("--no-standalone", action="store_true",
                   help="skip the standalone service")
    p.add_argument("--concurrency", type=int, default=8, help="client threads (8)")
    p.add_argument("--duration", type=float, default=20.0,
                   help="counted window of each phase, seconds (20)")
    p.add_argument("--tp-warmup", type=float, default=3.0,
                   help="uncounted start of each phase, seconds (3)")
    p.add_argument("--rounds", type=int, default=1,
                   help="times to measure every configuration; even rounds go in reverse "
                   "order (1)")
    p.add_argument("--prime", type=int, default=3,
                   help="checked sequential requests to each configuration before its "
                   "phase (3)")
    p.add_argument("--output", type=int, default=30,
                   help="the standalone service's --output in KB (30)")
    p.add_argument("--grace", type=int, default=10,
                   help="seconds to allow for each process's drain")
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "bg-compiler"),
                   help="bg-compiler binary (build/bg-compiler)")
    p.add_argument("--languages", help="--languages for every process (their default when absent)")
    p.add_argument("--redis-server", default="redis-server", help="redis-server binary")
    p.add_argument("--front-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for the front door (repeatable)")
    p.add_argument("--worker-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for each worker process (repeatable)")
    p.add_argument("--standalone-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for the standalone service (repeatable)")
    p.add_argument("--socket", help="Docker engine socket (DOCKER_HOST, else /var/run/docker.sock)")
    p.add_argument("--out", help="JSON results file (bench/results-cluster-<timestamp>.json)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run, not figures: duration 3, tp-warmup 1, prime 1")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.tp_warmup, a.prime = 3.0, 1.0, 1
    try:
        a.processes = [int(x) for x in a.processes.split(",") if x.strip()]
    except ValueError:
        p.error("--processes wants numbers like 1,2")
    if any(w < 1 for w in a.processes) or a.worker_threads < 1 or a.concurrency < 1 or \
            a.standalone_workers < 1 or a.pool < 0 or a.duration <= 0 or a.tp_warmup < 0 or \
            a.rounds < 1 or a.prime < 0:
        p.error("counts and durations must be positive")
    if not a.processes and a.no_standalone:
        p.error("nothing to measure")
    return a


def main(argv):
    a = parse_args(argv)
    stop, run_id, started_at = bench.begin_run()
    sock = bench.socket_path(a.socket)
    bench.check_binary(a.binary)
    api, version, running = bench.engine_probe(sock, [PY_IMAGE])
    registry = set()
    result = {
        "date": started_at.isoformat(timespec="seconds"),
        "run_id": run_id,
        "machine": bench.machine_info(version, running),
        "options": {k: v for k, v in vars(a).items()},
        "checkout_git": bench.git_head(),
        "binary": bench.binary_info(a.binary),
        "load": {"start": loadavg()},
        "phases": [],
        "summary": {},
        "processes_stopped": [],
        "notes": [],
    }
    out_path = a.out or os.path.join(
        ROOT, "bench", "results-cluster-%s.json" % started_at.strftime("%Y%m%dT%H%M%SZ"))
    m = result["machine"]
    say("bg-compiler cluster bench  %s  run %s" % (result["date"], run_id))
    say("machine: %s cores, kernel %s, %s; engine %s (API %s)"
        % (m["nproc"], m["kernel"], m.get("cpu", "?"), m["engine_version"], api))
    say("load average %s; %d containers already running (the machine is shared: expect noise)"
        % (result["load"]["start"], running))

    redis = Redis(a.redis_server) if a.processes else None
    started = []    # every process we started, for the final clean-up
    exit_code = 0
    try:
        if redis:
            redis.start()
            result["redis"] = {"version": redis.version, "port": redis.port,
                               "command": redis.cmd}
            say("redis-server %s on 127.0.0.1:%d (no persistence)" % (redis.version, redis.port))

        configs = []
        if not a.no_standalone:
            configs.append(lambda: Config(
                a, "standalone", "standalone (start --workers %d)" % a.standalone_workers))
        for w in a.processes:
            configs.append(lambda w=w: Config(
                a, "cluster-%d" % w, "cluster, %d worker process%s x %d thr"
                % (w, "" if w == 1 else "es", a.worker_threads), redis, 0, w))

        def floor_phase(index):
            say("\n== floor window %d: raw Engine API, %d clients" % (index, a.concurrency))
            load = loadavg()
            tp = bench.throughput(lambda: bench.Engine(sock, api, run_id, registry),
                                  lambda e: e.run(PY_IMAGE, ["python3", "-c", PY_SCRIPT], EXPECT),
                                  lambda e: e.close(), a.concurrency, a.duration, a.tp_warmup,
                                  stop)
            ph = {"kind": "floor", "name": "floor", "index": index, "load": load,
                  "load_end": loadavg(), "throughput": tp}
            result["phases"].append(ph)
            say("floor      %.2f runs/s  (%d runs in %g s, %d errors, latency p50 %.0f ms, "
                "p95 %.0f ms; load %s)"
                % (tp["runs_per_s"], tp["runs"], tp["window_s"], tp["errors"],
                   tp["latency"].get("median_ms", 0), tp["latency"].get("p95_ms", 0), load))
            bench.check_phase("floor window %d" % index, tp, result)
            return ph

        order = []
        for r in range(a.rounds):
            order += [(r, make) for make in (configs if r % 2 == 0 else configs[::-1])]
        db_next = 0
        floor_phase(0)
        for i, (rnd, make) in enumerate(order):
            cfg = make()
            if cfg.redis:
                db_next = db_next % 15 + 1
                cfg.db = db_next
            say("\n== %s (round %d)" % (cfg.label, rnd + 1))
            cfg.start(started)
            say("started: " + ", ".join("%s pid %d port %d" % (p.name, p.proc.pid, p.port)
                                        for p in cfg.procs))
            cfg.prime(a.prime)
            failures = []

            def run(conn):
                try:
                    return raw_run(conn)
                except BenchError as e:
                    failures.append(str(e))
                    raise
            load = loadavg()
            tp = bench.throughput(cfg.front.client, run, lambda c: c.close(),
                                  a.concurrency, a.duration, a.tp_warmup, stop)
            ph = {"kind": cfg.name.split("-")[0], "name": cfg.name, "label": cfg.label,
                  "round": rnd + 1, "index": i, "config": cfg.describe(), "load": load,
                  "load_end": loadavg(), "throughput": tp,
                  "failures_including_warmup": len(failures),
                  "processes": cfg.info()}
            if cfg.redis:
                ph["cluster_jobs_claimed"] = metric(cfg.front, "bg_cluster_jobs_claimed_total")
                ph["cluster_jobs_dead"] = metric(cfg.front, "bg_cluster_jobs_dead_total")
            result["phases"].append(ph)
            per = [p.get("python_runs_ok") for p in ph["processes"] if "python_runs_ok" in p]
            say("%-10s %.2f req/s  (%d ok in %g s, %d failures in the window, %d in all; "
                "latency p50 %.0f ms, p95 %.0f ms; load %s)"
                % (cfg.name, tp["runs_per_s"], tp["runs"], tp["window_s"], tp["errors"],
                   len(failures), tp["latency"].get("median_ms", 0),
                   tp["latency"].get("p95_ms", 0), load))
            if cfg.redis:
                say("  python runs ok per worker process (whole life): %s"
                    % ", ".join("%d" % x if x is not None else "?" for x in per))
            bench.check_phase("%s (round %d)" % (cfg.name, rnd + 1), tp, result)
            # Stopped before the next floor window, which sees none of its processes.
            # (On an error or Ctrl-C, the clean-up below stops whatever still runs.)
            stop_procs(cfg.procs, sock, api, result["processes_stopped"])
            floor_phase(i + 1)

    except (KeyboardInterrupt, Interrupted, BenchError) as e:
        exit_code = bench.failure_status(e, stop, result)
    finally:
        bench.begin_cleanup(stop)
        live = [p for p in started if p.proc and p.proc.poll() is None]
        if live:
            say("stopping %d process(es) still running" % len(live))
            stop_procs(live, sock, api, result["processes_stopped"])
        if redis and redis.proc:
            rc = redis.stop()
            result.setdefault("redis", {})["exit_status"] = rc
            say("redis-server stopped with SIGTERM: exit status %s" % rc)
        try:
            n = bench.sweep(sock, api, run_id)
            result["floor_containers_swept_at_end"] = n
            if n:
                say("removed %d leftover floor containers" % n)
        except BenchError as e:
            say("warning: final clean-up failed: %s (remove containers labelled %s=%s)"
                % (e, bench.RUN_LABEL, run_id))
        pids = [p.proc.pid for p in started if p.proc]
        try:
            removed = remaining(sock, api, pids, remove=True)
            if removed:
                say("warning: removed %d containers the service processes left: %s"
                    % (len(removed), " ".join(removed)))
            result["service_containers_removed_at_end"] = removed
            left = remaining(sock, api, pids, remove=False)
            result["service_containers_left_at_end"] = left
            say("containers labelled org.bg-compiler.service of the %d processes started "
                "here, left now: %d%s" % (len(pids), len(left),
                                          (" (" + " ".join(left) + ")") if left else ""))
            if left:
                exit_code = exit_code or 1
        except BenchError as e:
            say("warning: could not check the service's containers: %s" % e)
        result["load"]["end"] = loadavg()
        if any(p["kind"] != "floor" for p in result["phases"]):
            summarize(a, result)
            print_table(result)
        if not bench.finish_result(result, out_path):
            exit_code = exit_code or 1
    return exit_code


def summarize(a, result):
    """One row per configuration (rounds merged): req/s as the mean of its phases,
    each phase's ratio to the mean of the floor windows just before and after it."""
    phases = result["phases"]
    floors = [p for p in phases if p["kind"] == "floor"]
    rows = []
    fl_rates = [p["throughput"]["runs_per_s"] for p in floors]
    rows.append({
        "name": "floor", "label": "floor (raw Engine API)",
        "req_per_s": round(sum(fl_rates) / len(fl_rates), 3),
        "req_per_s_each": fl_rates,
        "ratio": 1.0, "ratio_each": [],
        "p50_ms": [p["throughput"]["latency"].get("median_ms") for p in floors],
        "p95_ms": [p["throughput"]["latency"].get("p95_ms") for p in floors],
        "ok": sum(p["throughput"]["runs"] for p in floors),
        "failures": sum(p["throughput"]["errors"] for p in floors),
        "load": [p["load"] for p in floors],
    })
    names = []
    for p in phases:
        if p["kind"] != "floor" and p["name"] not in names:
            names.append(p["name"])
    for name in names:
        mine = [p for p in phases if p["name"] == name]
        ratios, rates = [], []
        for p in mine:
            k = phases.index(p)
            around = [phases[j]["throughput"]["runs_per_s"] for j in (k - 1, k + 1)
                      if 0 <= j < len(phases) and phases[j]["kind"] == "floor"]
            f = sum(around) / len(around) if around else 0
            p["floor_around_req_per_s"] = around
            p["ratio_to_floor"] = round(p["throughput"]["runs_per_s"] / f, 3) if f else None
            ratios.append(p["ratio_to_floor"])
            rates.append(p["throughput"]["runs_per_s"])
        good = [r for r in ratios if r is not None]
        rows.append({
            "name": name, "label": mine[0]["label"], "config": mine[0]["config"],
            "req_per_s": round(sum(rates) / len(rates), 3), "req_per_s_each": rates,
            "ratio": round(sum(good) / len(good), 3) if good else None, "ratio_each": ratios,
            "p50_ms": [p["throughput"]["latency"].get("median_ms") for p in mine],
            "p95_ms": [p["throughput"]["latency"].get("p95_ms") for p in mine],
            "ok": sum(p["throughput"]["runs"] for p in mine),
            "failures": sum(p["throughput"]["errors"] for p in mine),
            "failures_including_warmup": sum(p["failures_including_warmup"] for p in mine),
            "load": [p["load"] for p in mine],
        })
    result["summary"] = {"concurrency": a.concurrency, "window_s": a.duration,
                         "warmup_s": a.tp_warmup, "rows": rows}


def print_table(result):
    s = result["summary"]
    say("\n== python print(1) throughput, %d clients, %g s windows after %g s warm-up"
        % (s["concurrency"], s["window_s"], s["warmup_s"]))
    say("\nevery window, in run order (vs floor: over the mean of the floor windows "
        "just before and after it)")
    head = "%-3s %-36s %7s %9s %7s %7s %5s %5s  %s" % (
        "#", "phase", "req/s", "vs floor", "p50 ms", "p95 ms", "ok", "fail", "load avg at start")
    say(head)
    say("-" * len(head))
    for k, p in enumerate(result["phases"]):
        tp = p["throughput"]
        ratio = p.get("ratio_to_floor")
        say("%-3d %-36s %7.2f %9s %7.0f %7.0f %5d %5d  %s"
            % (k, p.get("label", "floor (raw Engine API)")[:36], tp["runs_per_s"],
               "%.2fx" % ratio if ratio is not None else "-",
               tp["latency"].get("median_ms") or 0, tp["latency"].get("p95_ms") or 0,
               tp["runs"], tp["errors"],
               " ".join("%.2f" % x for x in p["load"]) if p["load"] else "?"))
    say("\nsummary (req/s and vs floor: mean over windows; p50/p95: range over windows)")
    head = "%-48s %7s %9s %11s %11s %5s %5s" % (
        "configuration", "req/s", "vs floor", "p50 ms", "p95 ms", "ok", "fail")
    say(head)
    say("-" * len(head))
    rng = lambda xs: ("%.0f" % min(xs) if min(xs) == max(xs)
                      else "%.0f-%.0f" % (min(xs), max(xs))) if xs else "-"
    for r in s["rows"]:
        n = len(r["req_per_s_each"])
        label = r["label"] + (" (%d windows)" % n if n > 1 else "")
        say("%-48s %7.2f %9s %11s %11s %5d %5d"
            % (label[:48], r["req_per_s"], "%.2fx" % r["ratio"] if r["ratio"] is not None
               else "-", rng([x for x in r["p50_ms"] if x is not None]),
               rng([x for x in r["p95_ms"] if x is not None]), r["ok"], r["failures"]))
    say("load average at start %s, at end %s (this run's own containers are part of it)"
        % (" ".join("%.2f" % x for x in result["load"]["start"] or []),
           " ".join("%.2f" % x for x in result["load"].get("end") or [])))
    for n in result["notes"]:
        say("note: " + n)


if __name__ == "__main__":
    bench.run_main(main)
