"""custom (without --base-command): any OpenAI-compatible endpoint (vLLM, llama.cpp's
server, LiteLLM, a hosted API…) given with ``--openai-endpoint URL`` or
``[executors.custom] endpoint``. Without one, aura asks for it on a terminal (the session
remembers the answer) and refuses with a usage error otherwise. The API key is
``[executors.custom] api_key``, else ``OPENAI_API_KEY``."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from aura.errors import UsageError
from aura.executors.base import Output, RunRequest
from aura.executors.openai.executor import EndpointExecutor
from aura.executors.openai.http import api_base


class CustomEndpointExecutor(EndpointExecutor):
    name = "custom"
    description = "an OpenAI-compatible endpoint (--openai-endpoint URL)"
    label: ClassVar[str] = "the endpoint"

    def _given(self, request: RunRequest) -> str | None:
        value = request.openai_endpoint or request.settings.get("endpoint")
        return str(value) if value else None

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        given = self._given(request)
        if given:
            api_base(given)
        elif not request.interactive:
            raise UsageError("--executor custom needs --openai-endpoint URL (an "
                             "OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1) or "
                             "--base-command CMD")

    async def prepare(self, request: RunRequest, output: Output) -> RunRequest:
        if not self._given(request):
            if request.asker is None:  # validate() refused this already
                raise UsageError("--executor custom needs --openai-endpoint URL")
            request = replace(request, openai_endpoint=api_base(await request.asker.endpoint()))
            output.emit([{"kind": "system", "text": f"endpoint {request.openai_endpoint}"}])
        return await super().prepare(request, output)
