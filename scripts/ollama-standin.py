#!/usr/bin/env python3
"""A stand-in for Ollama: Seadragon's tests run against it, and `make run` starts
it when no Ollama answers on 127.0.0.1:11434.

It speaks Ollama's HTTP API (as of Ollama 0.6.8) faithfully enough for the real
`ollama` and `openai` clients, generates deterministic tokens ("tok1 ", "tok2 ",
...) at a set pace, records every request that reaches it, and fails on demand.
Python 3 standard library only.

    ollama-standin.py [--host 127.0.0.1] [--port 11434] [--tokens 8] [--delay-ms 20]
                      [--first-delay-ms 0] [--model llama3:70b] [--record FILE] [--quiet]
                      [--close-after-stream] [--cors] [--extra-model NAME]...
                      [--max-loaded 0] [--load-ms 0] [--load-ms-for MODEL=MS]...

--port 0 picks a free port. On start it prints one line to stdout,
"listening on HOST:PORT". --tokens is the length of each generation, --delay-ms
the pause between two tokens, --first-delay-ms the pause before the first byte
(a model load). The installed models are --model and nomic-embed-text:latest;
any other model gets Ollama's 404. --record appends one JSON line per finished
request to FILE. --quiet drops the request log on stderr. SIGTERM and SIGINT
end it at once. --extra-model NAME (repeatable) installs another chat model.

Residency, as Ollama's OLLAMA_MAX_LOADED_MODELS (off unless --max-loaded N
is above 0; off, every installed model answers at once and /api/ps lists
--model and each model used since the start): no model is resident at
first; a generation request for a model that is not resident waits its load
time (--load-ms MS, or --load-ms-for MODEL=MS for that model, repeatable)
before the first delay; when N models are resident the least recently used
one that no request is using is evicted (all in use: the request waits for
one, as Ollama does), and loads happen one at a time. Its answers' native
load_duration (the done line, a whole answer, /api/embed) is then exactly
the load time in ns (plus any first delay), and a few microseconds for a
resident model; /api/ps lists the resident models, the most recently used
first, each expiring 5 minutes after its last use. GET /_standin/loads lists
every load: seq, model, evicted (the model it evicted, or null), load_ms,
request (the seq of the request that caused it), tag (that request's
X-Standin-Tag), start, end; /_standin/stats adds "loads" and "swaps" (loads
that evicted a model); each request's record gets load_ms, the load it
waited for (0: resident; absent when residency is off or no model was used).
A reset forgets the loads, not the resident models.

Other engines' manners, for the gateway's tests (Ollama does neither):
--close-after-stream closes the connection 0.2 ms after the last chunk of
every streamed answer, without having said Connection: close, as llama.cpp's
llama-server does. --cors answers every request with
Access-Control-Allow-Origin: the request's Origin (or *, without one) and
Access-Control-Allow-Credentials: true, as llama-server does.

Ollama's endpoints
    GET|HEAD /                  "Ollama is running"
    GET|HEAD /api/version       {"version":"0.6.8"}
    GET|HEAD /api/tags          installed models
    GET /api/ps                 loaded models
    POST /api/show              a model's details (404 when unknown)
    POST /api/generate          NDJSON stream, or one object with "stream":false
    POST /api/chat              NDJSON stream, or one object with "stream":false
    POST /api/embed             {"embeddings":[[...]]} (8 floats a vector)
    POST /api/embeddings        {"embedding":[...]} (the older endpoint)
    GET /v1/models, GET /v1/models/{model}
    POST /v1/chat/completions   SSE with "stream":true (data: ... data: [DONE]), else JSON
    POST /v1/completions        likewise, for text_completion
    POST /v1/embeddings         float vectors, or base64 with "encoding_format":"base64"
    POST /api/pull, /api/push, /api/create   NDJSON progress ending {"status":"success"}
                                (one object with "stream":false)
    POST /api/copy, DELETE /api/delete       200 with no body (404 for an unknown model)
    HEAD /api/blobs/{digest}    404 (no blob is ever present); POST: 201
    The model-management endpoints answer as Ollama does and change nothing.
options.num_predict (max_tokens on /v1) sets the number of tokens. Errors are
Ollama's {"error":"..."} (OpenAI's {"error":{"message",...}} on /v1/*) with a
truthful status; an unknown path is 404 "404 page not found", a wrong method 405.
As Ollama does when it listens on loopback, a Host header that is not
localhost, a loopback or private address, this machine's name or a name under
.localhost, .local or .internal is refused with an empty 403.

Control headers (per request, all optional)
    X-Standin-Tokens: N          tokens in this generation (wins over num_predict)
    X-Standin-Delay-Ms: N        pause between tokens
    X-Standin-First-Delay-Ms: N  pause before the first byte
    X-Standin-Tag: TEXT          stored in the request's record (else null)
    X-Standin-Hold: 1            before answering, wait for POST /_standin/release
                                 (a test holds the gate this way, then lets it go
                                 at the moment it chooses)
    X-Standin-Pause-After: N     stream N tokens, then wait for POST /_standin/release
                                 before the rest (a stream in progress, on hold)
    X-Standin-Split: N           write the answer's body in pieces of at most N bytes,
                                 1 ms apart (a line cut across the reads of a proxy)
    X-Standin-Big-Token: N       the first token's text is N bytes ("x" * N) instead
                                 of "tok1 "
    X-Standin-Token-Text: TEXT   the first token's text is TEXT (quotes, backslashes:
                                 escapes in the JSON)
    A release counts for every request that started before it.
    X-Standin-Fail: MODE         after the first delay:
        500 | 503 | 400 | 404    that status with an Ollama-style JSON error
        close                    close the connection at once, sending nothing
        stall                    send nothing; hold the connection until the client leaves
        stall-mid                headers and 2 tokens, then nothing until the client leaves
        close-mid                headers and 2 tokens, then close without ending the stream
        error-mid                2 tokens, then Ollama's mid-stream error line
                                 {"error":"an error was encountered while running the model"},
                                 and a properly ended stream (on /v1: an SSE event
                                 in OpenAI's error shape, and no [DONE])
    The *-mid modes on a response that does not stream: error-mid answers 500,
    stall-mid and close-mid send the headers and half the body.

Control endpoints (no Host check, not recorded)
    GET  /_standin/requests   every record, in arrival order
    GET  /_standin/stats      {"active","peak","served","aborted","total"}
                              (and "loads", "swaps" with --max-loaded)
    GET  /_standin/loads      every model load, in order (with --max-loaded; else [])
    POST /_standin/reset      forget the records and counts; peak becomes active
    POST /_standin/release    let every request waiting with X-Standin-Hold answer
    POST /_standin/unload     {"model":NAME}: expire a resident, idle model now
                              ({"unloaded":true|false}; with --max-loaded)

Records: seq, method, path (with query), headers (lower-cased names), body
(the JSON if it parsed, else the raw text; null when empty), model, stream,
tag, start / first_byte / last_byte / end (time.time() seconds), status (null
when nothing was sent), tokens_sent, usage_sent (the figures the answer
carried, once they are written: Ollama's prompt_eval_count, eval_count and
*_duration in ns, or OpenAI's usage; else null), aborted (the client left before the response ended),
active_at_start (generation requests in flight, this one included, when it
started). start is taken once the request (head and body) has been read;
last_byte just before the last bytes of a complete answer are written (null
when none was: aborted, closed or stalled), so a request that a client sends
after reading a whole answer always starts after that answer's last_byte (the
benchmarks measure the upstream's idle time as start minus the last_byte
before it); end once the request is over, after the last write. A record is listed as soon as its request starts and is updated as
it goes. Generation requests are the POSTs to /api/generate, /api/chat,
/api/embed, /api/embeddings, /v1/chat/completions, /v1/completions and
/v1/embeddings; the stats count only them: active and peak (since the last
reset) in flight, served (finished normally with 200), aborted, and total
(started since the last reset).
"""

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import math
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OLLAMA_VERSION = "0.6.8"
EMBED_MODEL = "nomic-embed-text:latest"
EMBED_DIMENSIONS = 8
MID_STREAM_TOKENS = 2  # tokens sent before a *-mid failure
JSON_TYPE = "application/json; charset=utf-8"  # gin's c.JSON; Ollama's /v1 sends application/json
POLL_SECONDS = 0.05  # how often a waiting request looks for its client's EOF

