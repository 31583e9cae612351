"""The cost ledger: tokens and cost of every stored session, grouped by day, executor,
model, repo or session (`aura usage`), and the daily budgets of the config that refuse a
new run once today's spending reached them.

Cost is what the agent reported (``cost_usd``). Where it reported only tokens, the price
table of the config prices them::

    [prices."claude-sonnet-4"]
    input_per_mtok = 3.0      # USD per million uncached input tokens
    output_per_mtok = 15.0
    cached_per_mtok = 0.3     # optional; without it cached input costs the input price

Usage entries count input tokens cached ones included (aura's convention), so the cached
share is priced apart. A model that is in neither is not guessed: its tokens are shown and
its cost is unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aura.contracts import Session
from aura.errors import AuraError, ConfigError, UsageError
from aura.store import Store

GROUPINGS = ("day", "executor", "model", "repo", "session")
TOKEN_KEYS = ("input_tokens", "output_tokens", "cached_input_tokens")
_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_per_mtok")
_SINCE = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LIMIT = 1e15  # a figure beyond this is no count or price (as the recorder's USAGE_LIMIT)


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    cached_per_mtok: float


@dataclass(frozen=True, slots=True)
class UsageItem:
    """One entry's usage, with what it is grouped by."""

    ts: str
    session: str
    executor: str
    model: str
    repo: str
    usage: Mapping[str, Any]


@dataclass(slots=True)
class Total:
    key: str
    input_tokens: float = 0
    output_tokens: float = 0
    cached_input_tokens: float = 0
    cost_usd: float = 0.0
    entries: int = 0
    unpriced: int = 0  # entries whose cost is unknown
    models_unpriced: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        known = self.entries - self.unpriced
        return {"key": self.key, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cached_input_tokens": self.cached_input_tokens,
                "cost_usd": round(self.cost_usd, 6) if known else None,
                "cost_complete": self.unpriced == 0, "entries": self.entries,
                "unpriced_models": sorted(self.models_unpriced)}


