"""`aura session list | show ID [-f] | latest | cancel ID | steer ID TEXT | interrupt ID`:
sessions from the store or a coordinator; following, steering, interrupting and stopping
a run from another terminal."""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.completion import complete_executor, complete_session
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store
from aura.cli.session_view import EntryFilter
from aura.errors import AuraError, UsageError

# SQLite's LIMIT takes a signed 64-bit integer; a larger -n is a usage error, not a crash.
SQLITE_MAX_INT = 2**63 - 1
PROMPT_CHARS = 60  # of a prompt in `session list` when the output is no terminal


@click.group(cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def session() -> None:
    """List, show and replay sessions.

    \b
    EXAMPLES
      aura session list
      aura session show 3f2a9c
      aura session show 3f2a9c -f
      aura session latest --json
      aura session latest --coordinator wss://coord:8765
      aura session cancel 3f2a9c
      aura session steer 3f2a9c "use the existing helper instead"
      aura session interrupt 3f2a9c "stop; only fix the test"
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
        costs = {s.id: _cost_field(d) for s, d in zip(sessions, summaries, strict=True)}
        # Every listing's JSON has the key: a coordinator that does not say it is null.
        summaries = [dict(d, cost_usd=costs[s.id]) for s, d in
                     zip(sessions, summaries, strict=True)]
    else:
        if executor is not None:
            from aura.executors import registry

            executor = registry.canonical(executor)  # aliases, and a clear unknown-name error
        from aura import config
        from aura.service.usage import prices, session_cost

        store = open_user_store()
        sessions = store.list_sessions(limit, executor=executor)
        table = prices(config.load())
        costs = {s.id: session_cost(store, s, table) for s in sessions}
        summaries = [dict(session_summary(store, s), cost_usd=costs[s.id])
                     for s in sessions] if as_json else []
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text(summaries))
        return
    if not sessions:
        which = f"{executor} " if executor else ""
        click.echo(f"no {which}sessions yet; start one with `aura run --prompt …`", err=True)
        return
    from aura.cli.render import use_color

    # click drops colour codes off a terminal; FORCE_COLOR (use_color) keeps them.
    colour = use_color(sys.stdout) or None
    for line in session_table(sessions, costs):
        click.echo(line, color=colour)


def money(cost: float | None) -> str:
    """A session's cost in a table: "$0.12", "<$0.01", "-" when unknown."""
    if cost is None:
        return "-"
    return "<$0.01" if 0 < cost < 0.005 else f"${cost:.2f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cost_field(data: dict[str, Any]) -> float | None:
    value = data.get("cost_usd")
    return float(value) if isinstance(value, (int, float)) and \
        not isinstance(value, bool) else None


def session_table(sessions: list[Any], costs: dict[str, float | None]) -> list[str]:
    """The rows of `session list`, fitted to the terminal: the prompt is cut first, then
    duration, executor, start, cost and repo are left out, in that order."""
    from aura.cli.render import Painter, table, terminal_text, terminal_width, use_color
    from aura.cli.wording import STATE_STYLES, ago, duration, parse_ts, repo_label

    paint = Painter(use_color(sys.stdout))
    width = terminal_width()
    rows = [("ID", "EXECUTOR", "STATE", "REPO", "STARTED", "DURATION", "COST", "PROMPT")]
    for s in sessions:
        started, updated = parse_ts(s.created_at), parse_ts(s.updated_at)
        took = duration((updated - started).total_seconds()) if started and updated else "-"
        cost = costs.get(s.id)
        repo = terminal_text(repo_label(s.options, s.cwd))
        rows.append((s.id[:8], s.executor, s.state, repo[:17] + "…" if len(repo) > 18
                     else repo, ago(s.created_at), took,
                     money(cost),
                     _clip(" ".join(terminal_text(s.prompt[:400]).split()),
                           PROMPT_CHARS if width is None else 120)))
    return table(rows, width, flexible=7, drop=(5, 1, 4, 6, 3),
                 styles={2: lambda cell: paint(cell, *STATE_STYLES.get(cell, ()))})


def _history(session_id: str | None, coordinator: str | None) -> dict[str, Any]:
    """The session as `session show --json` prints it, from the store or a coordinator
    (None: the newest session here)."""
    if coordinator is not None:  # None: the coordinator's newest session
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
          flt: EntryFilter | None = None, tail: int | None = None, page: bool = True,
          verbose: bool = False) -> None:
    data = _history(session_id, coordinator)
    from aura.cli.pager import paged
    from aura.cli.render import Painter, json_text, terminal_text, use_color
    from aura.cli.session_view import select, unshown_transitions, write_entries
    from aura.cli.wording import STATE_STYLES, Story, ago, duration, parse_ts

    flt = flt or EntryFilter()
    every = data["entries"]
    data["entries"] = select(every, flt, tail, deltas=as_json)
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
        state = terminal_text(str(data["state"]))
        click.echo(f"  state     {paint(state, *STATE_STYLES.get(state, ()))}", file=out)
        say(f"  cwd       {data['cwd']}")
        if data["native_session_id"]:
            say(f"  native id {data['native_session_id']}")
        say(f"  created   {ago(data['created_at'])} ({data['created_at']})   "
            f"updated {ago(data['updated_at'])}")
        for e in data["executions"]:
            began, ended = parse_ts(e["started_at"]), parse_ts(e["ended_at"])
            took = duration((ended - began).total_seconds()) if began and ended \
                else "running"
            say(f"  execution {e['id'][:8]} {e['stage']:<17} {e['state']:<10} "
                f"exit {e['exit_code'] if e['exit_code'] is not None else '-':<4} "
                f"{took:<9} started {ago(e['started_at'])}  on {e['host']}")
        click.echo(paint("transitions", "bold"), file=out)
        moves = Story()
        for t in unshown_transitions(data["transitions"], data["entries"]):
            words, styles = moves.move({"from": t["from"], "to": t["to"], "ts": t["at"],
                                        "reason": t["reason"]})
            reason = f"  ({t['reason']})" if verbose and t["reason"] else ""
            click.echo(f"  {ago(t['at']):>9}  " + paint(terminal_text(words), *styles) +
                       terminal_text(reason), file=out)
        click.echo(paint("entries", "bold"), file=out)
        write_entries(out, data["entries"], every, paint, verbose=verbose)
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
@click.option("--verbose", is_flag=True,
              help="Show every entry whole (the review prompt, tool output, thinking).")