GENERATION_PATHS = frozenset({
    "/api/generate", "/api/chat", "/api/embed", "/api/embeddings",
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
})
STREAMING_PATHS = frozenset({
    "/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions",
})

# path -> method -> handler method name (Handler.api_<name>)
ROUTES = {
    "/": {"GET": "root", "HEAD": "root"},
    "/api/version": {"GET": "version", "HEAD": "version"},
    "/api/tags": {"GET": "tags", "HEAD": "tags"},
    "/api/ps": {"GET": "ps"},
    "/api/show": {"POST": "show"},
    "/api/generate": {"POST": "generate"},
    "/api/chat": {"POST": "chat"},
    "/api/embed": {"POST": "embed"},
    "/api/embeddings": {"POST": "embeddings"},
    "/v1/chat/completions": {"POST": "v1_chat"},
    "/v1/completions": {"POST": "v1_completions"},
    "/v1/embeddings": {"POST": "v1_embeddings"},
    "/v1/models": {"GET": "v1_models"},
    "/api/pull": {"POST": "pull"},
    "/api/push": {"POST": "push"},
    "/api/create": {"POST": "create"},
    "/api/copy": {"POST": "copy"},
    "/api/delete": {"DELETE": "delete"},
}
BLOB_ROUTE = re.compile(r"^/api/blobs/([^/]+)$")  # gin's /api/blobs/:digest
V1_MODEL_ROUTE = re.compile(r"^/v1/models/([^/]+)$")  # gin's /v1/models/:model

FAILURES = {  # X-Standin-Fail status codes and Ollama's words for them
    "500": (500, "llama runner process has terminated: exit status 2"),
    "503": (503, "server busy, please try again.  maximum pending requests exceeded"),
    "400": (400, "input length exceeds maximum context length"),
    "404": (404, None),  # the unknown-model message, with the request's model
}
MID_FAILURES = frozenset({"stall-mid", "close-mid", "error-mid"})
FAIL_MODES = frozenset(FAILURES) | MID_FAILURES | {"close", "stall"}
MID_STREAM_ERROR = "an error was encountered while running the model"
CLOSE_AFTER_STREAM_SECONDS = 0.0002  # llama-server's close after a streamed answer

# Go's json.Unmarshal names the struct it decodes into in its errors; each
# body is checked against the fields Ollama would have to decode.
REQUEST_TYPES = {
    "generate": ("api.GenerateRequest", {"model": "string", "prompt": "string",
                                         "stream": "bool", "options": "object"}),
    "chat": ("api.ChatRequest", {"model": "string", "messages": "[]api.Message",
                                 "stream": "bool", "options": "object"}),
    "embed": ("api.EmbedRequest", {"model": "string", "options": "object"}),
    "embeddings": ("api.EmbeddingRequest", {"model": "string", "prompt": "string",
                                            "options": "object"}),
    "show": ("api.ShowRequest", {"model": "string", "name": "string"}),
    "pull": ("api.PullRequest", {"model": "string", "name": "string", "stream": "bool"}),
    "push": ("api.PushRequest", {"model": "string", "name": "string", "stream": "bool"}),
    "create": ("api.CreateRequest", {"model": "string", "from": "string", "stream": "bool"}),
    "copy": ("api.CopyRequest", {"source": "string", "destination": "string"}),
    "delete": ("api.DeleteRequest", {"model": "string", "name": "string"}),
    "v1_chat": ("openai.ChatCompletionRequest", {"model": "string", "stream": "bool",
                                                 "messages": "[]openai.Message",
                                                 "max_tokens": "int"}),
    "v1_completions": ("openai.CompletionRequest", {"model": "string", "prompt": "string",
                                                    "stream": "bool", "max_tokens": "int"}),
    "v1_embeddings": ("openai.EmbedRequest", {"model": "string", "encoding_format": "string"}),
}
GO_KINDS = {"string": "string", "bool": "bool", "object": "object", "int": "number",
            "[]api.Message": "array", "[]openai.Message": "array"}
GO_TYPE_NAMES = {"object": "map[string]interface {}"}

# Ollama's Host check (allowedHostsMiddleware): netip's IsPrivate, plus
# link-local, which is an address of one of the machine's own interfaces
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"))
LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


# ---------------------------------------------------------------- helpers

def go_json(value):
    """JSON as Go's encoding/json writes it: compact, UTF-8, with <, >, & and
    the line separators escaped (they can only occur inside strings)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def go_time(when=None):
    """A time as Go's encoding/json writes a UTC time.Time."""
    moment = datetime.datetime.fromtimestamp(time.time() if when is None else when,
                                             datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def go_quote_char(char):
    """A character as Go's JSON scanner quotes it in its errors."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    if char.isprintable():
        return f"'{char}'"
    return json.dumps(char)


def go_decode_error(text, error):
    """Go's encoding/json wording for what Python's decoder refused."""
    if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated"):
        return "unexpected EOF"
    context = {
        "Expecting value": "looking for beginning of value",
        "Expecting property name enclosed in double quotes":
            "looking for beginning of object key string",
        "Expecting ':' delimiter": "after object key",
        "Expecting ',' delimiter": "after object key:value pair",
    }.get(error.msg, "in string literal" if "control character" in error.msg
          else "looking for beginning of value")
    return f"invalid character {go_quote_char(text[error.pos])} {context}"


def go_split_host(hostport):
    """The host part of a Host header as Ollama reads it: net.SplitHostPort's
    host, or the whole header when Go cannot split it (no port, "[::1]")."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end > 0 and hostport[end + 1:end + 2] == ":":
            return hostport[1:end]
        return hostport
    if hostport.count(":") == 1:
        return hostport.split(":", 1)[0]
    return hostport


def host_allowed(host_header, hostname, local_addresses):
    """Ollama's check of the Host header when it listens on loopback."""
    if host_header is None:
        return True
    host = go_split_host(host_header)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if (address.is_loopback or address.is_unspecified
                or any(address in net for net in PRIVATE_NETWORKS)
                or str(address) in local_addresses):
            return True
    host = host.lower()
    if host in ("", "localhost") or host == hostname.lower():
        return True
    return host.endswith(LOCAL_SUFFIXES)


def canonical_model(name):
    """Ollama's full name of a model, so that "llama3:70b",
    "library/llama3:70b" and "LLAMA3:70B" are one model, and a name without a
    tag means ":latest"."""
    name = name.strip().lower()
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def model_catalog(main_model, extra_models=()):
    """The installed models, by canonical name: the chat model (and any
    --extra-model, built alike) and an embedding model, each with what
    /api/tags, /api/ps and /api/show tell."""
    catalog = {}
    for name in (main_model, *extra_models):
        if canonical_model(name) not in catalog:
            catalog.update(chat_catalog(name))
    return embed_catalog(catalog)


def catalog_entry(name, size, details, capabilities, model_info, template, parameters):
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "name": name, "size": size, "digest": digest, "details": details,
        "capabilities": capabilities, "model_info": model_info,
        "template": template, "parameters": parameters,
        "modified_at": "2025-05-06T09:30:12.418236Z",
    }


