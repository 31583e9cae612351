"""The one writer thread of the store: entry batches written on a connection of its own,
in order, so SQLite's work (which releases the GIL) overlaps with parsing an agent's output
or with the coordinator's event loop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aura.store import EntryRow, StoredCallback


class _EntryStore(Protocol):
    def append_entries(self, session_id: str, rows: Sequence[EntryRow]) -> None: ...
    def close(self) -> None: ...


class ThreadedAppender:
    """Writes entry batches on a thread with its own connection, in the order they come, so
    SQLite's work (which releases the GIL) overlaps with reading and parsing the agent's
    output, or with a coordinator's event loop. With ``depth`` the queue is bounded: a
    writer that falls behind slows the caller instead of growing memory."""

    _STOP = object()

    def __init__(self, connect: Callable[[], _EntryStore], session_id: str | None,
                 depth: int = 4) -> None:
        self._connect = connect  # opens the thread's own connection, on the thread
        self._session_id = session_id
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None

    def _ensure_thread(self) -> None:
        # Started on the first batch, and again after close(): an appender is never left
        # with a queue nobody reads.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._write_loop, daemon=True,
                                            name="aura-entry-writer")
            self._thread.start()

    def _write_loop(self) -> None:
        store: _EntryStore | None = None
        while True:
            item = self._queue.get()
            if item is self._STOP:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            session_id, rows, done = item
            if done is None and self._error is not None:
                continue
            error: Exception | None = None
            try:
                if rows:
                    if store is None:
                        store = self._connect()
                    store.append_entries(session_id, rows)
            except Exception as exc:  # handed to whoever waits on this batch, not hidden
                error = exc
            if done is not None:
                done(error)
            elif error is not None:
                self._error = error
        if store is not None:
            store.close()

    def append(self, rows: Sequence[EntryRow]) -> None:
        self._raise()
        if rows:
            assert self._session_id is not None, "append() needs an appender of one session"
            self._ensure_thread()
            self._queue.put((self._session_id, rows, None))

    def submit(self, session_id: str, rows: Sequence[EntryRow], done: StoredCallback) -> None:
        # Empty batches are queued too: their callback marks that everything before is in.
        self._ensure_thread()
        self._queue.put((session_id, rows, done))

    def sync(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            event = threading.Event()
            self._queue.put(event)
            event.wait()
        self._raise()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
