"""Streaming chat completions over OpenAI-compatible HTTP (ollama, lms, custom endpoints).

Contract: ``EndpointExecutor.run`` sends the session's conversation (rebuilt from the
stored history, so a follow-up remembers earlier turns) plus the new prompt to
``POST {base}/chat/completions`` with ``"stream": true`` and usage requested, parses the
server-sent events as they arrive and emits:

- ``assistant_message`` / ``thinking`` entries with ``"delta": true``: the text of one
  network read, coalesced (live display; ``session show`` skips them);
- one ``thinking`` and one ``assistant_message`` with ``"streamed": true`` holding the whole
  text when the stream ends, fails or is cancelled (what history and transcripts use);
- one ``usage`` entry when the server reports token counts.

Failures (refused connection, connect or idle timeout, HTTP 4xx/5xx with the server's own
message, malformed SSE or JSON, a dropped connection) raise ``ExecutorError`` with one line,
after the text received so far has been emitted. Cancellation closes the socket at once.

HTTP is spoken directly over asyncio streams (standard library only, no thread): a
request, then a chunked, length-delimited or close-delimited body. No proxy support: these
servers are local or reached directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from aura import __version__
from aura.contracts import Entry, EntryKind
from aura.errors import ExecutorError, UsageError
from aura.executors.base import Executor, Outcome, Output, RunRequest

if TYPE_CHECKING:
    from aura.executors.openai.models import ModelList

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
    parts = urlsplit(url)
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


# SSE ---------------------------------------------------------------------------------------

class SSEParser:
    """Incremental server-sent-events parser: ``feed(text)`` returns the complete events
    as (event name or None, data). Multi-line data is joined with newlines; comments,
    ``id:`` and ``retry:`` are ignored. It works on text (the body decoded incrementally
    as UTF-8) because json.loads of a str skips the encoding detection it does on bytes."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf: list[str] = []  # an unfinished line, in pieces (joined once it ends)
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: str) -> list[tuple[str | None, str]]:
        if "\n" not in chunk:
            if chunk:
                self._buf.append(chunk)
            return []
        if self._buf:
            self._buf.append(chunk)
            chunk = "".join(self._buf)
        lines = chunk.split("\n")
        last = lines.pop()
        self._buf = [last] if last else []
        events: list[tuple[str | None, str]] = []
        data = self._data
        for line in lines:
            if line[-1:] == "\r":
                line = line[:-1]
            if line[:5] == "data:":
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else
                                   "\n".join(data)))
                    data.clear()
                self._event = None
            elif line[:6] == "event:":
                self._event = line[6:].strip()
            # ":" comments (keep-alives), id:, retry: and unknown fields are ignored.
        return events

    def finish(self) -> list[tuple[str | None, str]]:
        """An event cut off by the end of the stream (no blank line after it)."""
        return self.feed("\n\n") if self._buf or self._data else []


# the chat stream -----------------------------------------------------------------------------

@dataclass
class StreamState:
    """What one reply has produced so far."""

    text: list[str]
    thinking: list[str]
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    done: bool = False  # [DONE] seen
    final_emitted: bool = False
    text_sent: int = 0  # parts of ``text`` / ``thinking`` already emitted as deltas
    thinking_sent: int = 0


def usage_entry(usage: dict[str, Any]) -> Entry:
    """OpenAI's usage object in aura's terms."""
    converted: dict[str, Any] = {}
    if isinstance(usage.get("prompt_tokens"), int):
        converted["input_tokens"] = usage["prompt_tokens"]
    if isinstance(usage.get("completion_tokens"), int):
        converted["output_tokens"] = usage["completion_tokens"]
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        converted["cached_input_tokens"] = details["cached_tokens"]
    return {"kind": EntryKind.USAGE.value, "usage": converted}


