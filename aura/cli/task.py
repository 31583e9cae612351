"""`aura task add | list | start | release | hold | rm`: the queue of work.

A task is a session waiting in ``queued`` with its run options; `aura queue run` (the
scheduler) starts it when its dependencies are done and a slot is free. `task start` is
also what the scheduler runs for each task, detached, with ``--claimed-by``.
"""

from __future__ import annotations

from typing import Any

import click

from aura.cli.completion import complete_session
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store
from aura.cli.run import run_options, take_prompt
from aura.errors import AuraError, UsageError


@click.group("task", cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def task_command() -> None:
    """Queue work: tasks wait for their dependencies and a free slot (`aura queue run`)."""


_NOT_FOR_TASKS = (("session_id", "--session"), ("resume_latest", "--resume-latest"),
                  ("wait", "--wait"), ("no_tui", "--no-tui"), ("detach", "--detach"))


@task_command.command("add", context_settings=CONTEXT_SETTINGS)
@run_options
@click.option("--after", multiple=True, metavar="ID", shell_complete=complete_session,
              help="Session or task that must be done first (repeatable).")
@click.option("--title", metavar="TEXT", help="The card's title (default: the prompt).")
def task_add(after: tuple[str, ...], title: str | None, **kw: Any) -> None:
    """Put a task in the queue without running it; prints its id."""
    from aura.service import tasks
    from aura.service.run_options import RunOptions

    for key, flag in _NOT_FOR_TASKS:
        if kw.get(key):
            raise UsageError(f"{flag} does not go with `aura task add`")
    from aura.cli.run import take_executors

    executors = take_executors(kw)
    prompt = take_prompt(kw)
    if kw["executor_path"]:
        from aura.cli.run import remember_executor_paths

        remember_executor_paths(kw["executor_path"])
        kw["executor_path"] = {}
    if len(executors) > 1 or (kw.get("attempts") or 1) > 1:
        _add_group(kw, prompt or "", executors, after, title)
        return
    store = open_user_store()
    session = tasks.add(store, RunOptions.from_cli(kw, prompt=prompt or ""),
                        after=after, target=kw.get("on"), title=title)
    if kw["as_json"]:
        from aura.cli.render import json_text

        click.echo(json_text(tasks.get(store, session.id).to_json()))
    else:
        click.echo(session.id)


def _add_group(kw: dict[str, Any], prompt: str, executors: tuple[str, ...],
               after: tuple[str, ...], title: str | None) -> None:
    """A group of attempts, queued: prints the group id, then each attempt's session."""
    from aura.cli.attempts import queue_group

    if after or title:
        raise UsageError("--after and --title do not go with several attempts")
    store, group, made = queue_group(kw, prompt, executors)
    store.close()
    if kw["as_json"]:
        from aura.cli.render import json_text

        click.echo(json_text({"group": group.id, "attempts": [a.to_json() for a in made]}))
        return
    click.echo(group.id)
    for attempt in made:
        click.echo(f"#{attempt.number} {attempt.executor} {attempt.session}")


@task_command.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of tasks.")
@click.option("--all", "show_all", is_flag=True, help="Also tasks that already ran.")
def task_list(as_json: bool, show_all: bool) -> None:
    """Tasks, oldest first, each queued one with why it waits."""
    from aura.cli.queue import coordinator_workers
    from aura.service import tasks

    store = open_user_store()
    rows = tasks.listing(store, workers=coordinator_workers(store))
    if not show_all and not as_json:
        rows = [r for r in rows if r["state"] == "queued" or r["status"] not in
                ("done", "cancelled", "failed", "worker_lost", "gone")]
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text(rows))
        return
    if not rows:
        click.echo("no tasks waiting; add one with `aura task add --prompt …`", err=True)
        return
    from aura.cli.render import table

    lines = [("ID", "STATE", "STATUS", "AFTER", "TITLE", "WHY")]
    for r in rows:
        after = ",".join(a[:8] for a in r["after"]) or "-"
        title = r["title"][:39] + "…" if len(r["title"]) > 40 else r["title"]
        lines.append((r["session"][:8], r["state"], r["status"], after, title,
                      r["reason"] or "-"))
    for line in table(lines):
        click.echo(line)


