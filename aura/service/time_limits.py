"""--timeout and --idle-timeout: a watchdog beside a running turn that cancels it, saying
why, once the turn took too long or recorded nothing for too long (a request waiting for a
person is not idleness). The orchestrator then ends the turn as failed, work saved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aura.service.ledger import Ledger

WATCH_INTERVAL = 0.2  # seconds between looks


@dataclass(frozen=True, slots=True)
class TimeLimits:
    timeout: float | None = None
    idle_timeout: float | None = None

    def overrun(self, elapsed: float, idle: float | None, waiting: bool) -> str | None:
        """Why the turn must end now, or None (pure: the watchdog's rule)."""
        if self.timeout and elapsed >= self.timeout:
            return f"timed out after {self.timeout:g} s"
        if self.idle_timeout and idle is not None and idle >= self.idle_timeout and \
                not waiting:
            return f"no output for {self.idle_timeout:g} s"
        return None

    async def watch(self, task: asyncio.Task[Any], ledger: Ledger,
                    overran: Callable[[str], None]) -> None:
        """Cancel ``task`` once a limit is passed, after telling ``overran`` why."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            recorder = ledger.recorder
            idle = now - recorder.last_emit if recorder is not None else None
            idle_long = bool(self.idle_timeout and idle is not None and
                             idle >= self.idle_timeout)
            reason = self.overrun(now - started, idle, idle_long and _approval_waits(ledger))
            if reason is not None:
                overran(reason)
                task.cancel(reason)
                return


def _approval_waits(ledger: Ledger) -> bool:
    from aura.approvals import ApprovalState

    return bool(ledger.store.list_approvals(state=ApprovalState.PENDING,
                                            session_id=ledger.session.id))
