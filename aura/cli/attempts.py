"""`aura run -e A -e B [--attempts N] PROMPT` (and `aura task add` with the same): one
session per attempt, queued as tasks under one group id (service/attempts.py).

In the foreground, `aura run` prints the group id, runs the queue's scheduler until every
attempt rests (done, failed, cancelled, or waiting in review), printing one line per
attempt as it ends, and exits 0 when at least one attempt succeeded. With --detach it
starts the scheduler in the background (`aura queue run --until-idle`) and returns.
Ctrl-C stops the waiting; started attempts go on, queued ones wait for `aura queue run`.
"""

from __future__ import annotations

from typing import Any

import click

from aura.cli.output import open_user_store


def _line(data: dict[str, Any]) -> str:
    from aura.service.checks import summary

    secs = data.get("duration_s")
    took = "-" if secs is None else f"{secs:.1f}s"
    files = data.get("files")
    changed = "-" if files is None else \
        f"+{data['insertions']} -{data['deletions']} in {files} file{'s' * (files != 1)}"
    return (f"#{data['number']} {data['executor']} {data['session'][:8]} {data['state']} "
            f"{took} checks {summary(data['checks'])} {changed}")


def queue_group(kw: dict[str, Any], prompt: str, executors: tuple[str, ...]) -> Any:
    """Store the group and its queued attempts; (store, group, attempts)."""
    from aura.service import attempts as service
    from aura.service.run_options import RunOptions

    store = open_user_store()
    options = RunOptions.from_cli(kw, prompt=prompt)
    group, made = service.start(store, options, executors, kw.get("attempts"),
                                target=kw.get("on"))
    return store, group, made


def run_group(kw: dict[str, Any], prompt: str, executors: tuple[str, ...]) -> int:
    """The best-of-N `aura run` (see the module docstring)."""
    from aura.cli.render import json_text

    store, group, made = queue_group(kw, prompt, executors)
    as_json = bool(kw.get("as_json"))
    if as_json:
        click.echo(json_text({"group": group.id, "attempts": [a.to_json() for a in made]},
                             compact=True))
    else:
        click.echo(group.id)
    names = ", ".join(f"#{a.number} {a.executor} {a.session[:8]}" for a in made)
    click.echo(f"[aura] group {group.id[:8]}: {len(made)} attempts ({names})", err=True)
    if kw.get("detach"):
        from aura.service.detach import spawn

        spawn(["queue", "run", "--until-idle"], group.id)
        store.close()
        click.echo(f"[aura] running in the background within the queue's slots; "
                   f"`aura compare {group.id[:8]}` shows them", err=True)
        return 0
    try:
        return _wait(store, group, made, as_json)
    finally:
        store.close()


def _wait(store: Any, group: Any, made: list[Any], as_json: bool) -> int:
    from aura import config
    from aura.cli.render import json_text
    from aura.service import compare, scheduler, usage
    from aura.service.control import resting

    settings = config.load()
    prices = usage.prices(settings)
    ended: dict[str, dict[str, Any]] = {}

    def report(_result: Any) -> None:
        for attempt in made:
            if attempt.session not in ended and resting(store, attempt.session):
                data = ended[attempt.session] = compare.row(store, attempt, prices)
                click.echo(json_text(data, compact=True) if as_json else _line(data))

    try:
        scheduler.run(store, limit=config.max_parallel(settings), on_tick=report,
                      should_stop=lambda: len(ended) == len(made))
    except KeyboardInterrupt:
        click.echo(f"[aura] stopped waiting; started attempts go on, queued ones wait for "
                   f"`aura queue run`; `aura compare {group.id[:8]}` shows them", err=True)
        return 130
    good = [d for d in ended.values() if d["state"] in ("done", "review")]
    click.echo(f"[aura] group {group.id[:8]}: {len(good)}/{len(made)} attempts done; "
               f"`aura compare {group.id[:8]}` ranks them, `aura workspace land ID` "
               "lands one", err=True)
    return 0 if good else 1
