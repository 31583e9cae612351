"""The streaming pieces of the endpoint executors, byte by byte: chunked bodies, SSE,
endpoint URLs, OLLAMA_HOST, the conversation rebuilt from history, error bodies."""

from __future__ import annotations

import json

import pytest

from aura.errors import UsageError
from aura.executors.base import transcript_prompt
from aura.executors.ollama import ollama_root
from aura.executors.openai.chat import body_params, build_messages
from aura.executors.openai.http import ChunkedDecoder, api_base, server_message
from aura.executors.openai.sse import SSEParser


def chunked(*payloads: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_chunked_decoder_any_split(step: int) -> None:
    payloads = [b"data: one\n\n", b"x" * 300, b"", b"\r\n\r\n", b"last"]
    wire = chunked(*[p for p in payloads if p]) + b"trailing garbage"
    decoder = ChunkedDecoder()
    out = b""
    for i in range(0, len(wire), step):
        out += decoder.feed(wire[i:i + step])
        if decoder.done:
            break
    assert out == b"".join(payloads)
    assert decoder.done


def test_chunked_decoder_extensions_and_bad_size() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3;name=value\r\nabc\r\n") == b"abc"
    with pytest.raises(ValueError, match="bad chunk size"):
        ChunkedDecoder().feed(b"zz\r\nabc\r\n")


@pytest.mark.parametrize("step", [1, 5, 4096])
def test_sse_parser_events_across_reads(step: int) -> None:
    wire = (": keep-alive\r\n\r\n"
            'data: {"a": 1}\r\n\r\n'
            "event: error\ndata: line one\ndata:line two\n\n"
            "id: 7\nretry: 10\ndata: [DONE]\n\n")
    parser = SSEParser()
    events = []
    for i in range(0, len(wire), step):
        events += parser.feed(wire[i:i + step])
    assert events == [(None, '{"a": 1}'), ("error", "line one\nline two"),
                      (None, "[DONE]")]
    assert parser.finish() == []


def test_sse_parser_flushes_an_event_cut_by_the_end() -> None:
    parser = SSEParser()
    assert parser.feed("data: partial") == []
    assert parser.finish() == [(None, "partial")]


@pytest.mark.parametrize(("given", "base"), [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
    ("127.0.0.1:1234", "http://127.0.0.1:1234/v1"),
    ("https://api.example.com/openai/v1/chat/completions",
     "https://api.example.com/openai/v1"),
    ("http://h:9/v1/models", "http://h:9/v1"),
])
def test_api_base(given: str, base: str) -> None:
    assert api_base(given) == base


@pytest.mark.parametrize("bad", ["ftp://x/v1", "http://", "http://h:99999/v1"])
def test_api_base_refuses(bad: str) -> None:
    with pytest.raises(UsageError):
        api_base(bad)


@pytest.mark.parametrize(("host", "root"), [
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:9999", "http://127.0.0.1:9999"),
    (":7777", "http://127.0.0.1:7777"),
    ("http://box.lan", "http://box.lan:80"),
    ("https://box.lan/ollama/", "https://box.lan:443/ollama"),
    ("[::1]:11434", "http://[::1]:11434"),
])
def test_ollama_host_forms(host: str, root: str) -> None:
    assert ollama_root(host) == root


def test_messages_rebuilt_from_history() -> None:
    history = [
        {"kind": "state", "to": "coding_initial"},
        {"kind": "user_message", "text": "first question"},
        {"kind": "assistant_message", "delta": True, "text": "fir"},
        {"kind": "assistant_message", "delta": True, "text": "st answer"},
        {"kind": "assistant_message", "streamed": True, "text": "first answer"},
        {"kind": "usage", "usage": {"input_tokens": 3}},
        {"kind": "user_message", "text": "a question whose turn failed"},
        {"kind": "error", "text": "HTTP 500"},
    ]
    messages = build_messages(history, "next", system="be brief")
    assert messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "a question whose turn failed\n\nnext"},
    ]
    # Transcripts (agents that cannot resume) skip the streamed pieces too.
    assert "fir\n" not in transcript_prompt(history, "next")
    assert "Assistant: first answer" in transcript_prompt(history, "next")


def test_server_messages() -> None:
    assert server_message(b'{"error": {"message": "bad  model\\n name"}}') == "bad model name"
    assert server_message(b'{"error": "model \\"x\\" not found"}') == 'model "x" not found'
    assert server_message(b'{"detail": [{"msg": "field required"}]}').startswith("[")
    assert server_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert server_message(b"") == "(empty body)"
    assert len(server_message(b"x" * 5000)) <= 301


