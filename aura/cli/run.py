"""`aura run` and `aura tui`: the run options, one turn in plain or JSON mode, the TUI."""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.completion import (
    complete_executor,
    complete_model,
    complete_session,
    complete_worker,
)
from aura.cli.output import (
    CONTEXT_SETTINGS,
    debug_option,
    print_outcome,
    silence_stdout,
)
from aura.errors import AuraError, UsageError


def _parse_vars(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
                ) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE (KEY: letters, digits, _)")
        parsed[key] = rest
    return parsed


def _parse_secret_vars(_ctx: click.Context, _param: click.Parameter,
                       values: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE, or KEY alone for the value of KEY in aura's environment."""
    import os

    parsed: dict[str, str] = {}
    for value in values:
        if "=" in value:
            parsed.update(_parse_vars(_ctx, _param, (value,)))
        elif value in os.environ:
            parsed.update(_parse_vars(_ctx, _param, (f"{value}={os.environ[value]}",)))
        else:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE, nor set in the environment")
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


# The agent: which one, on what, with which settings and approvals.
_AGENT_OPTIONS = [
    click.option("--executor", "-e", "executor", multiple=True, metavar="NAME",
                 shell_complete=complete_executor,
                 help="Agent to run (default: AURA_EXECUTOR, else `aura config set "
                      "executor NAME`, else codex; see `aura executors`). Repeat it to "
                      "run one attempt per executor."),
    click.option("--prompt", "-p", metavar="TEXT",
                 help="The task for the agent, instead of the PROMPT argument ('-' "
                      "reads it from stdin)."),
    click.option("--append-prompt", metavar="TEXT", default="",
                 help="Text appended to the prompt, no separator."),
    click.option("--cwd", metavar="PATH", type=click.Path(file_okay=False),
                 help="Directory the agent runs in (inside a git repo: in a worktree "
                      "of it on a new aura/ branch, unless --in-place)."),
    click.option("--session", "session_id", metavar="ID", shell_complete=complete_session,
                 help="Continue this session (a unique id prefix is enough)."),
    click.option("--resume-latest", is_flag=True,
                 help="Continue the newest session of this executor and directory."),
    click.option("--wait", is_flag=True,
                 help="If the session is running in another aura, wait for it to finish "
                      "(default: refuse)."),
    click.option("--model", "-m", metavar="NAME", shell_complete=complete_model,
                 help="Model for the agent."),
    click.option("--base-command", metavar="CMD",
                 help="Program to run instead of the agent's own (shell-quoted)."),
    click.option("--param", "params", multiple=True, metavar="ARG",
                 help="Extra argument for the agent (repeatable; may start with '-')."),
    click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE",
                 callback=_parse_vars, help="Environment variable for the agent (repeatable; "
                                            "stored with the session)."),
    click.option("--secret-var", "secret_vars", multiple=True, metavar="KEY[=VALUE]",
                 callback=_parse_secret_vars,
                 help="Environment variable for the agent that is never stored (KEY "
                      "alone: its value in aura's environment; follow-ups read it again)."),
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
    click.option("--approval-timeout", type=click.FloatRange(min=0, min_open=True,
                                                             max=7 * 24 * 3600),
                 metavar="SECONDS",
                 help="With nobody to ask (no TTY, --json), deny a request nobody "
                      "answered (`aura approve`) after this long (default 300)."),
    click.option("--no-ask", is_flag=True,
                 help="Ask nobody: the agent runs in its plain headless mode and its "
                      "approval flags answer (as --yolo, --allow-tool… say)."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=7 * 24 * 3600),
                 metavar="SECONDS",
                 help="End the run as failed when it takes longer than this (work saved)."),
    click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True,
                                                         max=7 * 24 * 3600),
                 metavar="SECONDS",
                 help="End the run as failed after this long without output (work saved)."),
]
# Output limits, the pipeline (workspaces, scripts, review), output mode, where it runs.
_RUN_OPTIONS = [
    click.option("--max-cost", type=click.FloatRange(min=0, min_open=True, max=1e6),
                 metavar="USD",
                 help="Stop the run (saving its work) once its recorded cost passes this."),
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
    click.option("--check", "checks", multiple=True, metavar="CMD",
                 help="Run this (sh -c) in the workspace after the agent; its exit code "
                      "and output's tail are stored (repeatable; after .aura.toml's check)."),
    click.option("--attempts", type=click.IntRange(min=1, max=32), metavar="N",
                 help="Run the prompt N times per executor, each attempt in its own "
                      "worktree, grouped (see `aura compare GROUP`)."),
    click.option("--review", is_flag=True, default=None,
                 help="Have an agent review the diff after the coding run."),
    click.option("--review-executor", metavar="NAME",
                 help="Executor of the review (default: the coding one)."),
    click.option("--json", "as_json", is_flag=True,
                 help="Print entries as JSON lines, then a summary line."),
    click.option("--no-tui", is_flag=True, help="Stream plain text instead of the TUI."),
    click.option("--detach", "-d", is_flag=True,
                 help="Run in the background: print the session id and return at once "
                      "(follow with `aura session show ID -f`)."),
    debug_option(),
    click.option("--on", metavar="WORKER|label:X", shell_complete=complete_worker,
                 help="Run on a remote worker (via the coordinator; see `aura workers`)."),
    click.option("--coordinator", metavar="URL",
                 help="Coordinator for --on (default: AURA_COORDINATOR, config)."),
]


