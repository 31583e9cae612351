"""A stand-in for the coordinator's end of a connection (aura.rpc.Peer's surface), for the
worker's link and relay: it records what is sent and answers requests from a script."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any


class FakePeer:
    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        # method -> a result, an exception to raise, or a function of the params
        self.answers = answers or {}
        self.texts: list[str] = []
        self.notes: list[tuple[str, Any]] = []
        self.requests: list[tuple[str, Any]] = []
        self.queued = 0
        self.closed = asyncio.Event()
        self.close_codes: list[int] = []

    def send_text(self, text: str) -> None:
        self.texts.append(text)

    def notify(self, method: str, params: Any) -> None:
        self.notes.append((method, params))

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        self.requests.append((method, params))
        answer = self.answers[method]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Callable):  # type: ignore[arg-type]
            answer = answer(params)
            if asyncio.iscoroutine(answer):
                answer = await answer
        return answer

    async def run(self) -> None:
        await self.closed.wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_codes.append(code)
        self.closed.set()

    def sent_seqs(self) -> list[int]:
        """The seqs of every entry sent in ``execution.log`` batches, in order."""
        seqs = []
        for text in self.texts:
            message = json.loads(text)
            assert message["method"] == "execution.log"
            seqs += [e["seq"] for e in message["params"]["entries"]]
        return seqs

    def states(self) -> list[dict[str, Any]]:
        return [p for m, p in self.notes if m == "execution.state"]