def test_body_params() -> None:
    assert body_params(("temperature=0.2", "stop=[\"\\n\"]", "user=me")) == {
        "temperature": 0.2, "stop": ["\n"], "user": "me"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        body_params(("-lc",))
    assert json.dumps(body_params(())) == "{}"


def test_stream_printer_prints_streamed_text_once() -> None:
    import io

    from aura.cli.render import StreamPrinter

    out, err = io.StringIO(), io.StringIO()
    printer = StreamPrinter(out, err)
    entries = [
        {"kind": "thinking", "delta": True, "text": "hmm"},
        {"kind": "assistant_message", "delta": True, "text": "Hello "},
        {"kind": "assistant_message", "delta": True, "text": "world\n"},
        {"kind": "thinking", "streamed": True, "text": "hmm"},
        {"kind": "assistant_message", "streamed": True, "text": "Hello world\n"},
        {"kind": "assistant_message", "delta": True, "text": "second"},
        {"kind": "error", "text": "boom"},
    ]
    printer([(i, e, "") for i, e in enumerate(entries)])
    assert out.getvalue() == "hmm\nHello world\nsecond\n"
    assert err.getvalue() == "error: boom\n"


class ByteByByte:
    """A response body delivered one byte per read."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    async def read_some(self) -> bytes:
        if self.at >= len(self.body):
            return b""
        self.at += 1
        return self.body[self.at - 1:self.at]


class Collect:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def emit(self, entries: list) -> None:
        self.entries.extend(entries)

    def emit_json(self, items: list) -> None:
        self.entries.extend(e for e, _ in items)

    def set_native_session_id(self, native_id: str) -> None:
        pass


def test_chat_stream_byte_by_byte_keeps_utf8_and_roles() -> None:
    import asyncio

    from aura.executors.openai.chat import ChatStream

    def event(delta: dict, finish: str | None = None) -> str:
        return "data: " + json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]},
                                     ensure_ascii=False) + "\n\n"

    body = (event({"role": "assistant", "content": ""}) +
            event({"reasoning": "pensé "}) +
            event({"role": "assistant", "content": "héllo "}) +
            event({"content": "你好 🎉"}) +
            event({}, "stop") +
            'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, '
            '"prompt_tokens_details": {"cached_tokens": 2}}}\n\n'
            "data: [DONE]\n\n").encode()
    out = Collect()
    stream = ChatStream(out, "test", idle_timeout=5)  # type: ignore[arg-type]
    asyncio.run(stream.read(ByteByByte(body)))  # type: ignore[arg-type]
    stream.finalize()
    deltas = "".join(e["text"] for e in out.entries
                     if e.get("delta") and e["kind"] == "assistant_message")
    assert deltas == "héllo 你好 🎉"
    finals = [e for e in out.entries if e.get("streamed")]
    assert finals == [{"kind": "thinking", "text": "pensé ", "streamed": True},
                      {"kind": "assistant_message", "text": "héllo 你好 🎉",
                       "streamed": True}]
    assert out.entries[-1] == {"kind": "usage", "usage": {
        "input_tokens": 3, "output_tokens": 4, "cached_input_tokens": 2}}


def test_error_event_mid_stream_keeps_the_text() -> None:
    import asyncio

    from aura.errors import ExecutorError
    from aura.executors.openai.chat import ChatStream

    body = (b'data: {"choices": [{"delta": {"content": "partial"}}]}\n\n'
            b'event: error\ndata: {"error": {"message": "CUDA out of memory"}}\n\n')
    out = Collect()
    stream = ChatStream(out, "vllm", idle_timeout=5)  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="CUDA out of memory"):
        asyncio.run(stream.read(ByteByByte(body)))  # type: ignore[arg-type]
    stream.finalize()
    final = [e for e in out.entries if e.get("streamed")]
    assert final == [{"kind": "assistant_message", "text": "partial", "streamed": True,
                      "incomplete": True}]


def test_connect_timeout() -> None:
    import asyncio
    import socket

    from aura.executors.openai.http import open_request

    # A listener whose accept queue is full: the kernel drops further SYNs, so a connect
    # neither succeeds nor fails until the client gives up.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)

            async def attempt() -> None:
                await open_request("GET", f"http://127.0.0.1:{port}/v1/models",
                                   connect_timeout=0.3)

            with pytest.raises(TimeoutError):
                asyncio.run(attempt())
        finally:
            for filler in fillers:
                filler.close()


def test_sse_parser_one_event_larger_than_many_reads() -> None:
    parser = SSEParser()
    wire = "data: " + "x" * 1_000_000 + "\r\n\r\ndata: next\n\n"
    events = []
    for i in range(0, len(wire), 4096):
        events += parser.feed(wire[i:i + 4096])
    assert [len(data) for _name, data in events] == [1_000_000, 4]