def run_options(func: Any) -> Any:
    """The options shared by `aura run`, `aura tui` and `aura task add`, and the prompt as
    an optional argument (`aura run 'fix the failing test'`)."""
    for option in reversed([*_AGENT_OPTIONS, *_RUN_OPTIONS]):
        func = option(func)
    return click.argument("prompt_arg", metavar="[PROMPT]", required=False)(func)


def take_executors(kw: dict[str, Any]) -> tuple[str, ...]:
    """The --executor values given; ``kw["executor"]`` becomes the one executor of a
    single run (None when none or several were given)."""
    given = kw.get("executor") or ()
    executors = (given,) if isinstance(given, str) else tuple(given)
    kw["executor"] = executors[0] if len(executors) == 1 else None
    return executors


def take_prompt(kw: dict[str, Any]) -> str | None:
    """The prompt, given as the argument or with --prompt (not both); '-' reads stdin,
    which must not be empty."""
    positional = kw.pop("prompt_arg", None)
    prompt = kw.get("prompt")
    if positional is not None and prompt is not None:
        raise UsageError("give the prompt once: as the argument or with --prompt, not both")
    if positional is not None:
        prompt = kw["prompt"] = positional
    if prompt == "-":
        prompt = sys.stdin.read().rstrip("\n")
        if not prompt.strip():
            raise UsageError("the prompt read from stdin (--prompt -) was empty")
    return prompt


@click.command("run", context_settings=CONTEXT_SETTINGS)
@run_options
def run_command(**kwargs: Any) -> int:
    """Run an agent on a prompt (a new session, or a follow-up with --session).

    \b
    EXAMPLES
      aura run 'fix the failing test'
      aura run -e claude -m opus 'add a --json flag to the list command'
      git diff | aura run -p - --no-tui
      aura run --repo . --review 'refactor the parser'
      aura run --session 3f2a9c 'now add tests'
      aura run --detach 'update the changelog'
      aura run -e claude -e codex --attempts 2 --check 'pytest -q' 'fix the bug'
    """
    return _run(kwargs)


@click.command("tui", context_settings=CONTEXT_SETTINGS)
@run_options
def tui_command(**kwargs: Any) -> int:
    """Open the terminal UI: logs, queue, model, prompt (--prompt starts a turn at once)."""
    if len(take_executors(kwargs)) > 1 or (kwargs.get("attempts") or 1) > 1:
        raise UsageError("several attempts belong to `aura run`; the TUI runs one session")
    if kwargs["as_json"] or kwargs["no_tui"]:
        raise UsageError("--json and --no-tui belong to `aura run`; `aura tui` is the TUI")
    if kwargs.get("detach"):
        raise UsageError("--detach belongs to `aura run`; `aura tui` is the TUI")
    if kwargs.get("on"):
        raise UsageError("the TUI runs sessions on this machine; for a worker use "
                         "`aura run --on WORKER --prompt …`")
    return _run(kwargs, tui=True)


def _run(kw: dict[str, Any], tui: bool | None = None) -> int:
    """One turn (or, with the TUI, as many as the user sends). ``tui``: None decides by
    the terminal (a TTY on both ends, no --no-tui, no --json)."""
    from aura.service.run_options import RunOptions

    executors = take_executors(kw)
    prompt = take_prompt(kw) or ""
    if len(executors) > 1 or (kw.get("attempts") or 1) > 1:
        from aura.cli.attempts import run_group

        if kw["executor_path"]:
            remember_executor_paths(kw["executor_path"])
        return run_group({**kw, "executor_path": {}}, prompt, executors)
    if tui is None:
        tui = not kw["no_tui"] and not kw["as_json"] and sys.stdin.isatty() and \
            sys.stdout.isatty()
    if not prompt and (not tui or kw.get("on") or kw.get("detach")):
        raise UsageError("a prompt is required: `aura run 'the task'` or --prompt TEXT")
    if kw["executor_path"] and (kw.get("detach") or not kw.get("on")):
        remember_executor_paths(kw["executor_path"])
    if kw.get("detach"):  # in the background: the paths are remembered, not sent
        from aura.cli.detach import run_detached

        return run_detached({**kw, "executor_path": {}}, prompt)
    if kw.get("on"):  # remote runs stream as plain text; the TUI runs local sessions
        from aura.cli.remote import run_remote

        return run_remote(kw, prompt)
    person = None
    if not tui:
        from aura.cli.approval_prompt import terminal_person

        person = terminal_person(kw["as_json"])
    options = RunOptions.from_cli(kw, prompt=prompt, asker=terminal_asker(), person=person)
    if tui:
        from aura.tui.app import run_tui

        code, last = run_tui(options, prompt or None)
        if last is not None:
            print_outcome(last.summary())
        return code
    return run_plain(options, as_json=kw["as_json"])


