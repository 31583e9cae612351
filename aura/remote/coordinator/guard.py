"""What the coordinator refuses from a worker's connection. Workers send ``execution.log``
and ``execution.state`` as notifications, which get no answer, so each refusal is told
with an ``execution.refused`` notification carrying the error code; it is logged once per
connection and kind (a flood of the same bad message leaves one line) and counted, and a
connection that keeps sending refused messages is closed (its worker reconnects and
resends from what was acknowledged)."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from aura.errors import RpcError

log = logging.getLogger("aura.coordinator")

# Refusals a connection may collect before it is closed; a correct worker has none.
MAX_REFUSALS = 8


@dataclass
class _Record:
    count: int = 0
    logged: set[str] = field(default_factory=set)


class Guard:
    def __init__(self, max_refusals: int = MAX_REFUSALS) -> None:
        self.max_refusals = max_refusals
        self._records: weakref.WeakKeyDictionary[Any, _Record] = weakref.WeakKeyDictionary()

    def refuse(self, conn: Any, code: int, kind: str, message: str,
               execution: Any = None) -> None:
        """Refuse a message of ``conn`` (a worker connection): tell it, log, count."""
        record = self._records.setdefault(conn, _Record())
        record.count += 1
        if kind not in record.logged:
            record.logged.add(kind)
            log.warning("refused from worker %s (%s): %s", getattr(conn, "worker", None),
                        getattr(conn, "remote", "?"), message)
        if record.count == self.max_refusals:
            log.warning("closing the connection of worker %s (%s): %d refused messages",
                        getattr(conn, "worker", None), getattr(conn, "remote", "?"),
                        record.count)
            conn.peer.close_soon(4003, "too many refused messages")
        conn.peer.notify("execution.refused", {"execution": execution,
                                               "error": RpcError(code, message).to_json()})

    def refusals(self, conn: Any) -> int:
        record = self._records.get(conn)
        return record.count if record is not None else 0
