"""Workers the coordinator knows: what each said in its hello, whether it is online, which
runs it has; picking one for ``--on NAME|label:X``; noticing one that went silent."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aura.contracts import WorkerInfo
from aura.recorder import utc_now
from aura.rpc import INVALID_PARAMS, NOT_FOUND, UNAVAILABLE, Peer, RpcError, need

log = logging.getLogger("aura.coordinator")

WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Link(Protocol):
    """A worker's connection, as the registry sees it."""

    worker: str | None
    peer: Peer


@dataclass
class WorkerState:
    name: str
    version: str = ""
    labels: tuple[str, ...] = ()
    capacity: int = 1
    executors: dict[str, str] = field(default_factory=dict)
    conn: Link | None = None
    last_seen: float = field(default_factory=time.monotonic)
    last_heartbeat: str | None = None
    online: bool = False
    running: set[str] = field(default_factory=set)
    reserved: int = 0  # runs being started (not yet in ``running``)
    model_servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    identity: str | None = None  # the fingerprint of the key it proved
    revoked: bool = False

    @property
    def load(self) -> int:
        return len(self.running) + self.reserved

    @property
    def ready(self) -> bool:
        return self.online and self.conn is not None

    def state(self) -> str:
        if self.revoked:
            return "revoked"
        if not self.online:
            return "offline"
        return "online" if self.conn is not None else "reconnecting"

    def info(self) -> dict[str, Any]:
        data = WorkerInfo(name=self.name, version=self.version, labels=self.labels,
                          capacity=self.capacity, executors=dict(self.executors),
                          state=self.state(), running=len(self.running),
                          last_heartbeat=self.last_heartbeat).to_json()
        data["connected"] = self.conn is not None
        data["model_servers"] = self.model_servers
        data["identity"] = self.identity
        return data


def model_servers_of(value: Any) -> dict[str, dict[str, Any]]:
    """What a worker says about its model servers, kept to the known fields and sizes."""
    found: dict[str, dict[str, Any]] = {}
    for name, item in (value.items() if isinstance(value, dict) else ()):
        if len(found) >= 8 or not isinstance(name, str) or not isinstance(item, dict):
            continue
        models = item.get("models")
        found[name[:32]] = {"endpoint": str(item.get("endpoint", ""))[:200],
                            "reachable": item.get("reachable") is True,
                            "models": models if isinstance(models, int) else 0}
    return found


