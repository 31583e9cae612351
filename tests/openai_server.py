"""A fake OpenAI-compatible (and Ollama-tags) server for tests and bench/stream_sse.py.

stdlib http.server in a thread on 127.0.0.1, port 0. It streams chat completions as SSE
over a chunked HTTP/1.1 body (one HTTP chunk per event, like real servers), serves
``/v1/models`` and ``/api/tags``, records every request, and fails on demand:

    mode = "ok"       stream the reply word by word, usage, [DONE]
           "500"      HTTP 500 with an OpenAI-style error message
           "drop"     a few chunks, then the connection is cut (no terminating chunk)
           "garbage"  a few chunks, then an event that is not JSON
           "slow"     one chunk every ``delay`` seconds (idle timeouts, Ctrl-C)
           "bulk"     ``bulk_chunks`` one-token events as fast as the socket takes them
           "no_stream_options"  HTTP 400 when the request asks for stream_options
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def sse_chunk(content: str | None = None, *, finish: str | None = None,
              usage: dict[str, int] | None = None, reasoning: str | None = None) -> bytes:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    obj: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                           "created": 1, "model": "m",
                           "choices": [] if usage else [{"index": 0, "delta": delta,
                                                          "finish_reason": finish}]}
    if usage:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode = "ok"
        self.reply: str | None = None  # None: "You said: <last user message>"
        self.reasoning: str | None = None
        self.delay = 0.05
        self.bulk_chunks = 200_000
        self.models = ["alpha-model", "beta-model", "gamma-model"]
        self.models_status = 200
        self.requests: list[dict[str, Any]] = []
        self.model_requests = 0
        self.tls: tuple[str, str] | None = None  # (certfile, keyfile): serve https
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle_get(self)

            def do_POST(self) -> None:
                fake.handle_post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def root(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.root + "/v1"

    # handlers ----------------------------------------------------------------------------
    def _json(self, h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle_get(self, h: BaseHTTPRequestHandler) -> None:
        self.model_requests += 1
        if self.models_status != 200:
            self._json(h, self.models_status, {"error": "models unavailable"})
        elif h.path == "/v1/models":
            self._json(h, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "me"} for m in self.models]})
        elif h.path == "/api/tags":
            self._json(h, 200, {"models": [{"name": m, "model": m, "size": 1}
                                           for m in self.models]})
        else:
            self._json(h, 404, {"error": f"no route {h.path}"})

    def handle_post(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        body["_authorization"] = h.headers.get("Authorization")
        self.requests.append(body)
        if h.path != "/v1/chat/completions":
            self._json(h, 404, {"error": f"no route {h.path}"})
            return
        if self.mode == "500":
            self._json(h, 500, {"error": {"message": "model exploded: out of memory",
                                          "type": "server_error"}})
            return
        if self.mode == "no_stream_options" and "stream_options" in body:
            self._json(h, 400, {"error": {"message": "Unrecognized request argument "
                                                     "supplied: stream_options"}})
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if self.mode == "bulk":
            self._bulk(h)
            return
        messages = body.get("messages") or [{}]
        reply = self.reply if self.reply is not None else \
            f"You said: {messages[-1].get('content', '')}"
        words = reply.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        out = h.wfile
        try:
            out.write(http_chunk(b": keep-alive\n\n"))
            if self.reasoning:
                out.write(http_chunk(sse_chunk(reasoning=self.reasoning)))
            for i, piece in enumerate(pieces):
                if self.mode in ("drop", "garbage") and i == 2:
                    break
                out.write(http_chunk(sse_chunk(piece)))
                if self.mode == "slow":
                    out.flush()
                    time.sleep(self.delay)
            if self.mode == "drop":
                out.flush()
                h.close_connection = True
                h.connection.close()
                return
            if self.mode == "garbage":
                out.write(http_chunk(b"data: {this is not json\n\n"))
                out.write(b"0\r\n\r\n")
                return
            out.write(http_chunk(sse_chunk(finish="stop")))
            if "stream_options" in body:
                out.write(http_chunk(sse_chunk(usage={
                    "prompt_tokens": 11 * len(messages), "completion_tokens": len(pieces),
                    "total_tokens": 11 * len(messages) + len(pieces)})))
            out.write(http_chunk(b"data: [DONE]\n\n"))
            out.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _bulk(self, h: BaseHTTPRequestHandler) -> None:
        # Pre-encoded so the server's own cost stays out of the measurement.
        one = http_chunk(sse_chunk("tok"))
        payload = bytearray(one * self.bulk_chunks)
        payload += http_chunk(sse_chunk(finish="stop"))
        payload += http_chunk(sse_chunk(usage={"prompt_tokens": 1,
                                               "completion_tokens": self.bulk_chunks,
                                               "total_tokens": self.bulk_chunks + 1}))
        payload += http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        view = memoryview(payload)
        try:
            for start in range(0, len(view), 1 << 16):
                h.wfile.write(view[start:start + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass


def main() -> None:
    """Serve until killed: ``python3 openai_server.py [MODE] [BULK_CHUNKS]``; prints the
    port on the first line (the benchmark runs the server in its own process so that it
    shares no interpreter lock with the client being measured)."""
    import sys

    fake = FakeOpenAI()
    if len(sys.argv) > 1:
        fake.mode = sys.argv[1]
    if len(sys.argv) > 2:
        fake.bulk_chunks = int(sys.argv[2])
    with fake:
        print(fake.port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
