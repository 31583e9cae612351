"""The command line: parse, call service.py, render, choose the exit code. No logic.

Only click is imported at module level; everything else is imported inside the command
that needs it, because every TAB press and every `aura --help` pays for module imports.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from . import __version__
from .cli_doctor import doctor_command
from .completion import (
    complete_command,
    complete_executor,
    complete_model,
    complete_session,
    complete_worker,
    completion_command,
)
from .errors import AuraError, UsageError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"aura: error: {message}", err=True)
    sys.exit(code)


class AuraGroup(click.Group):
    """Turns AuraError into one line on stderr (the trace with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuraError as exc:
            if _debug_requested(ctx):
                raise
            _fail(str(exc), exc.exit_code)


def _debug_requested(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or "--debug" in sys.argv[1:]


@click.group(cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="aura",
                      message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """aura runs coding agents headless in prepared workspaces, streams their output as one
    normalized format, and keeps every session in SQLite.

    \b
    Start:   aura run --executor custom --base-command "python3 agent.py" --prompt "fix it"
    Review:  aura session list / aura session show ID / aura session latest
    """


# run ----------------------------------------------------------------------------------------

def _parse_vars(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
                ) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE (KEY: letters, digits, _)")
        parsed[key] = rest
    return parsed


def _parse_paths(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
                 ) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{value!r} is not NAME=PATH")
        if "/" in path or path.startswith("~"):
            # Remembered and used from other directories (--cwd): never relative.
            import os

            path = os.path.abspath(os.path.expanduser(path))
        parsed[name] = path
    return parsed


def _parse_bool(_ctx: click.Context, _param: click.Parameter, value: str | None
                ) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in {"true", "yes", "1", "on"}:
        return True
    if lowered in {"false", "no", "0", "off"}:
        return False
    raise click.BadParameter(f"{value!r} is not true or false")


def run_options(func: Any) -> Any:
    """The options shared by `aura run` and `aura tui`."""
    options = [
        click.option("--executor", "-e", metavar="NAME", shell_complete=complete_executor,
                     help="Agent to run (default: codex; see `aura executors`)."),
        click.option("--prompt", "-p", metavar="TEXT",
                     help="The task for the agent ('-' reads it from stdin)."),
        click.option("--append-prompt", metavar="TEXT", default="",
                     help="Text appended to the prompt, no separator."),
        click.option("--cwd", metavar="PATH", type=click.Path(file_okay=False),
                     help="Directory the agent runs in (inside a git repo: in a worktree "
                          "of it on a new aura/ branch, unless --in-place)."),
        click.option("--session", "session_id", metavar="ID", shell_complete=complete_session,
                     help="Continue this session (a unique id prefix is enough)."),
        click.option("--resume-latest", is_flag=True,
                     help="Continue the newest session of this executor and directory."),
        click.option("--model", "-m", metavar="NAME", shell_complete=complete_model,
                     help="Model for the agent."),
        click.option("--base-command", metavar="CMD",
                     help="Program to run instead of the agent's own (shell-quoted)."),
        click.option("--param", "params", multiple=True, metavar="ARG",
                     help="Extra argument for the agent (repeatable; may start with '-')."),
        click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE",
                     callback=_parse_vars, help="Environment variable for the agent (repeatable)."),
        click.option("--executor-path", multiple=True, metavar="NAME=PATH",
                     callback=_parse_paths,
                     help="Where an executor's binary is (remembered in the config)."),
        click.option("--openai-endpoint", metavar="URL",
                     help="OpenAI-compatible endpoint (custom, ollama, lms)."),
        click.option("--refresh-model-cache", is_flag=True,
                     help="Discover models again instead of using the 24 h cache."),
        click.option("--yolo", is_flag=True, help="Approve everything the agent asks."),
        click.option("--force", "-f", is_flag=True, help="cursor-agent: allow all commands."),
        click.option("--trust", is_flag=True, help="cursor-agent: trust the workspace."),
        click.option("--auto-approve", metavar="true|false", callback=_parse_bool,
                     help="Set the agent's auto-approve level where it has one."),
        click.option("--allow-all-tools", is_flag=True, help="copilot: allow every tool."),
        click.option("--allow-tool", "allow_tools", multiple=True, metavar="TOOL",
                     help="copilot: allow this tool (repeatable)."),
        click.option("--deny-tool", "deny_tools", multiple=True, metavar="TOOL",
                     help="copilot: deny this tool (repeatable)."),
        click.option("--line-cap", type=click.IntRange(min=1024), metavar="BYTES",
                     help="Cut agent output lines longer than this (default 8 MiB)."),
        click.option("--repo", "repos", multiple=True, metavar="PATH",
                     help="Work on a new branch in a worktree of this repo (repeatable)."),
        click.option("--base", metavar="BRANCH",
                     help="Start the new branches from this branch or commit (default HEAD)."),
        click.option("--in-place", is_flag=True,
                     help="Work in the checkout itself, not a worktree (refused when dirty)."),
        click.option("--allow-dirty", is_flag=True,
                     help="With --in-place: work on top of uncommitted changes."),
        click.option("--setup", "setup", multiple=True, metavar="CMD",
                     help="Run this in the workspace before the agent (repeatable)."),
        click.option("--cleanup", "cleanup", multiple=True, metavar="CMD",
                     help="Run this in the workspace after the agent (repeatable)."),
        click.option("--review", is_flag=True, default=None,
                     help="Have an agent review the diff after the coding run."),
        click.option("--review-executor", metavar="NAME",
                     help="Executor of the review (default: the coding one)."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print entries as JSON lines, then a summary line."),
        click.option("--no-tui", is_flag=True, help="Stream plain text instead of the TUI."),
        click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
        click.option("--on", metavar="WORKER|label:X", shell_complete=complete_worker,
                     help="Run on a remote worker (via the coordinator; see `aura workers`)."),
        click.option("--coordinator", metavar="URL",
                     help="Coordinator for --on (default: AURA_COORDINATOR, config)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command(context_settings=CONTEXT_SETTINGS)
@run_options
def run(**kwargs: Any) -> int:
    """Run an agent on a prompt (a new session, or a follow-up with --session)."""
    return _run(kwargs)


@cli.command("tui", context_settings=CONTEXT_SETTINGS)
@run_options
def tui_command(**kwargs: Any) -> int:
    """Open the terminal UI: logs, queue, model, prompt (--prompt starts a turn at once)."""
    if kwargs["as_json"] or kwargs["no_tui"]:
        raise UsageError("--json and --no-tui belong to `aura run`; `aura tui` is the TUI")
    if kwargs.get("on"):
        raise UsageError("the TUI runs sessions on this machine; for a worker use "
                         "`aura run --on WORKER --prompt …`")
    return _run(kwargs, tui=True)


def _run(kw: dict[str, Any], tui: bool | None = None) -> int:
    """One turn (or, with the TUI, as many as the user sends). ``tui``: None decides by
    the terminal (a TTY on both ends, no --no-tui, no --json)."""
    import asyncio
    import json
    import signal

    from .executors.base import Approvals
    from .render import JsonPrinter, StreamPrinter
    from .service import EXIT_INTERRUPTED, RunOptions
    from .service import run as run_service
    from .store_sqlite import open_store

    prompt = kw["prompt"]
    if prompt == "-":
        prompt = sys.stdin.read().rstrip("\n")
    if tui is None:
        tui = not kw["no_tui"] and not kw["as_json"] and sys.stdin.isatty() and \
            sys.stdout.isatty()
    if not prompt and (not tui or kw.get("on")):
        raise UsageError("--prompt is required (the task for the agent)")
    if kw.get("on"):  # remote runs stream as plain text; the TUI runs local sessions
        from .cli_remote import run_remote

        return run_remote(kw, prompt)
    if kw["executor_path"]:
        _remember_executor_paths(kw["executor_path"])
    from .process import DEFAULT_LINE_CAP

    options = RunOptions(
        prompt=prompt, executor=kw["executor"], append_prompt=kw["append_prompt"],
        cwd=kw["cwd"], session=kw["session_id"], resume_latest=kw["resume_latest"],
        model=kw["model"], base_command=kw["base_command"], params=tuple(kw["params"]),
        vars=kw["vars_"],
        approvals=Approvals(yolo=kw["yolo"], force=kw["force"], trust=kw["trust"],
                            auto_approve=kw["auto_approve"],
                            allow_all_tools=kw["allow_all_tools"],
                            allow_tools=tuple(kw["allow_tools"]),
                            deny_tools=tuple(kw["deny_tools"])),
        executor_paths=kw["executor_path"], openai_endpoint=kw["openai_endpoint"],
        line_cap=kw["line_cap"] or DEFAULT_LINE_CAP,
        interactive=sys.stdin.isatty() and sys.stdout.isatty(),
        repos=tuple(kw["repos"]), base=kw["base"], in_place=kw["in_place"],
        allow_dirty=kw["allow_dirty"], setup=tuple(kw["setup"]), cleanup=tuple(kw["cleanup"]),
        review=kw["review"] or (True if kw["review_executor"] else None),
        review_executor=kw["review_executor"],
        refresh_model_cache=kw["refresh_model_cache"])
    if tui:
        from .tui import run_tui

        code, last = run_tui(options, prompt or None)
        if last is not None:
            _print_outcome(last)
        return code
    store = open_store()
    watcher = JsonPrinter() if kw["as_json"] else StreamPrinter()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await run_service(options, store, watcher)

    try:
        result = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED
    except AuraError as exc:
        if kw["as_json"]:
            # Scripts always get a summary line, even when the run never started.
            click.echo(json.dumps({"kind": "summary", "session": None, "execution": None,
                                   "state": "failed", "exit_code": exc.exit_code,
                                   "native_session_id": None, "usage": {},
                                   "error": str(exc)}, ensure_ascii=False))
        raise
    finally:
        store.close()
    try:
        if kw["as_json"]:
            click.echo(json.dumps(result.summary(), ensure_ascii=False))
        else:
            _print_outcome(result)
    except BrokenPipeError:
        _silence_stdout()
    if result.aura_error and result.error and not kw["as_json"]:
        # aura's own failure (not the agent's, which its `error` entry already showed).
        click.echo(f"aura: error: {result.error}", err=True)
    return result.exit_code


def _silence_stdout() -> None:
    # The reader of our stdout went away (`aura run --json | head`): the run is stored;
    # point stdout at /dev/null so the interpreter's final flush does not complain.
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _print_outcome(result: Any) -> None:
    from .render import Painter, format_usage, use_color

    paint = Painter(use_color(sys.stderr))
    color = {"done": "green", "cancelled": "yellow", "review": "cyan"}.get(result.state, "red")
    usage = f"  usage: {format_usage(result.usage)}" if result.usage else ""
    click.echo(paint(f"[aura] session {result.session.id[:8]} {result.state} "
                     f"(exit {result.exit_code}){usage}", color) +
               paint(f"  follow up: aura run --session {result.session.id[:8]} --prompt …",
                     "dim"), err=True)


def _remember_executor_paths(paths: dict[str, str]) -> None:
    import os
    import shutil

    from . import config
    from .executors import registry

    for name, path in paths.items():
        registry.canonical(name)
        usable = os.path.isfile(path) and os.access(path, os.X_OK) if os.sep in path \
            else shutil.which(path) is not None
        if not usable:
            raise UsageError(f"--executor-path {name}={path}: not an executable file "
                             "(nothing was remembered)")
    data = config.load()
    stored = data.setdefault("executor_paths", {})
    for name, path in paths.items():
        stored[registry.canonical(name)] = path
    config.save(data)


def _open_store() -> Any:
    """The user's store, with executions of crashed auras marked orphaned first."""
    from .liveness import sweep_orphans
    from .store_sqlite import open_store

    store = open_store()
    sweep_orphans(store)
    return store


# sessions -----------------------------------------------------------------------------------

@cli.group(cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def session() -> None:
    """List, show and replay sessions."""


@session.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many sessions (newest first).")
@click.option("--executor", "-e", metavar="NAME", shell_complete=complete_executor,
              help="Only sessions of this executor.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of sessions.")
@click.option("--coordinator", metavar="URL", help="List this coordinator's sessions.")
def session_list(limit: int, executor: str | None, as_json: bool,
                 coordinator: str | None) -> None:
    """Sessions, newest first."""
    import json

    from .contracts import Session
    from .store import session_summary

    if coordinator is not None:
        from .cli_remote import fetch_sessions

        summaries = fetch_sessions(coordinator, limit, executor)
        sessions = [Session.from_json(data) for data in summaries]
    else:
        if executor is not None:
            from .executors import registry

            executor = registry.canonical(executor)  # aliases, and a clear unknown-name error
        store = _open_store()
        sessions = store.list_sessions(limit, executor=executor)
        summaries = [session_summary(store, s) for s in sessions] if as_json else []
    if as_json:
        click.echo(json.dumps(summaries, ensure_ascii=False, indent=2))
        return
    if not sessions:
        which = f"{executor} " if executor else ""
        click.echo(f"no {which}sessions yet; start one with `aura run --prompt …`", err=True)
        return
    from .render import format_duration, parse_ts, short_path

    rows = [("ID", "EXECUTOR", "STATE", "CWD", "STARTED", "DURATION", "PROMPT")]
    for s in sessions:
        started, updated = parse_ts(s.created_at), parse_ts(s.updated_at)
        duration = format_duration((updated - started).total_seconds()) \
            if started and updated else "-"
        when = started.astimezone().strftime("%Y-%m-%d %H:%M") if started else "-"
        prompt = " ".join(s.prompt.split())
        rows.append((s.id[:8], s.executor, s.state, short_path(s.cwd), when, duration,
                     prompt[:47] + "…" if len(prompt) > 48 else prompt))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) +
                   "  " + row[-1])


def _show(session_id: str | None, as_json: bool, coordinator: str | None = None) -> None:
    import json

    if coordinator is not None and session_id is not None:
        from .cli_remote import fetch_session

        data = fetch_session(coordinator, session_id)
    else:
        from .store import session_history

        store = _open_store()
        if session_id is None:
            latest = store.list_sessions(1)
            if not latest:
                raise AuraError("no sessions yet; start one with `aura run --prompt …`")
            session_id = latest[0].id
        data = session_history(store, session_id)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from .render import Painter, format_entry, format_usage, use_color

    paint = Painter(use_color(sys.stdout))
    click.echo(paint(f"session {data['id']}", "bold"))
    click.echo(f"  executor  {data['executor']}" +
               (f"  model {data['model']}" if data["model"] else ""))
    click.echo(f"  state     {data['state']}")
    click.echo(f"  cwd       {data['cwd']}")
    if data["native_session_id"]:
        click.echo(f"  native id {data['native_session_id']}")
    click.echo(f"  created   {data['created_at']}   updated {data['updated_at']}")
    for e in data["executions"]:
        click.echo(f"  execution {e['id'][:8]} {e['stage']:<16} {e['state']:<10} "
                   f"exit {e['exit_code'] if e['exit_code'] is not None else '-':<4} "
                   f"{e['started_at']} → {e['ended_at'] or '…'}  on {e['host']}")
    click.echo(paint("transitions", "bold"))
    for t in data["transitions"]:
        click.echo(f"  {t['at']}  {t['from'] or '∅'} → {t['to']}  {t['reason']}")
    click.echo(paint("entries", "bold"))
    usage: dict[str, float] = {}
    for entry in data["entries"]:
        try:
            shown = format_entry(entry, paint)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            shown = (f"[unprintable {entry.get('kind')} entry: {type(exc).__name__}]", True)
        if shown is not None:
            click.echo(f"{paint(str(entry.get('seq', '')).rjust(5), 'dim')} {shown[0]}")
        for key, value in (entry.get("usage") or {}).items():
            if isinstance(value, (int, float)):
                usage[key] = usage.get(key, 0) + value
    if usage:
        click.echo(paint(f"usage: {format_usage(usage)}", "bold"))


@session.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every entry.")
@click.option("--coordinator", metavar="URL", help="Read it from this coordinator.")
def session_show(session_id: str, as_json: bool, coordinator: str | None) -> None:
    """The whole history of a session: executions, transitions, every entry."""
    _show(session_id, as_json, coordinator)


@session.command("latest", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every entry.")
def session_latest(as_json: bool) -> None:
    """The newest session (same output as `session show`)."""
    _show(None, as_json)


# help ---------------------------------------------------------------------------------------

@cli.command("help", context_settings=CONTEXT_SETTINGS)
@click.argument("command", nargs=-1, shell_complete=complete_command)
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show help for aura or for one command (`aura help run`)."""
    group: click.Command = cli
    # Chain the contexts so the usage line reads `aura session list`, not `aura list`.
    sub = click.Context(cli, info_name="aura")
    for name in command:
        if not isinstance(group, click.Group) or name not in group.commands:
            raise UsageError(f"no command {' '.join(command)!r}; see `aura help`")
        group = group.commands[name]
        sub = click.Context(group, info_name=name, parent=sub)
    click.echo(group.get_help(sub))


# commands in their own modules (one line each) --------------------------------------------

from .cli_board import board_command  # noqa: E402
from .cli_executors import executors_command  # noqa: E402
from .cli_models import models_command  # noqa: E402

cli.add_command(executors_command)
cli.add_command(models_command)
cli.add_command(completion_command)
cli.add_command(doctor_command)

from .cli_remote import serve_command, worker_command, workers_command  # noqa: E402

cli.add_command(serve_command)
cli.add_command(worker_command)
cli.add_command(workers_command)

from .cli_workspace import workspace_command  # noqa: E402

cli.add_command(workspace_command)
cli.add_command(board_command)


# entry point --------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> NoReturn:
    """Run aura; one-line errors, exit codes as documented in ARCHITECTURE.md."""
    import os

    if os.environ.get("_AURA_COMPLETE"):
        from .completion import register_shells

        register_shells()
    try:
        code = cli.main(args=argv, prog_name="aura", complete_var="_AURA_COMPLETE",
                        standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aura: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        # Bare `aura` / `aura session`: the help is what was asked for, not an error.
        click.echo(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "aura"
        _fail(f"{exc.format_message()} (see `{command} --help`)", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except AuraError as exc:
        if "--debug" in (argv if argv is not None else sys.argv[1:]):
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
