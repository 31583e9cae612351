"""Following a session that another process runs (`aura run -d`, a second terminal): its
new entries are read from the store as they arrive, the way `aura session show -f`
(``aura.service.control.follow``) polls, but as a task of the TUI's event loop, so the
Logs pane streams instead of showing a frozen snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aura.contracts import Entry
from aura.errors import AuraError
from aura.store import Store

SWEEP_EVERY = 10  # polls between two looks for runs whose aura process is gone


def runs_elsewhere(store: Store, session_id: str) -> bool:
    """The session is not resting (final, or in review with nothing running)."""
    from aura.service.control import resting

    try:
        return not resting(store, session_id)
    except AuraError:
        return False


async def follow(store: Store, session_id: str, after_seq: int,
                 emit: Callable[[list[tuple[int, Entry]]], None], *, poll: float) -> None:
    """Hand ``emit`` every entry stored after ``after_seq`` until the session rests (one
    last read after that, so no entry is missed) or the task is cancelled."""
    from aura.liveness import sweep_orphans
    from aura.service.control import resting

    polls = 0
    while True:
        polls += 1
        try:
            done = resting(store, session_id)  # before the entries: none is missed
            fresh = store.entries(session_id, after_seq)
        except AuraError:
            return
        if fresh:
            after_seq = int(fresh[-1].get("seq", after_seq))
            emit([(int(e.get("seq", 0)), e) for e in fresh])
        if done:
            return
        if polls % SWEEP_EVERY == 0:
            try:
                sweep_orphans(store)  # a run whose aura was killed ends as failed
            except AuraError:
                pass
        await asyncio.sleep(poll)
