"""`aura board [--json] [--layout]`, `aura board columns [list|add|edit|remove]`,
`aura board move SESSION COLUMN [--prompt TEXT]`.

A move is applied only if the pipeline allows it and its guards pass (board.py); a
refused move names the rule. Moving a session in review (or finished) to a coding column
starts a follow-up with --prompt, exactly like `aura run --session ID --prompt …`;
moving a queued task to a coding column starts it (in the background), to its own
column parks it.
"""

from __future__ import annotations

import sys

import click

from aura.cli.completion import complete_column, complete_session
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store

# SQLite's LIMIT takes a signed 64-bit integer; a larger -n is a usage error, not a crash.
SQLITE_MAX_INT = 2**63 - 1


@click.group("board", cls=AuraGroup, invoke_without_command=True,
             context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="The board as one JSON object.")
@click.option("--limit", "-n", type=click.IntRange(min=1, max=SQLITE_MAX_INT),
              default=200, show_default=True,
              help="Newest sessions to place on the board.")
@click.option("--layout", type=click.Choice(["auto", "columns", "list"]), default="auto",
              show_default=True,
              help="Columns side by side, or one after the other (auto: side by side on a "
                   "terminal wide enough).")
@click.pass_context
def board_command(ctx: click.Context, as_json: bool, limit: int, layout: str) -> None:
    """Sessions and queued tasks as cards in columns (each column maps to a pipeline
    state): title, executor, age, state, cost, and why a queued task waits.

    \b
    EXAMPLES
      aura board
      aura board --json
      aura board columns
      aura board move 3f2a9c done
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from aura.cli.queue import coordinator_workers
    from aura.service.board import view

    store = open_user_store()
    data = view(store, limit, workers=coordinator_workers(store))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from aura.cli.board_view import render

    for line in render(data, layout, sys.stdout):
        click.echo(line)


@board_command.group("columns", invoke_without_command=True, context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of columns.")
@click.pass_context
def columns_command(ctx: click.Context, as_json: bool) -> None:
    """List the columns (name, order, canonical state, WIP limit); edit them with
    `add`, `edit`, `remove`."""
    if ctx.invoked_subcommand is not None:
        return
    _list_columns(as_json)


def _list_columns(as_json: bool) -> None:
    import json

    from aura.service.board import columns

    cols = sorted(columns(open_user_store()), key=lambda c: c.position)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in cols], ensure_ascii=False, indent=2))
        return
    rows = [("POS", "NAME", "STATE", "WIP")]
    rows += [(str(c.position), c.name, c.state, str(c.wip_limit or "-")) for c in cols]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@columns_command.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of columns.")
def columns_list(as_json: bool) -> None:
    """The columns in board order."""
    _list_columns(as_json)


@columns_command.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--state", required=True, metavar="STATE",
              help="Canonical pipeline state of the column (e.g. review).")
@click.option("--wip", "wip_limit", type=int, metavar="N", help="WIP limit.")
@click.option("--position", type=int, metavar="N", help="Order (default: last).")
def columns_add(name: str, state: str, wip_limit: int | None, position: int | None) -> None:
    """Add a column."""
    from aura.service.board import add_column

    column = add_column(open_user_store(), name, state, wip_limit=wip_limit, position=position)
    click.echo(f"added column {column.name!r} ({column.state})")


@columns_command.command("edit", context_settings=CONTEXT_SETTINGS)
@click.argument("name", shell_complete=complete_column)
@click.option("--rename", metavar="NEW", help="New name.")
@click.option("--state", metavar="STATE", help="New canonical state.")
@click.option("--wip", "wip_limit", type=int, metavar="N", help="New WIP limit.")
@click.option("--no-wip", "no_limit", is_flag=True, help="Remove the WIP limit.")
@click.option("--position", type=int, metavar="N", help="New order.")
def columns_edit(name: str, rename: str | None, state: str | None, wip_limit: int | None,
                 no_limit: bool, position: int | None) -> None:
    """Change a column."""
    from aura.service.board import edit_column

    column = edit_column(open_user_store(), name, new_name=rename, state=state, wip_limit=wip_limit,
                         no_limit=no_limit, position=position)
    click.echo(f"column {column.name!r}: position {column.position}, state {column.state}, "
               f"WIP limit {column.wip_limit or 'none'}")


@columns_command.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("name", shell_complete=complete_column)
def columns_remove(name: str) -> None:
    """Remove a column (its sessions show in a column of the same family, or none)."""
    from aura.service.board import remove_column

    remove_column(open_user_store(), name)
    click.echo(f"removed column {name!r}")


@board_command.command("move", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="SESSION", shell_complete=complete_session)
@click.argument("column", shell_complete=complete_column)
@click.option("--prompt", "-p", metavar="TEXT",
              help="The follow-up's request, when the move starts one.")
def board_move(session_id: str, column: str, prompt: str | None) -> int:
    """Move a session to a column, if the pipeline and the board's rules allow it."""
    from aura.service.board import move

    store = open_user_store()
    decided = move(store, session_id, column, prompt)
    session = store.get_session(session_id)
    store.close()
    if decided.src == decided.dst == "queued":
        click.echo(f"parked {session.id[:8]} in {decided.column.name!r} (the queue leaves it "
                   f"until `aura task release {session.id[:8]}`)")
        return 0
    if decided.src == "queued" and not decided.follow_up:
        from aura.cli.task import task_start

        click.echo(f"moving {session.id[:8]} to {decided.column.name!r}: starting it in the "
                   "background", err=True)
        return int(task_start.callback(session.id, True, None) or 0)  # type: ignore[misc]
    if not decided.follow_up:
        click.echo(f"moved {session.id[:8]} to {decided.column.name!r} "
                   f"({decided.src} → {decided.dst})")
        return 0
    from aura.cli.run import run_plain, terminal_asker
    from aura.service.run_options import RunOptions

    click.echo(f"moving {session.id[:8]} to {decided.column.name!r}: starting a follow-up",
               err=True)
    # Exactly `aura run --session ID --prompt … --no-tui`.
    return run_plain(RunOptions(session=session.id, prompt=prompt or "",
                                asker=terminal_asker()))
