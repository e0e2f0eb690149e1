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
"""

import argparse
import datetime
import http.client
import json
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


def chat_body(stream=True):
    return json.dumps({"model": MODEL, "stream": stream,
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
    def __init__(self, procs):
        self.proc = procs.spawn("standin", [sys.executable, STANDIN, "--port", "0", "--quiet",
                                            "--tokens", "2", "--delay-ms", "0"],
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
              server_extra=()):
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
        http_ += ["access_log off;", "keepalive_requests 1000000;"]
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
                    f"max_wait=0{tick_opt};",
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

    # ------------------------------------------------------------ the run

    def run(self):
        self.started = time.time()
        self.load_before = os.getloadavg()
        self.standin = Standin(self.procs)
        phases = {"1": self.phase_backlog, "3": self.phase_throughput,
                  "4": self.phase_passthrough, "5": self.phase_ttft, "6": self.phase_parked,
                  "7": self.phase_body, "8": self.phase_usage}
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
{body_section(bench)}
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
    for tool in ((NGINX,) if args.only == {"7"}
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
    if args.only == {"7"}:
        print(body_report(bench))
        return 0
    print(table)
    print(body_report(bench))
    if args.output:
        with open(args.output, "w") as f:
            f.write(markdown(bench, table))
        log(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
