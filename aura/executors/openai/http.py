"""A small HTTP/1.1 client over asyncio streams, for the OpenAI-compatible endpoints
(ollama, lms, custom): endpoint URLs (``api_base``), one request and its response head
(``open_request``), a body read piece by piece (``Response``: chunked, length-delimited or
close-delimited), a JSON GET (``get_json``), and the one-line wording of a server's error
body or a connection failure.

Standard library only, no thread, no proxy support: these servers are local or reached
directly.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aura import __version__
from aura.errors import ExecutorError, UsageError

DEFAULT_CONNECT_TIMEOUT = 10.0
# A local server may load the model before its first byte: minutes on a slow disk.
DEFAULT_IDLE_TIMEOUT = 300.0
ERROR_BODY_LIMIT = 1 << 20
READ_SIZE = 1 << 16


# URLs -------------------------------------------------------------------------------------

def api_base(url: str, *, default_path: str = "/v1") -> str:
    """The OpenAI API base of a user-given endpoint URL: no trailing slash, a bare host
    gets ``/v1``, a pasted ``…/chat/completions`` is trimmed back to its base."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "http://[::1": an unclosed IPv6 bracket
        raise UsageError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UsageError(f"{url!r} has an invalid port") from None
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    if not path:
        path = default_path
    return f"{parts.scheme}://{parts.netloc}{path}"


# HTTP over asyncio streams -------------------------------------------------------------------

class ChunkedDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body. ``feed`` returns the payload bytes
    available so far; ``done`` is set at the terminating zero-size chunk."""

    __slots__ = ("_buf", "_left", "_skip", "done")

    def __init__(self) -> None:
        self._buf = b""
        self._left = 0  # payload bytes still to come in the current chunk
        self._skip = 0  # bytes of the CRLF after a chunk still to skip
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        find = buf.find
        while pos < end and not self.done:
            if self._left:
                # Inside a chunk bigger than what has arrived: pass on what is here.
                take = min(self._left, end - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._skip = 2
                continue
            if self._skip:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
                continue
            eol = find(b"\r\n", pos)
            if eol < 0:
                if end - pos > 1024:
                    raise ValueError("chunk size line too long")
                break
            size_text = buf[pos:eol]
            try:
                size = int(size_text, 16)
            except ValueError:
                try:
                    size = int(size_text.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ValueError(f"bad chunk size {size_text[:40]!r}") from None
            start = eol + 2
            if size == 0:
                pos = start
                self.done = True
            elif start + size + 2 <= end:
                # The common case, one step per chunk: the whole chunk and its CRLF are here.
                out.append(buf[start:start + size])
                pos = start + size + 2
            else:
                pos = start
                self._left = size
        self._buf = buf[pos:] if pos < end and not self.done else b""
        return b"".join(out) if len(out) != 1 else out[0]


@dataclass
class Response:
    """An HTTP response whose body is read piece by piece."""

    status: int
    reason: str
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    _chunked: ChunkedDecoder | None = None
    _remaining: int | None = None  # Content-Length still to read
    finished: bool = False

    def __post_init__(self) -> None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._chunked = ChunkedDecoder()
        elif self.headers.get("content-length", "").isdigit():
            self._remaining = int(self.headers["content-length"])
            self.finished = self._remaining == 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def read_some(self) -> bytes:
        """The next piece of the body; b"" once it is complete. ConnectionError when the
        connection ends before the body does."""
        while not self.finished:
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError) as exc:
                raise ConnectionError(f"connection lost ({exc})") from None
            if not data:
                if self._chunked is not None or self._remaining:
                    raise ConnectionError("connection closed before the reply was complete")
                self.finished = True
                return b""
            if self._chunked is not None:
                try:
                    data = self._chunked.feed(data)
                except ValueError as exc:
                    raise ExecutorError(f"malformed chunked body: {exc}") from None
                self.finished = self._chunked.done
                if data:
                    return data
            elif self._remaining is not None:
                data = data[: self._remaining]
                self._remaining -= len(data)
                self.finished = not self._remaining
                return data
            else:
                return data
        return b""

    async def read_all(self, limit: int = ERROR_BODY_LIMIT) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < limit:
            data = await self.read_some()
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)[:limit]

    def close(self) -> None:
        # abort(): no lingering close handshake; a cancelled stream stops at once.
        self.writer.transport.abort()


async def open_request(method: str, url: str, *, body: bytes | None = None,
                       headers: dict[str, str] | None = None,
                       connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                       head_timeout: float = DEFAULT_IDLE_TIMEOUT) -> Response:
    """Send one request and read the response head. ConnectionError / TimeoutError when
    the server cannot be reached or does not answer."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if secure else None,
            limit=READ_SIZE)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc_host = f"[{host}]" if ":" in host else host
        lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc_host}:{port}",
                 f"User-Agent: aura/{__version__}", "Connection: close"]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        async with asyncio.timeout(head_timeout):
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                raise ConnectionError("the server closed the connection without answering"
                                      ) from None
            except asyncio.LimitOverrunError:
                raise ExecutorError("the server's response headers are too long") from None
    except BaseException:
        writer.transport.abort()
        raise
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        _version, status_text, *reason = status_line.split(" ", 2)
        status = int(status_text)
    except ValueError:
        writer.transport.abort()
        raise ExecutorError(f"not an HTTP response: {status_line[:80]!r}") from None
    parsed: dict[str, str] = {}
    for line in header_lines:
        key, sep, value = line.partition(":")
        if sep:
            parsed[key.strip().lower()] = value.strip()
    return Response(status, reason[0] if reason else "", parsed, reader, writer)


def server_message(body: bytes) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, Ollama's
    {"error": "..."}, FastAPI's {"detail"}, or the text itself, as one short line."""
    text = body.decode("utf-8", "replace").strip()
    message: Any = text
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        for key in ("error", "message", "detail"):
            value = obj.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("msg") or json.dumps(value)
            if value:
                message = value
                break
    message = " ".join(str(message).split())
    return message[:300] + ("…" if len(message) > 300 else "") if message else "(empty body)"


async def get_json(url: str, *, headers: dict[str, str] | None = None,
                   timeout: float = 5.0) -> Any:
    """GET a JSON document. ExecutorError (one line) for anything but a 2xx JSON answer;
    ConnectionError / TimeoutError when the server is unreachable."""
    response = await open_request("GET", url, headers={"Accept": "application/json",
                                                       **(headers or {})},
                                  connect_timeout=timeout, head_timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            body = await response.read_all(16 << 20)
    finally:
        response.close()
    if response.status >= 400:
        raise ExecutorError(f"GET {url} answered HTTP {response.status}: "
                            f"{server_message(body)}")
    try:
        return json.loads(body)
    except ValueError:
        raise ExecutorError(f"GET {url} did not answer JSON: "
                            f"{body[:80].decode('utf-8', 'replace')!r}") from None


def describe_connection_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