def terminal_asker() -> Any:
    """Someone to ask (a model, an endpoint) when both ends are a terminal, else None."""
    from aura.cli.pickers import TerminalAsker

    return TerminalAsker() if sys.stdin.isatty() and sys.stdout.isatty() else None


def run_plain(options: Any, *, as_json: bool = False) -> int:
    """One local turn streamed as text (or JSON lines, then a summary line): `aura run`
    without the TUI, and the follow-up `aura board move` starts. Returns the exit code."""
    import asyncio
    import time

    from aura.cli.render import JsonPrinter, StreamPrinter, Ticker, json_text
    from aura.contracts import RunSummary
    from aura.service.ledger import EXIT_INTERRUPTED, EXIT_TERMINATED
    from aura.store_sqlite import open_store

    store = open_store()
    ticker = None if as_json or not sys.stderr.isatty() else Ticker(sys.stderr)
    watcher = JsonPrinter() if as_json else StreamPrinter(ticker=ticker)
    if ticker is not None and getattr(options.asker, "ticker", False) is None:
        options.asker.ticker = ticker  # a picker clears and pauses the progress line
    if options.notify is None:
        options = _with_bell(options, ticker)
    signals: list[str] = []
    started = time.monotonic()
    try:
        result = asyncio.run(_until_signal(options, store, watcher, signals))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Stopped before the turn could record it: the code still says by what.
        return EXIT_TERMINATED if "SIGTERM" in signals else EXIT_INTERRUPTED
    except AuraError as exc:
        if as_json:
            # Scripts always get a summary line, even when the run never started.
            never = RunSummary(None, None, "failed", exc.exit_code, error=str(exc))
            click.echo(json_text(never.to_json(), compact=True))
        raise
    finally:
        store.close()
        if ticker is not None:
            ticker.clear()
    try:
        if as_json:
            click.echo(json_text(result.summary().to_json(), compact=True))
        else:
            print_outcome(result.summary(), time.monotonic() - started)
    except BrokenPipeError:
        silence_stdout()
    if result.aura_error and result.error and not as_json:
        # aura's own failure (not the agent's, which its `error` entry already showed).
        click.echo(f"aura: error: {result.error}", err=True)
    exit_code: int = result.exit_code
    return exit_code


async def _until_signal(options: Any, store: Any, watcher: Any, signals: list[str]) -> Any:
    """The turn, with SIGINT/SIGTERM cancelling it (recorded as cancelled; the signal's
    name, also appended to ``signals``, says which: 130 for SIGINT, 143 for SIGTERM)."""
    import asyncio
    import signal

    from aura.service.runner import run as run_service

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    def stop(sig: signal.Signals) -> None:
        signals.append(sig.name)
        task.cancel(sig.name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    ticking = asyncio.create_task(_tick(watcher)) if getattr(watcher, "ticker", None) \
        else None
    try:
        return await run_service(options, store, watcher)
    finally:
        if ticking is not None:
            ticking.cancel()


async def _tick(printer: Any, every: float = 0.25) -> None:
    # The elapsed time moves on while the agent is quiet.
    import asyncio

    while True:
        await asyncio.sleep(every)
        printer.tick()


def _with_bell(options: Any, ticker: Any) -> Any:
    """``options`` telling the terminal (a bell, OSC 9) when an approval waits or the run
    ends; the ticker is cleared first, and paused while an approval is asked."""
    from dataclasses import replace

    from aura.cli.bell import terminal_bell
    from aura.service.notify import APPROVAL_WAITING

    def make_room(event: dict[str, Any]) -> None:
        if ticker is not None:
            ticker.clear()
            ticker.paused = event.get("event") == APPROVAL_WAITING

    return replace(options, notify=terminal_bell(sys.stderr, before=make_room))


def remember_executor_paths(paths: dict[str, str]) -> None:
    import os
    import shutil

    from aura import config
    from aura.executors import registry

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
    from aura.paths import config_path

    for name, path in paths.items():
        click.echo(f"[aura] remembered {registry.canonical(name)} = {path} in "
                   f"{config_path()} (`aura config unset executor_paths."
                   f"{registry.canonical(name)}` forgets it)", err=True)