def _one(action: str) -> Any:
    def command(task_id: str) -> None:
        from aura.service import tasks

        store = open_user_store()
        if action == "rm":
            session = tasks.remove(store, task_id)
            click.echo(f"removed task {session.id[:8]} ({session.state})")
            return
        task = getattr(tasks, action)(store, task_id)
        click.echo(f"{'released' if action == 'release' else 'parked'} task "
                   f"{task.session[:8]}")
    return command


for _name, _action, _help in (
        ("release", "release", "Start a task although a dependency failed or was "
                               "cancelled; also un-parks it."),
        ("hold", "hold", "Park a queued task: the scheduler leaves it until released."),
        ("rm", "rm", "Remove a task from the queue (a queued one is cancelled, so its "
                     "dependents are blocked).")):
    task_command.command(_name, context_settings=CONTEXT_SETTINGS, help=_help)(
        click.argument("task_id", metavar="ID", shell_complete=complete_session)(
            _one(_action)))


@task_command.command("start", context_settings=CONTEXT_SETTINGS)
@click.argument("task_id", metavar="ID", shell_complete=complete_session)
@click.option("--detach", "-d", is_flag=True, help="Start it in the background.")
@click.option("--claimed-by", "claimed_by", metavar="MARK", hidden=True,
              help="The scheduler claimed it already (internal).")
def task_start(task_id: str, detach: bool, claimed_by: str | None) -> int:
    """Start a queued task now, whatever the queue's limits (its dependencies aside)."""
    from aura.liveness import own_mark, process_start_time
    from aura.recorder import utc_now
    from aura.service import tasks

    store = open_user_store()
    task = tasks.get(store, task_id)
    if claimed_by is None:
        if not store.claim_task(task.session, own_mark(), utc_now()):
            state = store.get_session(task.session).state
            raise AuraError(f"task {task.session[:8]} is {state}"
                            + (" and being started" if state == "queued" else "") +
                            "; see `aura task list`")
        claimed_by = own_mark()
    elif task.claimed_by != claimed_by:
        raise AuraError(f"task {task.session[:8]} is not claimed by {claimed_by}")
    if detach:
        from aura.service.detach import spawn

        pid, started = spawn(["task", "start", task.session, "--claimed-by", claimed_by],
                             task.session)
        store.update_task(task.session, child_pid=pid, child_started=started)
        click.echo(task.session)
        return 0
    import os

    store.update_task(task.session, child_pid=os.getpid(),
                      child_started=process_start_time(os.getpid()))
    store.close()
    return run_claimed(task.session, task.target)


def run_claimed(session_id: str, target: str | None) -> int:
    """Run a claimed task in this process: its first turn here, or on a worker."""
    from aura.service import tasks
    from aura.store_sqlite import open_store

    store = open_store()
    try:
        options = tasks.start_options(store, session_id)
    finally:
        store.close()
    try:
        if target:
            from aura.cli.remote_task import run_on_worker

            return run_on_worker(session_id, target, options)
        from aura.cli.run import run_plain

        return run_plain(options)
    except AuraError as exc:
        _fail_if_queued(session_id, str(exc))
        raise


def _fail_if_queued(session_id: str, reason: str) -> None:
    """A task that could not even start fails (its dependents block) instead of being
    retried for ever."""
    from aura.contracts import State, Transition
    from aura.recorder import utc_now
    from aura.store_sqlite import open_store

    store = open_store()
    try:
        session = store.get_session(session_id)
        if session.state == State.QUEUED:
            store.record_transition(Transition(session_id, State.QUEUED, State.FAILED,
                                               utc_now(), f"could not start: {reason}"))
    finally:
        store.close()
