"""What `aura run` checks before a session exists: everything that can fail without
running anything (the reviewer's name and binary, the repos, ``--base``, a dirty
``--in-place`` checkout, the daily budgets). A failure here is one error and no session
row; the same failure found later would record a failed session that never ran and offer
to follow it up.

The checks only read: the workspace is still made by the pipeline, which checks again
(the repo may change in between; that rare case still records a failed session).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aura.errors import AuraError, UsageError

if TYPE_CHECKING:
    from aura.executors.base import RunRequest
    from aura.service.pipeline import WorkspaceRequest
    from aura.store import Store


def check_workspace(request: WorkspaceRequest | None) -> None:
    """Each repo is a git work tree, ``--base`` names a commit in each, and an
    ``--in-place`` checkout is clean unless ``--allow-dirty``."""
    if request is None:
        return
    from aura import git

    if request.in_place and request.base is not None:
        raise UsageError("--base makes a new branch; it cannot be used with --in-place")
    for repo in request.repos:
        if not Path(repo).expanduser().is_dir():
            raise UsageError(f"--repo {repo} is not a directory")
        top = git.toplevel(repo)
        if request.base is not None and git.rev(top, request.base) is None:
            raise AuraError(f"--base {request.base} is not a branch or commit of {top}")
        if request.in_place and not request.allow_dirty and git.is_dirty(top):
            raise AuraError(f"{top} has uncommitted changes; commit or stash them, or pass "
                            "--allow-dirty to let the agent work on top of them")


def check_reviewer(name: str | None, coding_name: str, coding: RunRequest,
                   programs: dict[str, str]) -> None:
    """A reviewer named on the command line (or stored with the session) exists and its
    binary can be found, before the coding run spends anything. ``programs``: the
    executor paths of the config and of --executor-path."""
    if not name:
        return
    from dataclasses import replace

    from aura.executors import registry

    canonical = registry.canonical(name)
    if canonical in (coding_name, "custom"):
        # The coder's own binary was just checked; a custom reviewer's command comes
        # from .aura.toml's [review], which is read in the workspace.
        return
    executor = registry.load(canonical)()
    executor.preflight(replace(coding, program=programs.get(canonical), base_command=None,
                               params=(), native_session_id=None, history=()))


def check_budget(store: Store, config: Mapping[str, Any], executor: str) -> None:
    """Today's spending is below the config's daily budgets (``[budgets]``)."""
    if "budgets" not in config:
        return  # no budget: the store is not read at all
    from aura.service.usage import check_daily_budget

    check_daily_budget(store, config, executor)


REACH_TIMEOUT = 3.0  # seconds for the TCP connect to a model server


def check_endpoint(executor: Any, request: RunRequest) -> None:
    """A model server (ollama, lms, an OpenAI-compatible endpoint) that does not even take a
    TCP connection is said now, in one line, rather than after a session was recorded."""
    import socket
    from urllib.parse import urlsplit

    base_url = getattr(executor, "base_url", None)
    unreachable = getattr(executor, "unreachable", None)
    if base_url is None or unreachable is None:
        return  # not an endpoint executor
    try:
        base = base_url(request)
    except UsageError:
        return  # no endpoint yet: the person is asked for it (validate() refused otherwise)
    parts = urlsplit(base)
    if parts.hostname is None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise unreachable(base, exc) from None
