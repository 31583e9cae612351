"""`aura session list | show ID [-f] | latest | cancel ID`: sessions from the store or a
coordinator; following a run and stopping it from another terminal."""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.completion import complete_executor, complete_session
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store
from aura.cli.session_view import EntryFilter
from aura.errors import AuraError

# SQLite's LIMIT takes a signed 64-bit integer; a larger -n is a usage error, not a crash.
SQLITE_MAX_INT = 2**63 - 1


@click.group(cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def session() -> None:
    """List, show and replay sessions.

    \b
    EXAMPLES
      aura session list
      aura session show 3f2a9c
      aura session show 3f2a9c -f
      aura session latest --json
      aura session cancel 3f2a9c
      aura session show 3f2a --kind tool_call,error --tail 20
      aura session search "flaky test" --since 7d
      aura session export 3f2a --format html -o run.html
      aura session prune --older-than 30d --dry-run
    """


@session.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--limit", "-n", type=click.IntRange(min=1, max=SQLITE_MAX_INT),
              default=20, show_default=True,
              help="How many sessions (newest first).")
@click.option("--executor", "-e", metavar="NAME", shell_complete=complete_executor,
              help="Only sessions of this executor.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of sessions.")
@click.option("--coordinator", metavar="URL", help="List this coordinator's sessions.")
def session_list(limit: int, executor: str | None, as_json: bool,
                 coordinator: str | None) -> None:
    """Sessions, newest first."""
    from aura.contracts import Session
    from aura.store import session_summary

    if coordinator is not None:
        from aura.remote.client import fetch_sessions

        summaries = fetch_sessions(coordinator, limit, executor)
        sessions = [Session.from_json(data) for data in summaries]
    else:
        if executor is not None:
            from aura.executors import registry

            executor = registry.canonical(executor)  # aliases, and a clear unknown-name error
        store = open_user_store()
        sessions = store.list_sessions(limit, executor=executor)
        summaries = [session_summary(store, s) for s in sessions] if as_json else []
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text(summaries))
        return
    if not sessions:
        which = f"{executor} " if executor else ""
        click.echo(f"no {which}sessions yet; start one with `aura run --prompt …`", err=True)
        return
    from aura.cli.render import format_duration, parse_ts, short_path, table

    rows = [("ID", "EXECUTOR", "STATE", "CWD", "STARTED", "DURATION", "PROMPT")]
    for s in sessions:
        started, updated = parse_ts(s.created_at), parse_ts(s.updated_at)
        duration = format_duration((updated - started).total_seconds()) \
            if started and updated else "-"
        when = started.astimezone().strftime("%Y-%m-%d %H:%M") if started else "-"
        prompt = " ".join(s.prompt.split())
        rows.append((s.id[:8], s.executor, s.state, short_path(s.cwd), when, duration,
                     prompt[:47] + "…" if len(prompt) > 48 else prompt))
    for line in table(rows):
        click.echo(line)


def _history(session_id: str | None, coordinator: str | None) -> dict[str, Any]:
    """The session as `session show --json` prints it, from the store or a coordinator
    (None: the newest session here)."""
    if coordinator is not None and session_id is not None:
        from aura.remote.client import fetch_session

        return fetch_session(coordinator, session_id)
    from aura.store import session_history

    store = open_user_store()
    if session_id is None:
        latest = store.list_sessions(1)
        if not latest:
            raise AuraError("no sessions yet; start one with `aura run --prompt …`")
        session_id = latest[0].id
    return session_history(store, session_id)


def _show(session_id: str | None, as_json: bool, coordinator: str | None = None, *,
          flt: EntryFilter | None = None, tail: int | None = None, page: bool = True
          ) -> None:
    data = _history(session_id, coordinator)
    from aura.cli.pager import paged
    from aura.cli.render import Painter, json_text, terminal_text, use_color
    from aura.cli.session_view import select, unshown_transitions, write_entries

    flt = flt or EntryFilter()
    every = data["entries"]
    data["entries"] = select(every, flt, tail)
    with paged(page) as out:
        if as_json:
            click.echo(json_text(data), file=out)
            return
        paint = Painter(use_color(sys.stdout))

        def say(line: str) -> None:
            # Model, native id, reasons: an agent may have set them, so they go to the
            # terminal as terminal_text like the entries do.
            click.echo(terminal_text(line), file=out)

        click.echo(paint(f"session {data['id']}", "bold"), file=out)
        say(f"  executor  {data['executor']}" +
            (f"  model {data['model']}" if data["model"] else ""))
        say(f"  state     {data['state']}")
        say(f"  cwd       {data['cwd']}")
        if data["native_session_id"]:
            say(f"  native id {data['native_session_id']}")
        say(f"  created   {data['created_at']}   updated {data['updated_at']}")
        for e in data["executions"]:
            say(f"  execution {e['id'][:8]} {e['stage']:<16} {e['state']:<10} "
                f"exit {e['exit_code'] if e['exit_code'] is not None else '-':<4} "
                f"{e['started_at']} → {e['ended_at'] or '…'}  on {e['host']}")
        click.echo(paint("transitions", "bold"), file=out)
        for t in unshown_transitions(data["transitions"], data["entries"]):
            say(f"  {t['at']}  {t['from'] or '∅'} → {t['to']}  {t['reason']}")
        click.echo(paint("entries", "bold"), file=out)
        write_entries(out, data["entries"], every, paint)
        _usage_line(out, every, paint)