def chat_catalog(main_model):
    """One chat model's catalog entry, by its canonical name."""
    entry = catalog_entry
    main = canonical_model(main_model)
    match = re.search(r":(\d+(?:\.\d+)?)([bm])", main)
    billions = (float(match.group(1)) / (1 if match.group(2) == "b" else 1000)
                if match else 8.0)
    if main == "llama3:70b":
        billions = 70.6
    catalog = {
        main: entry(
            main, int(billions * 0.566e9),
            {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
             "parameter_size": f"{billions:.1f}B", "quantization_level": "Q4_0"},
            ["completion"],
            {"general.architecture": "llama", "general.file_type": 2,
             "general.parameter_count": int(billions * 1e9),
             "general.quantization_version": 2, "llama.context_length": 8192,
             "llama.embedding_length": 8192, "llama.block_count": 80,
             "llama.attention.head_count": 64, "llama.attention.head_count_kv": 8,
             "llama.rope.freq_base": 500000, "llama.vocab_size": 128256},
            "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n"
            "{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user"
            "<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>"
            "assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
            'num_keep                       24\n'
            'stop                           "<|start_header_id|>"\n'
            'stop                           "<|end_header_id|>"\n'
            'stop                           "<|eot_id|>"'),
    }
    return catalog


def embed_catalog(catalog):
    """catalog with the embedding model added."""
    entry = catalog_entry
    catalog.setdefault(EMBED_MODEL, entry(
        EMBED_MODEL, 274302450,
        {"parent_model": "", "format": "gguf", "family": "nomic-bert",
         "families": ["nomic-bert"], "parameter_size": "137M", "quantization_level": "F16"},
        ["embedding"],
        {"general.architecture": "nomic-bert", "general.file_type": 1,
         "general.parameter_count": 136727040, "nomic-bert.context_length": 2048,
         "nomic-bert.embedding_length": 768, "nomic-bert.block_count": 12},
        "{{ .Prompt }}",
        "num_ctx                        8192"))
    return catalog


def count_words(value):
    """A deterministic prompt length: the words in the strings of value."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(count_words(v) for k, v in value.items() if k in ("content", "text"))
    return 0


def embedding_of(text):
    """A small, deterministic, normalized vector for text."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [byte / 127.5 - 1.0 for byte in digest[:EMBED_DIMENSIONS]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


# ---------------------------------------------------------------- records

class Entry:
    """One request's record, and what the stats need to know about it."""

    def __init__(self, data, generation, epoch):
        self.data = data
        self.generation = generation
        self.epoch = epoch
        self.outcome = "failed"  # "served" or "aborted" once known
        self.released = False  # no longer counted as in flight


class Recorder:
    """The records and the stats, shared by the request threads."""

    def __init__(self, record_file=None):
        self.lock = threading.Lock()
        # a request's client can see its last byte before finish() has
        # counted it: the stats and records wait for those (finishing)
        self.finished = threading.Condition(self.lock)
        self.record_file = record_file
        self.records = []
        self.epoch = 0  # bumped by reset; older requests no longer count
        self.seq = 0
        self.active = self.peak = self.served = self.aborted = self.total = 0

    def begin(self, generation, **fields):
        with self.lock:
            self.seq += 1
            if generation:
                self.active += 1
                self.total += 1
                self.peak = max(self.peak, self.active)
            data = {"seq": self.seq, **fields, "start": round(time.time(), 6),
                    "first_byte": None, "last_byte": None, "end": None, "status": None, "tokens_sent": 0,
                    "usage_sent": None,
                    "aborted": False, "active_at_start": self.active}
            entry = Entry(data, generation, self.epoch)
            self.records.append(entry)
            return entry

    def update(self, entry, **fields):
        with self.lock:
            entry.data.update(fields)

    def release(self, entry):
        """The request stops counting as in flight: called just before its
        last bytes go out, so that a client that starts another request the
        moment this one ends never sees both active."""
        with self.lock:
            self._release(entry)
            if entry.data["last_byte"] is None:
                entry.data["last_byte"] = round(time.time(), 6)

    def _release(self, entry):
        if entry.generation and not entry.released:
            entry.released = True
            self.active -= 1

    def finish(self, entry):
        with self.lock:
            self._release(entry)
            entry.data["end"] = round(time.time(), 6)
            entry.data["aborted"] = entry.outcome == "aborted"
            if entry.generation:
                if entry.epoch == self.epoch:
                    if entry.outcome == "aborted":
                        self.aborted += 1
                    elif entry.outcome == "served" and entry.data["status"] == 200:
                        self.served += 1
            if self.record_file:
                with open(self.record_file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry.data, ensure_ascii=False) + "\n")
            self.finished.notify_all()

    def _wait_finishing(self):
        """Under the lock: wait (1 s at most) until every request whose last
        byte has gone out is counted, so that a client that has read a whole
        answer finds it in the stats and records."""
        self.finished.wait_for(
            lambda: not any(e.data["last_byte"] is not None and e.data["end"] is None
                            for e in self.records), timeout=1.0)

    def snapshot(self):
        with self.lock:
            self._wait_finishing()
            return [dict(entry.data) for entry in self.records]

    def stats(self):
        with self.lock:
            self._wait_finishing()
            return {"active": self.active, "peak": self.peak, "served": self.served,
                    "aborted": self.aborted, "total": self.total}

    def reset(self):
        with self.lock:
            self.records = []
            self.seq = 0
            self.epoch += 1
            self.served = self.aborted = self.total = 0
            self.peak = self.active


# ---------------------------------------------------------------- residency

