#!/usr/bin/env python3
"""Seadragon's benchmarks, side by side with HAProxy 2.6 and plain nginx.

    python3 scripts/bench/seadragon-bench.py [--build build] [--output BENCHMARKS.md]
                                             [--duration 1] [--rounds 5] [--backlog 300]
                                             [--parked 10000] [--idle 5] [--only 1,3,...]

`make bench` runs it after `make all`. Everything runs on loopback, on free
ports, in a temporary directory under build/bench/, in front of one
stand-in Ollama (scripts/ollama-standin.py); every process it starts is
stopped when it ends, fails or is interrupted. It prints one table and
writes it, with the machine it ran on, to --output.

The figures (section numbers are issue 6's):

1. Handoff gap: the stand-in's idle time between the last byte of one
   answer and the start of the next request (its records' last_byte and
   start), while a backlog of --backlog requests of three priorities drains
   through a gate of capacity 1: Seadragon with 1 and 2 workers (and 2
   workers with tick=1ms), HAProxy with `server ... maxconn 1` and 1 or 2
   threads.
2. Dispatch correctness under that load: each request is sent only once
   the gateway counts the one before it as queued (Seadragon's metrics,
   HAProxy's `show stat`), so arrival order is known exactly; then a
   dispatch is a priority inversion when a request of a better priority was
   waiting, and a FIFO break when an earlier request of the same priority
   was.
3. Gate throughput: wrk, 16 connections, short chats through capacity 1,
   in front of the stand-in and in front of an upstream that answers at
   once (an nginx `return 200` with the stand-in's own bytes: C, not
   Python), beside that upstream reached directly one request at a time,
   which is the most any capacity-1 gate can do; and the gateway's CPU
   time per request.
4. Pass-through: wrk, 16 connections, GET /api/tags and short POSTs
   through Seadragon (a zone wide enough never to hold a request) and
   through plain nginx (the same binary, no load_module), with the upstream
   reached directly as the floor.
5. Time to first token of a streaming chat, one request at a time on a
   keep-alive connection, through each gateway and directly.
6. Parked cost: resident memory (VmRSS of every gateway process) per
   parked request and CPU while --parked requests wait behind one that
   holds the gate, Seadragon (1 worker) against HAProxy.
7. Body check (issue 11): the worker's CPU time per MB of a request body
   that is one long string and of one that is many short strings, 1 to
   16 MB, read, checked to its end and refused for a byte after it (so
   that nothing is proxied). Seadragon alone; `--only 7` (make
   bench-body) runs just this one in seconds and prints its table.
8. Usage accounting (issue 14): wrk, 16 connections, POSTs through
   Seadragon with its answers read for their tokens (seadragon_usage on,
   the default) and without (seadragon_usage off), the same configuration
   otherwise, in front of the instant upstream: a whole chat answer, and a
   streamed generation of USAGE_TOKENS tokens; requests per second and the
   gateway's CPU time per request, the pair started twice, in both orders.
   `--only 8` runs just this one and prints its table.
9. Model swaps (issue 15): SWAP_REQUESTS chats over three models, two
   priorities, through capacity 1 in front of a stand-in that holds one
   model (--max-loaded 1, --load-ms SWAP_LOAD_MS): parked then let go, or
   spread over time; affinity off (first come, first served, as Ollama,
   llama-swap and HAProxy) against affinity=5s and 1s: swaps (the
   stand-in's GET /_standin/loads), makespan, waits per priority, the
   longest wait at which a request was passed over, priority inversions.
10. The noisy neighbour (issue 15): one tenant's burst of FAIR_NOISY long
   answers beside three light tenants' short ones, capacity 1, fair off,
   tokens and requests, and the light ones alone: their waits, and Jain's
   index of the tokens served while more than one tenant was backlogged.
11. Dispatch cost (issue 15): `make bench-dispatch`'s table.
   `--only 9,10,11` (any of them) runs just those and prints their
   sections (with how each is made), writing nothing.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
from seadragon_common import children_of, free_port  # noqa: E402
import seadragon_common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STANDIN = os.path.join(ROOT, "scripts", "ollama-standin.py")
CHAT_LUA = os.path.join(HERE, "chat.lua")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
HAPROXY = os.environ.get("HAPROXY", "haproxy")
WRK = os.environ.get("WRK", "wrk")

MODEL = "llama3:70b"
SOURCES = {"coding": 1, "chat": 2, "api": 3}  # name -> priority, both gateways
MIX = (("coding", 2), ("chat", 3), ("api", 5))  # weights of the backlog
WRK_CONNECTIONS = 16

# the gates compared, all of capacity 1, each beside the peer it is set against
GATES = {
    "seadragon-1w": {"label": "Seadragon, 1 worker", "peer": "haproxy-1t",
                     "nginx": dict(workers=1)},
    "seadragon-2w": {"label": "Seadragon, 2 workers", "peer": "haproxy-2t",
                     "nginx": dict(workers=2, reuseport=True)},
    "seadragon-2w-tick1": {"label": "Seadragon, 2 workers, tick=1ms", "peer": "haproxy-2t",
                           "nginx": dict(workers=2, reuseport=True, tick="1ms")},
    "haproxy-1t": {"label": "HAProxy, 1 thread", "threads": 1},
    "haproxy-2t": {"label": "HAProxy, 2 threads", "threads": 2},
}
TTFT_REQUESTS = 200
PARKED_BATCH = 500
BODY_SIZES_MB = (1, 2, 4, 8, 16)
BODY_ROUNDS = 3
USAGE_TOKENS = 32  # the streamed generation of figure 8
# figure 9: swaps; a stand-in that holds one model, loads it in SWAP_LOAD_MS
SWAP_MODELS = (MODEL, "qwen2.5:32b", "mistral:7b")
SWAP_REQUESTS = 120
SWAP_LOAD_MS = 200
SWAP_TOKENS = 4  # a short generation: SWAP_TOKENS tokens SWAP_DELAY_MS apart
SWAP_DELAY_MS = 5
SWAP_SPREAD_MS = 30  # the mean gap between arrivals when they are spread
SWAP_SOURCES = (("coding", 1), ("api", 2))  # two priorities
SWAP_CODING = 1 / 3  # the share of the better one
SWAP_GATES = ((None, 1), ("5s", 1), ("1s", 1), ("5s", 2))  # affinity, workers
# figure 10: the noisy neighbour; tokens FAIR_DELAY_MS apart, + 1 of prompt
FAIR_NOISY = 100
FAIR_LIGHT = 3
FAIR_LONG_TOKENS = 39  # 40 with the prompt's
FAIR_SHORT_TOKENS = 3  # 4: a tenth
FAIR_DELAY_MS = 4
FAIR_PERIOD_MS = 250  # a light tenant's request every so often
FAIR_LIGHT_REQUESTS = 20  # of each light tenant
FAIR_BACKLOG_SECONDS = 3.0
FAIR_GATES = (("alone", "", 1), ("off", "", 1),  # name, zone parameters, workers
              ("tokens", "fair=tokens tenant=$http_x_tenant", 1),
              ("requests", "fair=requests tenant=$http_x_tenant", 1),
              ("tokens-2w", "fair=tokens tenant=$http_x_tenant", 2))
FAIR_LABELS = {"alone": "alone (no noisy tenant), fair off", "off": "fair off",
               "tokens": "fair=tokens", "requests": "fair=requests",
               "tokens-2w": "fair=tokens, 2 workers"}


class BenchError(Exception):
    pass


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def wait_until(condition, what, timeout=10.0, pause=0.001):
    if not seadragon_common.wait_until(condition, timeout, pause):
        raise BenchError(f"timed out waiting for {what}")


def percentile(values, p):
    """The nearest-rank percentile p (0-100) of values."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------- HTTP by hand

def request_bytes(method, path, headers=None, body=None, close=True):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def chat_body(stream=True, model=MODEL):
    return json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()


def send_chat(port, source, tag, extra=None, stream=True):
    """A chat request on a new keep-alive connection, sent whole.

    Keep-alive, as Ollama's clients send: with "Connection: close" nginx
    may end the request with a lingering close, which keeps the request
    (not the gate's slot, given back at the answer's last byte) until the
    client closes its end."""
    headers = {"X-Source": source, "X-Standin-Tag": tag,
               "X-Standin-Tokens": "2", "X-Standin-Delay-Ms": "0", **(extra or {})}
    conn = Connection(port)
    conn.sock.sendall(request_bytes("POST", "/api/chat", headers, chat_body(stream),
                                    close=False))
    return conn


def request_headers(tag, source=None, tenant=None, tokens=None, extra=None):
    headers = {"X-Standin-Tag": tag}
    if source:
        headers["X-Source"] = source
    if tenant:
        headers["X-Tenant"] = tenant
    if tokens is not None:
        headers["X-Standin-Tokens"] = str(tokens)
    headers.update(extra or {})
    return headers


def send_request(port, tag, model=MODEL, source=None, tenant=None, tokens=None, extra=None):
    """A streaming chat on a new keep-alive connection, the stand-in's own
    pace (figures 9 and 10: its --tokens and --delay-ms)."""
    conn = Connection(port)
    conn.sock.sendall(request_bytes("POST", "/api/chat",
                                    request_headers(tag, source, tenant, tokens, extra),
                                    chat_body(True, model), close=False))
    return conn


def abort(conns):
    """Closes connections with a reset: the gate drops what still waits."""
    for c in conns:
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        c.close()
    conns.clear()


def read_access_log(path):
    """tag -> its queue ticket (None: it did not queue), its wait (s), status."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) != 5:
                    continue
                tag, ticket, wait, status, _ = fields
                out[tag] = {"id": None if ticket == "-" else int(ticket),
                            "wait": 0.0 if wait == "-" else int(wait) / 1000,
                            "status": int(status)}
    except FileNotFoundError:
        pass
    return out


def passed_over(requests):
    """Figure 9's order checks on requests (prio, id: the queue's ticket or
    None, a: arrival, d: dispatch, both in s). Z passes X over when Z
    arrived after X, its priority is the same or worse, and it was
    dispatched first; the figure is the longest X had waited when that
    happened. A dispatch is an inversion when a request of a better
    priority was waiting (arrived 2 ms or more before it, against the
    millisecond of $seadragon_queue_wait, or had the smaller ticket)."""
    def later(z, x):
        if z["id"] is not None and x["id"] is not None:
            return z["id"] > x["id"]
        return z["a"] > x["a"]
    longest, passed, inversions = 0.0, set(), 0
    for i, x in enumerate(requests):
        for j, z in enumerate(requests):
            if z["d"] < x["d"] and z["prio"] >= x["prio"] and later(z, x):
                passed.add(i)
                longest = max(longest, z["d"] - x["a"])
        if any(y["prio"] < x["prio"] and y["d"] > x["d"]
               and (y["a"] < x["d"] - 0.002 or not later(y, x)) for y in requests):
            inversions += 1
    return {"passed_over": longest, "passed": len(passed), "inversions": inversions}


def jain(values):
    """Jain's fairness index: 1 when all are equal, 1/n when one has all."""
    square = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * square) if square else None