class ChatStream:
    """Reads one streamed chat completion into entries (see the module docstring)."""

    def __init__(self, output: Output, label: str, *, idle_timeout: float,
                 settings_table: str = "[executors.NAME]") -> None:
        self.output = output
        self.label = label
        self.idle_timeout = idle_timeout
        self.settings_table = settings_table  # where idle_timeout is set, for the error
        self.state = StreamState([], [])

    def flush_deltas(self) -> None:
        """Emit the text received since the last call as one delta per kind."""
        state = self.state
        out: list[Entry] = []
        if len(state.thinking) > state.thinking_sent:
            out.append({"kind": "thinking", "delta": True,
                        "text": "".join(state.thinking[state.thinking_sent:])})
            state.thinking_sent = len(state.thinking)
        if len(state.text) > state.text_sent:
            out.append({"kind": "assistant_message", "delta": True,
                        "text": "".join(state.text[state.text_sent:])})
            state.text_sent = len(state.text)
        if out:
            self.output.emit(out)

    def finalize(self) -> None:
        """Emit the whole reply (once), whatever ended the stream."""
        state = self.state
        if state.final_emitted:
            return
        state.final_emitted = True
        self.flush_deltas()
        entries: list[Entry] = []
        if state.thinking:
            entries.append({"kind": EntryKind.THINKING.value, "text": "".join(state.thinking),
                            "streamed": True})
        complete = state.done or state.finish_reason is not None
        if state.text or complete:
            entry: Entry = {"kind": EntryKind.ASSISTANT_MESSAGE.value,
                            "text": "".join(state.text), "streamed": True}
            if not complete:
                entry["incomplete"] = True
            if state.finish_reason and state.finish_reason != "stop":
                entry["finish_reason"] = state.finish_reason
            entries.append(entry)
        if state.usage:
            entries.append(usage_entry(state.usage))
        if state.finish_reason == "length":
            entries.append({"kind": EntryKind.SYSTEM.value,
                            "text": "the reply was cut at the model's length limit"})
        if entries:
            self.output.emit(entries)

    async def read(self, response: Response) -> None:
        """Consume the SSE body; returns when the reply is complete."""
        import codecs

        loop = asyncio.get_running_loop()
        idle = self.idle_timeout
        step = min(0.25, idle / 4)
        parser = SSEParser()
        decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        flush = self.flush_deltas
        state = self.state
        text = state.text
        thinking = state.thinking
        loads = json.loads
        try:
            async with asyncio.timeout(idle) as deadline:
                moved = loop.time()
                while not state.done:
                    data = await response.read_some()
                    now = loop.time()
                    if now - moved > step:
                        # Rescheduling the timer costs more than parsing a chunk: do it a
                        # few times a second, not for every read.
                        deadline.reschedule(now + idle)
                        moved = now
                    events = parser.feed(decode(data)) if data else \
                        parser.feed(decode(b"", True)) + parser.finish()
                    for name, payload in events:
                        # Inline: this runs once per token.
                        if payload == "[DONE]":
                            state.done = True
                            break
                        try:
                            obj = loads(payload)
                        except ValueError:
                            raise ExecutorError(f"{self.label} sent malformed JSON in the "
                                                f"stream: {payload[:80]!r}") from None
                        try:
                            choice = obj["choices"][0]
                            delta = choice["delta"]
                            content = delta.get("content")
                            if content:
                                text.append(content)
                            if content is None or len(delta) > 1:
                                reasoning = delta.get("reasoning_content") or \
                                    delta.get("reasoning")
                                if reasoning:
                                    thinking.append(reasoning)
                            if choice.get("finish_reason"):
                                state.finish_reason = choice["finish_reason"]
                        except (KeyError, IndexError, TypeError, AttributeError):
                            self._handle_other(name, obj)
                            continue
                        if obj.get("usage"):
                            state.usage = obj["usage"]
                    if events:
                        flush()
                    if not data:
                        break
        except TimeoutError:
            raise ExecutorError(f"{self.label} sent nothing for {idle:g} s (idle timeout; "
                                f"raise it with idle_timeout in {self.settings_table} of "
                                "the config)") from None
        except ConnectionError as exc:
            raise ExecutorError(f"{self.label}: {exc}") from None
        if not state.done and state.finish_reason is None:
            raise ExecutorError(f"{self.label}: the stream ended before the reply was "
                                "complete (no finish_reason, no [DONE])")

    def _handle_other(self, name: str | None, obj: Any) -> None:
        state = self.state
        if not isinstance(obj, dict):
            raise ExecutorError(f"{self.label} sent an unexpected event: {str(obj)[:80]!r}")
        if name == "error" or "error" in obj:
            raise ExecutorError(f"{self.label} reported an error mid-stream: "
                                f"{server_message(json.dumps(obj).encode())}")
        if isinstance(obj.get("usage"), dict):
            state.usage = obj["usage"]
        choices = obj.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            # A non-streamed completion (a server that ignored "stream": true).
            message = choice.get("message") or choice.get("delta") or {}
            if isinstance(message, dict):
                if message.get("content"):
                    state.text.append(str(message["content"]))
                reasoning = message.get("reasoning_content") or message.get("reasoning")
                if reasoning:
                    state.thinking.append(str(reasoning))
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
        # Anything else (role-only deltas, keep-alive objects) carries nothing to show.


