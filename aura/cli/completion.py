"""Shell completion: `aura completion bash|zsh|fish|powershell|elvish` and the dynamic
values (executor names, session ids, worker names, board columns) the scripts ask for.

The scripts are click's own (bash, zsh, fish, PowerShell) plus an elvish class in the same
style (``completion_elvish``). Every TAB runs ``_AURA_COMPLETE=<shell>_complete aura …``:
a fresh process, so this module imports only click and the standard library at the top,
and each value source imports only what it reads (sessions come from one read-only SQLite
query, not from the full store with its migrations).

Hooks for other commands: pass ``shell_complete=complete_worker`` (or ``complete_column``,
``complete_session``, ``complete_executor``, ``complete_workspace``, ``complete_branch``,
``complete_directory``, ``complete_model_executor``) to a click option or argument.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from pathlib import Path

SHELLS = ("bash", "zsh", "fish", "powershell", "elvish")
COMPLETE_VAR = "_AURA_COMPLETE"
SESSION_LIMIT = 50


def register_shells() -> None:
    """Add aura's shell classes to click's registry (completion mode only)."""
    from click.shell_completion import add_completion_class

    from aura.cli.completion_elvish import ElvishComplete, FishKeepOrderComplete

    add_completion_class(ElvishComplete)
    add_completion_class(FishKeepOrderComplete)


def default_prog_name(argv0: str | None = None) -> str:
    """The command name the script completes: how aura was started (``aura``, or
    ``aura.pyz`` when the zipapp is called by that name), ``aura`` for ``python -m aura``
    and for a checkout's ``aura.py``."""
    name = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
    if not name or name in {"__main__.py", "aura.py", "-c"} or name.startswith("python"):
        return "aura"
    return name


def source(root: click.Command, shell: str, prog_name: str = "aura") -> str:
    """The completion script for ``shell``, completing the command ``prog_name``."""
    from click.shell_completion import get_completion_class

    register_shells()
    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"{shell!r} is not one of {', '.join(SHELLS)}")
    return cls(root, {}, prog_name, COMPLETE_VAR).source()