class Registry:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerState] = {}

    def get(self, name: str) -> WorkerState | None:
        return self.workers.get(name)

    def known(self, name: str) -> WorkerState:
        """The worker of this name, made (offline) if it is new."""
        return self.workers.setdefault(name, WorkerState(name))

    def listing(self, identities: dict[str, tuple[str | None, bool]]
                ) -> list[dict[str, Any]]:
        """Every worker seen or enrolled, with its identity (fingerprint) and whether
        it is revoked."""
        for name, (identity, revoked) in identities.items():
            worker = self.known(name)
            worker.identity = worker.identity or identity
            worker.revoked = revoked
        return [w.info() for w in sorted(self.workers.values(), key=lambda w: w.name)]

    @staticmethod
    def name_of(params: dict[str, Any]) -> str:
        name: str = need(params, "name")
        if not WORKER_NAME.match(name) or name == "local":
            raise RpcError(INVALID_PARAMS, f"invalid worker name {name!r}: use letters, "
                           "digits, '.', '_' or '-' (and not 'local')")
        return name

    def hello(self, conn: Link, params: dict[str, Any], identity: str) -> WorkerState:
        """Register (or take back) the worker saying ``worker.hello`` on ``conn``, which
        proved the key of ``identity``."""
        name = self.name_of(params)
        labels = params.get("labels") or []
        capacity = params.get("capacity", 1)
        executors = params.get("executors") or {}
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or \
                not isinstance(capacity, int) or capacity < 1 or \
                not isinstance(executors, dict):
            raise RpcError(INVALID_PARAMS, "invalid params: labels (strings), capacity "
                           "(>= 1) and executors (object) are malformed")
        worker = self.known(name)
        if worker.conn is not None and worker.conn is not conn:
            # The same identity again (a name held by another key was refused before
            # this): its old line is dead or half-open. Keep the newest.
            log.info("worker %s reconnected; closing its old connection", name)
            old = worker.conn
            old.worker = None
            old.peer.close_soon(4001, "replaced by a new connection")
        worker.version = str(params.get("version", ""))
        worker.labels = tuple(labels)
        worker.capacity = capacity
        worker.executors = {str(k): str(v) for k, v in executors.items()}
        worker.model_servers = model_servers_of(params.get("model_servers"))
        worker.conn = conn
        worker.identity = identity
        worker.revoked = False
        worker.online = True
        worker.last_seen = time.monotonic()
        worker.last_heartbeat = utc_now()
        conn.worker = name
        return worker

    def cut_off(self, name: str, why: str) -> None:
        """Close the live connection of ``name`` (revoked): it may not report anything."""
        worker = self.workers.get(name)
        if worker is None or worker.conn is None:
            return
        conn, worker.conn = worker.conn, None
        conn.worker = None
        conn.peer.close_soon(4004, why)

    def heartbeat(self, name: str) -> None:
        worker = self.workers[name]
        worker.last_heartbeat = utc_now()
        worker.online = True

    def seen(self, conn: Link) -> None:
        # Any message from a worker is a sign of life, not only heartbeats.
        worker = self.workers.get(conn.worker) if conn.worker is not None else None
        if worker is not None and worker.conn is conn:
            worker.last_seen = time.monotonic()

    def disconnected(self, conn: Link) -> bool:
        """Forget ``conn`` as its worker's line; whether it was that line."""
        worker = self.workers.get(conn.worker) if conn.worker is not None else None
        if worker is not None and worker.conn is conn:
            worker.conn = None
            return True
        return False

    def silent(self, now: float, offline_after: float) -> list[WorkerState]:
        """Mark workers silent for ``offline_after`` seconds offline (a connected one is
        told and dropped: it reconnects and resends); those with runs still running."""
        lost = []
        for worker in list(self.workers.values()):
            if now - worker.last_seen <= offline_after:
                continue
            if worker.online:
                worker.online = False
                log.warning("worker %s offline: silent for %g s", worker.name, offline_after)
                if worker.conn is not None:
                    conn, worker.conn = worker.conn, None
                    conn.peer.notify("worker.lease_expired",
                                     {"executions": sorted(worker.running),
                                      "reason": f"silent for {offline_after:g} s"})
                    conn.peer.close_soon(4000, "heartbeat timeout")
            if worker.running:
                lost.append(worker)
        return lost

    def pick(self, on: str, executor: str) -> WorkerState:
        """The worker for ``--on NAME`` or ``--on label:X`` that offers ``executor`` and has
        a free slot, least loaded first; UNAVAILABLE or NOT_FOUND saying why there is none."""
        if on.startswith("label:"):
            label = on[len("label:"):]
            candidates = [w for w in self.workers.values() if label in w.labels and w.ready]
            what = f"with label {label!r}"
        else:
            worker = self.workers.get(on)
            if worker is None:
                known = ", ".join(sorted(self.workers)) or "none connected yet"
                raise RpcError(NOT_FOUND, f"no worker named {on!r} (workers: {known})")
            if not worker.ready:
                raise RpcError(UNAVAILABLE, f"worker {on} is {worker.state()} (last "
                               f"heartbeat {worker.last_heartbeat or 'never'})")
            candidates, what = [worker], f"named {on!r}"
        if not candidates:
            raise RpcError(UNAVAILABLE, f"no online worker {what}; see `aura workers`")
        able = [w for w in candidates if executor in w.executors]
        if not able:
            offers = ", ".join(sorted({n for w in candidates for n in w.executors})) or "none"
            hint = ("; the command executor needs `aura worker --allow-command`"
                    if executor == "custom" else "")
            raise RpcError(UNAVAILABLE, f"no worker {what} offers executor {executor} "
                           f"(offered: {offers}){hint}")
        free = [w for w in able if w.load < w.capacity]
        if not free:
            raise RpcError(UNAVAILABLE, f"every worker {what} is busy (at capacity); "
                           "try again later")
        return min(free, key=lambda w: (w.load / w.capacity, w.load, w.name))
