"""The recorder: gives entries their envelope (seq, ts, session, execution, stage), stores
them in batches and hands them to whoever is watching (the CLI printer, a worker's relay).

This is the ingest hot path, so each entry is encoded to JSON exactly once: the stored
row, ``aura run --json`` and the wire all carry that same text. The envelope is spliced in
front of the entry's own JSON rather than merged into a new dict and encoded again.

That text is always strict JSON that SQLite can store (``encode``): no ``NaN`` or
``Infinity``, lone surrogates escaped, nothing nested deeper than a reader's stack.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aura.contracts import Entry
from aura.store import EntryRow, Store

Record = tuple[int, Entry, str]  # seq, entry (without envelope), full JSON text
Watcher = Callable[[list[Record]], None]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# Escapes every non-ASCII character, lone surrogates included (which UTF-8, and so SQLite,
# cannot hold raw): for the rare entry that carries one.
_encode_ascii = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# Usage figures beyond this are no count or price any agent reports; leaving them out of
# the sums keeps every total finite (1e308 + 1e308 is inf, which no JSON holds).
USAGE_LIMIT = 1e15
# Values nested deeper than this are replaced by their type's name when an entry cannot
# be encoded as it is (parsers refuse such lines; this is for whatever else emits).
_SALVAGE_DEPTH = 64


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds and a Z, as in every stored timestamp."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(entry: Entry) -> str:
    """``entry`` as strict JSON in UTF-8-safe text. The usual entry costs one encode (and
    an ``isascii`` scan); one holding a non-finite number, a value nested too deep or a
    lone surrogate is encoded with those replaced or escaped instead of failing."""
    source: Any = entry
    try:
        text = _encode(entry)
    except (ValueError, RecursionError):  # NaN, Infinity; nesting past the stack
        source = json_safe(entry, 0)
        text = _encode(source)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _encode_ascii(source)
    return text


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite floats as None and anything deeper than
    ``_SALVAGE_DEPTH`` as the name of its type (bounded recursion)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if depth >= _SALVAGE_DEPTH:
            return f"<{type(value).__name__} nested too deep>"
        if isinstance(value, dict):
            return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
        return [json_safe(v, depth + 1) for v in value]
    return value


class Recorder:
    def __init__(self, store: Store, session_id: str, execution_id: str, stage: str,
                 *, watcher: Watcher | None = None,
                 on_native_session_id: Callable[[str], None] | None = None,
                 on_usage: Callable[[Mapping[str, object], object], None] | None = None,
                 batch_size: int = 2000, flush_interval: float = 0.25) -> None:
        self.store = store
        self.session_id = session_id
        self.execution_id = execution_id
        self.seq = store.last_seq(session_id)
        self.watcher = watcher
        self.usage: dict[str, float] = {}
        self.native_session_id: str | None = None
        self._on_native = on_native_session_id
        # Told each entry's usage and model after it is added (budgets price it).
        self._on_usage = on_usage
        self._pending: list[EntryRow] = []
        self._appender = store.appender(session_id)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()
        self._ts = ""
        self._ts_at = 0.0
        # When an entry was last emitted (monotonic): --idle-timeout measures from here.
        self.last_emit = time.monotonic()
        self.set_stage(stage)

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._const = (f'"session":{_encode(self.session_id)},'
                       f'"execution":{_encode(self.execution_id)},"stage":{_encode(stage)},')

    def _now(self) -> str:
        # Formatting a timestamp costs more than parsing a short line; entries read in
        # the same millisecond share one.
        t = time.time()
        if t - self._ts_at >= 0.001:
            self._ts_at = t
            self._ts = utc_now()
        return self._ts

    def emit(self, entries: list[Entry]) -> None:
        self.emit_json([(e, encode(e)) for e in entries])

    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        self.last_emit = time.monotonic()
        ts = self._now()
        head = f'",{self._const}'
        seq = self.seq
        rows = self._pending
        execution = self.execution_id
        records: list[Record] = []
        for entry, text in items:
            seq += 1
            body = f'{{"seq":{seq},"ts":"{ts}{head}{text[1:]}'
            kind = entry["kind"]
            rows.append((seq, execution, kind, body))
            records.append((seq, entry, body))
            usage = entry.get("usage")
            if usage and isinstance(usage, dict):
                self._add_usage(usage, entry.get("model"))
        self.seq = seq
        if self.watcher is not None:
            try:
                self.watcher(records)
            except Exception:
                # Whoever watched is gone (a closed pipe, a dead socket): keep recording.
                self.watcher = None
        due = time.monotonic() - self._last_flush > self._flush_interval
        if due or len(rows) >= self._batch_size:
            self.hand_off()

    def _add_usage(self, usage: Mapping[str, object], model: object = None) -> None:
        for key, value in usage.items():
            # NaN fails the comparison; inf and 10**400 (which overflows a float sum) are
            # beyond the limit: none of them is a figure to add up.
            if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                    -USAGE_LIMIT <= value <= USAGE_LIMIT:
                self.usage[key] = self.usage.get(key, 0) + value
        if self._on_usage is not None:
            self._on_usage(usage, model)

    def set_native_session_id(self, native_id: str) -> None:
        if native_id != self.native_session_id:
            self.native_session_id = native_id
            if self._on_native is not None:
                self._on_native(native_id)

    def hand_off(self) -> None:
        """Pass what is pending to the writer without waiting for it."""
        self._last_flush = time.monotonic()
        if self._pending:
            rows, self._pending = self._pending, []
            self._appender.append(rows)

    def flush(self) -> None:
        """Store everything emitted so far; returns once it is written."""
        self.hand_off()
        self._appender.sync()

    def close(self) -> None:
        """Flush and stop the writer."""
        self.hand_off()
        self._appender.close()
