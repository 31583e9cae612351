"""Best-of-N: one prompt run as several attempts (`aura run -e A -e B --attempts N`), each
its own session on its own branch in its own worktree, grouped under one group id.

The attempts are queued tasks (service/tasks.py), so they start within the queue's slots
(``max_parallel``) through the same scheduler as every other task; `aura run` then runs
the scheduler in the foreground until they rest. Attempts are numbered 1..N in the
order they are queued: every executor once, then every executor again, so a slot limit
below N still starts each executor early.
"""

from __future__ import annotations

import os
from dataclasses import replace

from aura.errors import AuraError, NotFound, UsageError
from aura.recorder import utc_now
from aura.service.run_options import RunOptions
from aura.store import Store
from aura.store_attempts import Attempt, Group
from aura.store_ids import MIN_PREFIX, check_prefix

MAX_ATTEMPTS = 32  # executors × attempts: more is a typo, not a plan


def is_group_run(executors: tuple[str, ...], attempts: int | None) -> bool:
    """Whether the command line asks for more than today's single run."""
    return len(executors) > 1 or (attempts or 1) > 1


def plan(executors: tuple[str, ...], attempts: int | None, default: str) -> list[str]:
    """The executor of each attempt, in the order they are numbered."""
    from aura.executors import registry

    names = [registry.canonical(e) for e in executors] or \
        [registry.canonical(default)]
    count = attempts or 1
    if len(names) * count > MAX_ATTEMPTS:
        raise UsageError(f"{len(names)} executors × {count} attempts is more than "
                         f"{MAX_ATTEMPTS} sessions; ask for fewer")
    return [name for _ in range(count) for name in names]


def _check_group_options(options: RunOptions, target: str | None) -> str:
    """The checkout the attempts branch from; UsageError for options that cannot apply."""
    from aura import git

    if options.session or options.resume_latest:
        raise UsageError("attempts start new sessions; --session/--resume-latest continue one")
    if options.in_place:
        raise UsageError("--in-place works in the checkout itself; attempts need a worktree "
                         "each: drop --in-place")
    if target is not None:
        raise UsageError("attempts run on this machine: drop --on")
    cwd = os.path.realpath(os.path.expanduser(options.cwd or os.getcwd()))
    if not os.path.isdir(cwd):
        raise UsageError(f"--cwd {options.cwd!r} is not a directory")
    if not options.repos:
        try:
            git.toplevel(cwd)
        except AuraError:
            raise UsageError("attempts need a git repo to make a worktree each: run inside "
                             "one or pass --repo PATH") from None
    return cwd


def start(store: Store, options: RunOptions, executors: tuple[str, ...],
          attempts: int | None, *, target: str | None = None) -> tuple[Group, list[Attempt]]:
    """Store the group and queue one task per attempt; nothing runs yet."""
    from aura.executors import registry
    from aura.service import tasks
    from aura.service.runner import new_id

    names = plan(executors, attempts, options.executor or registry.default_executor())
    cwd = _check_group_options(options, target)
    if not options.prompt.strip():
        raise UsageError("a prompt is required: `aura run 'the task'` or --prompt TEXT")
    group = Group(new_id(), options.prompt, utc_now(), cwd)
    store.create_group(group)
    made: list[Attempt] = []
    label = " ".join(options.prompt.split())
    for number, name in enumerate(names, 1):
        session = tasks.add(store, replace(options, executor=name, cwd=cwd),
                            title=f"#{number}/{len(names)} {label}")
        attempt = Attempt(group.id, number, session.id, name)
        store.add_attempt(attempt)
        made.append(attempt)
    return group, made


def find_group(store: Store, ref: str) -> Group:
    """The group with this id or unique id prefix, or the group of the attempt whose
    session id (prefix) this is."""
    ref = ref.strip()
    if not ref:
        raise UsageError("give a group id (printed by `aura run … --attempts N`)")
    groups = store.groups()
    whole = [g for g in groups if g.id == ref]
    if whole:
        return whole[0]
    check_prefix(ref, "group")
    found = [g for g in groups if g.id.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UsageError(f"group id prefix {ref!r} is ambiguous: "
                         + ", ".join(g.id[:12] for g in found[:5]))
    try:
        attempt = store.attempt_of(store.get_session(ref).id)
    except NotFound:
        attempt = None
    if attempt is not None:
        return next(g for g in store.groups() if g.id == attempt.group)
    raise NotFound(f"no group {ref!r}; groups are made by `aura run -e A -e B` or "
                   "`--attempts N`")


def newest_group(store: Store) -> Group:
    groups = store.groups()
    if not groups:
        raise NotFound("no groups yet; `aura run -e A -e B` or `--attempts N` makes one")
    return groups[0]


def find_attempt(store: Store, group: Group, ref: str) -> Attempt:
    """An attempt of ``group`` by number (1..N) or by session id prefix."""
    attempts = store.attempts(group.id)
    if ref.isdigit():  # a number first; a session id may start with digits too
        for attempt in attempts:
            if attempt.number == int(ref):
                return attempt
    whole = [a for a in attempts if a.session == ref]
    if whole:
        return whole[0]
    if not ref.isdigit():
        check_prefix(ref, "session")
    # A short number is an attempt's number only, never a session id prefix.
    found = [a for a in attempts if a.session.startswith(ref)] \
        if len(ref) >= MIN_PREFIX else []
    if len(found) == 1:
        return found[0]
    if ref.isdigit() and not found:
        raise NotFound(f"group {group.id[:8]} has attempts 1..{len(attempts)}, not {ref}")
    what = "is ambiguous" if found else "names no attempt"
    raise NotFound(f"{ref!r} {what} of group {group.id[:8]} (use 1..{len(attempts)} or a "
                   "session id prefix)")
