"""Listing the models an executor's server offers (ollama, LM Studio, an OpenAI-compatible
endpoint): one implementation for `aura models` and the TUI's Model pane.

Lists come through the 24 h cache of ``aura.executors.openai.models``. An executor without
a model list (the agent CLIs) answers None. The custom endpoint needs a URL: from the
caller, from ``[executors.custom] endpoint``, else from the ``Asker``; with nobody to ask
there is nothing to list (None) and the caller decides whether that is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aura.errors import AuraError
from aura.executors.base import Asker, RunRequest
from aura.executors.openai.executor import EndpointExecutor


@dataclass(frozen=True, slots=True)
class ServerModels:
    """What one server answered: its models, or why it could not say."""

    executor: str
    endpoint: str  # the server as messages name it
    models: list[str] = field(default_factory=list)
    cached: bool = False  # read from the cache, not from the server just now
    fetched_at: float | None = None
    note: str | None = None  # why the cache answered although a refresh was asked for
    error: str | None = None  # the server could not be asked (and no cache answered)
    hint: str = ""  # what to do when the list is empty

    def to_json(self) -> dict[str, Any]:
        return {"executor": self.executor, "endpoint": self.endpoint, "models": self.models,
                "cached": self.cached, "fetched_at": self.fetched_at, "note": self.note,
                "error": self.error}


def listing_executor(name: str) -> EndpointExecutor | None:
    """The executor that lists ``name``'s models, or None when it has no list."""
    from aura.executors import registry

    if name == "custom":
        # `custom` is the command executor with --base-command; a listing is the endpoint's.
        from aura.executors.endpoint import CustomEndpointExecutor

        return CustomEndpointExecutor()
    executor = registry.load(name)()
    return executor if isinstance(executor, EndpointExecutor) else None


async def list_models(name: str, *, endpoint: str | None = None, refresh: bool = False,
                      asker: Asker | None = None) -> ServerModels | None:
    """The models of executor ``name`` (canonical), or None when it has no list or the
    custom endpoint is unknown with nobody to ask. A server that cannot be reached is
    ``error``; a bad endpoint URL raises (UsageError)."""
    from aura import config as config_module

    settings = config_module.executor_settings(config_module.load(), name)
    executor = listing_executor(name)
    if executor is None:
        return None
    if name == "custom" and not (endpoint or settings.get("endpoint")):
        if asker is None:
            return None
        endpoint = await asker.endpoint()
    request = RunRequest(prompt="", cwd=".", session_id="", execution_id="",
                         openai_endpoint=endpoint, settings=settings,
                         refresh_model_cache=refresh, asker=asker)
    base = executor.base_url(request)
    where = executor.where(base)
    try:
        listing = await executor.model_listing(request, base)
    except AuraError as exc:
        return ServerModels(name, where, error=str(exc))
    return ServerModels(name, where, list(listing.models), listing.cached, listing.fetched_at,
                        listing.note, hint="" if listing.models else
                        executor.no_models_hint(base))