class Residency:
    """Models resident in memory, as Ollama keeps them under
    OLLAMA_MAX_LOADED_MODELS (--max-loaded): a request for a model that is
    not resident waits its load time; when max_loaded models are resident,
    the least recently used one that no request is using is evicted first
    (none idle: the request waits, as Ollama's scheduler does). Loads happen
    one at a time. Every load is kept in a list (GET /_standin/loads)."""

    def __init__(self, max_loaded, load_ms, load_ms_for):
        self.max_loaded = max_loaded
        self.load_ms = load_ms
        self.load_ms_for = load_ms_for  # canonical name -> ms
        self.cond = threading.Condition()
        self.resident = {}  # canonical name -> last use (time.time()), oldest first
        self.users = {}  # canonical name -> requests using it now
        self.loading = None  # the model being loaded, if any
        self.loads = []
        self.seq = 0

    def acquire(self, name, request_seq, tag, client_left):
        """Wait until model name is resident, and use it; return the load
        time in ns (0 when it was resident), or None when the client left
        while waiting for a model to go idle or another load to end."""
        with self.cond:
            while True:
                if name in self.resident and self.loading != name:
                    self.users[name] = self.users.get(name, 0) + 1
                    self.resident[name] = self.resident.pop(name)  # most recent last
                    return 0
                evict = None
                if self.loading is None:
                    if len(self.resident) < self.max_loaded:
                        break
                    evict = next((m for m in self.resident if not self.users.get(m)), None)
                    if evict is not None:
                        break
                self.cond.wait(POLL_SECONDS)
                if client_left():
                    return None
            if evict is not None:
                del self.resident[evict]
                self.users.pop(evict, None)
            self.loading = name
            ms = self.load_ms_for.get(name, self.load_ms)
            self.seq += 1
            load = {"seq": self.seq, "model": name, "evicted": evict, "load_ms": ms,
                    "request": request_seq, "tag": tag, "start": round(time.time(), 6),
                    "end": None}
            self.loads.append(load)
        time.sleep(ms / 1000)  # a load goes on even when its client leaves
        with self.cond:
            load["end"] = round(time.time(), 6)
            self.loading = None
            self.resident[name] = time.time()
            self.users[name] = self.users.get(name, 0) + 1
            self.cond.notify_all()
        return ms * 1000000

    def release(self, name):
        """A request is done with model name."""
        with self.cond:
            if self.users.get(name):
                self.users[name] -= 1
            if name in self.resident:
                self.resident.pop(name)
                self.resident[name] = time.time()
            self.cond.notify_all()

    def models(self):
        """The resident models, the most recently used first, with their
        last use."""
        with self.cond:
            return list(reversed(self.resident.items()))

    def snapshot(self):
        with self.cond:
            return [dict(load) for load in self.loads]

    def counts(self):
        with self.cond:
            return {"loads": len(self.loads),
                    "swaps": sum(1 for load in self.loads if load["evicted"])}

    def unload(self, name):
        """Expire model name now, as Ollama does when its keep_alive ends
        (or `ollama stop`): True if it was resident and idle."""
        with self.cond:
            if name not in self.resident or self.users.get(name):
                return False
            del self.resident[name]
            self.users.pop(name, None)
            self.cond.notify_all()
            return True

    def reset(self):
        """Forget the loads (the resident models stay)."""
        with self.cond:
            self.loads = []
            self.seq = 0


# ---------------------------------------------------------------- generations

class Generation:
    """One generation's output in the shape of its endpoint: the pieces of a
    stream (NDJSON lines or SSE events), or the whole response at once."""

    def __init__(self, kind, model, tokens, prompt_count, seq, include_usage=False,
                 big_token=0, token_text=None):
        self.kind = kind  # "generate", "chat", "v1_chat" or "v1_completions"
        self.big_token = big_token  # bytes of the first token's text (0: "tok1 ")
        self.token_text = token_text  # or the first token's text itself
        self.sent = None  # the figures of the last metrics() or usage()
        self.model = model  # as the client named it: Ollama echoes that
        self.tokens = tokens
        self.prompt_count = max(1, prompt_count)
        self.include_usage = include_usage
        self.id = ("chatcmpl-%d" if kind == "v1_chat" else "cmpl-%d") % (seq % 999)
        self.created = int(time.time())
        self.started = time.monotonic()
        self.loaded_at = self.started
        self.load_ns = None  # with --max-loaded: the load's ns (None: off)
        self.load_end = None  # and when it ended, if a first delay follows

    @property
    def content_type(self):
        if self.kind.startswith("v1_"):
            return "text/event-stream"
        return "application/x-ndjson"

    def loaded(self):
        """Marks the end of the model load (the first delay)."""
        self.loaded_at = time.monotonic()

    def token(self, i):
        if i == 1 and self.token_text is not None:
            return self.token_text
        if i == 1 and self.big_token:
            return "x" * self.big_token
        return f"tok{i} "

    def text(self):
        return "".join(self.token(i) for i in range(1, self.tokens + 1))

    def metrics(self):
        now = time.monotonic()
        ns = lambda seconds: max(1, int(seconds * 1e9))  # noqa: E731
        load = ns(self.loaded_at - self.started)
        if self.load_ns is not None:  # exactly the load, then any first delay
            load = self.load_ns + (ns(self.loaded_at - self.load_end)
                                   if self.load_end is not None else 0)
        self.sent = {
            "total_duration": ns(now - self.started),
            "load_duration": load,
            "prompt_eval_count": self.prompt_count,
            "prompt_eval_duration": self.prompt_count * 250000,
            "eval_count": self.tokens,
            "eval_duration": ns(now - self.loaded_at),
        }
        return dict(self.sent)

    def usage(self):
        self.sent = {"prompt_tokens": self.prompt_count, "completion_tokens": self.tokens,
                     "total_tokens": self.prompt_count + self.tokens}
        return dict(self.sent)

    # --- Ollama's own objects

    def _ollama(self, content, done):
        line = {"model": self.model, "created_at": go_time()}
        if self.kind == "generate":
            line["response"] = content
            line["done"] = done
            if done:
                line["done_reason"] = "stop"
                line["context"] = list(range(1, self.prompt_count + self.tokens + 1))
        else:
            line["message"] = {"role": "assistant", "content": content}
            if done:
                line["done_reason"] = "stop"
            line["done"] = done
        if done:
            line.update(self.metrics())
        return line

    # --- OpenAI's objects, as Ollama 0.6.8 builds them

    def _chunk(self, content, finish_reason):
        base = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": "fp_ollama"}
        if self.kind == "v1_chat":
            base["choices"] = [{"index": 0,
                                "delta": {"role": "assistant", "content": content},
                                "finish_reason": finish_reason}]
        else:
            base = {"id": self.id, "object": "text_completion", "created": self.created,
                    "choices": [{"text": content, "index": 0,
                                 "finish_reason": finish_reason}],
                    "model": self.model, "system_fingerprint": "fp_ollama"}
        return base

    @staticmethod
    def _event(value):
        return f"data: {go_json(value)}\n\n".encode()

    # --- what the handler sends

    def token_piece(self, i):
        if self.kind.startswith("v1_"):
            return self._event(self._chunk(self.token(i), None))
        return (go_json(self._ollama(self.token(i), False)) + "\n").encode()

    def final_pieces(self):
        if not self.kind.startswith("v1_"):
            return [(go_json(self._ollama("", True)) + "\n").encode()]
        final = self._chunk("", "stop")
        pieces = [self._event(final)]
        if self.include_usage:
            final["choices"] = []
            final["usage"] = self.usage()
            pieces.append(self._event(final))
        pieces.append(b"data: [DONE]\n\n")
        return pieces

    def error_piece(self):
        """Ollama's mid-stream error: a last NDJSON line without "done". On
        /v1 it is an SSE event in OpenAI's error shape, which the openai
        clients raise as an APIError."""
        if self.kind.startswith("v1_"):
            return self._event(openai_error(500, MID_STREAM_ERROR))
        return (go_json({"error": MID_STREAM_ERROR}) + "\n").encode()

    def whole(self):
        """The response to "stream": false, as (body bytes, content type)."""
        if not self.kind.startswith("v1_"):
            return go_json(self._ollama(self.text(), True)).encode(), JSON_TYPE
        if self.kind == "v1_chat":
            value = {"id": self.id, "object": "chat.completion", "created": self.created,
                     "model": self.model, "system_fingerprint": "fp_ollama",
                     "choices": [{"index": 0,
                                  "message": {"role": "assistant", "content": self.text()},
                                  "finish_reason": "stop"}],
                     "usage": self.usage()}
        else:
            value = {"id": self.id, "object": "text_completion", "created": self.created,
                     "model": self.model, "system_fingerprint": "fp_ollama",
                     "choices": [{"text": self.text(), "index": 0, "finish_reason": "stop"}],
                     "usage": self.usage()}
        return (go_json(value) + "\n").encode(), "application/json"


