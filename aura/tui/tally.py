"""Tokens and cost added up from usage entries as they stream (the footer's running turn,
the Queue pane's sessions), priced as `aura usage` prices them: the cost the agent
reported, else the config's price table; ages said short ("5m"). No prompt_toolkit."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aura.contracts import Entry
from aura.errors import AuraError

if TYPE_CHECKING:
    from aura.service.usage import Price


@functools.cache
def price_table() -> dict[str, Price]:
    """The config's prices, read once (a config that cannot be read prices nothing)."""
    from aura import config
    from aura.service.usage import prices

    try:
        return prices(config.load())
    except AuraError:
        return {}


@dataclass(slots=True)
class Tally:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # usage entries whose cost is unknown
    entries: int = 0

    def add(self, entry: Entry, model: str | None) -> None:
        """Count ``entry`` if it carries usage."""
        from aura.service.usage import cost_of

        usage = entry.get("usage")
        if not isinstance(usage, dict):
            return
        self.entries += 1
        self.input_tokens += _count(usage.get("input_tokens"))
        self.output_tokens += _count(usage.get("output_tokens"))
        cost = cost_of(usage, str(entry.get("model") or model or ""), price_table())
        if cost is None:
            self.unpriced += 1
        else:
            self.cost_usd += cost

    def tokens(self) -> str:
        return f"in {short_count(self.input_tokens)} out {short_count(self.output_tokens)}"

    def cost(self) -> str:
        """``$0.0123``; ``$?`` when nothing could be priced; ``-`` before any usage."""
        if not self.entries:
            return "-"
        if self.unpriced == self.entries:
            return "$?"
        return f"${self.cost_usd:.4f}" if self.cost_usd < 1 else f"${self.cost_usd:.2f}"


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and 0 <= value < 1e15 else 0


def short_count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def age(stamp: str, now: datetime | None = None) -> str:
    """How long ago an ISO timestamp was: ``42s``, ``5m``, ``3h``, ``2d`` (``?`` if bad)."""
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def elapsed(seconds: float) -> str:
    """``0:07``, ``12:03``, ``1:02:03``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
