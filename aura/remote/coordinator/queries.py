"""The read-only methods: sessions, their entries page by page, and the workers."""

from __future__ import annotations

import json
from typing import Any

from aura.rpc import INVALID_PARAMS, RpcError, need
from aura.store import Store, session_summary

from .feed import PAGE_ENTRIES, page
from .identity import Identities
from .registry import Registry


class Queries:
    def __init__(self, store: Store, registry: Registry, identities: Identities) -> None:
        self.identities = identities
        self.store = store
        self.registry = registry

    def m_session_get(self, conn: object, params: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get_session(need(params, "session"))
        data = session_summary(self.store, session)
        data["last_seq"] = self.store.last_seq(session.id)
        return data

    def m_session_list(self, conn: object, params: dict[str, Any]) -> list[dict[str, Any]]:
        from aura.executors import registry as executors

        limit = params.get("limit", 20)
        executor = params.get("executor")
        if not isinstance(limit, int) or limit < 1 or \
                (executor is not None and not isinstance(executor, str)):
            raise RpcError(INVALID_PARAMS, "invalid params: limit (>= 1), executor (string)")
        if executor:
            executor = executors.canonical(executor)
        return [session_summary(self.store, s)
                for s in self.store.list_sessions(min(limit, 1000), executor=executor)]

    def m_session_entries(self, conn: object, params: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get_session(need(params, "session"))
        after = params.get("after_seq", 0)
        limit = params.get("limit", PAGE_ENTRIES)
        if not isinstance(after, int) or not isinstance(limit, int) or limit < 1:
            raise RpcError(INVALID_PARAMS, "invalid params: after_seq and limit are integers")
        texts, more = page(self.store, session.id, after, min(limit, PAGE_ENTRIES))
        return {"session": session.id, "entries": [json.loads(t) for t in texts],
                "more": more}

    def m_workers_list(self, conn: object, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.registry.listing(self.identities.fingerprints())