def backlogged_service(requests, t0, t1):
    """Tokens served to each tenant in [t0, t1] while more than one tenant
    was backlogged (a request arrived, a, and not yet ended, f); a
    request's tokens count evenly over its service [s, e]."""
    points = {t0, t1}
    for r in requests:
        points.update(x for x in (r["a"], r["f"], r.get("s"), r.get("e"))
                      if x is not None and t0 < x < t1)
    points = sorted(points)
    served = {}
    for lo, hi in zip(points, points[1:]):
        mid = (lo + hi) / 2
        backlogged = {r["tenant"] for r in requests if r["a"] <= mid < r["f"]}
        if len(backlogged) < 2:
            continue
        for tenant in backlogged:
            served.setdefault(tenant, 0.0)
        for r in requests:
            if "s" in r and r["s"] <= mid < r["e"] and r["e"] > r["s"]:
                span = min(r["e"], t1) - r["s"] if r["e"] == math.inf else r["e"] - r["s"]
                served[r["tenant"]] = served.get(r["tenant"], 0.0) + r["tokens"] * (hi - lo) / span
    return served


def read_status(conn, timeout=60.0):
    """The status of the answer on conn, read whole; closes conn."""
    try:
        conn.sock.settimeout(timeout)
        return conn.response()[0]
    finally:
        conn.close()


class Connection:
    """One keep-alive connection that reads chunked or sized answers."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        piece = self.sock.recv(65536)
        if not piece:
            raise BenchError("the connection closed")
        self.buf += piece

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def head(self):
        status = int(self.line().split()[1])
        headers = {}
        while line := self.line():
            name, value = line.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def chunks(self):
        """The chunks of a chunked body, as they arrive."""
        while True:
            size = int(self.line().split(b";")[0], 16)
            data = self.exact(size)
            self.exact(2)
            if size == 0:
                return
            yield data

    def response(self):
        """(status, headers, body) of the next answer."""
        status, headers = self.head()
        if "chunked" in headers.get("transfer-encoding", ""):
            body = b"".join(self.chunks())
        else:
            body = self.exact(int(headers.get("content-length", 0)))
        return status, headers, body

    def stream_chat(self, source):
        """Sends a streaming chat; (seconds to the first token, status)."""
        request = request_bytes("POST", "/api/chat",
                                {"X-Source": source, "X-Standin-Tokens": "2",
                                 "X-Standin-Delay-Ms": "0"}, chat_body(True), close=False)
        started = time.perf_counter()
        self.sock.sendall(request)
        status, headers = self.head()
        if "chunked" not in headers.get("transfer-encoding", ""):
            raise BenchError(f"a stream that is not chunked: {status} {headers}")
        first = None
        for data in self.chunks():
            if first is None and b"tok1" in data:
                first = time.perf_counter() - started
        if first is None:
            raise BenchError(f"a stream without its first token (status {status})")
        return first, status

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- processes

class Processes:
    """The children of this run: each in its own session, stopped by id."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.children = []

    def spawn(self, name, argv, port=None, stdout=None):
        logfile = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        proc = subprocess.Popen(argv, stdout=stdout or logfile, stderr=logfile,
                                stdin=subprocess.DEVNULL, cwd=self.workdir,
                                start_new_session=True)
        proc.bench_name = name
        proc.bench_log = logfile
        self.children.append(proc)
        if port is not None:
            self.wait_listening(proc, port)
        return proc

    def wait_listening(self, proc, port):
        def up():
            if proc.poll() is not None:
                raise BenchError(f"{proc.bench_name} exited with {proc.returncode}: "
                                 + self.tail(proc))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, f"{proc.bench_name} to listen on {port}", timeout=15, pause=0.02)

    def tail(self, proc):
        proc.bench_log.flush()
        with open(proc.bench_log.name, "rb") as f:
            return f.read()[-600:].decode(errors="replace")

    def stop(self, proc):
        if proc not in self.children:
            return
        self.children.remove(proc)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # its own group: nginx's workers too
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        # nginx's workers may outlive their master by a moment
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.bench_log.close()

    def stop_all(self):
        for proc in reversed(list(self.children)):
            self.stop(proc)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """CPU time of every thread of pid, from the scheduler (nanoseconds)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def wakeups(pid):
    """Context switches of every thread of pid: each is a wake-up or a preemption."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


# ---------------------------------------------------------------- the pieces