def session_show(session_id: str, as_json: bool, coordinator: str | None,
                 follow: bool, tail: int | None, kinds: str | None, grep: str | None,
                 since: str | None, no_pager: bool, verbose: bool) -> int:
    """The whole history of a session: executions, transitions, every entry (through a
    pager on a terminal: $AURA_PAGER, $PAGER or `less -FRX`)."""
    from aura.cli.session_view import parse_kinds
    from aura.cli.timespec import moment

    flt = EntryFilter(parse_kinds(kinds), grep or None,
                      moment(since) if since is not None else None)
    if not follow:
        _show(session_id, as_json, coordinator, flt=flt, tail=tail, page=not no_pager,
              verbose=verbose)
        return 0
    return _follow(session_id, as_json, flt, tail, verbose, coordinator)


def _follow(session_id: str, as_json: bool, flt: EntryFilter, tail: int | None,
            verbose: bool = False, coordinator: str | None = None) -> int:
    """Entries as JSON lines or text as the store (or the coordinator) receives them;
    exit 0 when the run is done (or in review), 1 when it failed, 130 when it was
    cancelled."""
    from aura.cli.render import Painter, format_entry, json_text, use_color
    from aura.cli.wording import Story

    paint = Painter(use_color(sys.stdout))
    story = Story()

    def emit(entries: list[Any]) -> None:
        for entry in entries:
            if not flt.keep(entry) or (entry.get("delta") and not as_json):
                continue  # streamed pieces: JSON keeps them; the text shows the whole
            if as_json:
                click.echo(json_text(entry, compact=True))
                continue
            shown = format_entry(entry, paint, story, verbose)
            if shown is not None:
                click.echo(shown[0])

    try:
        if coordinator is not None:
            said = _follow_remote(coordinator, session_id, emit, tail)
            full = session_id
        else:
            full, said = _follow_local(session_id, emit, flt, tail)
    except KeyboardInterrupt:
        return 130
    code = {"done": 0, "review": 0, "cancelled": 130}.get(said, 1)
    if said == "review":
        from aura.cli.wording import VERDICTS

        said = f"review: {VERDICTS.get(story.verdict or '', 'no verdict given')}"
    click.echo(f"[aura] session {full[:8]} {said}", err=True)
    return code