# messages ------------------------------------------------------------------------------------

def build_messages(history: tuple[Entry, ...] | list[Entry], prompt: str,
                   system: str | None = None) -> list[dict[str, str]]:
    """The conversation so far as chat messages, then the new prompt. Streamed pieces
    (``delta``) are skipped: the whole reply follows them. Consecutive messages of one
    role are merged (a failed turn leaves a question without an answer, and many chat
    templates insist on alternating roles)."""
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})

    def add(role: str, text: str) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})

    for item in history:
        kind = item.get("kind")
        if item.get("delta"):
            continue
        if kind == EntryKind.USER_MESSAGE.value:
            add("user", str(item.get("text", "")))
        elif kind == EntryKind.ASSISTANT_MESSAGE.value and item.get("text"):
            add("assistant", str(item["text"]))
    add("user", prompt)
    return messages


def body_params(params: tuple[str, ...]) -> dict[str, Any]:
    """--param KEY=VALUE as request body fields (VALUE as JSON when it parses)."""
    extra: dict[str, Any] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {param!r}: for model endpoints use KEY=VALUE "
                             "(a request field, e.g. temperature=0.2)")
        try:
            extra[key] = json.loads(value)
        except ValueError:
            extra[key] = value
    return extra


# the executor --------------------------------------------------------------------------------