class Standin:
    def __init__(self, procs, name="standin", extra=()):
        self.procs = procs
        self.proc = procs.spawn(name, [sys.executable, STANDIN, "--port", "0", "--quiet",
                                       "--tokens", "2", "--delay-ms", "0", *extra],
                                stdout=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            raise BenchError(f"the stand-in did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def call(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers={"Host": "localhost"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise BenchError(f"stand-in {method} {path}: {resp.status}")
            return data
        finally:
            conn.close()

    def records(self):
        return json.loads(self.call("GET", "/_standin/requests"))

    def stats(self):
        return json.loads(self.call("GET", "/_standin/stats"))

    def reset(self):
        wait_until(lambda: self.stats()["active"] == 0, "the stand-in to be idle")
        self.call("POST", "/_standin/reset")

    def release(self):
        self.call("POST", "/_standin/release")

    def loads(self):
        return json.loads(self.call("GET", "/_standin/loads"))

    def stop(self):
        self.procs.stop(self.proc)


class Gateway:
    """An nginx (with or without the module) or an HAProxy, started for one phase."""

    def __init__(self, procs, name, kind, argv, port, conf_dir):
        self.procs = procs
        self.name = name
        self.kind = kind  # "seadragon", "nginx" or "haproxy"
        self.port = port
        self.dir = conf_dir
        self.proc = procs.spawn(name, argv, port=port)

    def stop(self):
        self.procs.stop(self.proc)

    def pids(self):
        """nginx's master and workers; HAProxy's one process."""
        return [self.proc.pid] + children_of(self.proc.pid)

    def rss_kib(self):
        return sum(rss_kib(pid) for pid in self.pids())

    def cpu_seconds(self):
        return sum(cpu_seconds(pid) for pid in self.pids())

    def wakeups(self):
        return sum(wakeups(pid) for pid in self.pids())

    def queue_length(self):
        if self.kind == "seadragon":
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/metrics", headers={"Host": "localhost"})
                text = conn.getresponse().read().decode()
            finally:
                conn.close()
            match = re.search(r'^seadragon_queue_length\{zone="gate"\} (\d+)$', text, re.M)
            if not match:
                raise BenchError("no seadragon_queue_length in the metrics")
            return int(match.group(1))
        if self.kind == "haproxy":
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(os.path.join(self.dir, "haproxy.sock"))
                s.sendall(b"show stat\n")
                data = b""
                while piece := s.recv(65536):
                    data += piece
            lines = data.decode().splitlines()
            columns = lines[0].lstrip("# ").split(",")
            qcur = columns.index("qcur")
            total = 0
            for line in lines[1:]:
                fields = line.split(",")
                if len(fields) > qcur and fields[0] == "ollama" and fields[qcur]:
                    total += int(fields[qcur])
            return total
        raise BenchError("plain nginx has no queue")


class Bench:
    def __init__(self, args):
        self.args = args
        base = os.path.join(args.build, "bench")
        os.makedirs(base, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix="run-", dir=base)
        self.procs = Processes(self.workdir)
        self.module = os.path.join(args.build, "ngx_seadragon_module.so")
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.results = {}
        self.serial = 0

    # ------------------------------------------------------------ configurations

    def nginx(self, name, upstream_port, module=True, workers=1, capacity=1, tick=None,
              max_queued=1000, connections=1024, reuseport=False, instant=None,
              server_extra=(), zone_extra="", sources=None, access_log=None):
        """An nginx: Seadragon's gate (module), plain proxy_pass, or with
        instant= (a dict of path -> body, or (body, content type)) the
        upstream that answers at once."""
        port = free_port()
        conf_dir = os.path.join(self.workdir, name)
        for sub in ("logs", "tmp"):
            os.makedirs(os.path.join(conf_dir, sub), exist_ok=True)
        main = []
        if module:
            main.append(f"load_module {self.module};")
        main += ["daemon off;", "master_process on;", f"worker_processes {workers};",
                 f"worker_rlimit_nofile {self.nofile};",
                 f"error_log {conf_dir}/logs/error.log {self.args.log_level};", f"pid {conf_dir}/logs/nginx.pid;"]
        if os.geteuid() == 0:
            main.append("user root;")
        http_ = [f"{kind}_temp_path {conf_dir}/tmp/{kind};"
                 for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
        if access_log:  # one line a request: tag, ticket, wait (figures 9, 10)
            http_ += ["log_format bench '$http_x_standin_tag $seadragon_queue_id "
                      "$seadragon_queue_wait $status $msec';",
                      f"access_log {access_log} bench;"]
        else:
            http_ += ["access_log off;"]
        http_ += ["keepalive_requests 1000000;"]
        listen = f"listen 127.0.0.1:{port}{' reuseport' if reuseport else ''} backlog=4096;"
        if instant is not None:
            locations = []
            for path, body in instant.items():
                body, content_type = body if isinstance(body, tuple) else (body, "application/json")
                text = body.decode()
                if "$" in text:
                    raise BenchError(f"a '$' in the instant answer to {path}")
                text = text.replace("\\", "\\\\").replace("'", "\\'")
                locations.append(f"location = {path} {{ default_type {content_type}; "
                                 f"return 200 '{text}'; }}")
            server = [listen] + locations
        else:
            http_ += [f"upstream ollama {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}"]
            if module:
                tick_opt = f" tick={tick}" if tick else ""
                http_ += [
                    "map $http_x_source $bench_coding { default 0; coding 1; }",
                    "map $http_x_source $bench_chat { default 0; chat 1; }",
                    f"seadragon_zone gate:8m capacity={capacity} max_queued={max_queued} "
                    f"max_wait=0{tick_opt}{' ' + zone_extra if zone_extra else ''};",
                ]
                http_ += sources if sources is not None else [
                    f"seadragon_source coding priority={SOURCES['coding']} if=$bench_coding;",
                    f"seadragon_source chat priority={SOURCES['chat']} if=$bench_chat;",
                    f"seadragon_source api priority={SOURCES['api']};",
                ]
            server = [listen,
                      "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_set_header Host localhost;", "proxy_set_header X-Bench-Worker $pid;",
                      "proxy_buffering off;", "proxy_read_timeout 600s;",
                      "location /api/ {" + (" seadragon_queue gate;" if module else "")
                      + " proxy_pass http://ollama; }"]
            if module:
                server.append("location = /metrics { seadragon_metrics gate; }")
            server += list(server_extra)
        conf = "\n".join(main + [f"events {{ worker_connections {connections}; }}", "http {"]
                         + ["    " + line for line in http_] + ["    server {"]
                         + ["        " + line for line in server] + ["    }", "}"]) + "\n"
        path = os.path.join(conf_dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        kind = "seadragon" if module else "nginx"
        return Gateway(self.procs, name, kind, [NGINX, "-p", conf_dir + "/", "-c", path,
                                                "-e", f"{conf_dir}/logs/error.log"],
                       port, conf_dir)

    def haproxy(self, name, upstream_port, threads=1, maxconn=1024, abortonclose=False):
        port = free_port()
        conf_dir = os.path.join(self.workdir, name)
        os.makedirs(conf_dir, exist_ok=True)
        # a client that leaves while queued leaves the queue, as with
        # Seadragon; only where clients leave (figure 6): elsewhere the
        # default, for with it and 2 threads HAProxy 2.6.12's queue stalled
        # for good in our runs once wrk closed its connections
        abort = "    option abortonclose\n" if abortonclose else ""
        classes = "\n".join(
            f"    http-request set-priority-class int({prio}) if {{ req.hdr(x-source) -m str {src} }}"
            for src, prio in SOURCES.items() if src != "api")
        # HAProxy counts two descriptors a connection (client and server
        # side) and refuses to start when it cannot raise the limit that
        # far; here every client shares one server connection, so the limit
        # this run has is enough: a warning, then
        conf = f"""global
    nbthread {threads}
    maxconn {maxconn}
    no strict-limits
    stats socket {conf_dir}/haproxy.sock mode 600 level admin

defaults
    mode http
    maxconn {maxconn}
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout queue 600s
    timeout http-request 60s
    # keep upstream connections for any request, as nginx's keepalive does
    http-reuse always
{abort}
frontend gate
    bind 127.0.0.1:{port} backlog 4096
    http-request set-priority-class int({SOURCES['api']})
{classes}
    default_backend ollama

backend ollama
    server standin 127.0.0.1:{upstream_port} maxconn 1
"""
        path = os.path.join(conf_dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(conf)
        return Gateway(self.procs, name, "haproxy", [HAPROXY, "-db", "-f", path],
                       port, conf_dir)

    def gate(self, key, upstream_port, **options):
        """One of the gates compared (GATES): Seadragon or HAProxy, capacity 1."""
        name = f"{key}-{upstream_port}-{options.pop('suffix', '')}"
        if key.startswith("haproxy"):
            return self.haproxy(name, upstream_port, threads=GATES[key]["threads"], **options)
        return self.nginx(name, upstream_port, **GATES[key]["nginx"], **options)

    def warm(self, gateway, count=5):
        for i in range(count):
            status = read_status(send_chat(gateway.port, "api", f"warm{i}"))
            if status != 200:
                raise BenchError(f"{gateway.name}: warm-up answered {status}")

    # ------------------------------------------------------------ 1, 2: handoff and order

    def backlog(self, gateway):
        """Fills a backlog behind a held request, lets it drain; the figures."""
        standin = self.standin
        rng = random.Random(6)
        names = [name for name, weight in MIX for _ in range(weight)]
        mix = [rng.choice(names) for _ in range(self.args.backlog)]
        self.warm(gateway)
        standin.reset()
        hold = send_chat(gateway.port, "api", "hold", {"X-Standin-Hold": "1"})
        conns = []
        try:
            wait_until(lambda: standin.stats()["active"] == 1, "the held request to start")
            for i, source in enumerate(mix):
                conns.append(send_chat(gateway.port, source, f"{i}"))
                wait_until(lambda: gateway.queue_length() == i + 1, f"request {i} to queue")
            standin.release()
            statuses = [read_status(c) for c in [hold] + conns]
        finally:
            for c in [hold] + conns:
                c.close()
        if any(s != 200 for s in statuses):
            raise BenchError(f"{gateway.name}: answers other than 200: {set(statuses)}")
        wait_until(lambda: standin.stats()["active"] == 0, "the backlog to end")
        records = [r for r in standin.records() if r["path"] == "/api/chat"]
        if [r["tag"] for r in records[:1]] != ["hold"] or len(records) != len(mix) + 1:
            raise BenchError(f"{gateway.name}: the stand-in saw {len(records)} requests")
        gaps = [(b["start"] - a["last_byte"]) * 1000 for a, b in zip(records, records[1:])]
        workers = [r["headers"].get("x-bench-worker") for r in records]
        cross = [g for g, a, b in zip(gaps, workers, workers[1:]) if a != b]
        # every request was waiting when the held one ended
        waiting = {i: SOURCES[source] for i, source in enumerate(mix)}
        inversions = fifo_breaks = 0
        for record in records[1:]:
            index = int(record["tag"])
            prio = waiting.pop(index)
            if any(p < prio for p in waiting.values()):
                inversions += 1
            if any(p == prio and i < index for i, p in waiting.items()):
                fifo_breaks += 1
        return {"median": statistics.median(gaps), "p99": percentile(gaps, 99),
                "max": max(gaps), "inversions": inversions, "fifo_breaks": fifo_breaks,
                "dispatches": len(mix),
                "cross": len(cross) if workers[0] else None,
                "cross_median": statistics.median(cross) if cross else None}

    def phase_backlog(self):
        out = {}
        for key in GATES:
            gateway = self.gate(key, self.standin.port, suffix="backlog")
            try:
                out[key] = r = self.backlog(gateway)
            finally:
                gateway.stop()
            log(f"{key}: handoff gap median {r['median']:.3f} ms, p99 {r['p99']:.3f}, "
                f"max {r['max']:.3f}; inversions {r['inversions']}, "
                f"FIFO breaks {r['fifo_breaks']}"
                + (f"; {r['cross']} handoffs across workers" if r["cross"] else ""))
        self.results["backlog"] = out

    # ------------------------------------------------------------ 3, 4: wrk

    def wrk(self, port, path, connections, post, gateway=None):
        """One wrk run; with gateway, also its CPU time per request."""
        argv = [WRK, "-t1", f"-c{connections}", f"-d{self.args.duration}s", "--latency",
                "-H", "Host: localhost"]
        if post:
            argv += ["-s", CHAT_LUA]
        argv.append(f"http://127.0.0.1:{port}{path}")
        self.serial += 1
        cpu = gateway.cpu_seconds() if gateway else None
        proc = self.procs.spawn(f"wrk-{self.serial}", argv, stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(timeout=self.args.duration + 60)
        finally:
            self.procs.stop(proc)
        if gateway:
            cpu = gateway.cpu_seconds() - cpu
        text = out.decode()
        rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
        count = re.search(r"(\d+) requests in", text)
        if proc.returncode != 0 or not rate or not count:
            raise BenchError(f"wrk failed:\n{text}")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        sockets = re.search(r"Socket errors: (.*)", text)
        if errors or sockets:
            raise BenchError(f"wrk {path} on {port}: " + (errors.group(0) if errors else "")
                             + (sockets.group(0) if sockets else ""))
        latency = {}
        for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$",
                                           text, re.M):
            latency[int(pct)] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
        requests = int(count.group(1))
        if requests == 0:  # a gateway that stalled: no latency either
            log(f"wrk {path} on {port}: no answer in {self.args.duration} s")
            return {"rps": 0.0, "p50": None, "p99": None, "cpu_us": None}
        return {"rps": float(rate.group(1)), "p50": latency[50], "p99": latency[99],
                "cpu_us": cpu / requests * 1e6 if gateway else None}

    def rounds(self, targets, path, post):
        """wrk on each target in turn, --rounds times over and in the
        reverse order every other round, so that the machine's other work
        falls on all of them alike; per target the median of its rounds.
        targets: name -> (port, connections, gateway or None)."""
        runs = {name: [] for name in targets}
        order = list(targets)
        for i in range(self.args.rounds):
            for name in (order if i % 2 == 0 else reversed(order)):
                port, connections, gateway = targets[name]
                runs[name].append(self.wrk(port, path, connections, post, gateway))
        out = {}
        for name, rs in runs.items():
            out[name] = {"stalled": sum(run["rps"] == 0 for run in rs)}
            for key in ("rps", "p50", "p99", "cpu_us"):
                values = [run[key] for run in rs if run[key] is not None]
                out[name][key] = statistics.median(values) if values else None
        return out

    def instant_upstream(self):
        """An nginx that answers at once with the stand-in's own bytes."""
        bodies = {}
        conn = http.client.HTTPConnection("127.0.0.1", self.standin.port, timeout=10)
        try:
            conn.request("GET", "/api/tags", headers={"Host": "localhost"})
            bodies["/api/tags"] = conn.getresponse().read()
            conn.request("POST", "/api/chat", body=chat_body(False),
                         headers={"Host": "localhost", "X-Standin-Tokens": "1"})
            bodies["/api/chat"] = conn.getresponse().read()
            # figure 8's stream, as one NDJSON answer
            conn.request("POST", "/api/generate",
                         body=json.dumps({"model": MODEL, "prompt": "hi"}),
                         headers={"Host": "localhost", "X-Standin-Delay-Ms": "0",
                                  "X-Standin-Tokens": str(USAGE_TOKENS)})
            bodies["/api/generate"] = (conn.getresponse().read(), "application/x-ndjson")
        finally:
            conn.close()
        return self.nginx("instant", None, module=False, instant=bodies)

    def upstreams(self):
        instant = self.instant_upstream()
        return instant, (("standin", self.standin.port), ("instant", instant.port))

    def phase_throughput(self):
        out = {}
        instant, upstreams = self.upstreams()
        try:
            for upstream, port in upstreams:
                gates = {}
                try:
                    for key in GATES:
                        gates[key] = self.gate(key, port, suffix="throughput")
                    targets = {"direct": (port, 1, None)}
                    targets.update((key, (g.port, WRK_CONNECTIONS, g))
                                   for key, g in gates.items())
                    out[upstream] = row = self.rounds(targets, "/api/chat", True)
                finally:
                    for g in gates.values():
                        g.stop()
                log(f"gate throughput ({upstream}): " + ", ".join(
                    f"{k} {v['rps']:.0f}/s" for k, v in row.items()))
        finally:
            instant.stop()
        self.results["throughput"] = out

    def phase_passthrough(self):
        out = {}
        instant, upstreams = self.upstreams()
        try:
            for upstream, port in upstreams:
                seadragon = self.nginx(f"pass-{upstream}-seadragon", port,
                                       capacity=4 * WRK_CONNECTIONS)
                plain = self.nginx(f"pass-{upstream}-nginx", port, module=False)
                try:
                    targets = {"direct": (port, WRK_CONNECTIONS, None),
                               "nginx": (plain.port, WRK_CONNECTIONS, plain),
                               "seadragon": (seadragon.port, WRK_CONNECTIONS, seadragon)}
                    for what, path, post in (("tags", "/api/tags", False),
                                             ("post", "/api/chat", True)):
                        out[f"{upstream}-{what}"] = row = self.rounds(targets, path, post)
                        log(f"pass-through {upstream} {what}: " + ", ".join(
                            f"{k} {v['rps']:.0f}/s p99 {ms(v['p99'])} ms"
                            for k, v in row.items()))
                finally:
                    seadragon.stop()
                    plain.stop()
        finally:
            instant.stop()
        self.results["passthrough"] = out

    # ------------------------------------------------------------ 5: first token

    def phase_ttft(self):
        gateways = {"nginx": self.nginx("ttft-nginx", self.standin.port, module=False),
                    "seadragon": self.gate("seadragon-1w", self.standin.port, suffix="ttft"),
                    "haproxy": self.gate("haproxy-1t", self.standin.port, suffix="ttft")}
        ports = {"direct": self.standin.port}
        ports.update((name, g.port) for name, g in gateways.items())
        conns = {}
        times = {name: [] for name in ports}
        try:
            for name, port in ports.items():
                conns[name] = Connection(port)
                for _ in range(10):  # warm the connections up
                    conns[name].stream_chat("coding")
            rounds = 4
            for _ in range(rounds):  # in turns, so that noise falls on all alike
                for name, conn in conns.items():
                    for _ in range(TTFT_REQUESTS // rounds):
                        first, status = conn.stream_chat("coding")
                        if status != 200:
                            raise BenchError(f"{name}: a stream answered {status}")
                        times[name].append(first * 1000)
        finally:
            for conn in conns.values():
                conn.close()
            for g in gateways.values():
                g.stop()
        out = {name: {"median": statistics.median(t), "p99": percentile(t, 99)}
               for name, t in times.items()}
        log("time to first token: " + ", ".join(
            f"{k} {v['median']:.3f} ms (p99 {v['p99']:.3f})" for k, v in out.items()))
        self.results["ttft"] = out

    # ------------------------------------------------------------ 6: parked

    def parked(self, gateway, count):
        standin = self.standin
        self.warm(gateway, 20)
        standin.reset()
        hold = send_chat(gateway.port, "api", "hold", {"X-Standin-Hold": "1"})
        conns = []
        try:
            wait_until(lambda: standin.stats()["active"] == 1, "the held request to start")
            time.sleep(0.5)
            before = gateway.rss_kib()
            names = [name for name, weight in MIX for _ in range(weight)]
            while len(conns) < count:
                for i in range(min(PARKED_BATCH, count - len(conns))):
                    conns.append(send_chat(gateway.port, names[len(conns) % len(names)],
                                           f"p{len(conns)}"))
                wait_until(lambda: gateway.queue_length() == len(conns),
                           f"{len(conns)} requests to queue", timeout=60, pause=0.02)
            time.sleep(1.0)
            after = gateway.rss_kib()
            cpu0, wake0, t0 = gateway.cpu_seconds(), gateway.wakeups(), time.monotonic()
            time.sleep(self.args.idle)
            cpu1, wake1, t1 = gateway.cpu_seconds(), gateway.wakeups(), time.monotonic()
            if gateway.queue_length() != count:
                raise BenchError(f"{gateway.name}: the queue lost requests")
        finally:
            for c in conns:  # a reset: no TIME_WAIT left behind
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
        wait_until(lambda: gateway.queue_length() == 0, "the parked requests to leave",
                   timeout=60, pause=0.05)
        standin.release()
        if read_status(hold) != 200:
            raise BenchError(f"{gateway.name}: the held request failed")
        return {"per_request_kib": (after - before) / count, "count": count,
                "before_kib": before, "after_kib": after,
                "cpu_percent": (cpu1 - cpu0) / (t1 - t0) * 100,
                "wakeups": (wake1 - wake0) / (t1 - t0), "idle_seconds": t1 - t0}

    def phase_parked(self):
        count = self.args.parked
        if self.nofile < count + 1000:
            raise BenchError(f"{count} parked requests need ulimit -n of {count + 1000} "
                             f"or more (it is {self.nofile}); run as root or raise it")
        out = {}
        for name, key, options in (
                ("seadragon", "seadragon-1w", dict(max_queued=count, connections=count + 1000)),
                ("haproxy", "haproxy-1t", dict(maxconn=count + 1000, abortonclose=True))):
            gateway = self.gate(key, self.standin.port, suffix="parked", **options)
            try:
                out[name] = self.parked(gateway, count)
            finally:
                gateway.stop()
        log("parked: " + ", ".join(
            f"{k} {v['per_request_kib']:.2f} KiB each, {v['cpu_percent']:.3f}% CPU, "
            f"{v['wakeups']:.0f} wake-ups/s" for k, v in out.items()))
        self.results["parked"] = out

    def body_check_cpu(self, gateway, worker, body):
        """The worker's CPU seconds for one body, the least of BODY_ROUNDS."""
        data = request_bytes("POST", "/api/chat", None, body)
        best = None
        for _ in range(BODY_ROUNDS):
            before = cpu_seconds(worker)
            conn = Connection(gateway.port)
            conn.sock.sendall(data)
            status = read_status(conn)
            spent = cpu_seconds(worker) - before
            if status != 400:
                raise BenchError(f"body check: status {status}, expected 400")
            best = spent if best is None else min(best, spent)
        return best

    def phase_body(self):
        gateway = self.nginx("seadragon-body", self.standin.port, capacity=4,
                             server_extra=["client_max_body_size 64m;"])
        self.warm(gateway)
        workers = children_of(gateway.proc.pid)
        if len(workers) != 1:
            raise BenchError(f"body check: {len(workers)} workers, expected 1")
        out = {}
        for mb in BODY_SIZES_MB:
            size = mb << 20
            head = b'{"model":"' + MODEL.encode() + b'","stream":false,"prompt":'
            one = head + b'"' + b"a" * (size - len(head) - 4) + b'"}x'
            item = b'"' + b"a" * 30 + b'",'
            short = head + b"[" + item * ((size - len(head) - 8) // len(item)) + b'"a"]}x'
            out[mb] = {"string": self.body_check_cpu(gateway, workers[0], one),
                       "short": self.body_check_cpu(gateway, workers[0], short)}
            log(f"body {mb} MB: one string {out[mb]['string'] * 1e3:.1f} ms, "
                f"short strings {out[mb]['short'] * 1e3:.1f} ms of the worker's CPU")
        gateway.stop()
        self.results["body"] = out

    # ------------------------------------------------------------ 8: usage

    def phase_usage(self):
        """The same gateway with its answers read for their tokens and
        without, in turns, in front of the instant upstream. A gateway
        started first ran some 5% slower here than the same one started
        second (an A/A run): the pair is made twice, in both orders, and
        each figure is the mean of the two medians."""
        halves = {}
        instant = self.instant_upstream()
        try:
            for order in (("on", "off"), ("off", "on")):
                gateways = {}
                try:
                    for name in order:
                        extra = ["seadragon_usage off;"] if name == "off" else []
                        gateways[name] = self.nginx(f"usage-{name}-{order[0]}", instant.port,
                                                    capacity=4 * WRK_CONNECTIONS,
                                                    server_extra=extra)
                    targets = {name: (g.port, WRK_CONNECTIONS, g)
                               for name, g in gateways.items()}
                    for what, path in (("whole", "/api/chat"), ("stream", "/api/generate")):
                        halves.setdefault(what, []).append(self.rounds(targets, path, True))
                finally:
                    for g in gateways.values():
                        g.stop()
        finally:
            instant.stop()
        out = {}
        for what, rows in halves.items():
            out[what] = row = {}
            for name in ("on", "off"):
                row[name] = {"stalled": sum(r[name]["stalled"] for r in rows)}
                for key in ("rps", "p50", "p99", "cpu_us"):
                    values = [r[name][key] for r in rows if r[name][key] is not None]
                    row[name][key] = statistics.mean(values) if values else None
            log(f"usage accounting {what}: " + ", ".join(
                f"{k} {v['rps']:.0f}/s {num(v['cpu_us'], 1)} us/req" for k, v in row.items()))
        self.results["usage"] = out

    # ------------------------------------------------------------ 9, 10, 11: the scheduler

    def sched_gateway(self, name, standin, zone_extra, sources, workers=1):
        """A Seadragon of workers workers in front of standin with an access log of
        every request's tag, ticket and wait; None and the reason when
        nginx refuses the configuration (a feature this build lacks)."""
        log_path = os.path.join(self.workdir, f"{name}-access.log")
        try:
            gateway = self.nginx(name, standin.port, zone_extra=zone_extra, sources=sources,
                                 access_log=log_path, workers=workers,
                                 reuseport=workers > 1)
        except BenchError as error:
            if not zone_extra:
                raise
            reason = re.search(r"\[emerg\] ([^\n]*?)(?: in /\S+:\d+)?$", str(error), re.M)
            return None, reason.group(1) if reason else str(error)[-200:]
        gateway.access_log = log_path
        return gateway, None

    def sched_records(self, standin, gateway, tags, timeout=60):
        """The stand-in's records and the access log's lines of tags, once
        every one of them is logged."""
        def logged():
            return tags <= set(read_access_log(gateway.access_log))
        wait_until(logged, "the access log", timeout=timeout, pause=0.02)
        log_lines = read_access_log(gateway.access_log)
        records = {r["tag"]: r for r in standin.records()
                   if r["path"] == "/api/chat" and r["tag"] in tags}
        return records, log_lines

    def swap_run(self, label, zone_extra, spread, workers=1):
        """Figure 9, one run: SWAP_REQUESTS chats over SWAP_MODELS, two
        priorities, behind a held gate (spread: arriving over time), in
        front of a stand-in that holds one model at a time."""
        standin = Standin(self.procs, f"standin-{label}",
                          ["--max-loaded", "1", "--load-ms", str(SWAP_LOAD_MS),
                           "--tokens", str(SWAP_TOKENS), "--delay-ms", str(SWAP_DELAY_MS),
                           "--model", SWAP_MODELS[0]]
                          + [a for m in SWAP_MODELS[1:] for a in ("--extra-model", m)])
        gateway = None
        try:
            sources = [f"seadragon_source {name} priority={prio}"
                       + (" if=$bench_coding;" if name == "coding" else ";")
                       for name, prio in SWAP_SOURCES]
            gateway, missing = self.sched_gateway(f"swaps-{label}", standin, zone_extra, sources,
                                                  workers)
            if gateway is None:
                return {"missing": missing}
            rng = random.Random(9)  # the same pattern for every gate
            plan = [(rng.choice(SWAP_MODELS), "coding" if rng.random() < SWAP_CODING else "api")
                    for _ in range(SWAP_REQUESTS)]
            gaps = [rng.expovariate(1000 / SWAP_SPREAD_MS) for _ in plan]
            # the first model resident in the stand-in and in the gate's view
            if read_status(send_request(gateway.port, "warm", model=SWAP_MODELS[0])) != 200:
                raise BenchError(f"{label}: the warm-up failed")
            standin.reset()
            conns = []
            try:
                if spread:
                    due = started = time.time()
                    for i, ((model, source), gap) in enumerate(zip(plan, gaps)):
                        due += gap if i else 0.0
                        time.sleep(max(0.0, due - time.time()))
                        conns.append(send_request(gateway.port, f"s{i}", model=model,
                                                  source=source))
                else:
                    hold = send_request(gateway.port, "hold", model=SWAP_MODELS[0],
                                        extra={"X-Standin-Hold": "1"})
                    conns.append(hold)
                    wait_until(lambda: standin.stats()["active"] == 1, "the held request")
                    for i, (model, source) in enumerate(plan):
                        conns.append(send_request(gateway.port, f"s{i}", model=model,
                                                  source=source))
                    wait_until(lambda: gateway.queue_length() == len(plan), "the backlog",
                               timeout=30)
                    started = time.time()
                    standin.release()
                statuses = [read_status(c, timeout=300) for c in conns]
            finally:
                for c in conns:
                    c.close()
            if any(s != 200 for s in statuses):
                raise BenchError(f"{label}: answers other than 200: {sorted(set(statuses))}")
            tags = {f"s{i}" for i in range(len(plan))}
            records, log_lines = self.sched_records(standin, gateway, tags)
            loads = standin.loads()
        finally:
            if gateway is not None:
                gateway.stop()
            standin.stop()
        requests = []
        for i, (model, source) in enumerate(plan):
            rec, line = records[f"s{i}"], log_lines[f"s{i}"]
            requests.append({"prio": dict(SWAP_SOURCES)[source], "model": model,
                             "id": line["id"], "wait": line["wait"], "d": rec["start"],
                             "a": rec["start"] - line["wait"] - 0.0005
                             if line["id"] is not None else rec["start"],
                             "end": rec["end"]})
        out = {"swaps": sum(1 for load in loads if load["evicted"]), "loads": len(loads),
               "makespan": max(r["end"] for r in requests) - started,
               "requests": len(requests)}
        for name, prio in SWAP_SOURCES:
            waits = [r["wait"] for r in requests if r["prio"] == prio]
            out[f"p50_{prio}"] = percentile(waits, 50)
            out[f"p99_{prio}"] = percentile(waits, 99)
            out[f"n_{prio}"] = len(waits)
        out.update(passed_over(requests))
        return out

    def phase_swaps(self):
        out = {}
        for spread in (False, True):
            for affinity, workers in SWAP_GATES:
                label = (f"{'spread' if spread else 'held'}-{affinity or 'off'}"
                         + (f"-{workers}w" if workers > 1 else ""))
                zone = f"affinity={affinity} loaded=1" if affinity else ""
                out[label] = r = self.swap_run(label, zone, spread, workers)
                r.update(spread=spread, affinity=affinity, workers=workers)
                if "missing" in r:
                    log(f"swaps {label}: not run: {r['missing']}")
                    continue
                log(f"swaps {label}: {r['swaps']} swaps, makespan {r['makespan']:.2f} s, "
                    f"wait p99 {r['p99_1']:.2f} / {r['p99_2']:.2f} s, passed over at most "
                    f"at {r['passed_over']:.2f} s of waiting ({r['passed']} requests), "
                    f"{r['inversions']} inversions")
        self.results["swaps"] = out

    def fair_start(self, label, zone_extra, workers=1):
        standin = Standin(self.procs, f"standin-{label}",
                          ["--tokens", str(FAIR_SHORT_TOKENS), "--delay-ms", str(FAIR_DELAY_MS)])
        try:
            gateway, missing = self.sched_gateway(f"fair-{label}", standin, zone_extra,
                                                  ["seadragon_source api priority=1;"], workers)
        except BaseException:
            standin.stop()
            raise
        if gateway is None:
            standin.stop()
            return None, None, missing
        for i in range(3):
            if read_status(send_request(gateway.port, f"warm{i}", tenant="warm")) != 200:
                standin.stop()
                gateway.stop()
                raise BenchError(f"{label}: the warm-up failed")
        return standin, gateway, None

    def send_noisy(self, gateway, sent):
        conns = []
        for i in range(FAIR_NOISY):
            sent[f"n{i}"] = time.time()
            conns.append(send_request(gateway.port, f"n{i}", tenant="noisy",
                                      tokens=FAIR_LONG_TOKENS))
        return conns

    def fair_waits(self, label, zone_extra, noisy, workers=1):
        """Figure 10, the waits: the light tenants send one short request
        every FAIR_PERIOD_MS (jittered), with the noisy one's burst of long
        ones at the start, or alone."""
        standin, gateway, missing = self.fair_start(f"waits-{label}", zone_extra, workers)
        if gateway is None:
            return {"missing": missing}
        rng = random.Random(10)
        plan = []
        for j in range(1, FAIR_LIGHT + 1):
            offset = rng.uniform(0, FAIR_PERIOD_MS)
            for k in range(FAIR_LIGHT_REQUESTS):
                due = offset + k * FAIR_PERIOD_MS + rng.uniform(-0.25, 0.25) * FAIR_PERIOD_MS
                plan.append((max(0.0, due) / 1000, f"light{j}", f"l{j}-{k}"))
        plan.sort()
        sent, noisy_conns, light_conns = {}, [], []
        try:
            if noisy:
                noisy_conns = self.send_noisy(gateway, sent)
            started = time.time()
            for due, tenant, tag in plan:
                time.sleep(max(0.0, started + due - time.time()))
                sent[tag] = time.time()
                light_conns.append(send_request(gateway.port, tag, tenant=tenant))
            statuses = [read_status(c, timeout=300) for c in light_conns]
            if any(s != 200 for s in statuses):
                raise BenchError(f"{label}: answers other than 200: {sorted(set(statuses))}")
            tags = {tag for _, _, tag in plan}
            records, log_lines = self.sched_records(standin, gateway, tags)
            noisy_records = [r for r in standin.records()
                             if (r["tag"] or "").startswith("n") and not r["aborted"]
                             and r["end"] is not None]
        finally:
            abort(noisy_conns)  # what is left of the burst: not measured
            for c in light_conns:
                c.close()
            gateway.stop()
            standin.stop()
        waits = [log_lines[tag]["wait"] for _, _, tag in plan]
        light_service = [records[tag]["end"] - records[tag]["start"] for _, _, tag in plan]
        log(f"{label}: the light tenants' longest waits, ms: "
            + ", ".join(f"{w * 1000:.0f}" for w in sorted(waits)[-5:]))
        out = {"p50": percentile(waits, 50), "p99": percentile(waits, 99), "max": max(waits),
               "count": len(waits), "light_service": statistics.median(light_service)}
        if noisy_records:
            out["noisy_service"] = statistics.median(r["end"] - r["start"]
                                                     for r in noisy_records)
        return out

    def fair_index(self, label, zone_extra, workers=1):
        """Figure 10, the shares: the noisy burst, and each light tenant
        keeping one request in the gate at all times (the next sent when
        its answer ends) for FAIR_BACKLOG_SECONDS: four backlogged
        tenants; Jain's index of the tokens each was served while more
        than one was backlogged."""
        standin, gateway, missing = self.fair_start(f"index-{label}", zone_extra, workers)
        if gateway is None:
            return {"missing": missing}
        sent, ended, noisy_conns, errors = {}, {}, [], []
        stop = [False]

        def light(j):
            try:
                conn = Connection(gateway.port)
                conn.sock.settimeout(120)
                k = 0
                while not stop[0]:
                    tag = f"b{j}-{k}"
                    sent[tag] = time.time()
                    conn.sock.sendall(request_bytes(
                        "POST", "/api/chat", request_headers(tag, tenant=f"light{j}"),
                        chat_body(True), close=False))
                    status = conn.response()[0]
                    ended[tag] = time.time()
                    if status != 200:
                        raise BenchError(f"{label}: a light request answered {status}")
                    k += 1
                conn.close()
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=light, args=(j,), daemon=True)
                   for j in range(1, FAIR_LIGHT + 1)]
        try:
            noisy_conns = self.send_noisy(gateway, sent)
            started = time.time()
            for t in threads:
                t.start()
            time.sleep(FAIR_BACKLOG_SECONDS)
            stopped = time.time()
            stop[0] = True
            abort(noisy_conns)  # lets the light requests still waiting go
            for t in threads:
                t.join(120)
            if errors:
                raise BenchError(f"{label}: {errors[0]}")
            records = {r["tag"]: r for r in standin.records() if r["tag"] in sent}
        finally:
            abort(noisy_conns)
            stop[0] = True
            gateway.stop()
            standin.stop()
        requests = []
        for tag, at in sent.items():
            rec = records.get(tag)
            r = {"tenant": "noisy" if tag.startswith("n") else "light" + tag[1:].split("-")[0],
                 "a": at, "f": math.inf}
            if rec is not None:
                usage = rec.get("usage_sent") or {}
                r["f"] = rec["end"] if rec["end"] is not None else math.inf
                r["s"] = rec["start"]
                r["e"] = rec["last_byte"] or rec["end"] or math.inf
                r["tokens"] = usage.get("prompt_eval_count", 1) + (rec["tokens_sent"] or 0)
            requests.append(r)
        served = backlogged_service(requests, started, stopped)
        total = sum(served.values()) or 1
        return {"index": jain(list(served.values())),
                "shares": {t: v / total for t, v in sorted(served.items())},
                "tokens": dict(sorted(served.items())), "seconds": stopped - started}

    def phase_fair(self):
        out = {"waits": {}, "index": {}}
        for name, zone, workers in FAIR_GATES:
            noisy = name != "alone"
            out["waits"][name] = r = self.fair_waits(name, zone, noisy, workers)
            if "missing" in r:
                log(f"noisy neighbour {name}: not run: {r['missing']}")
                continue
            log(f"noisy neighbour {name}: light waits p50 {r['p50'] * 1000:.1f} ms, "
                f"p99 {r['p99'] * 1000:.1f} ms"
                + (f" (noisy service {r['noisy_service'] * 1000:.1f} ms)"
                   if "noisy_service" in r else ""))
            if not noisy:
                continue
            out["index"][name] = r = self.fair_index(name, zone, workers)
            if "missing" in r:
                continue
            log(f"noisy neighbour {name}: Jain's index {r['index']:.3f}, token shares "
                + ", ".join(f"{t} {v:.2f}" for t, v in r["shares"].items()))
        self.results["fair"] = out

    def phase_dispatch(self):
        """Figure 11: make bench-dispatch, helper A's micro-benchmark of the
        scheduler's choice, its table as it prints it."""
        makefile = os.path.join(ROOT, "Makefile")
        with open(makefile) as f:
            if not re.search(r"^bench-dispatch\s*:", f.read(), re.M):
                log("dispatch cost: the Makefile has no bench-dispatch target")
                self.results["dispatch"] = {"missing": "no `make bench-dispatch` target"}
                return
        proc = subprocess.run(["make", "-s", "-C", ROOT, "bench-dispatch",
                               f"BUILD={self.args.build}"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise BenchError(f"make bench-dispatch failed:\n{proc.stdout[-800:]}"
                             f"{proc.stderr[-800:]}")
        log("dispatch cost:\n" + proc.stdout.strip())
        self.results["dispatch"] = dispatch_table(proc.stdout)

    # ------------------------------------------------------------ the run

    def run(self):
        self.started = time.time()
        self.load_before = os.getloadavg()
        self.standin = Standin(self.procs)
        phases = {"1": self.phase_backlog, "3": self.phase_throughput,
                  "4": self.phase_passthrough, "5": self.phase_ttft, "6": self.phase_parked,
                  "7": self.phase_body, "8": self.phase_usage, "9": self.phase_swaps,
                  "10": self.phase_fair, "11": self.phase_dispatch}
        for key, phase in phases.items():
            if self.args.only and key not in self.args.only:
                continue
            log(f"figure {key}{' and 2' if key == '1' else ''} ...")
            phase()
        self.load_after = os.getloadavg()
        self.elapsed = time.time() - self.started

    def cleanup(self, keep):
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C: still stop them all
        self.procs.stop_all()
        if keep:
            log(f"logs and configurations kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------- the report

def version_of(argv, pattern):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "?"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "nginx": version_of([NGINX, "-v"], r"nginx/(\S+)"),
        "haproxy": version_of([HAPROXY, "-v"], r"version (\S+)"),
        "wrk": version_of([WRK, "-v"], r"wrk (\S+)"),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def ms(value):
    return "—" if value is None else f"{value:.2f}"


def ratio(a, b):
    """Seadragon's figure over its peer's."""
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


SEADRAGONS = ("seadragon-1w", "seadragon-2w", "seadragon-2w-tick1")
WORKERS = {"seadragon-1w": "1 worker vs 1 thread", "seadragon-2w": "2 workers vs 2 threads",
           "seadragon-2w-tick1": "2 workers, tick=1ms vs 2 threads"}


def num(value, digits=0):
    return "—" if value is None else f"{value:.{digits}f}"


def gate_cell(x):
    cell = f"{num(x['rps'])}; {num(x['cpu_us'])}"
    if x.get("stalled"):
        cell += f" ({x['stalled']} of the runs stalled: no answer)"
    return cell


def report(bench):
    """The table, in markdown: one row a figure, the peers side by side."""
    r = bench.results
    rows = []  # figure, Seadragon, HAProxy, plain nginx, direct, Seadragon against peers

    if "backlog" in r:
        b = r["backlog"]
        for key in SEADRAGONS:
            s, h = b[key], b[GATES[key]["peer"]]
            cell = f"{ms(s['median'])} / {ms(s['p99'])} / {ms(s['max'])}"
            if s["cross"]:
                cell += (f" ({s['cross']} of {s['dispatches']} handoffs cross workers: "
                         f"median {ms(s['cross_median'])})")
            rows.append((f"1. Handoff gap, ms, median / p99 / max — {WORKERS[key]}", cell,
                         f"{ms(h['median'])} / {ms(h['p99'])} / {ms(h['max'])}", "", "",
                         f"median {ratio(s['median'], h['median'])}, "
                         f"p99 {ratio(s['p99'], h['p99'])}"))
        for key in SEADRAGONS:
            s, h = b[key], b[GATES[key]["peer"]]
            rows.append((f"2. Priority inversions / FIFO breaks in {s['dispatches']} "
                         f"dispatches — {WORKERS[key]}",
                         f"{s['inversions']} / {s['fifo_breaks']}",
                         f"{h['inversions']} / {h['fifo_breaks']}", "", "", ""))

    if "throughput" in r:
        for upstream, label in (("standin", "stand-in"),
                                ("instant", "instant upstream")):
            t = r["throughput"][upstream]
            for key in SEADRAGONS:
                s, h = t[key], t[GATES[key]["peer"]]
                rows.append((f"3. Gate throughput, capacity 1, {label}: req/s; "
                             f"gateway CPU µs/req — {WORKERS[key]}",
                             gate_cell(s), gate_cell(h), "",
                             f"{t['direct']['rps']:.0f} (one at a time)",
                             f"req/s {ratio(s['rps'], h['rps'])}, "
                             f"{ratio(s['rps'], t['direct']['rps'])} of direct; "
                             f"CPU {ratio(s['cpu_us'], h['cpu_us'])}"))

    if "passthrough" in r:
        for key, label in (("standin-tags", "GET /api/tags, stand-in"),
                           ("standin-post", "short POST, stand-in"),
                           ("instant-tags", "GET /api/tags, instant upstream"),
                           ("instant-post", "short POST, instant upstream")):
            p = r["passthrough"][key]
            def cell(x):
                return (f"{num(x['rps'])}; {ms(x['p50'])} / {ms(x['p99'])}"
                        + (f"; {x['cpu_us']:.1f}" if x["cpu_us"] is not None else ""))
            s, n = p["seadragon"], p["nginx"]
            rows.append((f"4. Pass-through, {label}: req/s; latency ms, p50 / p99; "
                         "gateway CPU µs/req",
                         cell(s), "", cell(n), cell(p["direct"]),
                         f"req/s {ratio(s['rps'], n['rps'])}; "
                         f"p50 {ratio(s['p50'], n['p50'])}, p99 {ratio(s['p99'], n['p99'])}; "
                         f"CPU {ratio(s['cpu_us'], n['cpu_us'])}"))

    if "ttft" in r:
        t = r["ttft"]
        d = t["direct"]["median"]
        added = {k: v["median"] - d for k, v in t.items()}
        def cell(k):
            return f"{ms(t[k]['median'])} / {ms(t[k]['p99'])}; +{added[k]:.2f}"
        rows.append(("5. Time to first token, ms, median / p99; + added over direct "
                     "(1 worker, 1 thread)",
                     cell("seadragon"), cell("haproxy"), cell("nginx"),
                     f"{ms(t['direct']['median'])} / {ms(t['direct']['p99'])}",
                     f"added {ratio(added['seadragon'], added['haproxy'])} HAProxy's, "
                     f"{ratio(added['seadragon'], added['nginx'])} nginx's"))

    if "parked" in r:
        s, h = r["parked"]["seadragon"], r["parked"]["haproxy"]
        rows.append((f"6. Resident memory per parked request, KiB ({s['count']} parked)",
                     f"{s['per_request_kib']:.2f}", f"{h['per_request_kib']:.2f}", "", "",
                     ratio(s["per_request_kib"], h["per_request_kib"])))
        rows.append((f"6. CPU while {s['count']} wait, % of one core; wake-ups/s",
                     f"{s['cpu_percent']:.3f}; {s['wakeups']:.0f}",
                     f"{h['cpu_percent']:.3f}; {h['wakeups']:.0f}", "", "",
                     f"CPU {ratio(s['cpu_percent'], h['cpu_percent'])}"))

    if "usage" in r:
        for key, label in (("whole", "short POST /api/chat, whole answer"),
                           ("stream", f"POST /api/generate, {USAGE_TOKENS}-token stream")):
            u = r["usage"][key]
            s, o = u["on"], u["off"]
            def cell(x):
                return f"{num(x['rps'])}; {num(x['cpu_us'], 1)}"
            rows.append((f"8. Usage accounting, {label}, instant upstream: req/s; "
                         "gateway CPU µs/req — seadragon_usage on vs off",
                         cell(s), "", "", "",
                         f"off: {cell(o)}; req/s {ratio(s['rps'], o['rps'])}, "
                         f"CPU {ratio(s['cpu_us'], o['cpu_us'])}"))

    header = ("Figure", "Seadragon", "HAProxy 2.6", "plain nginx", "upstream direct",
              "Seadragon against its peer")
    rows = [tuple(c if c != "" else "—" for c in row) for row in rows]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    table = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(table + [line(row) for row in rows])


def body_report(bench):
    """Figure 7's own table: time per MB, one long string against short ones."""
    body = bench.results.get("body")
    if not body:
        return ""
    header = ("Body", "One string: worker CPU ms (ms per MB)",
              "Short strings: worker CPU ms (ms per MB)", "One string against short ones")
    rows = []
    for mb, x in body.items():
        rows.append((f"{mb} MB", f"{x['string'] * 1e3:.1f} ({x['string'] * 1e3 / mb:.2f})",
                     f"{x['short'] * 1e3:.1f} ({x['short'] * 1e3 / mb:.2f})",
                     ratio(x["string"], x["short"])))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in rows])


def body_section(bench):
    table = body_report(bench)
    if not table:
        return ""
    return f"""
## 7. Body check: time per MB

Made with the rest, or alone in seconds with `make bench-body`
(`seadragon-bench.py --only 7`, which prints this table and writes
nothing). Seadragon with 1 worker reads each body (a temporary file past
16 KB), checks it to its last byte and refuses it for the byte that follows
the object (`{{...}}x`, a 400 that proxies nothing); the figure is that
worker's CPU time (schedstat), the least of {BODY_ROUNDS} runs, and it includes
reading the body from the socket and writing it to the temporary file.
"One string" is `{{"model":...,"prompt":"aaaa..."}}`, "short strings" the
same size as an array of 32-byte strings.

{table}

The check is linear in the body's size whatever its shape: yajl is handed
each piece of the body only up to the last point where no token is open,
so it never lexes a token twice. Before (this figure on the module as
issue 11 found it), a string cut by the body's 4k reads was lexed again
from its start with every read: one string took 35 ms for 1 MB and
8.28 s for 16 MB (0.52 s per MB, doubling with every doubling of the
size), 200 times as long as 16 MB of short strings (41 ms); and while it
ran, no other client of that worker was served.
"""


def md_table(header, rows):
    rows = [tuple(c if c != "" else "—" for c in row) for row in rows]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in rows])


def times(factor):
    return "—" if factor is None else f"{factor:.1f}×"


def swaps_report(bench):
    """Figure 9's table: one row a gate, held and spread arrivals."""
    swaps = bench.results.get("swaps")
    if not swaps:
        return ""
    header = ("Arrivals", "Gate", "Swaps (loads)", "Makespan, s",
              "Wait p50 / p99, s: priority 1", "priority 2",
              "Passed over: longest wait then, s (requests)", "Priority inversions",
              "Against affinity off: swaps; makespan")
    rows = []
    for label, r in swaps.items():
        arrivals = (f"spread, a mean {SWAP_SPREAD_MS} ms apart" if r["spread"]
                    else "all parked, then let go")
        gate = (f"affinity={r['affinity']}" if r["affinity"] else "affinity off") + (
            f", {r['workers']} workers" if r["workers"] > 1 else "")
        if "missing" in r:
            rows.append((arrivals, gate, f"not run: {r['missing']}", "", "", "", "", "", ""))
            continue
        base = swaps.get(label.split("-", 1)[0] + "-off", {})
        against = ""
        if r["affinity"] and "swaps" in base:
            fewer = base["swaps"] / r["swaps"] if r["swaps"] else None
            against = (f"{times(fewer)} fewer" if fewer else f"none against {base['swaps']}")
            against += f"; {times(base['makespan'] / r['makespan'])} shorter"
        rows.append((arrivals, gate, f"{r['swaps']} ({r['loads']})", f"{r['makespan']:.2f}",
                     f"{r['p50_1']:.2f} / {r['p99_1']:.2f} ({r['n_1']})",
                     f"{r['p50_2']:.2f} / {r['p99_2']:.2f} ({r['n_2']})",
                     f"{r['passed_over']:.2f} ({r['passed']})", str(r["inversions"]), against))
    return md_table(header, rows)


def fair_report(bench):
    """Figure 10's two tables: the light tenants' waits, the shares."""
    fair = bench.results.get("fair")
    if not fair:
        return ""
    alone = fair["waits"].get("alone", {})
    label = FAIR_LABELS
    rows = []
    for name, r in fair["waits"].items():
        if "missing" in r:
            rows.append((label[name], f"not run: {r['missing']}", "", "", ""))
            continue
        service = r.get("noisy_service")
        extra = goal = ""
        if name != "alone" and "p99" in alone:
            extra = (f"+{(r['p50'] - alone['p50']) * 1000:.0f} / "
                     f"+{(r['p99'] - alone['p99']) * 1000:.0f}")
            if service:
                # waits are whole milliseconds ($seadragon_queue_wait): 1 ms of slack
                more = r["p99"] - alone["p99"]
                goal = ("met" if more <= service + 0.001 else "not met") + (
                    f" (p99 {more / service:.2f} service times more)")
        rows.append((label[name],
                     f"{r['p50'] * 1000:.0f} / {r['p99'] * 1000:.0f} / {r['max'] * 1000:.0f}",
                     extra, "—" if not service else f"{service * 1000:.0f}", goal))
    waits = md_table(("Gate", "Light tenants' wait p50 / p99 / max, ms",
                      "Against alone, p50 / p99, ms", "A noisy request's service, ms",
                      "Goal: p99 at most one service more than alone (to the ms)"), rows)
    rows = []
    for name, r in fair["index"].items():
        if "missing" in r:
            rows.append((label[name], f"not run: {r['missing']}", "", ""))
            continue
        shares = r["shares"]
        lights = [shares.get(f"light{j}", 0.0) for j in range(1, FAIR_LIGHT + 1)]
        rows.append((label[name], f"{r['index']:.3f}",
                     f"{shares.get('noisy', 0.0):.2f} / " + " / ".join(f"{v:.2f}" for v in lights),
                     "met" if r["index"] >= 0.95 else "not met"))
    index = md_table(("Gate", "Jain's index, tokens served while backlogged",
                      "Share of those tokens: noisy / light 1 / 2 / 3", "Goal: ≥ 0.95"), rows)
    return waits + "\n\n" + index


def dispatch_table(text):
    """make bench-dispatch's output: its columns (a "scenario" line, then
    a name and numbers a line) as a markdown table between the lines of
    text around it; as it is when it has no such columns."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    head = next((i for i, line in enumerate(lines) if line.split()[:1] == ["scenario"]), None)
    if head is None:
        return {"output": text.strip(), "table": None}
    columns = lines[head].split()[1:]
    rows, end = [], head + 1
    for line in lines[head + 1:]:
        match = re.match(r"^(\S.*?)\s+((?:[\d.]+\s+){%d}[\d.]+)$" % (len(columns) - 1), line)
        if not match:
            break
        rows.append((match.group(1), *match.group(2).split()))
        end += 1
    return {"before": "\n".join(lines[:head]).strip(),
            "table": md_table(("Scenario", *columns), rows),
            "after": "\n".join(lines[end:]).strip(), "output": text.strip()}


def dispatch_report(bench):
    d = bench.results.get("dispatch")
    if not d:
        return ""
    if "missing" in d:
        return f"Not run: {d['missing']}."
    if not d["table"]:
        return "```\n" + d["output"] + "\n```"
    return "\n\n".join(part for part in (d["before"], d["table"], d["after"]) if part)


def sched_sections(bench):
    """Figures 9 to 11 (issue 15), each with how it is made."""
    parts = []
    table = swaps_report(bench)
    if table:
        parts.append(f"""
## 9. Model swaps and makespan

{SWAP_REQUESTS} streaming chats over {len(SWAP_MODELS)} models ({', '.join(SWAP_MODELS)}),
the model of each drawn at random (seeded: the same line for every gate),
of two priorities (`X-Source`: coding {SWAP_SOURCES[0][1]}, about {SWAP_CODING:.0%} of them, and api {SWAP_SOURCES[1][1]}),
through Seadragon with capacity 1 and 1 worker (2, with `reuseport`,
where the row says so), in front of a stand-in
that holds one model at a time (`--max-loaded 1`, as
`OLLAMA_MAX_LOADED_MODELS=1`), takes {SWAP_LOAD_MS} ms to load one (a load
scaled down from the seconds of a real one) and generates {SWAP_TOKENS} tokens
{SWAP_DELAY_MS} ms apart. A fresh stand-in and gateway for each row; one
warm-up request makes {SWAP_MODELS[0]} resident first. "All parked": a
held request takes the gate, the {SWAP_REQUESTS} wait behind it, then it is
let go; "spread": they arrive one at a time, exponential gaps of a mean
of {SWAP_SPREAD_MS} ms (the gate serves far slower, so a line builds).
Affinity off is what Ollama, llama-swap and HAProxy do: first come,
first served within a priority. Swaps are the stand-in's loads that
evicted a model (`GET /_standin/loads`, exact; loads in brackets);
makespan runs from the release (or the first arrival) to the end of the
last answer; waits are `$seadragon_queue_wait` from the access log. A
request is passed over when one that arrived after it (the larger
`$seadragon_queue_id`), of the same or a worse priority, is dispatched
first (the stand-in's start of each); the column gives the longest the
passed-over request had then waited (with affinity=TIME, at most TIME)
and how many requests were ever passed over. A dispatch is a priority
inversion when a request of a better priority was waiting.

{table}
""")
    table = fair_report(bench)
    if table:
        parts.append(f"""
## 10. The noisy neighbour

Seadragon with capacity 1, one source and 1 worker (2, with `reuseport`,
where the row says so); tenants by the
`X-Tenant` header (`tenant=$http_x_tenant`); the stand-in generates
tokens {FAIR_DELAY_MS} ms apart. The noisy tenant sends {FAIR_NOISY} requests at once,
each a long answer ({FAIR_LONG_TOKENS} tokens and the prompt's 1: 40); three light
tenants send short ones (4 tokens, a tenth). Two runs per gate, each with
a fresh stand-in and gateway:

* **Waits.** Each light tenant sends {FAIR_LIGHT_REQUESTS} requests, one every
  {FAIR_PERIOD_MS} ms (±25%, seeded), from the noisy burst on; their wait is
  `$seadragon_queue_wait` (of {FAIR_LIGHT * FAIR_LIGHT_REQUESTS} waits, the nearest-rank p99 is
  the longest). "Alone" is the same light requests with no
  noisy tenant. The goal: a light tenant waits at most one service time
  (one of the noisy tenant's long answers) more than alone. A gate that
  serves one request at a time cannot do better: a light request that
  arrives while a long one runs waits for its end.
* **Shares.** With the burst, each light tenant keeps one request in the
  gate at all times (it sends the next as its answer ends) for
  {FAIR_BACKLOG_SECONDS:.0f} s; then the burst is cut. Over the windows in which more than one
  tenant is backlogged (has a request waiting or running), the tokens
  each tenant was served (prompt and completion, spread evenly over each
  answer's time on the stand-in); Jain's index of those four numbers,
  (Σx)² / (n·Σx²): 1 when all got the same, 1/4 when one got all.

fair=off is first come, first served (Ollama, llama-swap, HAProxy);
fair=requests a round robin by request count, as ollamaMQ does;
fair=tokens the virtual token counter (Sheng et al., OSDI 2024).

{table}
""")
    table = dispatch_report(bench)
    if table:
        parts.append(f"""
## 11. Dispatch cost

`make bench-dispatch` (run by `make bench` as figure 11): the scheduler's
choice of the next request timed alone, outside nginx.

{table}
""")
    return "".join(parts)


def markdown(bench, table):
    m = machine()
    b = bench.args
    return f"""# Benchmarks

Made by `make bench` (`scripts/bench/seadragon-bench.py`) on {m['date']};
the run took {bench.elapsed:.0f} s. Everything ran on loopback in front of one
stand-in Ollama (`scripts/ollama-standin.py`, Python), each gateway started
for its figure. Regenerate this file with `make bench`.

| machine | |
| --- | --- |
| CPU | {m['cpu']}, {m['cores']} cores |
| kernel | {m['kernel']} |
| nginx | {m['nginx']} (Debian's `/usr/sbin/nginx`, with and without `load_module`) |
| HAProxy | {m['haproxy']} |
| wrk | {m['wrk']} |
| Python | {m['python']} |
| load average, before / after (a shared machine) | {bench.load_before[0]:.2f} / {bench.load_after[0]:.2f} |

{table}

"Against its peer" is Seadragon's figure divided by its peer's (HAProxy's,
or plain nginx's for pass-through): for times, memory and CPU lower is
better, for requests per second higher is better. The peer of Seadragon
with N workers is HAProxy with N threads (`nbthread`): both then hand
requests across N event loops. "Instant upstream" is an nginx that answers
with the stand-in's own bytes (`return 200`), to take the Python stand-in
out of the figure; "upstream direct" is that upstream with no gateway.
Timings come from a machine that other work shared (see the load
average): throughput runs alternate between the peers and report the
median of {b.rounds} runs, so that noise falls on all of them alike.

## How each figure is made

1. **Handoff gap.** A request that the stand-in holds (`X-Standin-Hold`)
   takes the gate; {b.backlog} short streaming chats of three priorities (header
   `X-Source`: coding 1, chat 2, api 3, mixed 2:3:5) queue behind it, each
   on its own keep-alive connection; then it is let go and the backlog
   drains one request at a time. The gap is the stand-in's idle time between
   the last byte of one answer and the start of the next request (its
   records' `last_byte` and `start`): the time the gateway takes to see the
   end, choose the next request and pass it on. Seadragon runs with the
   README's upstream settings (`keepalive`, HTTP/1.1, `proxy_buffering
   off`), with `reuseport` when it has 2 workers so that both hold
   requests; the cell says how many handoffs went from one worker to the
   other. HAProxy runs `server ... maxconn 1`, `http-request
   set-priority-class` from the same header and `http-reuse always` (it
   keeps upstream connections for any request, as nginx's `keepalive`
   does). It runs without `option abortonclose` except in figure 6: with it
   and 2 threads, its queue stalled for good in our runs once wrk closed
   connections that were waiting. Without it, a client that leaves stays
   in HAProxy's queue and its request still reaches the model; Seadragon
   drops it.
2. **Dispatch correctness.** Each request of the backlog is sent only once
   the gateway counts the one before it as queued (Seadragon's
   `seadragon_queue_length`, HAProxy's `show stat` `qcur`), so the order of
   arrival is known. A dispatch is a priority inversion when a request of a
   better priority was waiting, a FIFO break when an earlier request of the
   same priority was.
3. **Gate throughput.** wrk with {WRK_CONNECTIONS} connections for {b.duration} s,
   non-streaming one-token chats through capacity 1, in front of the
   stand-in and of the instant upstream. The upstream reached directly on
   one connection, one request at a time, is the most a capacity-1 gate can
   give; in front of the stand-in that is a Python server's pace, the floor
   of every figure there.
4. **Pass-through.** wrk with {WRK_CONNECTIONS} connections for {b.duration} s, to
   `GET /api/tags` (classified, never queued) and to short POSTs (the body
   read and checked with yajl, queued and let through at once: the zone's
   capacity is {4 * WRK_CONNECTIONS}), through Seadragon and through plain nginx (the same
   binary and `proxy_pass` configuration without the module), one worker
   each, with the upstream reached directly as the floor.
5. **Time to first token.** {TTFT_REQUESTS} streaming chats through each path, one at
   a time on one keep-alive connection, in turns; timed from sending the
   request to reading the chunk with the first token. The gate is idle
   (capacity 1, nothing waiting): this is what a lone request pays.
6. **Parked cost.** Behind a held request, {b.parked} requests wait (Seadragon: 1
   worker, `max_queued={b.parked}`, `worker_connections` raised; HAProxy: 1
   thread, `maxconn` raised, `option abortonclose` so that the clients'
   departure empties its queue as it empties Seadragon's). Memory is the growth of the resident set
   (VmRSS) of every gateway process from the held request alone to all of
   them parked, divided by their number; the kernel's socket buffers are
   not in it. CPU is the gateway processes' time on a CPU (schedstat) over
   {b.idle:.0f} s of waiting, and wake-ups are their context switches per second.
8. **Usage accounting.** wrk with {WRK_CONNECTIONS} connections for {b.duration} s, short
   POSTs through two Seadragons in front of the instant upstream, alike
   but for `seadragon_usage off` in one: with it on (the default) every
   answer is read for its tokens as it passes. Two answers: the whole
   chat of figure 4, and a streamed generation of {USAGE_TOKENS} tokens (NDJSON,
   its last line with Ollama's figures). The pair is started twice, in
   both orders (the one started first ran some 5% slower in an A/A run),
   and each figure is the mean of the two medians. The goal is at least
   0.97× the requests per second of the one that does not read them.
{body_section(bench)}{sched_sections(bench)}
## Why the figures are what they are

* With one worker, a request that ends frees its slot in its pool cleanup
  and the same worker admits the next request in line at once, through a
  posted event.
* With 2 workers, only the worker that parked a request can resume it. A
  slot freed in one worker goes to a request parked in the other through
  that worker's wake-up pipe (one byte, written after the zone's lock is
  released): a handoff across workers costs a write, an epoll wake-up and
  a dispatch, not a tick. `tick=1ms` makes no difference any more, so the
  row with it shows the noise between two runs of the same thing. HAProxy
  with 2 threads slows down when the next stream in its queue lives on the
  other thread.
* A parked request costs one connection and one request (nginx's request
  pool, header buffer and the body, which the gate has already read) and
  an entry in the shared zone; a worker with requests parked still wakes
  once a tick (100 ms by default: 10 wake-ups a second), the backstop that
  reaps what a killed worker left, however many requests wait. HAProxy's
  queue has no timer of its own.
* In front of the stand-in, every gateway waits on the same Python server:
  the figures there show mainly the stand-in, which is why the instant
  upstream rows exist.
* The benchmark's clients use keep-alive, as Ollama's clients do. (A
  client that sends `Connection: close` and keeps its end open keeps its
  request alive in nginx for a lingering close; the gate gives its slot
  back at the answer's last byte all the same, which this benchmark's first
  runs showed it did not.)
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--output", help="write the report (markdown) here")
    parser.add_argument("--duration", type=int, default=1, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=5,
                        help="wrk runs of each target, in turns; the median counts")
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--parked", type=int, default=10000)
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds of CPU measured while requests are parked")
    parser.add_argument("--only", help="figures to run, e.g. 1,5 (2 comes with 1)")
    parser.add_argument("--log-level", default="warn", help="the gateways' error_log level")
    args = parser.parse_args(argv)
    args.only = set(args.only.split(",")) if args.only else None
    # the gateways run with their own prefix: a relative build is not theirs
    args.build = os.path.abspath(args.build)

    module = os.path.join(args.build, "ngx_seadragon_module.so")
    if not os.path.exists(module):
        raise SystemExit(f"bench: {module} is missing; run make first")
    for tool in ((NGINX,) if args.only and args.only <= {"7", "9", "10", "11"}
                 else (NGINX, WRK) if args.only == {"8"} else (NGINX, HAPROXY, WRK)):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (make bench installs it)")

    # 10,000 parked requests are 10,000 sockets here and in the gateway
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, args.parked + 5000)
    for limit in ((wanted, max(hard, wanted)), (min(wanted, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            break
        except (ValueError, OSError):
            continue

    def stop(signum, frame):
        raise KeyboardInterrupt
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)  # SIGINT too: a shell may start us ignoring it

    bench = Bench(args)
    failed = True
    try:
        bench.run()
        failed = False
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as error:
        log(f"failed: {error}")
        return 1
    finally:
        bench.cleanup(keep=failed)

    table = report(bench)
    if args.only and args.only <= {"7", "9", "10", "11"}:
        # figures with tables of their own: printed, nothing written
        print(body_report(bench) if "7" in args.only else "", end="")
        print(sched_sections(bench))
        return 0
    print(table)
    print(body_report(bench))
    print(sched_sections(bench))
    if args.output:
        with open(args.output, "w") as f:
            f.write(markdown(bench, table))
        log(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
