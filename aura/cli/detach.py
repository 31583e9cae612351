"""`aura run --detach`: the run goes on in a background aura process and the session id
is printed at once. A new session is queued as a task and started at once, bypassing the
queue's limits (`aura task start ID --detach`); a follow-up (``--session``) re-runs the
same command line without ``--detach`` in the background."""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.output import open_user_store
from aura.errors import UsageError


def run_detached(kw: dict[str, Any], prompt: str) -> int:
    from aura.liveness import own_mark
    from aura.recorder import utc_now
    from aura.service import tasks
    from aura.service.detach import spawn
    from aura.service.run_options import RunOptions

    if kw.get("resume_latest"):
        raise UsageError("--resume-latest does not combine with --detach; pass --session ID")
    store = open_user_store()
    if kw.get("session_id"):
        session_id = store.get_session(kw["session_id"]).id
        spawn(_follow_up_args(prompt), session_id)
    else:
        session = tasks.add(store, RunOptions.from_cli(kw, prompt=prompt), target=kw.get("on"))
        session_id, mark = session.id, own_mark()
        if not store.claim_task(session_id, mark, utc_now()):
            raise UsageError(f"task {session_id[:8]} was taken by a scheduler")
        pid, started = spawn(["task", "start", session_id, "--claimed-by", mark], session_id)
        store.update_task(session_id, child_pid=pid, child_started=started)
    store.close()
    if kw.get("as_json"):
        from aura.cli.render import json_text

        click.echo(json_text({"session": session_id, "detached": True}, compact=True))
    else:
        click.echo(session_id)
    click.echo(f"[aura] running in the background: `aura session show {session_id[:8]} -f` "
               f"follows it, `aura session cancel {session_id[:8]}` stops it", err=True)
    return 0


def _follow_up_args(prompt: str) -> list[str]:
    """This command line without --detach (and with the prompt read already, and no
    TUI): what the background aura runs."""
    args = list(sys.argv[1:])
    flags = [a for a in args if a in ("--detach", "-d")]
    if not flags:
        raise UsageError("write --detach (or -d) on its own, not joined to other short "
                         "options, for a follow-up in the background")
    args = [a for a in args if a not in ("--detach", "-d")]
    if "-" in args and prompt:  # --prompt - read stdin here; the child has no stdin
        args[args.index("-")] = prompt
    return [*args, "--no-tui"]
