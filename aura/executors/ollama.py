"""ollama: a local model served by Ollama, through its HTTP API.

aura talks to the Ollama server (``OLLAMA_HOST``, default ``127.0.0.1:11434``, or
``--openai-endpoint``) rather than running ``ollama run MODEL``: the server's
OpenAI-compatible ``/v1/chat/completions`` streams token by token with token counts, takes
the whole conversation as a messages list (so follow-ups remember earlier turns without
pasting a transcript into the prompt), reports errors as JSON, and stops generating when
the connection closes; ``ollama run`` prints spinners and terminal escapes, reports no
usage, and would need a transcript for every follow-up. Models come from ``GET /api/tags``
(what ``ollama list`` shows, newest first).
"""

from __future__ import annotations

import os
from typing import ClassVar
from urllib.parse import urlsplit

from aura.errors import ExecutorError
from aura.executors.base import RunRequest
from aura.executors.openai.executor import EndpointExecutor
from aura.executors.openai.http import api_base, get_json

DEFAULT_HOST = "127.0.0.1:11434"


def ollama_root(host: str | None = None) -> str:
    """The server root URL from OLLAMA_HOST's forms: ``host``, ``host:port``, ``:port``,
    ``http(s)://host[:port][/path]`` (as Ollama reads it: a bare host gets port 11434, an
    explicit http:// 80, https:// 443). 0.0.0.0 (listen everywhere) is dialled as 127.0.0.1."""
    value = (host if host is not None else os.environ.get("OLLAMA_HOST", "")).strip()
    value = value or DEFAULT_HOST
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest, default_port = "http", value, 11434
    else:
        default_port = 443 if scheme == "https" else 80
    parts = urlsplit(f"{scheme}://{rest}")
    hostname = parts.hostname or "127.0.0.1"
    if hostname in ("0.0.0.0", "::"):
        hostname = "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return f"{scheme}://{hostname}:{port}{parts.path.rstrip('/')}"


class OllamaExecutor(EndpointExecutor):
    name = "ollama"
    description = "a local model served by Ollama (OLLAMA_HOST, default 127.0.0.1:11434)"
    label: ClassVar[str] = "Ollama"
    send_openai_key: ClassVar[bool] = False

    def root(self, request: RunRequest) -> str:
        given = request.openai_endpoint or request.settings.get("endpoint")
        if given:
            base = api_base(str(given))
            return base[: -len("/v1")] if base.endswith("/v1") else base
        return ollama_root()

    def base_url(self, request: RunRequest) -> str:
        return self.root(request) + "/v1"

    def where(self, base: str) -> str:
        return base.removesuffix("/v1")

    def start_hint(self, base: str) -> str:
        return ("start it with `ollama serve` (install it from https://ollama.com/download), "
                "or point OLLAMA_HOST / --openai-endpoint at your server")

    def no_models_hint(self, base: str) -> str:
        return (f"Ollama at {base.removesuffix('/v1')} has no models; pull one, e.g. "
                "`ollama pull qwen2.5-coder:7b`, or pass --model NAME")

    async def list_models(self, base: str, request_headers: dict[str, str]) -> list[str]:
        root = base.removesuffix("/v1")
        data = await get_json(root + "/api/tags", headers=request_headers)
        items = data.get("models") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ExecutorError(f"{root}/api/tags did not answer Ollama's model list")
        return [str(m.get("name") or m.get("model")) for m in items
                if isinstance(m, dict) and (m.get("name") or m.get("model"))]
