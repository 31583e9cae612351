"""What a worker refuses to run. The command executor (``custom``), a ``--base-command``,
``--setup``/``--cleanup`` scripts and loader/PATH variables in ``--var`` run arbitrary
programs, so a worker refuses them unless it allows commands (``--allow-command`` or
``[worker] allow_command = true``); and it only runs the executors it offers.

Pure: options and the worker's settings in, the refusal's message (or None) out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from aura.service.run_options import RunOptions

# Variables that make any program run code of the caller's choosing.
RISKY_VARS = frozenset({"PATH", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS",
                        "NODE_PATH", "BASH_ENV", "ENV", "PERL5OPT", "RUBYOPT", "GIT_SSH",
                        "GIT_SSH_COMMAND", "SHELL"})
_COMMAND_HINT = "start the worker with --allow-command"


def risky_vars(names: Iterable[str]) -> list[str]:
    """The variables among ``names`` that can run arbitrary code, sorted."""
    return sorted(k for k in names if k in RISKY_VARS or k.startswith(("LD_", "DYLD_")))


def refusal(options: RunOptions, *, worker: str, offered: Collection[str],
            allow_command: bool) -> str | None:
    """Why ``worker`` refuses to run ``options`` (executors already canonical), or None."""
    if options.executor not in offered:
        return (f"worker {worker} does not offer executor {options.executor}" +
                ("" if options.executor != "custom" else
                 " (the command executor needs `aura worker --allow-command`)"))
    if options.review_executor and options.review_executor not in offered:
        return (f"worker {worker} does not offer executor {options.review_executor} "
                "(for --review-executor)")
    if allow_command:
        return None
    if options.setup or options.cleanup:
        return (f"worker {worker} refuses --setup/--cleanup (they run arbitrary commands); "
                f"{_COMMAND_HINT}")
    if options.base_command:
        return (f"worker {worker} refuses --base-command (it runs an arbitrary program); "
                f"{_COMMAND_HINT}")
    risky = risky_vars([*options.vars, *options.secret_vars])
    if risky:
        return (f"worker {worker} refuses --var {', '.join(risky)} (it can run arbitrary "
                f"code); {_COMMAND_HINT}")
    return None