def _usage_line(out: Any, entries: list[Any], paint: Any) -> None:
    from aura.cli.render import format_usage

    usage: dict[str, float] = {}
    for entry in entries:
        figures = entry.get("usage")
        for key, value in (figures.items() if isinstance(figures, dict) else ()):
            if isinstance(value, (int, float)):
                usage[key] = usage.get(key, 0) + value
    if usage:
        click.echo(paint(f"usage: {format_usage(usage)}", "bold"), file=out)


@session.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object with the entries shown (with -f: one entry a line).")
@click.option("--coordinator", metavar="URL", help="Read it from this coordinator.")
@click.option("--follow", "-f", is_flag=True,
              help="Print entries as they arrive until the run ends (or rests in review).")
@click.option("--tail", "-n", type=click.IntRange(min=0), metavar="N",
              help="Only the last N entries (with -f: start that far from the end).")
@click.option("--kind", "kinds", metavar="KIND[,KIND…]",
              help="Only entries of these kinds (tool_call,error,…).")
@click.option("--grep", metavar="TEXT", help="Only entries holding TEXT (any case).")
@click.option("--since", metavar="WHEN", help="Only entries since 10m, 2h, 7d or an ISO time.")
@click.option("--no-pager", is_flag=True, help="Never page the output.")
def session_show(session_id: str, as_json: bool, coordinator: str | None,
                 follow: bool, tail: int | None, kinds: str | None, grep: str | None,
                 since: str | None, no_pager: bool) -> int:
    """The whole history of a session: executions, transitions, every entry (through a
    pager on a terminal: $AURA_PAGER, $PAGER or `less -FRX`)."""
    from aura.cli.session_view import parse_kinds
    from aura.cli.timespec import moment

    flt = EntryFilter(parse_kinds(kinds), grep or None,
                      moment(since) if since is not None else None)
    if not follow:
        _show(session_id, as_json, coordinator, flt=flt, tail=tail, page=not no_pager)
        return 0
    if coordinator is not None:
        raise AuraError("--follow reads this machine's store; for a remote run use "
                        "`aura run --on` (it streams) or `session show --coordinator`")
    return _follow(session_id, as_json, flt, tail)


def _follow(session_id: str, as_json: bool, flt: EntryFilter, tail: int | None) -> int:
    """Entries as JSON lines or text as the store receives them; exit 0 when the run is
    done (or in review), 1 when it failed, 130 when it was cancelled."""
    from aura.cli.render import Painter, format_entry, use_color
    from aura.service.control import follow

    paint = Painter(use_color(sys.stdout))

    def emit(entries: list[Any]) -> None:
        for entry in entries:
            if entry.get("delta") or not flt.keep(entry):
                continue
            if as_json:
                import json

                click.echo(json.dumps(entry, ensure_ascii=False))
                continue
            shown = format_entry(entry, paint)
            if shown is not None:
                click.echo(shown[0])

    store = open_user_store()
    full = store.get_session(session_id).id
    after = 0
    if tail is not None:
        from aura.cli.session_view import select

        # Start so that the last ``tail`` entries the filter keeps come first.
        shown = select(store.entries(full), flt, tail + 1)
        after = int(shown[0].get("seq") or 0) if len(shown) > tail else 0
    click.echo(f"[aura] following {full[:8]} (Ctrl-C stops following, not the run)", err=True)
    try:
        state = follow(store, full, emit, after_seq=after)
    except KeyboardInterrupt:
        return 130
    click.echo(f"[aura] session {full[:8]} {state}", err=True)
    return {"done": 0, "review": 0, "cancelled": 130}.get(state.value, 1)


@session.command("cancel", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the run to stop.")
def session_cancel(session_id: str, timeout: float) -> None:
    """Stop a run from another terminal, like Ctrl-C in its own (its work is saved), or
    take a queued task out of the queue's hands."""
    from aura.service.control import cancel

    store = open_user_store()
    state = cancel(store, session_id, wait=timeout)
    click.echo(f"session {store.get_session(session_id).id[:8]} {state}")


@session.command("latest", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every entry.")
def session_latest(as_json: bool) -> None:
    """The newest session (same output as `session show`)."""
    _show(None, as_json, page=False)




def _add_log_commands() -> None:
    from aura.cli.session_log import session_export, session_prune, session_rm, session_search

    for command in (session_search, session_export, session_rm, session_prune):
        session.add_command(command)


_add_log_commands()