@click.command("completion", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("shell", type=click.Choice(SHELLS))
@click.option("--prog-name", metavar="NAME",
              help="Command name to complete (default: how aura was started).")
def completion_command(shell: str, prog_name: str | None) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:        eval "$(aura completion bash)"          (in ~/.bashrc)
    zsh:         eval "$(aura completion zsh)"           (in ~/.zshrc, after compinit)
    fish:        aura completion fish > ~/.config/fish/completions/aura.fish
    powershell:  aura completion powershell | Out-String | Invoke-Expression   ($PROFILE)
    elvish:      eval (aura completion elvish | slurp)   (in ~/.config/elvish/rc.elv)
    """
    root = click.get_current_context().find_root().command
    text = source(root, shell, prog_name or default_prog_name())
    click.echo(text, nl=not text.endswith("\n"))


# value sources ------------------------------------------------------------------------

def _items(values: Iterable[tuple[str, str | None]], incomplete: str) -> list[CompletionItem]:
    typed = incomplete.replace("\\", "")  # bash hands over `In\ pro` as typed
    return [CompletionItem(_for_shell(value), help=help_) for value, help_ in values
            if value.startswith(typed) or value.startswith(incomplete)]


def _for_shell(value: str) -> str:
    # click's bash script inserts a value as is, so `In progress` would become two words:
    # escape it for bash, twice, because that script's `read` (without -r) eats one level.
    # The other shells quote what they insert themselves.
    if os.environ.get(COMPLETE_VAR) == "bash_complete" and any(c in value for c in " '\"$`"):
        import re

        return re.sub(r"([ '\"$`\\])", lambda m: "\\\\" + m.group(1), value)
    return value


def executor_status(name: str, configured: dict[str, Any] | None = None) -> str:
    """Whether executor ``name``'s program is here, as a TAB shows it: found the way
    `aura run` finds it (the config's executor path, PATH, the npx fallback), without
    importing the executor or running anything."""
    import shutil

    from aura.executors import registry

    program, npx_package = registry.PROGRAMS.get(name, (name, None))
    path = (configured or {}).get(name)
    if isinstance(path, str) and path:
        found = os.access(path, os.X_OK) if os.sep in path else shutil.which(path)
        return "installed" if found else "not installed (its executor path is gone)"
    if program is None:
        return "built in"
    if shutil.which(program):
        return "installed"
    if npx_package and shutil.which("npx"):
        return "not installed (runs through npx)"
    return "not installed"


def _executor_paths() -> dict[str, Any]:
    from aura import config
    from aura.errors import ConfigError

    try:
        paths = config.load().get("executor_paths", {})
    except (ConfigError, OSError):
        return {}  # a broken config: `aura run` says so; a TAB still offers the names
    return paths if isinstance(paths, dict) else {}


def complete_executor(_ctx: click.Context, _param: click.Parameter, incomplete: str
                      ) -> list[CompletionItem]:
    """Executor names (each saying whether it is installed), then aliases (with what
    they stand for)."""
    from aura.executors import registry

    paths = _executor_paths()
    values: list[tuple[str, str | None]] = [(name, executor_status(name, paths))
                                            for name in registry.names()]
    values += [(alias, f"alias of {target}") for alias, target in sorted(registry.ALIASES.items())]
    return _items(values, incomplete)


def complete_model_executor(_ctx: click.Context, _param: click.Parameter, incomplete: str
                            ) -> list[CompletionItem]:
    """The executors `aura models` lists models of, and their aliases."""
    from aura.executors import registry

    values: list[tuple[str, str | None]] = [(name, "model server") for name in
                                            sorted(registry.MODEL_EXECUTORS)]
    values += [(alias, f"alias of {target}") for alias, target in sorted(registry.ALIASES.items())
               if target in registry.MODEL_EXECUTORS]
    return _items(values, incomplete)


def complete_directory(_ctx: click.Context, _param: click.Parameter, incomplete: str
                       ) -> list[CompletionItem]:
    """Directories: the shell's own completion (type ``dir``) does the listing."""
    return [CompletionItem(incomplete, type="dir")]


def branch_values(repo: str) -> list[tuple[str, str | None]]:
    """(branch, "branch") of the repo at ``repo``; nothing when it is no repo."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", repo, "for-each-ref", "--format=%(refname:short)",
                               "refs/heads"], capture_output=True, text=True, timeout=3,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [(line, "branch") for line in done.stdout.splitlines() if line]


def complete_branch(ctx: click.Context, _param: click.Parameter, incomplete: str
                    ) -> list[CompletionItem]:
    """Branches for --base: of the first --repo already given, else of the current
    directory's repo."""
    repos = ctx.params.get("repos") or ()
    repo = os.path.expanduser(str(repos[0])) if repos else os.getcwd()
    return _items(branch_values(repo), incomplete)


def complete_command(ctx: click.Context, _param: click.Parameter, incomplete: str
                     ) -> list[CompletionItem]:
    """Command names for `aura help …`, one level deeper per word already given."""
    group: click.Command | None = ctx.find_root().command
    for name in ctx.params.get("command") or ():
        group = group.get_command(ctx, name) if isinstance(group, click.Group) else None
    if not isinstance(group, click.Group):
        return []
    found = ((name, group.get_command(ctx, name)) for name in group.list_commands(ctx)
             if name.startswith(incomplete))
    return [CompletionItem(name, help=command.get_short_help_str())
            for name, command in found if command is not None and not command.hidden]


def complete_model(ctx: click.Context, _param: click.Parameter, incomplete: str
                   ) -> list[CompletionItem]:
    """Models discovered earlier (the 24 h cache that aura.executors.models keeps in
    ``cache/models/<executor>-<endpoint digest>.json``) for the chosen --executor, or for
    every executor when none is given yet. Read from the files: a TAB never asks a server."""
    import json

    from aura.paths import cache_dir

    executor = ctx.params.get("executor")
    if isinstance(executor, (tuple, list)):  # --executor is repeatable: the last one given
        executor = executor[-1] if executor else None
    if executor:
        from aura.executors import registry

        executor = registry.ALIASES.get(executor, executor)
    values: dict[str, str] = {}
    for path in sorted((cache_dir() / "models").glob(f"{executor or '*'}-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for model in data.get("models", []):
                values.setdefault(str(model), str(data.get("executor", "")))
        except (OSError, ValueError, AttributeError):
            continue
    return _items(values.items(), incomplete)


def _query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the user's database opened read-only; nothing when there is none yet
    (completion never creates the database or runs migrations)."""
    import sqlite3
    from pathlib import Path

    from aura.paths import db_path

    path = db_path()
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []


def session_values(limit: int = SESSION_LIMIT) -> list[tuple[str, str]]:
    """(id, description) of the newest sessions, newest first."""
    rows = _query("SELECT id, executor, state, prompt FROM sessions "
                  "ORDER BY created_at DESC, id DESC LIMIT ?", (limit,))
    return [(session_id, _described(f"{executor} {state}", prompt))
            for session_id, executor, state, prompt in rows]


def _described(head: str, prompt: object) -> str:
    """A completion's description: ``head`` and the prompt's first 40 characters."""
    return f"{head} {' '.join(str(prompt or '').split())[:40]}".rstrip()


def complete_session(_ctx: click.Context, _param: click.Parameter, incomplete: str
                     ) -> list[CompletionItem]:
    """Session ids, newest first (a typed prefix narrows them)."""
    return _items(session_values(), incomplete)


def complete_group(_ctx: click.Context, _param: click.Parameter, incomplete: str
                   ) -> list[CompletionItem]:
    """Group ids of best-of-N runs, newest first (an older database has none)."""
    rows = _query("SELECT g.id, COUNT(a.session), g.prompt FROM attempt_groups g LEFT JOIN "
                  "attempts a ON a.grp = g.id GROUP BY g.id ORDER BY g.created_at DESC "
                  "LIMIT ?", (SESSION_LIMIT,))
    return _items([(gid, _described(f"{n} attempts", p)) for gid, n, p in rows], incomplete)


def workspace_values(limit: int = SESSION_LIMIT) -> list[tuple[str, str]]:
    """(session id, branch and prompt) of the workspaces not removed, newest first."""
    rows = _query("SELECT id, json_extract(options, '$.workspace.repos[0].branch'), prompt "
                  "FROM sessions WHERE json_extract(options, '$.workspace') IS NOT NULL "
                  "AND NOT coalesce(json_extract(options, '$.workspace.removed'), 0) "
                  "ORDER BY created_at DESC, id DESC LIMIT ?", (limit,))
    return [(session_id, _described(branch or "in place", prompt))
            for session_id, branch, prompt in rows]


def complete_workspace(_ctx: click.Context, _param: click.Parameter, incomplete: str
                       ) -> list[CompletionItem]:
    """Ids of the sessions that have a workspace (`aura workspace diff|save|remove`)."""
    return _items(workspace_values(), incomplete)


# Board columns live in the store. Workers live on the coordinator, too far for a TAB: the
# last `aura workers` leaves their names and labels in the cache, and --on offers those.

def _workers_cache() -> Path:
    from aura.paths import cache_dir

    return cache_dir() / "workers.json"


def remember_workers(workers: Iterable[dict[str, Any]]) -> None:
    """Keep the names and labels of ``workers`` (`aura workers`' objects) for completion."""
    import json

    from aura.paths import atomic_write

    names = sorted({str(w["name"]) for w in workers if w.get("name")})
    labels = sorted({str(label) for w in workers for label in w.get("labels") or ()})
    try:
        atomic_write(_workers_cache(), json.dumps({"names": names, "labels": labels}))
    except OSError:
        pass  # completion without worker names; nothing else depends on this file


def worker_values() -> list[tuple[str, str]]:
    """(name or label:X, description) from the last `aura workers`."""
    import json

    try:
        data = json.loads(_workers_cache().read_text(encoding="utf-8"))
        names, labels = list(data["names"]), list(data["labels"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [(str(n), "worker") for n in names] + \
        [(f"label:{label}", "any worker with this label") for label in labels]


def complete_worker(_ctx: click.Context, _param: click.Parameter, incomplete: str
                    ) -> list[CompletionItem]:
    """Worker names and label:X for `--on` (as of the last `aura workers`)."""
    return _items(worker_values(), incomplete)


def column_values() -> list[tuple[str, str | None]]:
    """(name, state it maps to) of the board's columns, in board order."""
    from aura.paths import db_path

    if not db_path().exists():  # no database yet: the columns it will start with
        from aura.board import DEFAULT_BOARD_COLUMNS

        columns = list(DEFAULT_BOARD_COLUMNS)
    else:
        import sqlite3

        from aura.errors import StoreError
        from aura.store_sqlite import open_store

        # A database this TAB cannot read (locked, damaged, newer) offers no columns.
        try:
            store = open_store()
        except (StoreError, sqlite3.Error):
            return []
        try:
            columns = list(store.board_columns())
        except (StoreError, sqlite3.Error):
            return []
        finally:
            store.close()
    columns.sort(key=lambda c: c.get("position", 0))
    return [(str(c["name"]), f"→ {c.get('state')}") for c in columns if c.get("name")]


def complete_column(_ctx: click.Context, _param: click.Parameter, incomplete: str
                    ) -> list[CompletionItem]:
    """Board column names (`aura board move SESSION COLUMN`, `columns edit|remove`)."""
    return _items(column_values(), incomplete)
