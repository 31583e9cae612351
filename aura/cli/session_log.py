"""`aura session search | export | rm | prune`: the stored history as a work log: found by
its words, written out as a transcript, and removed when it is no longer wanted (never with
work that is not saved)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aura.cli.completion import complete_executor, complete_session
from aura.cli.output import CONTEXT_SETTINGS, open_user_store
from aura.errors import AuraError

SQLITE_MAX_INT = 2**63 - 1


@click.command("search", context_settings=CONTEXT_SETTINGS)
@click.argument("text")
@click.option("--executor", "-e", metavar="NAME", shell_complete=complete_executor,
              help="Only sessions of this executor.")
@click.option("--since", metavar="WHEN",
              help="Only entries since 10m, 2h, 7d or an ISO time.")
@click.option("--limit", "-n", type=click.IntRange(min=1, max=SQLITE_MAX_INT), default=50,
              show_default=True, help="How many matches (newest first).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of matches.")
def session_search(text: str, executor: str | None, since: str | None, limit: int,
                   as_json: bool) -> None:
    """Entries of every stored session holding every word of TEXT (any case)."""
    from aura.cli.render import Painter, json_text, table, terminal_text, use_color
    from aura.cli.timespec import moment
    from aura.store_history import MARK_END, MARK_START

    if not text.split():
        raise AuraError("search for what? give some words")
    if executor is not None:
        from aura.executors import registry

        executor = registry.canonical(executor)
    store = open_user_store()
    if not store.fts:
        click.echo("[aura] this SQLite has no FTS5: searching every entry with LIKE (slower)",
                   err=True)
    hits = store.search_entries(text, executor=executor, limit=limit,
                                since=moment(since) if since is not None else None)
    if as_json:
        click.echo(json_text([h.to_json() for h in hits]))
        return
    if not hits:
        click.echo(f"no entry holds {text!r}", err=True)
        return
    paint = Painter(use_color(sys.stdout))
    rows = [("SESSION", "EXECUTOR", "TIME", "SEQ", "MATCH")]
    from aura.cli.render import parse_ts

    for hit in hits:
        pieces = []
        for i, piece in enumerate(hit.snippet.replace(MARK_END, MARK_START).split(MARK_START)):
            safe = terminal_text(piece)
            pieces.append(paint(safe, "bold") if i % 2 else safe)
        when = parse_ts(hit.ts)
        rows.append((hit.session[:8], hit.executor,
                     when.astimezone().strftime("%Y-%m-%d %H:%M") if when else "-",
                     str(hit.seq), f"{hit.kind}: " + "".join(pieces)))
    for line in table(rows):
        click.echo(line)


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md",
              show_default=True, help="Markdown, a self-contained HTML page, or JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write it to FILE (default: stdout).")
def session_export(session_id: str, fmt: str, output: Path | None) -> None:
    """A readable transcript: prompt, messages, tool calls with the tail of their output,
    approvals, the workspace's diff and the usage totals."""
    from aura.cli.export import html_page, markdown, transcript
    from aura.cli.render import json_text

    data = transcript(open_user_store(), session_id)
    render = {"md": markdown, "html": html_page}.get(fmt, json_text)
    text = render(data)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise AuraError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote {output} ({fmt})", err=True)


@click.command("rm", context_settings=CONTEXT_SETTINGS)
@click.argument("session_ids", metavar="ID…", nargs=-1, required=True,
                shell_complete=complete_session)
def session_rm(session_ids: tuple[str, ...]) -> None:
    """Remove sessions and everything stored of them (entries, executions, transitions,
    approvals, tasks), with their workspace when its work is saved. A running session,
    or one whose workspace holds unsaved work, is refused (nothing is removed)."""
    from aura.service.history import remove_sessions

    store = open_user_store()
    sessions = list({s.id: s for s in (store.get_session(i) for i in session_ids)}.values())
    for note in remove_sessions(store, sessions):
        click.echo(note, err=True)
    for s in sessions:
        click.echo(f"removed session {s.id[:8]}")


@click.command("prune", context_settings=CONTEXT_SETTINGS)
@click.option("--older-than", required=True, metavar="AGE",
              help="Finished sessions last active before this (30d, 12h, or an ISO time).")
@click.option("--state", type=click.Choice(["done", "failed", "cancelled", "worker_lost"]),
              help="Only sessions that ended in this state.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def session_prune(older_than: str, state: str | None, dry_run: bool) -> None:
    """Remove finished sessions older than AGE (see `session rm` for what is refused:
    those are named and kept; the others are removed)."""
    from aura.cli.timespec import moment
    from aura.service.history import check_removable, prune_candidates, remove_sessions

    store = open_user_store()
    found = prune_candidates(store, moment(older_than, "--older-than"), state)
    ok = []
    for session in found:
        try:
            check_removable(store, session)
        except AuraError as exc:
            click.echo(f"kept: {exc}", err=True)
            continue
        ok.append(session)
    if not dry_run:
        for note in remove_sessions(store, ok):
            click.echo(note, err=True)
    verb = "would remove" if dry_run else "removed"
    for s in ok:
        click.echo(f"{verb} session {s.id[:8]} ({s.state}, {s.updated_at})")
    if not ok:
        click.echo("nothing to prune", err=True)
