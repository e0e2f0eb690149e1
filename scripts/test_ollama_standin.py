#!/usr/bin/env python3
"""Self-test of scripts/ollama-standin.py (standard library only).

    python3 scripts/test_ollama_standin.py [-v]

Starts the stand-in on a free loopback port and talks to it with http.client,
or with a raw socket where the bytes on the wire matter (chunk framing,
timing, connections closed or held open).
"""

import base64
import http.client
import importlib.util
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ollama-standin.py")
MODEL = "llama3:70b"
EMBED = "nomic-embed-text:latest"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
           "eval_count", "eval_duration")
MID_ERROR = {"error": "an error was encountered while running the model"}


def start_standin(*args):
    """The stand-in as a subprocess, and the port it reported."""
    proc = subprocess.Popen([sys.executable, SCRIPT, "--port", "0", "--quiet", *args],
                            stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("listening on 127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"the stand-in did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop_standin(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


def encode(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class Raw:
    """An HTTP/1.x exchange over a plain socket, to see the bytes as they come."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, method, path, body=None, headers=None, version="HTTP/1.1",
             host="localhost"):
        data = encode(body)
        lines = [f"{method} {path} {version}"]
        if host is not None:
            lines.append(f"Host: {host}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if data is not None:
            lines.append(f"Content-Length: {len(data)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b""))
        self.sent_at = time.monotonic()
        return self

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self):
        status = int(self.read_line().split()[1])
        headers = {}
        while line := self.read_line():
            name, value = line.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_chunk(self):
        """One chunk of a chunked body and when it was read; b"" for the last."""
        size = int(self.read_line().split(b";")[0], 16)
        data = self.read_exact(size)
        if self.read_exact(2) != b"\r\n":  # after the last chunk: the end, no trailers
            raise AssertionError("a chunk not followed by CRLF")
        return data, time.monotonic()

    def read_chunks(self):
        chunks = []
        while True:
            data, at = self.read_chunk()
            if not data:
                return chunks
            chunks.append((data, at))

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            data, self.buf = self.buf, b""
            return data

    def silent_for(self, seconds):
        """True when nothing arrives (and the connection stays open) for seconds."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(1)  # data, or b"" for a closed connection
            return False
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(5.0)

    def close(self):
        self.sock.close()


class StandinTest(unittest.TestCase):
    """One stand-in for the whole class; each test starts from a reset."""

    @classmethod
    def setUpClass(cls):
        cls.record_file = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
        cls.proc, cls.port = start_standin("--delay-ms", "5", "--record", cls.record_file)

    @classmethod
    def tearDownClass(cls):
        stop_standin(cls.proc)
        os.unlink(cls.record_file)

    def setUp(self):
        self.wait_until(lambda: self.stats()["active"] == 0, "the last test's requests to end")
        self.reset()
        self.raws = []

    def tearDown(self):
        for raw in self.raws:
            raw.close()

    # ------------------------------------------------------------ helpers

    def request(self, method, path, body=None, headers=None, host="localhost"):
        """(status, headers with lower-cased names, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = encode(body)
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if host is not None:
                conn.putheader("Host", host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def post(self, path, body, **headers):
        headers = {k.replace("_", "-"): str(v) for k, v in headers.items()}
        return self.request("POST", path, body, headers)

    def json_of(self, path, body=None, status=200, **headers):
        code, head, data = (self.post(path, body, **headers) if body is not None
                            else self.request("GET", path))
        self.assertEqual(code, status, data)
        return json.loads(data)

    def raw(self):
        raw = Raw(self.port)
        self.raws.append(raw)
        return raw

    def records(self):
        return json.loads(self.request("GET", "/_standin/requests")[2])

    def stats(self):
        return json.loads(self.request("GET", "/_standin/stats")[2])

    def reset(self):
        status, _, data = self.request("POST", "/_standin/reset")
        self.assertEqual((status, json.loads(data)), (200, {}))

    def wait_until(self, condition, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.02)

    def ended(self, seq=1):
        """The record of request seq, once the stand-in has finished it."""
        def done():
            recs = self.records()
            return len(recs) >= seq and recs[seq - 1]["end"] is not None
        self.wait_until(done, f"request {seq} to end")
        return self.records()[seq - 1]

    def assert_json_type(self, headers, exact=None):
        if exact:
            self.assertEqual(headers["content-type"], exact)
        else:
            self.assertTrue(headers["content-type"].startswith("application/json"), headers)

    # ------------------------------------------------------------ general endpoints

    def test_root_get_and_head(self):
        status, headers, data = self.request("GET", "/")
        self.assertEqual((status, data), (200, b"Ollama is running"))
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        status, headers, data = self.request("HEAD", "/")
        self.assertEqual((status, data, headers["content-length"]), (200, b"", "17"))

    def test_version(self):
        self.assertEqual(self.json_of("/api/version"), {"version": "0.6.8"})

    def test_tags(self):
        models = self.json_of("/api/tags")["models"]
        self.assertEqual([m["name"] for m in models], [MODEL, EMBED])
        for m in models:
            self.assertEqual(set(m), {"name", "model", "modified_at", "size", "digest", "details"})
            self.assertEqual(set(m["details"]), {"parent_model", "format", "family", "families",
                                                 "parameter_size", "quantization_level"})
            self.assertEqual(len(m["digest"]), 64)
            self.assertGreater(m["size"], 0)

    def test_ps(self):
        models = self.json_of("/api/ps")["models"]
        self.assertEqual(models[0]["name"], MODEL)
        for key in ("model", "size", "digest", "details", "expires_at", "size_vram"):
            self.assertIn(key, models[0])
        self.post("/api/embed", {"model": EMBED, "input": "x"})
        self.assertEqual({m["name"] for m in self.json_of("/api/ps")["models"]}, {MODEL, EMBED})

    def test_show(self):
        show = self.json_of("/api/show", {"model": MODEL})
        for key in ("modelfile", "parameters", "template", "details", "model_info",
                    "capabilities"):
            self.assertIn(key, show)
        self.assertEqual(show["capabilities"], ["completion"])
        self.assertEqual(show["details"]["family"], "llama")
        self.assertIn("FROM ", show["modelfile"])
        self.assertEqual(self.json_of("/api/show", {"name": "nomic-embed-text"})["capabilities"],
                         ["embedding"])
        self.assertEqual(self.json_of("/api/show", {"model": "nope:1b"}, 404),
                         {"error": 'model "nope:1b" not found, try pulling it first'})
        self.assertEqual(self.json_of("/api/show", {}, 400), {"error": "model is required"})

    def test_model_management(self):
        code, head, data = self.post("/api/pull", {"model": MODEL})
        self.assertEqual((code, head["content-type"]), (200, "application/x-ndjson"))
        lines = [json.loads(line) for line in data.splitlines()]
        self.assertEqual(lines[0], {"status": "pulling manifest"})
        self.assertEqual(lines[-1], {"status": "success"})
        self.assertEqual(self.json_of("/api/pull", {"model": MODEL, "stream": False}),
                         {"status": "success"})
        self.assertEqual(self.json_of("/api/pull", {}, 400), {"error": "model is required"})
        self.assertEqual(self.json_of("/api/push", {"model": "nope:1b"}, 404)["error"],
                         'model "nope:1b" not found, try pulling it first')
        self.assertEqual(self.json_of("/api/create", {"model": "mine", "stream": False}),
                         {"status": "success"})
        self.assertEqual(self.post("/api/copy", {"source": MODEL, "destination": "b"})[0], 200)
        self.assertEqual(self.json_of("/api/copy", {"source": "nope", "destination": "b"},
                                      404), {"error": 'model "nope" not found'})
        code, _, data = self.request("DELETE", "/api/delete", {"model": MODEL})
        self.assertEqual((code, data), (200, b""))
        code, _, data = self.request("DELETE", "/api/delete", {"model": "nope"})
        self.assertEqual((code, json.loads(data)), (404, {"error": 'model "nope" not found'}))
        self.assertEqual(self.request("POST", "/api/delete", {"model": MODEL})[0], 405)
        self.assertEqual(self.request("HEAD", "/api/blobs/sha256-00")[0], 404)
        self.assertEqual(self.request("POST", "/api/blobs/sha256-00", "x")[0], 201)
        # nothing changed: the catalog is the same
        names = [m["name"] for m in self.json_of("/api/tags")["models"]]
        self.assertIn(MODEL, names)
        self.assertEqual([r["path"] for r in self.records()][:2], ["/api/pull", "/api/pull"])

    # ------------------------------------------------------------ generation

    def test_generate_streams_one_line_a_chunk(self):
        raw = self.raw().send("POST", "/api/generate", {"model": MODEL, "prompt": "hi"})
        status, headers = raw.read_head()
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-ndjson")
        self.assertEqual(headers["transfer-encoding"], "chunked")
        chunks = [data for data, _ in raw.read_chunks()]
        self.assertEqual(len(chunks), 9)  # 8 tokens (the default) and the final line
        for data in chunks:
            self.assertTrue(data.endswith(b"\n") and data.count(b"\n") == 1, data)
        lines = [json.loads(data) for data in chunks]
        for i, line in enumerate(lines[:-1], 1):
            self.assertEqual(list(line), ["model", "created_at", "response", "done"])
            self.assertEqual((line["model"], line["response"], line["done"]),
                             (MODEL, f"tok{i} ", False))
        final = lines[-1]
        self.assertEqual((final["done"], final["done_reason"], final["response"]),
                         (True, "stop", ""))
        self.assertIsInstance(final["context"], list)
        for key in METRICS:
            self.assertGreater(final[key], 0, key)
        self.assertEqual(final["eval_count"], 8)
        # the stream ended properly: the connection serves another request
        raw.send("GET", "/api/version")
        self.assertEqual(raw.read_head()[0], 200)

    def test_chat_stream(self):
        status, headers, data = self.post("/api/chat", CHAT, X_Standin_Tokens=3)
        self.assertEqual((status, headers["content-type"]), (200, "application/x-ndjson"))
        lines = [json.loads(line) for line in data.decode().splitlines()]
        self.assertEqual(len(lines), 4)
        self.assertEqual([line["message"] for line in lines],
                         [{"role": "assistant", "content": c}
                          for c in ("tok1 ", "tok2 ", "tok3 ", "")])
        self.assertEqual([line["done"] for line in lines], [False, False, False, True])
        self.assertTrue(all(line["model"] == MODEL and line["created_at"] for line in lines))
        self.assertEqual(lines[-1]["done_reason"], "stop")
        for key in METRICS:
            self.assertIn(key, lines[-1])
        self.assertNotIn("context", lines[-1])
        self.assertTrue(data.startswith(b'{"model":"llama3:70b"'))  # Ollama's key order

    def test_stream_false(self):
        status, headers, data = self.post("/api/generate",
                                          {"model": MODEL, "prompt": "hi", "stream": False})
        self.assert_json_type(headers)
        reply = json.loads(data)
        self.assertEqual((reply["response"], reply["done"], reply["done_reason"]),
                         ("tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 ", True, "stop"))
        self.assertIn("context", reply)
        reply = self.json_of("/api/chat", dict(CHAT, stream=False), X_Standin_Tokens=2)
        self.assertEqual(reply["message"], {"role": "assistant", "content": "tok1 tok2 "})
        self.assertEqual((reply["done"], reply["eval_count"]), (True, 2))
        self.assertEqual(self.records()[1]["stream"], False)

    def test_num_predict(self):
        body = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 3}}
        reply = self.json_of("/api/generate", body)
        self.assertEqual((reply["response"], reply["eval_count"]), ("tok1 tok2 tok3 ", 3))
        lines = self.post("/api/chat", dict(CHAT, options={"num_predict": 2}))[2].splitlines()
        self.assertEqual(len(lines), 3)
        # -1 (no limit) leaves the default; the test header wins over num_predict
        body["options"]["num_predict"] = -1
        self.assertEqual(self.json_of("/api/generate", body)["eval_count"], 8)
        body["options"]["num_predict"] = 3
        self.assertEqual(self.json_of("/api/generate", body, X_Standin_Tokens=1)["eval_count"], 1)

    def test_streaming_is_incremental(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Tokens": 5, "X-Standin-Delay-Ms": 100})
        raw.read_head()
        chunks = raw.read_chunks()
        self.assertEqual(len(chunks), 6)
        first, last = chunks[0][1], chunks[-1][1]
        self.assertLess(first - raw.sent_at, 0.1)
        self.assertGreater(last - first, 0.35)
        record = self.ended()
        self.assertGreater(record["end"] - record["first_byte"], 0.35)

    def test_first_delay_and_delay_headers(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Tokens": 2, "X-Standin-Delay-Ms": 0,
                               "X-Standin-First-Delay-Ms": 300})
        raw.read_head()
        self.assertGreater(time.monotonic() - raw.sent_at, 0.28)
        chunks = raw.read_chunks()
        self.assertLess(chunks[-1][1] - chunks[0][1], 0.1)
        record = self.ended()
        self.assertGreater(record["first_byte"] - record["start"], 0.28)
        self.assertGreater(json.loads(chunks[-1][0])["load_duration"], 280_000_000)

    def test_http10_stream_is_close_delimited(self):
        raw = self.raw().send("POST", "/api/chat", CHAT, {"X-Standin-Tokens": 2},
                              version="HTTP/1.0")
        status, headers = raw.read_head()
        self.assertEqual((status, headers.get("connection")), (200, "close"))
        self.assertNotIn("transfer-encoding", headers)
        lines = raw.read_to_eof().decode().splitlines()
        self.assertEqual([json.loads(line)["done"] for line in lines], [False, False, True])

    def test_http10_without_keep_alive_says_close(self):
        # Go says it will close; a proxy that kept the connection would send
        # its next request into a socket about to be closed
        status, headers = self.raw().send("GET", "/api/version", version="HTTP/1.0").read_head()
        self.assertEqual((status, headers.get("connection")), (200, "close"))
        status, headers = self.raw().send("GET", "/api/version", version="HTTP/1.0",
                                          headers={"Connection": "keep-alive"}).read_head()
        self.assertEqual((status, headers.get("connection")), (200, "keep-alive"))
        status, headers = self.raw().send("GET", "/api/version").read_head()
        self.assertEqual((status, headers.get("connection")), (200, None))

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for path, body in (("/api/chat", CHAT), ("/api/tags", None),
                               ("/api/chat", {"model": "nope"}), ("/api/chat", CHAT)):
                conn.request("POST" if body else "GET", path, body=encode(body),
                             headers={"X-Standin-Tokens": "2"})
                resp = conn.getresponse()
                resp.read()
                self.assertIn(resp.status, (200, 404))
        finally:
            conn.close()
        self.assertEqual(len(self.records()), 4)

    # ------------------------------------------------------------ embeddings

    def test_embed(self):
        reply = self.json_of("/api/embed", {"model": EMBED, "input": "hello"})
        self.assertEqual(reply["model"], EMBED)
        self.assertEqual([len(v) for v in reply["embeddings"]], [8])
        for key in ("total_duration", "load_duration", "prompt_eval_count"):
            self.assertGreater(reply[key], 0)
        reply2 = self.json_of("/api/embed", {"model": "nomic-embed-text",
                                             "input": ["hello", "world"]})
        self.assertEqual(len(reply2["embeddings"]), 2)
        self.assertEqual(reply2["embeddings"][0], reply["embeddings"][0])  # deterministic
        self.assertNotEqual(reply2["embeddings"][0], reply2["embeddings"][1])
        self.assertEqual(self.json_of("/api/embed", {"model": EMBED, "input": 3}, 400),
                         {"error": "invalid input type"})

    def test_embeddings_legacy(self):
        reply = self.json_of("/api/embeddings", {"model": EMBED, "prompt": "hello"})
        self.assertEqual(list(reply), ["embedding"])
        self.assertEqual(len(reply["embedding"]), 8)
        self.assertEqual(reply["embedding"],
                         self.json_of("/api/embed", {"model": EMBED, "input": "hello"})
                         ["embeddings"][0])

    # ------------------------------------------------------------ OpenAI-compatible

    def test_v1_models(self):
        reply = self.json_of("/v1/models")
        self.assertEqual(reply["object"], "list")
        self.assertEqual([m["id"] for m in reply["data"]], [MODEL, EMBED])
        for m in reply["data"]:
            self.assertEqual((m["object"], m["owned_by"]), ("model", "library"))
            self.assertIsInstance(m["created"], int)
        one = self.json_of("/v1/models/llama3:70b")
        self.assertEqual((one["id"], one["object"]), (MODEL, "model"))
        status, headers, data = self.request("GET", "/v1/models/nope")
        self.assertEqual(status, 404)
        self.assert_json_type(headers, "application/json")
        error = json.loads(data)["error"]
        self.assertEqual(error, {"message": 'model "nope" not found, try pulling it first',
                                 "type": "not_found_error", "param": None, "code": None})

    def sse_events(self, data):
        self.assertTrue(data.endswith(b"data: [DONE]\n\n"), data[-40:])
        events = data.decode().split("\n\n")
        self.assertEqual(events[-1], "")
        self.assertTrue(all(e.startswith("data: ") for e in events[:-1]))
        return [json.loads(e[6:]) for e in events[:-2]]

    def test_v1_chat_stream(self):
        body = dict(CHAT, stream=True)
        status, headers, data = self.post("/v1/chat/completions", body, X_Standin_Tokens=3)
        self.assertEqual((status, headers["content-type"]), (200, "text/event-stream"))
        chunks = self.sse_events(data)
        self.assertEqual(len(chunks), 4)
        for chunk in chunks:
            self.assertEqual((chunk["object"], chunk["model"]), ("chat.completion.chunk", MODEL))
            self.assertTrue(chunk["id"].startswith("chatcmpl-"))
        self.assertEqual([c["choices"][0]["delta"]["content"] for c in chunks],
                         ["tok1 ", "tok2 ", "tok3 ", ""])
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks],
                         [None, None, None, "stop"])
        self.assertNotIn("usage", chunks[-1])
        body["stream_options"] = {"include_usage": True}
        chunks = self.sse_events(self.post("/v1/chat/completions", body, X_Standin_Tokens=3)[2])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 3)
        self.assertEqual(chunks[-1]["usage"]["total_tokens"],
                         chunks[-1]["usage"]["prompt_tokens"] + 3)

    def test_v1_chat_not_streamed_by_default(self):
        status, headers, data = self.post("/v1/chat/completions", CHAT, X_Standin_Tokens=2)
        self.assert_json_type(headers, "application/json")
        reply = json.loads(data)
        self.assertEqual(reply["object"], "chat.completion")
        self.assertEqual(reply["choices"], [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant",
                                                         "content": "tok1 tok2 "}}])
        self.assertEqual(reply["usage"]["completion_tokens"], 2)
        self.assertEqual(self.records()[0]["stream"], False)
        # max_tokens is Ollama's num_predict on /v1
        reply = self.json_of("/v1/chat/completions", dict(CHAT, max_tokens=1))
        self.assertEqual(reply["choices"][0]["message"]["content"], "tok1 ")

    def test_v1_completions(self):
        body = {"model": MODEL, "prompt": "Say hi", "stream": True,
                "stream_options": {"include_usage": True}}
        chunks = self.sse_events(self.post("/v1/completions", body, X_Standin_Tokens=2)[2])
        self.assertEqual([c["object"] for c in chunks], ["text_completion"] * 4)
        self.assertEqual([c["choices"][0]["text"] for c in chunks[:3]], ["tok1 ", "tok2 ", ""])
        self.assertEqual(chunks[2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[3]["usage"]["completion_tokens"], 2)
        reply = self.json_of("/v1/completions", {"model": MODEL, "prompt": "Say hi"},
                             X_Standin_Tokens=2)
        self.assertEqual(reply["object"], "text_completion")
        self.assertEqual((reply["choices"][0]["text"], reply["choices"][0]["finish_reason"]),
                         ("tok1 tok2 ", "stop"))
        self.assertIn("usage", reply)

    def test_v1_embeddings(self):
        reply = self.json_of("/v1/embeddings", {"model": EMBED, "input": ["a", "b"]})
        self.assertEqual((reply["object"], reply["model"]), ("list", EMBED))
        self.assertEqual([(d["object"], d["index"], len(d["embedding"])) for d in reply["data"]],
                         [("embedding", 0, 8), ("embedding", 1, 8)])
        self.assertIn("prompt_tokens", reply["usage"])
        # the openai npm client asks for base64 unless told otherwise
        encoded = self.json_of("/v1/embeddings", {"model": EMBED, "input": "a",
                                                  "encoding_format": "base64"})
        floats = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
        for got, want in zip(floats, reply["data"][0]["embedding"]):
            self.assertAlmostEqual(got, want, places=5)
        error = self.json_of("/v1/embeddings", {"model": EMBED, "input": "a",
                                                "encoding_format": "int8"}, 400)["error"]
        self.assertEqual(error["type"], "invalid_request_error")

    # ------------------------------------------------------------ errors

    def test_ollama_errors(self):
        cases = [
            ("/api/chat", b"", 400, {"error": "missing request body"}),
            ("/api/generate", b'{"model": "llama3:70b",', 400, {"error": "unexpected EOF"}),
            ("/api/chat", b"{nope}", 400,
             {"error": "invalid character 'n' looking for beginning of object key string"}),
            ("/api/chat", b"[1]", 400,
             {"error": "json: cannot unmarshal array into Go value of type api.ChatRequest"}),
            ("/api/chat", {"model": 7}, 400, {"error": "json: cannot unmarshal number into "
                                              "Go struct field ChatRequest.model of type string"}),
            ("/api/chat", {"model": "no-such-model", "messages": []}, 404,
             {"error": 'model "no-such-model" not found, try pulling it first'}),
            ("/api/chat", {"messages": []}, 400, {"error": "model is required"}),
            ("/api/generate", {"prompt": "hi"}, 400, {"error": "model is required"}),
            ("/api/embed", {"model": "nope", "input": "x"}, 404,
             {"error": 'model "nope" not found, try pulling it first'}),
            ("/api/chat", {"model": "nomic-embed-text", "messages": []}, 400,
             {"error": '"nomic-embed-text" does not support chat'}),
        ]
        for path, body, status, error in cases:
            with self.subTest(path=path, body=body):
                code, headers, data = self.post(path, body)
                self.assertEqual((code, json.loads(data)), (status, error))
                self.assert_json_type(headers)

    def test_router_errors(self):
        status, headers, data = self.request("GET", "/api/nothing")
        self.assertEqual((status, data, headers["content-type"]),
                         (404, b"404 page not found", "text/plain"))
        status, headers, data = self.request("GET", "/api/chat")
        self.assertEqual((status, data), (405, b"405 method not allowed"))
        self.assertEqual(self.request("DELETE", "/api/tags")[0], 405)

    def test_v1_errors(self):
        cases = [
            ("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user"}]}, 404,
             "not_found_error"),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, 400,
             "invalid_request_error"),
            ("/v1/chat/completions", {"model": MODEL, "messages": []}, 400,
             "invalid_request_error"),
            ("/v1/completions", b"{", 400, "invalid_request_error"),
            ("/v1/embeddings", {"model": EMBED}, 400, "invalid_request_error"),
        ]
        for path, body, status, kind in cases:
            with self.subTest(path=path, body=body):
                code, headers, data = self.post(path, body)
                self.assertEqual(code, status)
                self.assert_json_type(headers, "application/json")
                error = json.loads(data)["error"]
                self.assertEqual(set(error), {"message", "type", "param", "code"})
                self.assertEqual((error["type"], error["param"], error["code"]), (kind, None, None))
        error = self.json_of("/v1/chat/completions", CHAT, 500, X_Standin_Fail=500)["error"]
        self.assertEqual((error["type"], error["message"]),
                         ("api_error", "llama runner process has terminated: exit status 2"))

    # ------------------------------------------------------------ Host check

    def test_host_check(self):
        allowed = ["localhost", "localhost:11434", "127.0.0.1", "127.0.0.1:11434",
                   "[::1]:11434", "10.1.2.3:80", "192.168.1.9", "foo.local", "db.internal",
                   "app.localhost:3000", "LOCALHOST", socket.gethostname()]
        for host in allowed:
            with self.subTest(host=host):
                self.assertEqual(self.request("GET", "/api/version", host=host)[0], 200)
        for host in ("example.com", "example.com:11434", "8.8.8.8", "ollama.example.com"):
            with self.subTest(host=host):
                status, _, data = self.request("POST", "/api/chat", encode(CHAT), host=host)
                self.assertEqual((status, data), (403, b""))
        # no Host header at all (HTTP/1.0)
        raw = self.raw().send("GET", "/api/version", version="HTTP/1.0", host=None)
        self.assertEqual(raw.read_head()[0], 200)
        # the control endpoints skip the check
        self.assertEqual(self.request("GET", "/_standin/stats", host="example.com")[0], 200)
        self.assertEqual(self.records()[-1]["status"], 200)  # the Host-less request

    # ------------------------------------------------------------ failures on demand

    def test_fail_statuses(self):
        cases = {
            "500": "llama runner process has terminated: exit status 2",
            "503": "server busy, please try again.  maximum pending requests exceeded",
            "400": "input length exceeds maximum context length",
            "404": 'model "llama3:70b" not found, try pulling it first',
        }
        for mode, message in cases.items():
            with self.subTest(mode=mode):
                status, headers, data = self.post("/api/chat", CHAT, X_Standin_Fail=mode)
                self.assertEqual((status, json.loads(data)), (int(mode), {"error": message}))
                self.assert_json_type(headers)
        self.assertEqual([r["status"] for r in self.records()], [500, 503, 400, 404])
        self.assertEqual(self.stats()["served"], 0)

    def test_fail_after_first_delay(self):
        started = time.monotonic()
        status = self.post("/api/chat", CHAT, X_Standin_Fail=500,
                           X_Standin_First_Delay_Ms=300)[0]
        self.assertEqual(status, 500)
        self.assertGreater(time.monotonic() - started, 0.28)

    def test_fail_close(self):
        raw = self.raw().send("POST", "/api/chat", CHAT, {"X-Standin-Fail": "close"})
        self.assertEqual(raw.read_to_eof(), b"")
        record = self.ended()
        self.assertEqual((record["status"], record["first_byte"], record["aborted"]),
                         (None, None, False))

    def test_fail_stall(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Fail": "stall", "X-Standin-Tag": "stalled"})
        self.assertTrue(raw.silent_for(0.4))
        record = self.records()[0]
        self.assertEqual((record["tag"], record["end"], record["status"]), ("stalled", None, None))
        self.assertEqual(self.stats()["active"], 1)
        raw.close()
        record = self.ended()
        self.assertTrue(record["aborted"])
        self.assertEqual(self.stats(), {"active": 0, "peak": 1, "served": 0, "aborted": 1,
                                        "total": 1})

    def test_hold_until_release(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Hold": "1", "X-Standin-Tokens": 2,
                               "X-Standin-Tag": "held"})
        self.assertTrue(raw.silent_for(0.3))
        self.assertEqual(self.stats()["active"], 1)
        # only a release lets it go, not another request that ends
        self.post("/api/chat", dict(CHAT, stream=False), X_Standin_Tokens=1)
        self.assertTrue(raw.silent_for(0.3))
        status, _, _ = self.request("POST", "/_standin/release", b"")
        self.assertEqual(status, 200)
        raw.read_head()
        self.assertEqual(len(raw.read_chunks()), 3)
        record = self.ended()
        self.assertEqual((record["tag"], record["aborted"], record["tokens_sent"]),
                         ("held", False, 2))

    def test_pause_after_tokens_until_release(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Pause-After": "2", "X-Standin-Tokens": 4,
                               "X-Standin-Delay-Ms": 0})
        raw.read_head()
        self.assertTrue(raw.read_chunk()[0] and raw.read_chunk()[0])
        self.assertTrue(raw.silent_for(0.3))
        self.request("POST", "/_standin/release", b"")
        self.assertEqual(len(raw.read_chunks()), 3)   # the other two and the final line
        self.assertEqual(self.ended()["tokens_sent"], 4)

    def test_hold_client_leaves(self):
        raw = self.raw().send("POST", "/api/chat", CHAT, {"X-Standin-Hold": "1"})
        self.wait_until(lambda: self.stats()["active"] == 1, "the held request")
        raw.close()
        self.assertTrue(self.ended()["aborted"])

    def test_fail_stall_mid(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Fail": "stall-mid", "X-Standin-Tokens": 5})
        self.assertEqual(raw.read_head()[0], 200)
        tokens = [json.loads(raw.read_chunk()[0]) for _ in range(2)]
        self.assertEqual([t["message"]["content"] for t in tokens], ["tok1 ", "tok2 "])
        self.assertTrue(raw.silent_for(0.3))
        raw.close()
        record = self.ended()
        self.assertEqual((record["status"], record["tokens_sent"], record["aborted"]),
                         (200, 2, True))

    def test_fail_close_mid(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Fail": "close-mid", "X-Standin-Tokens": 5})
        self.assertEqual(raw.read_head()[0], 200)
        for _ in range(2):
            self.assertEqual(json.loads(raw.read_chunk()[0])["done"], False)
        # then the connection ends without the terminating zero-size chunk
        self.assertEqual(raw.read_to_eof(), b"")
        record = self.ended()
        self.assertEqual((record["tokens_sent"], record["aborted"]), (2, False))
        self.assertEqual(self.stats()["served"], 0)

    def test_fail_error_mid(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Fail": "error-mid", "X-Standin-Tokens": 5})
        self.assertEqual(raw.read_head()[0], 200)
        lines = [json.loads(data) for data, _ in raw.read_chunks()]  # ends with the 0 chunk
        self.assertEqual(len(lines), 3)
        self.assertEqual([line.get("done") for line in lines[:2]], [False, False])
        self.assertEqual(lines[-1], MID_ERROR)
        record = self.ended()
        self.assertEqual((record["status"], record["tokens_sent"], record["aborted"]),
                         (200, 2, False))
        # on a response that does not stream, error-mid is a 500
        status, _, data = self.post("/api/chat", dict(CHAT, stream=False),
                                    X_Standin_Fail="error-mid")
        self.assertEqual((status, json.loads(data)), (500, MID_ERROR))

    def test_fail_mid_on_sse(self):
        data = self.post("/v1/chat/completions", dict(CHAT, stream=True),
                         X_Standin_Fail="error-mid")[2]
        events = data.decode().split("\n\n")
        self.assertEqual(len(events), 4)  # two tokens, the error, and the empty tail
        self.assertEqual(json.loads(events[2][6:])["error"]["message"], MID_ERROR["error"])
        self.assertNotIn(b"[DONE]", data)

    def test_bad_control_headers(self):
        status, _, data = self.post("/api/chat", CHAT, X_Standin_Tokens="many")
        self.assertEqual(status, 400)
        self.assertIn("X-Standin-Tokens", json.loads(data)["error"])
        self.assertEqual(self.post("/api/chat", CHAT, X_Standin_Fail="explode")[0], 400)

    # ------------------------------------------------------------ records and stats

    def test_records(self):
        self.post("/api/chat?x=1", dict(CHAT, stream=False), X_Standin_Tag="one",
                  X_Custom="Yes", X_Standin_Tokens=2)
        self.post("/api/chat", b"not json")
        self.request("GET", "/api/tags")
        first, second, third = self.records()
        self.assertEqual([r["seq"] for r in (first, second, third)], [1, 2, 3])
        self.assertEqual((first["method"], first["path"], first["tag"], first["model"]),
                         ("POST", "/api/chat?x=1", "one", MODEL))
        self.assertEqual(first["body"]["messages"], CHAT["messages"])
        self.assertEqual((first["headers"]["x-custom"], first["headers"]["host"]),
                         ("Yes", "localhost"))
        self.assertEqual((first["stream"], first["status"], first["tokens_sent"],
                          first["aborted"], first["active_at_start"]), (False, 200, 2, False, 1))
        self.assertLessEqual(first["start"], first["first_byte"])
        self.assertLessEqual(first["first_byte"], first["end"])
        self.assertEqual(round(first["start"], 6), first["start"])
        self.assertEqual((second["body"], second["status"], second["tag"], second["model"]),
                         ("not json", 400, None, None))
        self.assertEqual((third["method"], third["body"], third["stream"]), ("GET", None, False))
        self.assertEqual(self.stats(), {"active": 0, "peak": 1, "served": 1, "aborted": 0,
                                        "total": 2})
        # --record appends one line per finished request
        with open(self.record_file, encoding="utf-8") as f:
            tags = [json.loads(line)["tag"] for line in f]
        self.assertIn("one", tags)

    def test_usage_sent_is_recorded(self):
        _, _, data = self.post("/api/chat", CHAT, X_Standin_Tokens=3)
        final = json.loads(data.decode().splitlines()[-1])
        sent = self.ended()["usage_sent"]
        self.assertEqual(sent, {key: final[key] for key in METRICS})
        self.post("/v1/chat/completions", {"model": MODEL, "messages": CHAT["messages"]},
                  X_Standin_Tokens=2)
        self.assertEqual(self.ended(2)["usage_sent"]["completion_tokens"], 2)
        # a stream without include_usage sends no figures
        self.post("/v1/chat/completions", {"model": MODEL, "stream": True,
                                           "messages": CHAT["messages"]})
        self.assertIsNone(self.ended(3)["usage_sent"])
        self.post("/api/embed", {"model": MODEL, "input": ["a b", "c"]})
        self.assertEqual(self.ended(4)["usage_sent"]["prompt_eval_count"], 3)

    def test_split_and_first_token_text(self):
        raw = self.raw().send("POST", "/api/generate", {"model": MODEL, "prompt": "hi"},
                              {"X-Standin-Tokens": 2, "X-Standin-Split": 3,
                               "X-Standin-Token-Text": 'a "q" \\'})
        self.assertEqual(raw.read_head()[0], 200)
        chunks = [data for data, _ in raw.read_chunks()]
        lines = [json.loads(data) for data in chunks]
        self.assertEqual([line["response"] for line in lines], ['a "q" \\', "tok2 ", ""])
        _, _, data = self.post("/api/chat", CHAT, X_Standin_Tokens=2,
                               X_Standin_Big_Token=100000)
        lines = [json.loads(line) for line in data.decode().splitlines()]
        self.assertEqual([len(line["message"]["content"]) for line in lines],
                         [100000, 5, 0])

    def test_record_visible_in_flight(self):
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Tokens": 10, "X-Standin-Delay-Ms": 50})
        raw.read_head()
        self.wait_until(lambda: self.records()[0]["tokens_sent"] >= 2, "two tokens")
        record = self.records()[0]
        self.assertIsNone(record["end"])
        self.assertEqual((record["status"], record["stream"]), (200, True))
        self.assertEqual(self.stats()["active"], 1)
        raw.read_chunks()
        self.assertEqual(self.ended()["tokens_sent"], 10)

    def test_last_byte_precedes_the_next_start(self):
        # the benchmarks' handoff gap is a start minus the last_byte before
        # it: a request sent once a whole answer has arrived starts after it
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Tokens": 3, "X-Standin-Delay-Ms": 0})
        raw.read_head()
        self.assertEqual(len(raw.read_chunks()), 4)
        self.post("/api/chat", dict(CHAT, stream=False), X_Standin_Tokens=1)
        self.request("GET", "/api/tags")
        self.request("HEAD", "/api/version")
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Fail": "close-mid", "X-Standin-Tokens": 5})
        raw.read_head()
        raw.read_to_eof()
        self.ended(5)
        records = self.records()
        for record in records[:4]:
            self.assertLessEqual(record["start"], record["first_byte"])
            self.assertLessEqual(record["first_byte"], record["last_byte"])
            self.assertLessEqual(record["last_byte"], record["end"])
        for before, after in zip(records[:4], records[1:5]):
            self.assertLessEqual(before["last_byte"], after["start"])
        self.assertIsNone(records[4]["last_byte"])  # its answer never completed

    def test_no_delay(self):
        # Go sets TCP_NODELAY on every connection; so must the stand-in, or a
        # keep-alive client waits for its delayed ACK on each answer
        raw = self.raw()
        for _ in range(3):  # the same connection, several answers
            raw.send("GET", "/api/version")
            status, headers = raw.read_head()
            self.assertEqual(json.loads(raw.read_exact(int(headers["content-length"]))),
                             {"version": "0.6.8"})
        spec = importlib.util.spec_from_file_location("ollama_standin", SCRIPT)
        standin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(standin)
        self.assertTrue(standin.Handler.disable_nagle_algorithm)

    def test_peak_of_three_concurrent(self):
        raws = [self.raw().send("POST", "/api/chat", CHAT,
                                {"X-Standin-Tokens": 5, "X-Standin-Delay-Ms": 60,
                                 "X-Standin-Tag": f"c{i}"}) for i in range(3)]
        self.wait_until(lambda: self.stats()["active"] == 3, "three in flight")
        for raw in raws:
            raw.read_head()
            self.assertEqual(len(raw.read_chunks()), 6)
        self.ended(3)
        self.wait_until(lambda: self.stats()["active"] == 0, "all to end")
        self.assertEqual(self.stats(), {"active": 0, "peak": 3, "served": 3, "aborted": 0,
                                        "total": 3})
        self.assertEqual(sorted(r["active_at_start"] for r in self.records()), [1, 2, 3])

    def test_client_abort_mid_stream(self):
        raw = self.raw().send("POST", "/api/generate", {"model": MODEL, "prompt": "x"},
                              {"X-Standin-Tokens": 100, "X-Standin-Delay-Ms": 30})
        raw.read_head()
        raw.read_chunk()
        raw.read_chunk()
        raw.close()
        record = self.ended()
        self.assertTrue(record["aborted"])
        self.assertLess(record["tokens_sent"], 20)  # noticed promptly
        self.assertEqual(self.stats(), {"active": 0, "peak": 1, "served": 0, "aborted": 1,
                                        "total": 1})

    def test_reset(self):
        self.post("/api/chat", CHAT)
        raw = self.raw().send("POST", "/api/chat", CHAT,
                              {"X-Standin-Tokens": 10, "X-Standin-Delay-Ms": 40})
        raw.read_head()
        self.reset()
        self.assertEqual(self.records(), [])
        # the request in flight stays active, and peak starts from it
        self.assertEqual(self.stats(), {"active": 1, "peak": 1, "served": 0, "aborted": 0,
                                        "total": 0})
        raw.read_chunks()
        self.post("/api/chat", CHAT, X_Standin_Tag="after")
        self.assertEqual([(r["seq"], r["tag"]) for r in self.records()], [(1, "after")])
        self.wait_until(lambda: self.stats()["active"] == 0, "the old request to end")
        # the request from before the reset is not counted as served after it
        self.assertEqual(self.stats()["served"], 1)
        self.assertEqual(self.request("GET", "/_standin/reset")[0], 405)


    def test_residency_off_by_default(self):
        self.post("/api/chat", CHAT)
        self.post("/api/embed", {"model": EMBED, "input": "x"})
        self.assertEqual(self.json_of("/_standin/loads"), [])
        self.assertEqual(set(self.stats()), {"active", "peak", "served", "aborted", "total"})
        self.assertTrue(all("load_ms" not in r for r in self.records()))
        self.assertEqual({m["name"] for m in self.json_of("/api/ps")["models"]}, {MODEL, EMBED})


class ResidencyTest(unittest.TestCase):
    """--max-loaded: models resident as under OLLAMA_MAX_LOADED_MODELS."""

    A, B, C = MODEL, "qwen2:7b", "phi3:mini"

    def start(self, *args):
        proc, port = start_standin("--delay-ms", "0", "--tokens", "2",
                                   "--extra-model", self.B, "--extra-model", self.C, *args)
        self.addCleanup(stop_standin, proc)
        self.port = port
        return port

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            return json.loads(resp.read())
        finally:
            conn.close()

    def chat(self, model, tag=None, stream=False, path="/api/chat"):
        """The answer's last JSON object."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = dict(CHAT, model=model, stream=stream)
            conn.request("POST", path, body=json.dumps(body),
                         headers={"X-Standin-Tag": tag} if tag else {})
            resp = conn.getresponse()
            data = resp.read()
            self.assertEqual(resp.status, 200, data)
            return json.loads(data.decode().splitlines()[-1])
        finally:
            conn.close()

    def loads(self):
        return [(load["model"], load["evicted"]) for load in self.get("/_standin/loads")]

    def ps(self):
        return [m["name"] for m in self.get("/api/ps")["models"]]

    def test_lru_with_one(self):
        self.start("--max-loaded", "1")
        self.assertEqual(self.ps(), [])  # nothing resident at first
        A, B, C = self.A, self.B, self.C
        for model in (A, A, B, A, C):
            self.chat(model)
            self.assertEqual(self.ps(), [model])
        self.assertEqual(self.loads(), [(A, None), (B, A), (A, B), (C, A)])
        stats = self.get("/_standin/stats")
        self.assertEqual((stats["loads"], stats["swaps"], stats["served"]), (4, 3, 5))

    def test_lru_with_two(self):
        self.start("--max-loaded", "2")
        A, B, C = self.A, self.B, self.C
        self.chat(A)
        self.chat(B)
        self.assertEqual(self.ps(), [B, A])  # the most recently used first
        self.chat(A)  # resident: A is now the most recent, B the least
        self.assertEqual(self.ps(), [A, B])
        self.chat(C)  # evicts B
        self.assertEqual(self.ps(), [C, A])
        self.chat(B)  # evicts A
        self.chat(C)
        self.assertEqual(self.ps(), [C, B])
        self.assertEqual(self.loads(), [(A, None), (B, None), (C, B), (B, A)])
        self.assertEqual(self.get("/_standin/stats")["swaps"], 2)
        for model in self.get("/api/ps")["models"]:
            self.assertEqual(set(model), {"name", "model", "size", "digest", "details",
                                          "expires_at", "size_vram"})
            self.assertTrue(model["expires_at"].endswith("Z"))

    def test_load_duration(self):
        self.start("--max-loaded", "1", "--load-ms", "40", "--load-ms-for", f"{self.B}=70")
        first = self.chat(self.A, stream=True)  # the done line of a stream
        self.assertEqual(first["load_duration"], 40 * 1000000)
        self.assertGreaterEqual(first["total_duration"], first["load_duration"])
        again = self.chat(self.A)  # resident: near zero
        self.assertGreater(again["load_duration"], 0)
        self.assertLess(again["load_duration"], 40 * 1000000)
        self.assertEqual(self.chat(self.B, path="/api/generate")["load_duration"],
                         70 * 1000000)
        # /v1 says nothing of loads, but the load happens and is recorded
        self.assertNotIn("load_duration", self.chat(self.A, path="/v1/chat/completions"))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/api/embed", body=json.dumps({"model": EMBED, "input": "x"}))
        embed = json.loads(conn.getresponse().read())
        conn.close()
        self.assertEqual(embed["load_duration"], 40 * 1000000)
        self.assertEqual([load["load_ms"] for load in self.get("/_standin/loads")],
                         [40, 70, 40, 40])
        records = self.get("/_standin/requests")
        self.assertEqual([r["load_ms"] for r in records], [40, 0, 70, 40, 40])
        self.assertEqual([r["usage_sent"]["load_duration"] for r in records[:3]],
                         [first["load_duration"], again["load_duration"], 70 * 1000000])

    def test_swap_record(self):
        record_file = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
        self.addCleanup(os.unlink, record_file)
        self.start("--max-loaded", "1", "--load-ms", "10", "--record", record_file)
        self.chat(self.A, tag="first")
        self.chat(self.A, tag="resident")
        self.chat(self.B, tag="swap")
        loads = self.get("/_standin/loads")
        self.assertEqual([(l["seq"], l["model"], l["evicted"], l["request"], l["tag"])
                          for l in loads],
                         [(1, self.A, None, 1, "first"), (2, self.B, self.A, 3, "swap")])
        for load in loads:
            self.assertLessEqual(load["start"], load["end"])
        self.assertLessEqual(loads[0]["end"], loads[1]["start"])
        with open(record_file, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual([(r["tag"], r["load_ms"]) for r in lines],
                         [("first", 10), ("resident", 0), ("swap", 10)])
        # a reset forgets the loads, not what is resident
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/_standin/reset")
        self.assertEqual(conn.getresponse().read(), b"{}")
        conn.close()
        self.assertEqual((self.get("/_standin/loads"), self.ps()), ([], [self.B]))
        self.chat(self.B)
        self.assertEqual(self.get("/_standin/loads"), [])
        stats = self.get("/_standin/stats")
        self.assertEqual((stats["loads"], stats["swaps"]), (0, 0))

    def test_model_in_use_is_not_evicted(self):
        port = self.start("--max-loaded", "1")
        busy = Raw(port).send("POST", "/api/chat", dict(CHAT, model=self.A),
                              {"X-Standin-Pause-After": 1, "X-Standin-Tokens": 3})
        self.addCleanup(busy.close)
        self.assertEqual(busy.read_head()[0], 200)
        busy.read_chunk()  # A is in use, paused
        other = Raw(port).send("POST", "/api/chat", dict(CHAT, model=self.B, stream=False))
        self.addCleanup(other.close)
        deadline = time.monotonic() + 5
        while len(self.get("/_standin/requests")) < 2:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        time.sleep(0.1)
        self.assertEqual(self.loads(), [(self.A, None)])  # B waits for A to be idle
        self.assertEqual(self.ps(), [self.A])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/_standin/release")
        conn.getresponse().read()
        conn.close()
        busy.read_chunks()
        status, headers = other.read_head()
        other.read_exact(int(headers["content-length"]))
        self.assertEqual(status, 200)
        self.assertEqual(self.loads(), [(self.A, None), (self.B, self.A)])
        self.assertEqual(self.ps(), [self.B])

    def test_bad_options(self):
        for args in (["--load-ms-for", "nosuch:1b=5"], ["--load-ms-for", f"{self.A}=x"],
                     ["--max-loaded", "-1"], ["--load-ms", "-3"]):
            proc = subprocess.run([sys.executable, SCRIPT, "--port", "0", *args],
                                  capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn("error", proc.stderr)


class CommandLineTest(unittest.TestCase):
    """Options of its own, and the way it ends."""

    def test_options_and_sigterm(self):
        proc, port = start_standin("--tokens", "3", "--delay-ms", "0", "--first-delay-ms", "150",
                                   "--model", "qwen2:7b")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/tags")
            names = [m["name"] for m in json.loads(conn.getresponse().read())["models"]]
            self.assertEqual(names, ["qwen2:7b", EMBED])
            started = time.monotonic()
            conn.request("POST", "/api/chat", body=json.dumps(dict(CHAT, model="qwen2:7b")))
            resp = conn.getresponse()
            lines = resp.read().splitlines()
            self.assertGreater(time.monotonic() - started, 0.14)
            self.assertEqual(len(lines), 4)
            conn.request("POST", "/api/chat", body=json.dumps(CHAT))
            self.assertEqual(conn.getresponse().status, 404)  # llama3:70b is not installed here
            conn.close()
            # a stalled request does not hold up the exit
            raw = Raw(port).send("POST", "/api/chat", CHAT, {"X-Standin-Fail": "stall"})
            time.sleep(0.1)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            self.assertLess(time.monotonic() - started, 1.0)
            raw.close()
        finally:
            stop_standin(proc)

    def test_close_after_stream(self):
        """llama-server's manner: a streamed answer, then the connection
        closes although the answer did not say so; other answers keep it."""
        proc, port = start_standin("--close-after-stream", "--delay-ms", "0", "--tokens", "2")
        try:
            raw = Raw(port).send("POST", "/api/chat", dict(CHAT, stream=False))
            status, headers = raw.read_head()
            raw.read_exact(int(headers["content-length"]))
            self.assertEqual((status, headers.get("connection")), (200, None))
            raw.send("POST", "/v1/chat/completions", dict(CHAT, stream=True))
            status, headers = raw.read_head()
            chunks = raw.read_chunks()
            self.assertEqual((status, headers.get("connection")), (200, None))
            self.assertEqual(chunks[-1][0], b"data: [DONE]\n\n")
            self.assertEqual(raw.read_to_eof(), b"")  # closed, unannounced
            raw.close()
        finally:
            stop_standin(proc)

    def test_cors(self):
        """llama-server's CORS: any Origin is allowed, and * without one."""
        proc, port = start_standin("--cors")
        try:
            for origin, allowed in (("https://evil.example", "https://evil.example"),
                                    (None, "*")):
                raw = Raw(port).send("GET", "/api/tags",
                                     headers={"Origin": origin} if origin else None)
                status, headers = raw.read_head()
                self.assertEqual((status, headers.get("access-control-allow-origin"),
                                  headers.get("access-control-allow-credentials")),
                                 (200, allowed, "true"))
                raw.close()
        finally:
            stop_standin(proc)

    def test_sigint(self):
        proc, _ = start_standin()
        try:
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(5), 0)
        finally:
            stop_standin(proc)


if __name__ == "__main__":
    unittest.main()