def _figure(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and -LIMIT <= value <= LIMIT else None


def prices(config: Mapping[str, Any]) -> dict[str, Price]:
    """The ``[prices."MODEL"]`` tables, checked (a ConfigError names the bad one)."""
    table = config.get("prices") or {}
    if not isinstance(table, dict):
        raise ConfigError('config: [prices] must hold tables like [prices."MODEL"] '
                          "input_per_mtok = 3.0")
    out: dict[str, Price] = {}
    for model, row in table.items():
        if not isinstance(row, dict) or set(row) - set(_PRICE_KEYS):
            raise ConfigError(f'config: [prices."{model}"] takes only '
                              f"{', '.join(_PRICE_KEYS)}")
        values = {k: _figure(row[k]) for k in row}
        if any(v is None or v < 0 for v in values.values()) or \
                not {"input_per_mtok", "output_per_mtok"} <= set(values):
            raise ConfigError(f'config: [prices."{model}"] needs input_per_mtok and '
                              "output_per_mtok as numbers ≥ 0 (USD per million tokens)")
        inp, outp = values["input_per_mtok"], values["output_per_mtok"]
        assert inp is not None and outp is not None
        cached = values.get("cached_per_mtok")
        out[model] = Price(inp, outp, inp if cached is None else cached)
    return out


def cost_of(usage: Mapping[str, Any], model: str, table: Mapping[str, Price]
            ) -> float | None:
    """The entry's cost in USD: as reported, else from the price table; None: unknown."""
    reported = _figure(usage.get("cost_usd"))
    if reported is not None:
        return reported
    price = table.get(model)
    if price is None:
        return None
    inp, out, cached = (_figure(usage.get(k)) or 0.0 for k in TOKEN_KEYS)
    if not (inp or out or cached):
        return 0.0
    uncached = max(inp - cached, 0.0)
    return (uncached * price.input_per_mtok + cached * price.cached_per_mtok +
            out * price.output_per_mtok) / 1e6


def aggregate(items: Iterable[UsageItem], by: str, table: Mapping[str, Price]
              ) -> list[Total]:
    """Totals per group, sorted by key (pure: what `aura usage` prints)."""
    if by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}")
    totals: dict[str, Total] = {}
    for item in items:
        key = item.ts[:10] if by == "day" else getattr(item, by)
        total = totals.setdefault(key, Total(key))
        for name in TOKEN_KEYS:
            setattr(total, name, getattr(total, name) + (_figure(item.usage.get(name)) or 0))
        total.entries += 1
        cost = cost_of(item.usage, item.model, table)
        if cost is None:
            total.unpriced += 1
            total.models_unpriced.add(item.model)
        else:
            total.cost_usd += cost
    return [totals[k] for k in sorted(totals)]


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    """``7d``, ``12h``, ``30m``, ``2w`` or a date ``2026-11-30`` → an ISO timestamp."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip())
    if match:
        start = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--since {text!r}: give an age like 7d, 12h, 30m, 2w or a date "
                         "like 2026-11-30") from None
    return day.strftime("%Y-%m-%dT00:00:00.000Z")


def _repo_of(options: Mapping[str, Any], cwd: str) -> str:
    ws = options.get("workspace")
    if isinstance(ws, dict):
        repos = ws.get("repos")
        if isinstance(repos, list) and repos and isinstance(repos[0], dict):
            source = repos[0].get("repo")
            if isinstance(source, str):
                return source
    return cwd


def items(store: Store, since: str | None = None) -> list[UsageItem]:
    """Every stored entry that carries usage (a ``usage`` entry or another with usage),
    at or after ``since``."""
    out: list[UsageItem] = []
    for session in store.list_sessions():
        out += session_items(store, session, since)
    return out


def session_items(store: Store, session: Session, since: str | None = None
                  ) -> list[UsageItem]:
    """The usage entries of one session (at or after ``since``)."""
    import json

    out: list[UsageItem] = []
    executors = {e.id: e.executor or session.executor
                 for e in store.list_executions(session.id)}
    repo = _repo_of(session.options, session.cwd)
    for text in store.entry_texts(session.id):
        if '"usage"' not in text:
            continue
        entry = json.loads(text)
        usage = entry.get("usage")
        ts = entry.get("ts")
        if not isinstance(usage, dict) or not isinstance(ts, str) or \
                (since is not None and ts < since):
            continue
        model = entry.get("model")
        out.append(UsageItem(
            ts=ts, session=session.id,
            executor=executors.get(entry.get("execution"), session.executor),
            model=model if isinstance(model, str) and model else
            session.model or "(unknown)", repo=repo, usage=usage))
    return out


def report(store: Store, config: Mapping[str, Any], *, since: str | None = None,
           by: str = "day") -> list[Total]:
    return aggregate(items(store, parse_since(since)), by, prices(config))


def check_daily_budget(store: Store, config: Mapping[str, Any], executor: str) -> None:
    """Refuse a new run (one line, before any session is recorded) when today's (UTC)
    known cost reached ``[budgets] daily_usd`` or ``[budgets.executors] NAME``."""
    budgets = config.get("budgets")
    if budgets is None:
        return
    limits = _budget_limits(budgets)
    overall, per = limits.get(""), limits.get(executor)
    if overall is None and per is None:
        return
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00.000Z")
    table = prices(config)
    spent_all = spent_here = 0.0
    for item in items(store, today):
        cost = cost_of(item.usage, item.model, table) or 0.0
        spent_all += cost
        if item.executor == executor:
            spent_here += cost
    if overall is not None and spent_all >= overall:
        raise AuraError(f"budget: ${spent_all:.2f} spent today reached [budgets] "
                         f"daily_usd = {overall:g}; no new run until tomorrow (UTC)")
    if per is not None and spent_here >= per:
        raise AuraError(f"budget: ${spent_here:.2f} spent today on {executor} reached "
                         f"[budgets.executors] {executor} = {per:g}")


def _budget_limits(budgets: object) -> dict[str, float]:
    """``""``: the daily limit of all executors; NAME: that executor's."""
    bad = ConfigError("config: [budgets] takes daily_usd = USD and a table "
                      "[budgets.executors] NAME = USD (numbers ≥ 0)")
    if not isinstance(budgets, dict) or set(budgets) - {"daily_usd", "executors"}:
        raise bad
    out: dict[str, float] = {}
    if "daily_usd" in budgets:
        out[""] = _limit(budgets["daily_usd"], bad)
    per = budgets.get("executors", {})
    if not isinstance(per, dict):
        raise bad
    from aura.executors import registry

    for name, value in per.items():
        out[registry.canonical(name)] = _limit(value, bad)
    return out


def _limit(value: object, bad: ConfigError) -> float:
    figure = _figure(value)
    if figure is None or figure < 0:
        raise bad
    return figure
