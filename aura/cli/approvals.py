"""`aura approvals`, `aura approve ID`, `aura deny ID`: answer agents' requests from any
terminal on the machine (the answer goes through the store; the run waiting for it reads
it within a fraction of a second)."""

from __future__ import annotations

from typing import Any

import click

from aura.cli.output import CONTEXT_SETTINGS, open_user_store

EPILOG = ("Exit codes: 0 answered, 1 no such request, 3 too late (already answered, "
          "expired, or its run went away).")


@click.command("approvals", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of pending requests.")
def approvals_command(as_json: bool) -> None:
    """List the requests agents are waiting on, across sessions (oldest first)."""
    from aura.service.approvals import pending

    store = open_user_store()
    try:
        waiting = pending(store)
    finally:
        store.close()
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text([dict(a.to_json(), age_s=_age(a.created_at)) for a in waiting]))
        return
    if not waiting:
        click.echo("no approval requests are waiting", err=True)
        return
    from aura.cli.render import table, terminal_text, terminal_width
    from aura.cli.wording import ago

    rows = [("ID", "SESSION", "KIND", "ASKED", "TITLE")]
    for a in waiting:
        title = " ".join(terminal_text(a.title).split())
        rows.append((a.id[:8], a.session[:8], a.kind.value, ago(a.created_at),
                     title[:71] + "…" if len(title) > 72 else title))
    # The title is cut first, then the session's id goes (the request's id answers it).
    for line in table(rows, terminal_width(), flexible=4, drop=(1,)):
        click.echo(line)
    click.echo("answer with `aura approve ID` (--session-wide) or `aura deny ID` "
               "(--message TEXT)", err=True)


@click.command("approve", context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.argument("approval_id", metavar="ID")
@click.option("--session-wide", is_flag=True,
              help="Allow this and the same kind of request for the rest of the session.")
def approve_command(approval_id: str, session_wide: bool) -> None:
    """Allow a pending request (see `aura approvals`; a unique id prefix is enough)."""
    from aura.approvals import Choice

    _answer(approval_id, Choice.ALLOW_SESSION if session_wide else Choice.ALLOW, None)


@click.command("deny", context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.argument("approval_id", metavar="ID")
@click.option("--message", "-m", metavar="TEXT", help="Told to the agent with the deny.")
def deny_command(approval_id: str, message: str | None) -> None:
    """Deny a pending request (see `aura approvals`; a unique id prefix is enough)."""
    from aura.approvals import Choice

    _answer(approval_id, Choice.DENY, message)


def _answer(approval_id: str, choice: Any, message: str | None) -> None:
    from aura.service.approvals import answer, who

    if not approval_id.strip():
        from aura.errors import UsageError

        raise UsageError("give the id of a request (see `aura approvals`)")
    store = open_user_store()
    try:
        done = answer(store, approval_id.strip(), choice, by=who("aura approve" if
                      choice.value != "deny" else "aura deny"), message=message)
    finally:
        store.close()
    what = {"allow": "allowed once", "allow_session": "allowed for this session",
            "deny": "denied"}[choice.value]
    click.echo(f"{done.id[:8]} {what}: {done.title}")


def _age(created_at: str) -> float:
    from datetime import UTC, datetime

    from aura.cli.render import parse_ts

    created = parse_ts(created_at)
    return max(0.0, (datetime.now(UTC) - created).total_seconds()) if created else 0.0
