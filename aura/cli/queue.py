"""`aura queue run`: the scheduler in the foreground (a laptop without a coordinator, or
next to one). It starts queued tasks as detached runs when their dependencies are done
and a slot is free, and can be stopped and restarted at any time (see
aura/service/scheduler.py); Ctrl-C stops the scheduler, not the runs it started."""

from __future__ import annotations

from typing import Any

import click

from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store


@click.group("queue", cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def queue_command() -> None:
    """Run the queue: start tasks as their dependencies finish and slots free up."""


def coordinator_workers(store: Any, token: str | None = None) -> Any:
    """The coordinator's workers (for queued tasks with --on), or None when there is none
    to ask or it cannot be reached (those tasks then say so as their reason)."""
    if not any(t.target for t in store.tasks(pending=True)):
        return None
    from aura.contracts import WorkerInfo
    from aura.errors import AuraError
    from aura.remote.client import list_workers, read_token

    try:
        return [WorkerInfo.from_json(w) for w in list_workers(None, token or read_token(None))]
    except (AuraError, OSError):
        return None


@queue_command.command("run", context_settings=CONTEXT_SETTINGS)
@click.option("--max-parallel", "-j", type=click.IntRange(min=1), metavar="N",
              help="Agents at once here (default: max_parallel in the config).")
@click.option("--until-idle", is_flag=True,
              help="Stop once nothing is queued that could start, and nothing runs.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=0.25, show_default=True,
              metavar="SECONDS", help="How often to look at the store.")
def queue_run(max_parallel: int | None, until_idle: bool, poll: float) -> int:
    """Start queued tasks as they become ready (foreground; Ctrl-C stops it, the runs it
    started go on, and a new `aura queue run` picks up where it left)."""
    import os

    from aura import config
    from aura.service import scheduler

    # Read before anything takes it out of the environment: each pass asks the
    # coordinator with it, and the runs started for --on tasks need it.
    token = os.environ.get("AURA_TOKEN")
    store = open_user_store()
    limit = max_parallel or config.max_parallel(config.load())
    click.echo(f"[aura] queue: up to {limit} agents at once; Ctrl-C stops the scheduler "
               "(started runs go on)", err=True)

    def report(result: scheduler.TickResult) -> None:
        for session_id in result.recovered:
            click.echo(f"[aura] {session_id[:8]}: its starter died; queued again", err=True)
        for session_id in result.started:
            click.echo(f"[aura] started {session_id[:8]}", err=True)

    try:
        scheduler.run(store, limit=limit, poll=poll, until_idle=until_idle,
                      starter=scheduler.detached_starter({"AURA_TOKEN": token} if token
                                                         else None),
                      workers=lambda: coordinator_workers(store, token), on_tick=report)
    except KeyboardInterrupt:
        click.echo("[aura] scheduler stopped; `aura queue run` resumes it", err=True)
        return 130
    finally:
        store.close()
    return 0