class EndpointExecutor(Executor):
    """A model behind an OpenAI-compatible chat completions endpoint."""

    features: ClassVar[frozenset[str]] = frozenset({"models", "resume"})
    label: ClassVar[str] = "the endpoint"
    send_openai_key: ClassVar[bool] = True  # OPENAI_API_KEY (ollama needs no key)

    # where the server is -------------------------------------------------------------------
    def base_url(self, request: RunRequest) -> str:
        """The API base (…/v1) for this request."""
        endpoint = request.openai_endpoint or request.settings.get("endpoint")
        if not endpoint:
            raise UsageError(f"--executor {self.name} needs --openai-endpoint URL")
        return api_base(str(endpoint))

    def start_hint(self, base: str) -> str:
        return "is the server running? (check --openai-endpoint)"

    def where(self, base: str) -> str:
        """The server as messages name it."""
        return base

    def no_models_hint(self, base: str) -> str:
        return f"the endpoint {base} lists no models; pass --model NAME"

    async def list_models(self, base: str, request_headers: dict[str, str]) -> list[str]:
        """The server's models, in its order."""
        data = await get_json(base + "/models", headers=request_headers)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ExecutorError(f"{base}/models did not answer an OpenAI model list")
        return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")]

    def headers(self, request: RunRequest) -> dict[str, str]:
        key = request.settings.get("api_key")
        if not key and self.send_openai_key:
            key = request.env.get("OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def timeouts(self, request: RunRequest) -> tuple[float, float]:
        def number(key: str, default: float) -> float:
            value = request.settings.get(key, default)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise UsageError(f"[executors.{self.name}] {key} must be a positive number "
                                 "of seconds")
            return float(value)

        return (number("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
                number("idle_timeout", DEFAULT_IDLE_TIMEOUT))

    def unreachable(self, base: str, exc: BaseException) -> ExecutorError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ExecutorError(f"{self.label} at {self.where(base)}: its TLS certificate "
                                 f"is not trusted ({exc.verify_message}); point "
                                 "SSL_CERT_FILE at the CA that signed it")
        if isinstance(exc, ssl.SSLError):
            return ExecutorError(f"{self.label} at {self.where(base)}: TLS failed "
                                 f"({exc.reason or exc}); is it an https endpoint?")
        return ExecutorError(f"cannot reach {self.label} at {self.where(base)} "
                             f"({describe_connection_error(exc)}); {self.start_hint(base)}")

    # the turn ------------------------------------------------------------------------------
    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        body_params(request.params)
        self.timeouts(request)

    async def model_listing(self, request: RunRequest, base: str) -> ModelList:
        """The server's models through the 24 h cache; unreachable → a clear error."""
        from aura.executors.openai.models import discover

        async def fetch() -> list[str]:
            try:
                return await self.list_models(base, self.headers(request))
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise self.unreachable(base, exc) from None

        return await discover(self.name, base, fetch, refresh=request.refresh_model_cache)

    async def prepare(self, request: RunRequest, output: Output) -> RunRequest:
        if request.model:
            return request
        base = self.base_url(request)
        found = (await self.model_listing(request, base)).models
        if not found:
            raise ExecutorError(self.no_models_hint(base))
        if request.asker is not None:
            model = await request.asker.choose(f"Model for {self.name}", found)
            text = f"model {model}"
        else:
            model = found[0]
            text = (f"no --model given: using {model}, the first of {len(found)} "
                    f"model{'s' if len(found) != 1 else ''} at {base} (pass --model to choose)")
        output.emit([{"kind": EntryKind.SYSTEM.value, "text": text, "model": model}])
        return replace(request, model=model)

    def request_body(self, request: RunRequest, *, usage: bool = True) -> dict[str, Any]:
        system = request.settings.get("system_prompt")
        body: dict[str, Any] = {
            "model": request.model,
            "messages": build_messages(request.history, request.prompt,
                                       str(system) if system else None),
            "stream": True,
        }
        if usage:
            body["stream_options"] = {"include_usage": True}
        body.update(body_params(request.params))
        return body

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        if not request.model:
            request = await self.prepare(request, output)
        base = self.base_url(request)
        url = base + "/chat/completions"
        connect_timeout, idle_timeout = self.timeouts(request)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
                   **self.headers(request)}
        label = f"{self.label} at {self.where(base)}"
        with_usage = True
        while True:
            payload = json.dumps(self.request_body(request, usage=with_usage),
                                 ensure_ascii=False).encode()
            try:
                response = await open_request("POST", url, body=payload, headers=headers,
                                              connect_timeout=connect_timeout,
                                              head_timeout=idle_timeout)
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise self.unreachable(base, exc) from None
            try:
                if response.status >= 400:
                    async with asyncio.timeout(idle_timeout):
                        message = server_message(await response.read_all())
                    if with_usage and response.status == 400 and \
                            "stream_options" in message:
                        # An older server that refuses the usage option: ask without it.
                        with_usage = False
                        continue
                    raise ExecutorError(f"{label} answered HTTP {response.status}"
                                        f"{' ' + response.reason if response.reason else ''}"
                                        f": {message}")
                stream = ChatStream(output, label, idle_timeout=idle_timeout,
                                    settings_table=f"[executors.{self.name}]")
                try:
                    await self._consume(stream, response)
                finally:
                    # Whatever ended the stream (the end, an error, Ctrl-C), the text
                    # received so far is kept as the reply.
                    stream.finalize()
            except (ConnectionError, TimeoutError) as exc:
                raise ExecutorError(f"{label}: {describe_connection_error(exc)}") from None
            finally:
                response.close()
            return Outcome(0)

    async def _consume(self, stream: ChatStream, response: Response) -> None:
        if response.content_type == "text/event-stream" or not response.content_type:
            await stream.read(response)
            return
        # A server that ignored "stream": one JSON completion.
        async with asyncio.timeout(stream.idle_timeout):
            body = await response.read_all(64 << 20)
        try:
            obj = json.loads(body)
        except ValueError:
            raise ExecutorError(f"{stream.label} answered {response.content_type or 'text'}"
                                f", not an event stream: "
                                f"{body[:80].decode('utf-8', 'replace')!r}") from None
        stream._handle_other(None, obj)
        if stream.state.finish_reason is None:
            stream.state.done = True

