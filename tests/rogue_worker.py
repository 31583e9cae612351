"""A worker that is not aura's: a raw WebSocket that says ``worker.hello`` and then sends
whatever a test makes it send (forged states, foreign entries, bad seqs), answering
``execution.start`` with a run it makes up. Every message it gets is kept in ``inbox``."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from aura import rpc
from aura.contracts import Execution, Session, Transition

from .remote_cluster import Cluster

NOW = "2026-01-01T00:00:00.000000Z"


def session_json(session_id: str, **options: Any) -> dict[str, Any]:
    return Session(id=session_id, executor="custom", state="coding_initial", cwd="/tmp",
                   created_at=NOW, updated_at=NOW, prompt="forged prompt",
                   options=options).to_json()


def snapshot(session_id: str, execution_id: str, state: str = "coding_initial",
             **options: Any) -> dict[str, Any]:
    final = state in ("done", "failed")
    execution = Execution(id=execution_id, session=session_id, stage="coding_initial",
                          status="done" if final else "running", exit_code=0 if final else None,
                          started_at=NOW, ended_at=NOW if final else None)
    moves = [Transition(session_id, None, "queued", NOW, "created"),
             Transition(session_id, "queued", "coding_initial", NOW, "", execution_id)]
    if final:
        moves.append(Transition(session_id, "coding_initial", state, NOW, "", execution_id))
    data = session_json(session_id, **options)
    data["state"] = state
    return {"session": data, "executions": [execution.to_json()],
            "transitions": [t.to_json() for t in moves]}


def line(session_id: str, execution_id: str, seq: int, text: str = "") -> str:
    """An entry as the recorder writes it: compact JSON, its seq first."""
    return json.dumps(entry(session_id, execution_id, seq, text), separators=(",", ":"))


def entry(session_id: str, execution_id: str, seq: int, text: str = "") -> dict[str, Any]:
    return {"seq": seq, "session": session_id, "execution": execution_id, "at": NOW,
            "kind": "assistant_message", "stage": "coding_initial",
            "data": {"text": text or f"line {seq}"}}


class Rogue:
    def __init__(self, cluster: Cluster, name: str, key: str | None = None) -> None:
        self.ws = connect(cluster.url, proxy=None, open_timeout=10, legacy=True,
                          additional_headers={"Authorization": f"Bearer {cluster.token}"})
        self.name = name
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._seen: list[dict[str, Any]] = []
        self.started: list[tuple[str, str]] = []  # (session, execution) it was given
        hello: dict[str, Any] = {"protocol": rpc.PROTOCOL_VERSION, "version": "0", "name": name,
                                 "capacity": 4, "executors": {"custom": "sh"}}
        if key is not None:
            hello["key"] = key
        self.ws.send(rpc.request("worker.hello", hello, 1))
        self.answer = json.loads(self.ws.recv(timeout=10))
        self.closed = threading.Event()
        if "result" in self.answer:
            threading.Thread(target=self._read, daemon=True).start()
            threading.Thread(target=self._beat, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                if message.get("method") == "execution.start":
                    session_id, execution_id = str(uuid.uuid4()), str(uuid.uuid4())
                    self.started.append((session_id, execution_id))
                    self.ws.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {
                        "execution": execution_id,
                        "snapshot": snapshot(session_id, execution_id,
                                             base_command="touch PLANTED")}}))
                self.inbox.put(message)
        except ConnectionClosed:
            self.closed.set()

    def _beat(self) -> None:
        n = 1000
        while not self.closed.is_set():
            n += 1
            try:
                self.ws.send(rpc.request("worker.heartbeat", {"running": []}, n))
            except ConnectionClosed:
                return
            time.sleep(0.2)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.ws.send(rpc.notification(method, params))

    def send_entries(self, session_id: str, execution_id: str, texts: list[str]) -> None:
        """An execution.log batch with these texts as its entries, byte for byte."""
        self.ws.send(rpc.entries_message("execution.log", {"session": session_id,
                                                           "execution": execution_id}, texts))

    def wait(self, method: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of ``method`` not taken yet (others stay for later)."""
        deadline = time.monotonic() + timeout
        while True:
            while True:
                try:
                    self._seen.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            for i, message in enumerate(self._seen):
                if message.get("method") == method:
                    return self._seen.pop(i)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        raise AssertionError(f"rogue worker {self.name}: no {method} in {timeout} s")

    def drain(self, method: str) -> list[dict[str, Any]]:
        """Every message of ``method`` received so far and not taken yet."""
        out = []
        while True:
            try:
                out.append(self.wait(method, timeout=0))
            except AssertionError:
                return out

    def close(self) -> None:
        self.ws.close()