def _follow_local(session_id: str, emit: Any, flt: EntryFilter, tail: int | None
                  ) -> tuple[str, str]:
    from aura.service.control import follow

    store = open_user_store()
    full = store.get_session(session_id).id
    after = 0
    if tail is not None:
        from aura.cli.session_view import select

        # Start so that the last ``tail`` entries the filter keeps come first.
        shown = select(store.entries(full), flt, tail + 1)
        after = int(shown[0].get("seq") or 0) if len(shown) > tail else 0
    click.echo(f"[aura] following {full[:8]} (Ctrl-C stops following, not the run)", err=True)
    return full, str(follow(store, full, emit, after_seq=after).value)


def _follow_remote(coordinator: str, session_id: str, emit: Any, tail: int | None) -> str:
    """Through the coordinator: the session's entries as it stores them, until its
    running execution ends (``tail``: start that many entries before the end)."""
    from aura.remote.client import follow_remote

    click.echo(f"[aura] following {session_id} through {coordinator} (Ctrl-C stops "
               "following, not the run)", err=True)
    return follow_remote(coordinator, session_id, tail=tail,
                         on_records=lambda records: emit([e for _q, e, _t in records
                                                          if isinstance(e, dict)]),
                         on_notice=lambda line: click.echo(line, err=True))


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


def _text(text: str | None, prompt: str | None, required: bool) -> str:
    """TEXT or -p TEXT (not both); ``-`` reads stdin."""
    if text is not None and prompt is not None:
        raise UsageError("give the text once: as the argument or with -p, not both")
    given = text if text is not None else prompt
    if given == "-":
        given = sys.stdin.read().rstrip("\n")
    if given is None or not given.strip():
        if required or given is not None:
            raise UsageError("the text is empty" + (" (read from stdin)"
                                                   if (prompt or text) == "-" else ""))
        return ""
    return given


@session.command("steer", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.argument("text", metavar="[TEXT]", required=False)
@click.option("--prompt", "-p", metavar="TEXT", help="The text ('-' reads it from stdin).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the run to take it.")
def session_steer(session_id: str, text: str | None, prompt: str | None,
                  timeout: float) -> None:
    """Tell a running session something: into its running turn where the agent takes
    text mid-turn (claude with approvals, codex app-server), else queued as the next
    follow-up, run in the same agent session once the current turn ends."""
    from aura.service.control import steer

    message = _text(text, prompt, required=True)
    store = open_user_store()
    control = steer(store, session_id, message, wait=timeout)
    short = control.session[:8]
    if control.state == "delivered":
        click.echo(f"steered {short}: the text went into the running turn")
    elif control.state == "queued":
        click.echo(f"queued for {short}: it runs as the next follow-up when the current "
                   f"turn ends ({control.note})")
    else:
        raise AuraError(f"steering {short} refused: {control.note}")


@session.command("interrupt", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.argument("text", metavar="[TEXT]", required=False)
@click.option("--prompt", "-p", metavar="TEXT",
              help="A follow-up to run after the interrupted turn ('-' reads stdin).")
@click.option("--cancel", "fallback", is_flag=True,
              help="Where the agent cannot be interrupted, cancel the run instead.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the run to take it.")
def session_interrupt(session_id: str, text: str | None, prompt: str | None,
                      fallback: bool, timeout: float) -> None:
    """End the running turn the agent's own way (claude's interrupt, codex
    turn/interrupt, ACP session/cancel), keeping its session for a follow-up; TEXT runs
    as that follow-up at once. Agents without one are refused (exit 1) unless --cancel."""
    from aura.service.control import cancel, interrupt

    follow = _text(text, prompt, required=False)
    store = open_user_store()
    control = interrupt(store, session_id, text=follow, wait=timeout)
    short = control.session[:8]
    if control.state == "delivered":
        click.echo(f"interrupted {short}" + ("; the follow-up runs next" if follow else
                                             f"; continue with `aura run --session {short}"
                                             " TEXT`"))
        return
    if fallback:
        click.echo(f"cannot interrupt {short} ({control.note}); cancelling it", err=True)
        click.echo(f"session {short} {cancel(store, control.session, wait=30.0)}")
        return
    raise AuraError(f"interrupting {short} refused: {control.note}; "
                    f"`aura session cancel {short}` stops the run (or pass --cancel)")


@session.command("latest", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every entry.")
@click.option("--coordinator", metavar="URL",
              help="The newest session of this coordinator (runs made with --on).")
def session_latest(as_json: bool, coordinator: str | None) -> None:
    """The newest session (same output as `session show`)."""
    _show(None, as_json, coordinator, page=False)




def _add_log_commands() -> None:
    from aura.cli.session_log import session_export, session_prune, session_rm, session_search

    for command in (session_search, session_export, session_rm, session_prune):
        session.add_command(command)


_add_log_commands()
