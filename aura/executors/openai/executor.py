"""The executor of models behind OpenAI-compatible chat completions (ollama, lms, custom).

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

The HTTP client is ``aura.executors.openai.http``, the reply's parsing
``aura.executors.openai.chat``, model discovery ``aura.executors.openai.models``.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from aura.contracts import EntryKind
from aura.errors import ExecutorError, UsageError
from aura.executors.base import Executor, Outcome, Output, RunRequest
from aura.executors.openai.chat import ChatStream, body_params, build_messages
from aura.executors.openai.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    api_base,
    describe_connection_error,
    get_json,
    open_request,
    server_message,
)

if TYPE_CHECKING:
    from aura.executors.openai.models import ModelList


class EndpointExecutor(Executor):
    """A model behind an OpenAI-compatible chat completions endpoint."""

    features: ClassVar[frozenset[str]] = frozenset({"models", "resume"})
    read_only_mode = "a chat endpoint: it has no tools to write with"
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
                    await stream.consume(response)
                finally:
                    # Whatever ended the stream (the end, an error, Ctrl-C), the text
                    # received so far is kept as the reply.
                    stream.finalize()
            except (ConnectionError, TimeoutError) as exc:
                raise ExecutorError(f"{label}: {describe_connection_error(exc)}") from None
            finally:
                response.close()
            return Outcome(0)