def openai_error(status, message):
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class RequestError(Exception):
    """An error answer in Ollama's shape (or OpenAI's on /v1)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- HTTP

class Exchange:
    """What one request carries through the handler."""

    def __init__(self, entry, v1):
        self.entry = entry
        self.v1 = v1  # answer errors in OpenAI's shape
        # set from the X-Standin-* headers once the request is routed
        self.tokens = None  # None: from num_predict or --tokens
        self.delay = 0.0
        self.first_delay = 0.0
        self.fail = None
        self.hold = False  # X-Standin-Hold: wait for POST /_standin/release
        self.pause_after = None  # X-Standin-Pause-After: tokens before the wait
        self.split = 0  # X-Standin-Split: bytes a write, at most (0: whole)
        self.big_token = 0  # X-Standin-Big-Token: bytes of the first token
        self.token_text = None  # X-Standin-Token-Text: the first token's text
        self.release_mark = 0  # releases seen when the request started
        self.resident_model = None  # with --max-loaded: the model it uses


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net package sets on every TCP connection: without
    # it a keep-alive client waits out its delayed ACK (40 ms) on each answer
    # written in two pieces (the head, then the body)
    disable_nagle_algorithm = True
    server: "StandinServer"

    # every method reaches the router, which answers 404/405 like gin
    def do_GET(self):
        self.handle_request()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # ------------------------------------------------------------ plumbing

    def send_response(self, code, message=None):
        # like Go's net/http: a Date header and no Server header
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_request(self, code="-", size="-"):
        pass  # handle_request logs each request once it ends

    def log_message(self, format, *args):
        if not self.server.options.quiet:
            super().log_message(format, *args)

    def read_body(self):
        """The request body, whole (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip(), 16)  # ValueError if malformed
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length)

    def client_left(self, seconds):
        """Wait up to seconds; True as soon as the client has closed its end
        of the connection (a readable socket with nothing to read)."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            remaining = deadline - time.monotonic()
            try:
                readable, _, _ = select.select([self.connection], [], [],
                                               max(0.0, min(remaining, POLL_SECONDS)))
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return True
            except (OSError, ValueError):
                return True
            if remaining <= 0:
                return False
            if readable:
                # pipelined bytes, not an EOF: the socket stays readable, so
                # select cannot pace this loop; writes will notice a departure
                time.sleep(min(remaining, POLL_SECONDS))

    def write(self, data):
        """Send bytes at once (in pieces of X-Standin-Split bytes, 1 ms
        apart); False (and the request aborted) when the client is gone."""
        split = self.ex.split if self.ex is not None else 0
        try:
            if split:
                for at in range(0, len(data), split):
                    if at:
                        time.sleep(0.001)
                    self.wfile.write(data[at:at + split])
                    self.wfile.flush()
                return True
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (ConnectionError, OSError):
            self.gone()
            return False

    def gone(self):
        self.ex.entry.outcome = "aborted"
        self.close_connection = True

    def hang_up(self):
        """Close the connection now, whatever was (not) sent."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def stall(self):
        """Send nothing more; hold the connection until the client leaves."""
        while not self.client_left(3600):
            pass
        self.gone()

    def begin_response(self, status, headers, final=False):
        """The status line and headers; False when the client is gone. With
        final, they are the whole answer: it stops counting before they go."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.server.options.cors:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Access-Control-Allow-Credentials", "true")
        if self.request_version == "HTTP/1.0" and not self.close_connection:
            self.send_header("Connection", "keep-alive")  # as Go does for a 1.0 keep-alive
        elif self.close_connection and not any(n.lower() == "connection" for n, _ in headers):
            # as Go does when it will close (an HTTP/1.0 request without
            # keep-alive): a client must not keep the connection for another
            self.send_header("Connection", "close")
        if self.ex is not None:
            self.server.recorder.update(self.ex.entry, status=status,
                                        first_byte=round(time.time(), 6))
            if final:
                self.stop_counting()
        try:
            self.end_headers()
            return True
        except (ConnectionError, OSError):
            if self.ex is not None:
                self.gone()
            return False

    def send_body(self, status, body, content_type, allow_mid=False):
        """A response with a Content-Length. With allow_mid, a stall-mid or
        close-mid failure sends the headers and half of the body."""
        headers = [("Content-Length", str(len(body)))]
        if content_type:
            headers.insert(0, ("Content-Type", content_type))
        if not self.begin_response(status, headers,
                                   final=self.command == "HEAD" or not body):
            return False
        mid = self.ex.fail if allow_mid and self.ex is not None else None
        if mid in ("stall-mid", "close-mid"):
            if self.write(body[:len(body) // 2]):
                self.stall() if mid == "stall-mid" else self.hang_up()
            return False
        self.stop_counting()
        return self.write(body)

    def stop_counting(self):
        """Stop counting this request as in flight: its last bytes follow."""
        if self.ex is not None:
            self.server.recorder.release(self.ex.entry)

    def send_json(self, value, status=200, allow_mid=False):
        if self.ex is not None and self.ex.v1:
            return self.send_body(status, (go_json(value) + "\n").encode(),
                                  "application/json", allow_mid)
        return self.send_body(status, go_json(value).encode(), JSON_TYPE, allow_mid)

    def send_error_json(self, status, message):
        if self.ex.v1:
            return self.send_json(openai_error(status, message), status)
        return self.send_json({"error": message}, status)

    # ------------------------------------------------------------ requests

    def handle_request(self):
        self.ex = None
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_standin" or path.startswith("/_standin/"):
            return self.handle_control(path)
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send_error(400, "bad request body")
        state = self.server
        method = self.command
        generation = method == "POST" and path in GENERATION_PATHS
        body = parsed = parse_error = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                # like Go's json.Decoder: the first value counts, the rest is ignored
                parsed, _ = json.JSONDecoder().raw_decode(text.lstrip())
                body = parsed
            except json.JSONDecodeError as error:
                body = text
                parse_error = go_decode_error(text.lstrip(), error)
        route = ROUTES.get(path, {})
        match = V1_MODEL_ROUTE.match(path)
        path_model = urllib.parse.unquote(match.group(1)) if match else None
        if match:
            route = {"GET": "v1_model"}
        blob = BLOB_ROUTE.match(path)
        if blob:
            route = {"HEAD": "blob_head", "POST": "blob_post"}
        model = path_model
        if isinstance(parsed, dict):
            named = parsed.get("model") or parsed.get("name")
            model = named if isinstance(named, str) else None
        stream = False
        if method == "POST" and path in STREAMING_PATHS:
            wanted = parsed.get("stream") if isinstance(parsed, dict) else None
            # Ollama streams unless told not to; its OpenAI endpoints only when asked
            stream = wanted is True if path.startswith("/v1/") else wanted is not False

        entry = state.recorder.begin(
            generation, method=method, path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body, model=model, stream=stream, tag=self.headers.get("X-Standin-Tag"))
        try:
            self.ex = Exchange(entry, path.startswith("/v1/"))
            self.dispatch(route, raw, parsed, parse_error, path_model)
        except (ConnectionError, OSError):
            self.gone()
        finally:
            if self.ex is not None and self.ex.resident_model is not None:
                state.residency.release(self.ex.resident_model)
            state.recorder.finish(entry)
            data = entry.data
            self.log_message('"%s" %s tokens=%s%s%s', self.requestline, data["status"],
                             data["tokens_sent"], " tag=%s" % data["tag"] if data["tag"] else "",
                             " aborted" if data["aborted"] else "")

    def dispatch(self, route, raw, parsed, parse_error, path_model):
        state = self.server
        if state.check_host and not host_allowed(self.headers.get("Host"), state.hostname,
                                                 state.local_addresses):
            return self.send_body(403, b"", None)
        if self.command == "OPTIONS":
            return self.send_body(204, b"", None)  # Ollama's answer to an allowed preflight
        if not route:
            return self.send_body(404, b"404 page not found", "text/plain")
        if self.command not in route:
            return self.send_body(405, b"405 method not allowed", "text/plain")
        try:
            self.read_controls()
        except RequestError as error:
            return self.send_error_json(error.status, error.message)

        ex = self.ex
        if ex.hold and not self.wait_release():
            return self.gone()
        if ex.fail in FAILURES or ex.fail in ("close", "stall"):
            if self.client_left(ex.first_delay):
                return self.gone()
            return self.fail_now(parsed, path_model)
        name = route[self.command]
        handler = getattr(self, "api_" + name)
        try:
            if name in ("blob_head", "blob_post"):
                return handler()
            if self.command == "POST" or name == "delete":
                return handler(self.decode(name, raw, parsed, parse_error))
            if path_model is not None:
                return handler(path_model)
            return handler()
        except RequestError as error:
            return self.send_error_json(error.status, error.message)

    def read_controls(self):
        """The X-Standin-* headers of this request."""
        options = self.server.options

        def number(name, default):
            value = self.headers.get(name)
            if value is None:
                return default
            if not value.strip().isdigit():
                raise RequestError(400, f"stand-in: {name} must be a whole number, not {value!r}")
            return int(value)

        ex = self.ex
        ex.tokens = number("X-Standin-Tokens", None)
        ex.delay = number("X-Standin-Delay-Ms", options.delay_ms) / 1000
        ex.first_delay = number("X-Standin-First-Delay-Ms", options.first_delay_ms) / 1000
        fail = self.headers.get("X-Standin-Fail")
        if fail is not None:
            fail = fail.strip().lower()
            if fail not in FAIL_MODES:
                raise RequestError(400, f"stand-in: unknown X-Standin-Fail {fail!r}, use one of "
                                        + ", ".join(sorted(FAIL_MODES)))
        ex.fail = fail
        ex.hold = number("X-Standin-Hold", 0) > 0
        ex.pause_after = number("X-Standin-Pause-After", None)
        ex.split = number("X-Standin-Split", 0)
        ex.big_token = number("X-Standin-Big-Token", 0)
        ex.token_text = self.headers.get("X-Standin-Token-Text")
        with self.server.release_cond:
            ex.release_mark = self.server.releases

    def wait_release(self):
        """Wait for a POST /_standin/release made since this request started;
        False when the client leaves first."""
        state = self.server
        start = self.ex.release_mark
        while True:
            with state.release_cond:
                if state.releases > start:
                    return True
                state.release_cond.wait(POLL_SECONDS)
                if state.releases > start:
                    return True
            if self.client_left(0):
                return False

    def release(self):
        state = self.server
        with state.release_cond:
            state.releases += 1
            state.release_cond.notify_all()
        return {}

    def fail_now(self, parsed, path_model):
        """X-Standin-Fail: a status, close or stall, instead of the answer."""
        fail = self.ex.fail
        if fail == "close":
            return self.hang_up()
        if fail == "stall":
            return self.stall()
        status, message = FAILURES[fail]
        if message is None:
            name = path_model or (parsed.get("model") if isinstance(parsed, dict) else None)
            message = self.not_found(name if isinstance(name, str) else "").message
        return self.send_error_json(status, message)

    def decode(self, kind, raw, parsed, parse_error):
        """The request body as Ollama decodes it, or the 400 it answers."""
        if not raw.strip():
            # Ollama: "missing request body"; its OpenAI middleware passes Go's io.EOF
            raise RequestError(400, "EOF" if self.ex.v1 else "missing request body")
        if parse_error:
            raise RequestError(400, parse_error)
        go_type, fields = REQUEST_TYPES[kind]
        if parsed is None:
            return {}  # a JSON null decodes to an empty request in Go
        if not isinstance(parsed, dict):
            raise RequestError(400, f"json: cannot unmarshal {json_kind(parsed)} "
                                    f"into Go value of type {go_type}")
        for field, wanted in fields.items():
            value = parsed.get(field)
            kind_found = json_kind(value)
            if value is not None and kind_found != GO_KINDS[wanted]:
                raise RequestError(400, f"json: cannot unmarshal {kind_found} into Go struct "
                                        f"field {go_type.split('.')[1]}.{field} of type "
                                        f"{GO_TYPE_NAMES.get(wanted, wanted)}")
        return parsed

    def not_found(self, name):
        return RequestError(404, f'model "{name}" not found, try pulling it first')

    def installed(self, body, capability=None, action=None):
        """The model a request names, as (name as given, catalog entry)."""
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise RequestError(400, "model is required")
        info = self.server.catalog.get(canonical_model(name))
        if info is None:
            raise RequestError(404, self.not_found(name).message)
        if capability and capability not in info["capabilities"]:
            raise RequestError(400, f'"{name}" does not support {action}')
        if self.server.residency is None:
            with self.server.recorder.lock:
                self.server.loaded.add(info["name"])
        return name, info

    def use_model(self, name):
        """With --max-loaded: wait until model name is resident (a load, and
        perhaps an eviction) and use it until the request ends. Returns the
        load's ns (0: it was resident; None: off), or False when the client
        left while waiting."""
        residency = self.server.residency
        if residency is None:
            return None
        ex = self.ex
        load_ns = residency.acquire(canonical_model(name), ex.entry.data["seq"],
                                    ex.entry.data["tag"], lambda: self.client_left(0))
        if load_ns is None:
            return False
        ex.resident_model = canonical_model(name)
        self.server.recorder.update(ex.entry, load_ms=load_ns // 1000000)
        return load_ns

    def token_count(self, body):
        """X-Standin-Tokens, else num_predict (max_tokens on /v1), else --tokens."""
        if self.ex.tokens is not None:
            return self.ex.tokens
        if self.ex.v1:
            wanted = body.get("max_tokens")
        else:
            options = body.get("options") or {}
            wanted = options.get("num_predict")
        if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 0:
            return wanted  # Ollama's -1 (no limit) and -2 (fill the context) fall through
        return self.server.options.tokens

    # ------------------------------------------------------------ generation

    def generate(self, generation, stream):
        ex = self.ex
        asked = time.monotonic()
        load_ns = self.use_model(generation.model)
        if load_ns is False:
            return self.gone()
        if load_ns is not None:
            generation.load_ns = load_ns or max(1, int((time.monotonic() - asked) * 1e9))
            if ex.first_delay:
                generation.load_end = time.monotonic()
        if self.client_left(ex.first_delay):
            return self.gone()
        generation.loaded()
        if not stream:
            if self.client_left(max(0, generation.tokens - 1) * ex.delay):
                return self.gone()
            if ex.fail == "error-mid":
                return self.send_error_json(500, MID_STREAM_ERROR)
            body, content_type = generation.whole()
            if self.send_body(200, body, content_type, allow_mid=True):
                self.server.recorder.update(ex.entry, tokens_sent=generation.tokens,
                                            usage_sent=generation.sent)
                ex.entry.outcome = "served"
            return

        # Go streams with chunked encoding to HTTP/1.1 clients, and to
        # HTTP/1.0 ones (nginx's default upstream protocol) until it closes
        chunked = self.request_version != "HTTP/1.0"
        framing = ("Transfer-Encoding", "chunked") if chunked else ("Connection", "close")
        if not self.begin_response(200, [("Content-Type", generation.content_type), framing]):
            return

        def send(piece):
            return self.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)

        mid = ex.fail if ex.fail in MID_FAILURES else None
        count = MID_STREAM_TOKENS if mid else generation.tokens
        for i in range(1, count + 1):
            if self.client_left(ex.delay if i > 1 else 0):
                return self.gone()
            if not send(generation.token_piece(i)):
                return
            self.server.recorder.update(ex.entry, tokens_sent=i)
            if i == ex.pause_after and not self.wait_release():
                return self.gone()
        if mid == "stall-mid":
            return self.stall()
        if mid == "close-mid":
            return self.hang_up()
        pieces = [generation.error_piece()] if mid else generation.final_pieces()
        self.stop_counting()
        for piece in pieces:
            if not send(piece):
                return
        if generation.sent is not None:
            self.server.recorder.update(ex.entry, usage_sent=generation.sent)
        if chunked and not self.write(b"0\r\n\r\n"):
            return
        if not mid:
            ex.entry.outcome = "served"
        if self.server.options.close_after_stream:
            # the answer said nothing of it: a client may keep the connection
            time.sleep(CLOSE_AFTER_STREAM_SECONDS)
            self.hang_up()

    def new_generation(self, kind, body, model, prompt_count, include_usage=False):
        return Generation(kind, model, self.token_count(body), prompt_count,
                          self.ex.entry.data["seq"], include_usage, self.ex.big_token,
                          self.ex.token_text)

    def embeddings_reply(self, value, model):
        """An embeddings answer after the first delay (a model load)."""
        asked = time.monotonic()
        load_ns = self.use_model(model)
        if load_ns is False:
            return self.gone()
        if load_ns is not None and "load_duration" in value:
            load_ns = load_ns or max(1, int((time.monotonic() - asked) * 1e9))
            value["load_duration"] = load_ns + int(self.ex.first_delay * 1e9)
            value["total_duration"] += load_ns
        if self.client_left(self.ex.first_delay):
            return self.gone()
        if self.ex.fail == "error-mid":
            return self.send_error_json(500, MID_STREAM_ERROR)
        if self.send_json(value, allow_mid=True):
            self.ex.entry.outcome = "served"
            sent = value.get("usage") or {k: v for k, v in value.items()
                                          if k.endswith(("_count", "_duration"))}
            self.server.recorder.update(self.ex.entry, usage_sent=sent or None)

    # ------------------------------------------------------------ Ollama API

    def api_root(self):
        return self.send_body(200, b"Ollama is running", "text/plain; charset=utf-8")

    def api_version(self):
        return self.send_json({"version": OLLAMA_VERSION})

    @staticmethod
    def model_summary(info):
        return {"name": info["name"], "model": info["name"], "modified_at": info["modified_at"],
                "size": info["size"], "digest": info["digest"], "details": info["details"]}

    def api_tags(self):
        catalog = self.server.catalog
        return self.send_json({"models": [self.model_summary(i) for i in catalog.values()]})

    def api_ps(self):
        if self.server.residency is not None:
            # Ollama lists the latest expiry first: the most recently used
            loaded = self.server.residency.models()
        else:
            with self.server.recorder.lock:
                loaded = [(name, time.time()) for name in sorted(self.server.loaded)]
        models = []
        for name, used in loaded:
            info = self.server.catalog[name]
            summary = self.model_summary(info)
            del summary["modified_at"]
            summary["expires_at"] = go_time(used + 300)  # keep_alive: 5 minutes
            summary["size_vram"] = info["size"]
            models.append(summary)
        return self.send_json({"models": models})

    def api_show(self, body):
        name, info = self.installed(body)
        modelfile = (f'# Modelfile generated by "ollama show"\n'
                     f"# To build a new Modelfile based on this, replace FROM with:\n"
                     f"# FROM {name}\n\n"
                     f"FROM /usr/share/ollama/.ollama/models/blobs/sha256-{info['digest']}\n"
                     f'TEMPLATE """{info["template"]}"""\n'
                     + "".join(f"PARAMETER {line}\n" for line in info["parameters"].splitlines()))
        return self.send_json({
            "modelfile": modelfile, "parameters": info["parameters"],
            "template": info["template"], "details": info["details"],
            "model_info": info["model_info"], "capabilities": info["capabilities"],
            "modified_at": info["modified_at"],
        })

    # model management: the answers Ollama gives, with nothing changed

    def progress(self, statuses, body):
        """NDJSON status lines ending with success, or one object."""
        if body.get("stream") is False:
            if self.send_json({"status": "success"}):
                self.ex.entry.outcome = "served"
            return
        lines = b"".join(go_json({"status": s}).encode() + b"\n"
                         for s in statuses + ["success"])
        if self.send_body(200, lines, "application/x-ndjson"):
            self.ex.entry.outcome = "served"

    def api_pull(self, body):
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise RequestError(400, "model is required")
        return self.progress(["pulling manifest", "verifying sha256 digest",
                              "writing manifest"], body)

    def api_push(self, body):
        self.installed(body)
        return self.progress(["retrieving manifest", "pushing manifest"], body)

    def api_create(self, body):
        if not body.get("model"):
            raise RequestError(400, "model is required")
        return self.progress(["using existing layer", "writing manifest"], body)

    def api_copy(self, body):
        source = body.get("source") or ""
        if not source or not body.get("destination"):
            raise RequestError(400, "source and destination are required")
        if canonical_model(source) not in self.server.catalog:
            raise RequestError(404, f'model "{source}" not found')
        if self.send_body(200, b"", None):
            self.ex.entry.outcome = "served"

    def api_delete(self, body):
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise RequestError(400, "model is required")
        if canonical_model(name) not in self.server.catalog:
            raise RequestError(404, f'model "{name}" not found')
        if self.send_body(200, b"", None):
            self.ex.entry.outcome = "served"

    def api_blob_head(self):
        return self.send_body(404, b"", None)

    def api_blob_post(self):
        if self.send_body(201, b"", None):
            self.ex.entry.outcome = "served"

    def api_generate(self, body):
        name, _ = self.installed(body, "completion", "generate")
        generation = self.new_generation("generate", body, name,
                                         count_words([body.get("system"), body.get("prompt")]))
        return self.generate(generation, body.get("stream") is not False)

    def api_chat(self, body):
        name, _ = self.installed(body, "completion", "chat")
        generation = self.new_generation("chat", body, name, count_words(body.get("messages")))
        return self.generate(generation, body.get("stream") is not False)

    def api_embed(self, body):
        name, _ = self.installed(body)
        value = body.get("input")
        if isinstance(value, str):
            inputs = [value] if value else []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            inputs = value
        elif value is None:
            inputs = []
        else:
            raise RequestError(400, "invalid input type")
        started = time.monotonic()
        reply = {"model": name, "embeddings": [embedding_of(text) for text in inputs]}
        if inputs:
            elapsed = max(1, int((time.monotonic() - started) * 1e9))
            reply.update(total_duration=elapsed + int(self.ex.first_delay * 1e9),
                         load_duration=max(1, int(self.ex.first_delay * 1e9)),
                         prompt_eval_count=max(1, count_words(inputs)))
        return self.embeddings_reply(reply, name)

    def api_embeddings(self, body):
        name, _ = self.installed(body)
        prompt = body.get("prompt") or ""
        return self.embeddings_reply({"embedding": embedding_of(prompt) if prompt else []},
                                     name)

    # ------------------------------------------------------------ OpenAI API

    def openai_model(self, name, info):
        created = int(datetime.datetime.strptime(
            info["modified_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp())
        return {"id": name, "object": "model", "created": created, "owned_by": "library"}

    def api_v1_models(self):
        catalog = self.server.catalog
        return self.send_json({"object": "list",
                               "data": [self.openai_model(n, i) for n, i in catalog.items()]})

    def api_v1_model(self, name):
        _, info = self.installed({"model": name})
        return self.send_json(self.openai_model(name, info))

    def api_v1_chat(self, body):
        if not body.get("messages"):
            raise RequestError(400, "[] is too short - 'messages'")
        name, _ = self.installed(body, "completion", "chat")
        usage = (body.get("stream_options") or {}).get("include_usage") is True
        generation = self.new_generation("v1_chat", body, name,
                                         count_words(body.get("messages")), usage)
        return self.generate(generation, body.get("stream") is True)

    def api_v1_completions(self, body):
        name, _ = self.installed(body, "completion", "generate")
        usage = (body.get("stream_options") or {}).get("include_usage") is True
        generation = self.new_generation("v1_completions", body, name,
                                         count_words(body.get("prompt")), usage)
        return self.generate(generation, body.get("stream") is True)

    def api_v1_embeddings(self, body):
        encoding = body.get("encoding_format") or "float"
        if encoding.lower() not in ("float", "base64"):
            raise RequestError(400, f"Invalid value for 'encoding_format' = {encoding}. "
                                    "Supported values: ['float', 'base64'].")
        value = body.get("input")
        if value == "":
            value = [""]
        if value is None or value == []:
            raise RequestError(400, "invalid input")
        inputs = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) for v in inputs):
            raise RequestError(400, "invalid input type")
        name, _ = self.installed(body)
        data = []
        for index, text in enumerate(inputs):
            vector = embedding_of(text)
            if encoding.lower() == "base64":  # little-endian float32, as OpenAI sends it
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "embedding": vector, "index": index})
        words = max(1, count_words(inputs))
        return self.embeddings_reply({"object": "list", "data": data, "model": name,
                                      "usage": {"prompt_tokens": words, "total_tokens": words}},
                                     name)

    # ------------------------------------------------------------ control

    def handle_control(self, path):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send_error(400, "bad request body")
        recorder = self.server.recorder
        residency = self.server.residency

        def stats():
            counts = recorder.stats()
            if residency is not None:
                counts.update(residency.counts())
            return counts

        def reset():
            recorder.reset()
            if residency is not None:
                residency.reset()
            return {}

        def unload():
            try:
                name = json.loads(body or b"{}").get("model")
            except (ValueError, AttributeError):
                name = None
            if not isinstance(name, str) or residency is None:
                return {"unloaded": False}
            return {"unloaded": residency.unload(canonical_model(name))}

        routes = {"/_standin/requests": ("GET", recorder.snapshot),
                  "/_standin/unload": ("POST", unload),
                  "/_standin/stats": ("GET", stats),
                  "/_standin/loads": ("GET", residency.snapshot if residency else list),
                  "/_standin/reset": ("POST", reset),
                  "/_standin/release": ("POST", self.release)}
        if path not in routes:
            return self.send_body(404, b'{"error":"no such stand-in endpoint"}',
                                  "application/json")
        method, action = routes[path]
        if self.command != method:
            return self.send_body(405, b"405 method not allowed", "text/plain")
        return self.send_body(200, json.dumps(action(), ensure_ascii=False).encode(),
                              "application/json")


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True  # stalled requests must not hold up the exit
    request_queue_size = 128  # the gate tests open bursts of connections

    def __init__(self, options):
        if ":" in options.host:
            self.address_family = socket.AF_INET6
        super().__init__((options.host, options.port), Handler)
        self.options = options
        self.recorder = Recorder(options.record)
        self.release_cond = threading.Condition()
        self.releases = 0
        self.catalog = model_catalog(options.model, options.extra_model)
        self.loaded = {canonical_model(options.model)}  # as if preloaded
        # --max-loaded: models resident as Ollama keeps them, none at first
        self.residency = (Residency(options.max_loaded, options.load_ms, options.load_ms_for)
                          if options.max_loaded > 0 else None)
        self.hostname = socket.gethostname()
        self.local_addresses = set()
        try:
            for info in socket.getaddrinfo(self.hostname, None):
                self.local_addresses.add(info[4][0])
        except OSError:
            pass
        # Ollama checks the Host header only when it listens on loopback
        try:
            self.check_host = ipaddress.ip_address(options.host).is_loopback
        except ValueError:
            self.check_host = options.host == "localhost"


def main(argv=None):
    parser = argparse.ArgumentParser(description="A stand-in for Ollama, for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=8, help="tokens per generation")
    parser.add_argument("--delay-ms", type=int, default=20, help="pause between tokens")
    parser.add_argument("--first-delay-ms", type=int, default=0,
                        help="pause before the first byte, like a model load")
    parser.add_argument("--model", default="llama3:70b",
                        help="the chat model (nomic-embed-text:latest is installed too)")
    parser.add_argument("--record", metavar="FILE",
                        help="append one JSON line per finished request")
    parser.add_argument("--quiet", action="store_true", help="no request log on stderr")
    parser.add_argument("--close-after-stream", action="store_true",
                        help="close the connection 0.2 ms after a streamed answer, unannounced")
    parser.add_argument("--cors", action="store_true",
                        help="answer with Access-Control-Allow-Origin: the Origin, or *")
    parser.add_argument("--extra-model", action="append", default=[], metavar="NAME",
                        help="another chat model installed (repeatable)")
    parser.add_argument("--max-loaded", type=int, default=0, metavar="N",
                        help="models resident at once, as OLLAMA_MAX_LOADED_MODELS "
                             "(0: no residency, the default)")
    parser.add_argument("--load-ms", type=int, default=0, metavar="MS",
                        help="with --max-loaded: a model's load time")
    parser.add_argument("--load-ms-for", action="append", default=[], metavar="MODEL=MS",
                        help="with --max-loaded: one model's own load time (repeatable)")
    options = parser.parse_args(argv)
    if options.max_loaded < 0 or options.load_ms < 0:
        parser.error("--max-loaded and --load-ms must not be negative")
    catalog = model_catalog(options.model, options.extra_model)
    load_ms_for = {}
    for item in options.load_ms_for:
        name, _, ms = item.rpartition("=")
        if not name or not ms.isdigit():
            parser.error(f"--load-ms-for wants MODEL=MS, not {item!r}")
        if canonical_model(name) not in catalog:
            parser.error(f"--load-ms-for: {name!r} is not an installed model")
        load_ms_for[canonical_model(name)] = int(ms)
    options.load_ms_for = load_ms_for

    # Every thread blocks SIGTERM and SIGINT (new threads inherit the mask)
    # and the main thread waits for them: a handler would run only when the
    # main thread's select wakes, up to half a second later.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server = StandinServer(options)
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    signal.sigwait(stop_signals)
    return 0  # the request threads are daemons: nothing to wait for


if __name__ == "__main__":
    sys.exit(main())
