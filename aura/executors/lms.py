"""lms: a model served by LM Studio's local server (OpenAI-compatible, default
``http://127.0.0.1:1234/v1``; ``--openai-endpoint`` or ``[executors.lms] endpoint`` to
change it). Models come from ``GET /v1/models``; embedding models are left out of the
picker (they cannot chat)."""

from __future__ import annotations

from typing import ClassVar

from aura.executors.base import RunRequest
from aura.executors.openai.executor import EndpointExecutor
from aura.executors.openai.http import api_base

DEFAULT_ENDPOINT = "http://127.0.0.1:1234"


class LMStudioExecutor(EndpointExecutor):
    name = "lms"
    description = "a model served by LM Studio (default http://127.0.0.1:1234)"
    label: ClassVar[str] = "LM Studio"

    def base_url(self, request: RunRequest) -> str:
        return api_base(str(request.openai_endpoint or request.settings.get("endpoint")
                            or DEFAULT_ENDPOINT))

    def start_hint(self, base: str) -> str:
        return ("start its server with `lms server start` or in LM Studio's Developer tab "
                "(install it from https://lmstudio.ai)")

    def no_models_hint(self, base: str) -> str:
        return (f"LM Studio at {base} has no models; download one, e.g. "
                "`lms get qwen/qwen3-8b`, or pass --model NAME")

    async def list_models(self, base: str, request_headers: dict[str, str]) -> list[str]:
        found = await super().list_models(base, request_headers)
        return [m for m in found if "embedding" not in m.lower()]
