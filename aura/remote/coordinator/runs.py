"""The coordinator's table of runs: one record per run (keyed by its execution id, the id
of the first execution the run created) saying where it runs and how it ended."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from aura.contracts import RunSummary

# Summaries kept for clients that come to follow a run after it ended; older ones are
# rebuilt from the store's rows.
KEEP_FINISHED = 10_000


@dataclass
class Run:
    execution: str
    session: str
    worker: str | None = None  # where an interrupt goes; None once it cannot go anywhere
    owner: str | None = None  # the worker it was given: the only one that may report it
    running: bool = False  # running on its worker, as far as this coordinator knows
    summary: RunSummary | None = None  # how it ended, once it ended here
    superseded: bool = False  # declared lost, and its session has gone on since
    dropped: bool = False  # its late entries are being dropped (logged once)


class RunTable:
    def __init__(self, keep_finished: int = KEEP_FINISHED) -> None:
        self._runs: dict[str, Run] = {}
        self._finished: dict[str, None] = {}  # in the order they ended, oldest first
        self._keep = keep_finished

    def get(self, execution_id: str) -> Run | None:
        return self._runs.get(execution_id)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs.values()))

    def note(self, execution_id: str, session_id: str) -> Run:
        """The record of this run, made if there is none yet."""
        run = self._runs.get(execution_id)
        if run is None:
            run = self._runs[execution_id] = Run(execution_id, session_id)
        return run

    def start(self, execution_id: str, session_id: str, worker: str) -> Run:
        """A run now going on ``worker`` (a run that already ended here stays ended)."""
        run = self.note(execution_id, session_id)
        run.worker = run.owner = worker
        if run.summary is None:
            run.running = True
        return run

    def is_running(self, execution_id: str) -> bool:
        run = self._runs.get(execution_id)
        return run is not None and run.running

    def finish(self, execution_id: str, session_id: str, summary: RunSummary) -> Run:
        run = self.note(execution_id, session_id)
        run.summary = summary
        run.running = False
        run.worker = None
        self._finished[execution_id] = None
        while len(self._finished) > self._keep:
            oldest = next(iter(self._finished))
            del self._finished[oldest]
            self._runs.pop(oldest, None)
        return run
