"""Model discovery with a 24 h cache.

Contract:

- ``discover(executor, endpoint, fetch, refresh=)``: the models a server offers. A fresh
  cache (younger than 24 h, one JSON file per executor + endpoint under
  ``aura.paths.cache_dir()/models``) answers without asking the server; ``refresh`` asks
  anyway. When the server cannot be reached and a fresh cache exists, the cached list is
  returned with ``cached=True`` and ``note`` saying why. Empty lists are never cached (a
  model pulled a minute later must show up).

Asking a person which model or endpoint to use is the presentation's job: an executor asks
through ``RunRequest.asker`` (``aura.cli.pickers.TerminalAsker`` on a terminal).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aura.errors import AuraError
from aura.paths import atomic_write, cache_dir

CACHE_TTL = 24 * 3600.0
DEFAULT_CUSTOM_ENDPOINT = "http://127.0.0.1:8000/v1"


@dataclass(frozen=True, slots=True)
class ModelList:
    executor: str
    endpoint: str
    models: list[str] = field(default_factory=list)
    fetched_at: float = 0.0  # time.time() of the discovery
    cached: bool = False  # read from the cache, not from the server just now
    note: str | None = None  # why the cache was used although a refresh was asked for

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.fetched_at)

    def to_json(self) -> dict[str, Any]:
        return {"executor": self.executor, "endpoint": self.endpoint, "models": self.models,
                "cached": self.cached, "fetched_at": self.fetched_at, "note": self.note}


def cache_file(executor: str, endpoint: str) -> Path:
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{executor}-{digest}.json"


def read_cache(executor: str, endpoint: str) -> ModelList | None:
    """The cached list, or None (missing, unreadable or for another endpoint)."""
    try:
        data = json.loads(cache_file(executor, endpoint).read_text(encoding="utf-8"))
        if data.get("endpoint") != endpoint or not isinstance(data.get("models"), list):
            return None
        return ModelList(executor, endpoint, [str(m) for m in data["models"]],
                         float(data["fetched_at"]), cached=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_cache(listing: ModelList) -> None:
    path = cache_file(listing.executor, listing.endpoint)
    try:
        atomic_write(path, json.dumps({"executor": listing.executor,
                                       "endpoint": listing.endpoint,
                                       "fetched_at": listing.fetched_at,
                                       "models": listing.models}))
    except OSError:
        pass  # a read-only cache dir costs a discovery next time, nothing more


async def discover(executor: str, endpoint: str, fetch: Callable[[], Awaitable[list[str]]],
                   *, refresh: bool = False, now: float | None = None) -> ModelList:
    """See the module docstring. ``fetch`` raises AuraError when the server is
    unreachable; that error propagates unless a fresh cache can answer."""
    now = time.time() if now is None else now
    cached = read_cache(executor, endpoint)
    fresh = cached is not None and 0 <= now - cached.fetched_at < CACHE_TTL
    if fresh and not refresh:
        assert cached is not None
        return cached
    try:
        models = await fetch()
    except AuraError as exc:
        if fresh and cached is not None and cached.models:
            return ModelList(executor, endpoint, cached.models, cached.fetched_at,
                             cached=True, note=str(exc))
        raise
    listing = ModelList(executor, endpoint, models, now)
    if models:
        write_cache(listing)
    return listing


def describe_age(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{seconds / 3600:.1f} h ago"
