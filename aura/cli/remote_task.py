"""A queued task with ``--on WORKER|label:X``, started by `aura task start`: the run goes
to a worker through the coordinator (the `aura run --on` client path), and the task's
local session mirrors it (coding while it runs, then the remote run's end state), so
the queue's dependencies and the board see remote tasks like local ones."""

from __future__ import annotations

from typing import Any

import click


def _record(session_id: str, dst: str, reason: str, **options: Any) -> None:
    from aura import engine
    from aura.contracts import State, Transition
    from aura.recorder import utc_now
    from aura.store_sqlite import open_store

    store = open_store()
    try:
        session = store.get_session(session_id)
        if options:
            store.update_session(session_id, options={**session.options, **options})
        if engine.allowed(session.state, dst):
            store.record_transition(Transition(session_id, session.state, State(dst), utc_now(),
                                               reason))
    finally:
        store.close()


def run_on_worker(session_id: str, target: str, options: Any) -> int:
    """Run the task's options on a worker; the exit code of the remote run."""
    import asyncio
    from dataclasses import replace

    from aura.cli.render import StreamPrinter
    from aura.remote.client import RemoteRun, ca_setting, coordinator_url, read_token

    url = coordinator_url(None)
    wire = replace(options, session=None).to_wire()
    remote = RemoteRun(url, read_token(None), ca_setting(None), on_records=StreamPrinter(),
                       on_notice=lambda line: click.echo(line, err=True))
    _record(session_id, "coding_initial", f"sent to {target} via the coordinator")
    try:
        summary = asyncio.run(remote.run(target, wire))
    except (KeyboardInterrupt, asyncio.CancelledError):
        _record(session_id, "cancelled", "stopped waiting for the worker",
                remote_session=remote.session)
        return 130
    state = summary.state if summary.state in ("done", "failed", "cancelled", "review",
                                               "worker_lost") else "failed"
    _record(session_id, state, f"the run on {target} ended {summary.state}"
            + (f": {summary.error}" if summary.error else ""),
            remote_session=summary.session)
    return summary.exit_code if summary.exit_code is not None else 1
