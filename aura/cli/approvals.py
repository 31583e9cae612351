"""`aura approvals`, `aura approve ID`, `aura deny ID`: answer agents' requests from any
terminal on the machine (the answer goes through the store; the run waiting for it reads
it within a fraction of a second). With ``--coordinator URL`` they list and answer the
requests of runs on workers: the coordinator forwards the answer to the worker that runs
the request, which answers through its own store, so the first answer wins there too."""

from __future__ import annotations

from typing import Any

import click

from aura.cli.output import CONTEXT_SETTINGS, open_user_store

COORDINATOR = click.option(
    "--coordinator", metavar="URL", default=None,
    help="Requests of runs on workers, through the coordinator at URL.")
EPILOG = ("Exit codes: 0 answered, 1 no such request, 3 too late (already answered, "
          "expired, or its run went away).")


@click.command("approvals", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of pending requests.")
@click.option("--all", "every", is_flag=True,
              help="Also the answered, expired and lost ones (a STATE column says which).")
@COORDINATOR
def approvals_command(as_json: bool, every: bool, coordinator: str | None) -> None:
    """List the requests agents are waiting on, across sessions (oldest first)."""
    if coordinator is not None:
        from aura.remote.client import remote_approvals

        listed = remote_approvals(coordinator, every=every)
    else:
        listed = [a.to_json() for a in _local(every)]
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text([dict(a, age_s=_age(a["created_at"])) for a in listed]))
        return
    if not listed:
        click.echo("no approval requests" if every else
                   "no approval requests are waiting", err=True)
        return
    _table(listed, every, remote=coordinator is not None)
    where = " --coordinator URL" if coordinator is not None else ""
    click.echo(f"answer with `aura approve ID{where}` (--session-wide) or "
               f"`aura deny ID{where}` (--message TEXT)", err=True)


def _local(every: bool) -> list[Any]:
    from aura.service.approvals import pending

    store = open_user_store()
    try:
        waiting = pending(store)
        return store.list_approvals() if every else waiting
    finally:
        store.close()


def _table(listed: list[dict[str, Any]], every: bool, *, remote: bool) -> None:
    from aura.cli.render import table, terminal_text, terminal_width
    from aura.cli.wording import ago

    head = ("ID", "SESSION", *(("WORKER",) if remote else ()),
            *(("STATE",) if every else ()), "KIND", "ASKED", "TITLE")
    rows = [head]
    for a in listed:
        title = " ".join(terminal_text(str(a["title"])).split())
        rows.append((a["id"][:8], a["session"][:8],
                     *((str(a.get("worker") or "?"),) if remote else ()),
                     *((a["state"],) if every else ()), a["kind"],
                     ago(a["created_at"]),
                     title[:71] + "…" if len(title) > 72 else title))
    # The title is cut first, then the session's id goes (the request's id answers it).
    for line in table(rows, terminal_width(), flexible=len(head) - 1, drop=(1,)):
        click.echo(line)


@click.command("approve", context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.argument("approval_id", metavar="ID")
@click.option("--session-wide", is_flag=True,
              help="Allow this and the same kind of request for the rest of the session.")
@COORDINATOR
def approve_command(approval_id: str, session_wide: bool, coordinator: str | None) -> None:
    """Allow a pending request (see `aura approvals`; a unique id prefix is enough)."""
    from aura.approvals import Choice

    _answer(approval_id, Choice.ALLOW_SESSION if session_wide else Choice.ALLOW, None,
            coordinator)


@click.command("deny", context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.argument("approval_id", metavar="ID")
@click.option("--message", "-m", metavar="TEXT", help="Told to the agent with the deny.")
@COORDINATOR
def deny_command(approval_id: str, message: str | None, coordinator: str | None) -> None:
    """Deny a pending request (see `aura approvals`; a unique id prefix is enough)."""
    from aura.approvals import Choice

    _answer(approval_id, Choice.DENY, message, coordinator)


def _answer(approval_id: str, choice: Any, message: str | None,
            coordinator: str | None) -> None:
    from aura.service.approvals import answer, who

    if not approval_id.strip():
        from aura.errors import UsageError

        raise UsageError("give the id of a request (see `aura approvals`)")
    by = who("aura approve" if choice.value != "deny" else "aura deny")
    if coordinator is not None:
        from aura.remote.client import answer_remote

        done = answer_remote(coordinator, approval_id.strip(), choice.value, by=by,
                             message=message)
        ident, title = str(done.get("id", "")), str(done.get("title", ""))
    else:
        store = open_user_store()
        try:
            answered = answer(store, approval_id.strip(), choice, by=by, message=message)
        finally:
            store.close()
        ident, title = answered.id, answered.title
    what = {"allow": "allowed once", "allow_session": "allowed for this session",
            "deny": "denied"}[choice.value]
    click.echo(f"{ident[:8]} {what}: {title}")


def _age(created_at: str) -> float:
    from datetime import UTC, datetime

    from aura.cli.render import parse_ts

    created = parse_ts(created_at)
    return max(0.0, (datetime.now(UTC) - created).total_seconds()) if created else 0.0
