"""The chat completions protocol: the request's messages and extra fields, and one
streamed reply read into entries (``ChatStream``; the entries it emits are described in
``aura.executors.openai.executor``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aura.contracts import Entry, EntryKind, Usage
from aura.errors import ExecutorError, UsageError
from aura.executors.openai.http import server_message
from aura.executors.openai.sse import SSEParser

if TYPE_CHECKING:
    from aura.executors.base import Output
    from aura.executors.openai.http import Response


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
    converted: Usage = {}
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

    async def consume(self, response: Response) -> None:
        """Read the reply: an event stream, or one JSON completion from a server that
        ignored ``"stream": true``."""
        if response.content_type == "text/event-stream" or not response.content_type:
            await self.read(response)
            return
        async with asyncio.timeout(self.idle_timeout):
            body = await response.read_all(64 << 20)
        try:
            obj = json.loads(body)
        except ValueError:
            raise ExecutorError(f"{self.label} answered {response.content_type or 'text'}"
                                f", not an event stream: "
                                f"{body[:80].decode('utf-8', 'replace')!r}") from None
        self.handle_object(None, obj)
        if self.state.finish_reason is None:
            self.state.done = True

    async def read(self, response: Response) -> None:
        """Consume the SSE body; returns when the reply is complete."""
        idle = self.idle_timeout
        try:
            await self._pump(response)
        except TimeoutError:
            raise ExecutorError(f"{self.label} sent nothing for {idle:g} s (idle timeout; "
                                f"raise it with idle_timeout in {self.settings_table} of "
                                "the config)") from None
        except ConnectionError as exc:
            raise ExecutorError(f"{self.label}: {exc}") from None
        state = self.state
        if not state.done and state.finish_reason is None:
            raise ExecutorError(f"{self.label}: the stream ended before the reply was "
                                "complete (no finish_reason, no [DONE])")

    async def _pump(self, response: Response) -> None:
        """Read, parse and emit until [DONE] or the end of the body. TimeoutError when
        the server is idle for ``idle_timeout``."""
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
                    except (ValueError, RecursionError):  # RecursionError: nested too deep
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
                        self.handle_object(name, obj)
                        continue
                    if obj.get("usage"):
                        state.usage = obj["usage"]
                if events:
                    flush()
                if not data:
                    break

    def handle_object(self, name: str | None, obj: Any) -> None:
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
