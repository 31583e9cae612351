"""The model servers a worker can reach: ollama, LM Studio and a configured
OpenAI-compatible endpoint, asked the way `aura models` asks them (on the worker, so
127.0.0.1 is the worker's own host).

``probe`` is cheap and bounded (one listing per server, all at once, ``PROBE_TIMEOUT``
seconds at most): the worker reports it in its hello and again every ``PROBE_EVERY``
seconds with ``worker.models``, and `aura workers` shows it. ``listing`` answers the
coordinator's ``models.list`` (what `aura models --on NAME` prints).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aura.errors import AuraError

PROBE_TIMEOUT = 3.0
PROBE_EVERY = 60.0
SERVERS = ("ollama", "lms", "custom")


async def _ask(name: str, endpoint: str | None, refresh: bool,
               timeout: float) -> dict[str, Any] | None:
    from aura.service.models import list_models

    try:
        found = await asyncio.wait_for(list_models(name, endpoint=endpoint, refresh=refresh),
                                       timeout)
    except TimeoutError:
        return {"executor": name, "endpoint": endpoint or "", "models": [], "cached": False,
                "fetched_at": None, "note": None, "hint": "",
                "error": f"no answer within {timeout:g} s"}
    if found is None:  # custom without a configured endpoint: nothing to ask
        return None
    return {**found.to_json(), "hint": found.hint}


async def probe(timeout: float = PROBE_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Per server: where it is, whether it answered just now, how many models it has."""
    answers = await asyncio.gather(*(_ask(n, None, True, timeout) for n in SERVERS))
    return {a["executor"]: {"endpoint": a["endpoint"],
                            "reachable": a["error"] is None and a["note"] is None,
                            "models": len(a["models"])}
            for a in answers if a is not None}


async def listing(params: dict[str, Any]) -> list[dict[str, Any]]:
    """``models.list``: the servers asked for (``executor``; default all known here), at
    ``endpoint`` when given, as `aura models --json` shows them."""
    from aura.rpc import INVALID_PARAMS, RpcError

    executor, endpoint = params.get("executor"), params.get("endpoint")
    if (executor is not None and executor not in SERVERS) or \
            (endpoint is not None and not isinstance(endpoint, str)):
        raise RpcError(INVALID_PARAMS, f"invalid params: executor is one of "
                       f"{', '.join(SERVERS)}; endpoint is a URL")
    names = [executor] if executor else (["custom"] if endpoint else ["ollama", "lms"])
    try:
        answers = await asyncio.gather(*(
            _ask(n, endpoint, bool(params.get("refresh")), 30.0) for n in names))
    except AuraError as exc:  # a malformed endpoint URL
        raise RpcError(INVALID_PARAMS, str(exc)) from None
    if any(a is None for a in answers):
        raise RpcError(INVALID_PARAMS, "custom needs an endpoint (--openai-endpoint URL)")
    return [a for a in answers if a is not None]
