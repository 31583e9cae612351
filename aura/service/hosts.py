"""Hosts: where the I/O of a pipeline stage happens. The orchestrator (pipeline.py) never
knows which: it asks a ``Host`` to prepare a workspace, run a script, run an agent, report
what changed and save work, and records whatever the host reports.

``LocalHost`` does it all on this machine: git through workspace.py (in a thread, so a
slow `git add -A` on a big tree does not stall the event loop), processes through
process.py. Every call is cancellable: a cancelled script or agent has its process group
stopped before the CancelledError propagates.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Protocol, TypeVar

from aura.contracts import EntryKind
from aura.executors.base import Executor, Outcome, Output, RunRequest
from aura.process import Child
from aura.workspace import Workspace


class Host(Protocol):
    name: str

    def execution_fields(self) -> dict[str, Any]:
        """host / pid / pid_started for the Execution rows run here."""
        ...

    async def prepare_workspace(self, session_id: str, prompt: str, repos: list[str], *,
                                base: str | None, in_place: bool, allow_dirty: bool
                                ) -> Workspace: ...
    async def project_config(self, repo: str) -> dict[str, Any]:
        """The repo's ``.aura.toml`` (empty when it has none)."""
        ...
    async def run_script(self, command: str, cwd: str, env: Mapping[str, str],
                         output: Output) -> Outcome:
        """``sh -c COMMAND`` in ``cwd``; stdout/stderr lines become raw entries."""
        ...
    async def run_agent(self, executor: Executor, request: RunRequest, output: Output
                        ) -> Outcome: ...
    async def changes(self, ws: Workspace) -> list[dict[str, Any]]: ...
    async def diff(self, ws: Workspace) -> str: ...
    async def save_work(self, ws: Workspace, message: str) -> list[dict[str, str]]: ...
    async def fingerprint(self, ws: Workspace) -> dict[str, list[str | None]]:
        """Per repo [HEAD, work tree's tree], to see whether a stage wrote anything."""
        ...
    async def save_apart(self, ws: Workspace, before: dict[str, list[str | None]], ref: str,
                         message: str) -> list[dict[str, Any]]:
        """Save what changed since ``before`` on ``ref``, leaving the work tree as it is."""
        ...


def script_entries(stream: str, lines: list[str]) -> list[dict[str, Any]]:
    return [{"kind": EntryKind.RAW.value, "stream": stream, "text": line} for line in lines]


class LocalHost:
    """Runs everything on this machine."""

    name = "local"

    def execution_fields(self) -> dict[str, Any]:
        from aura.liveness import process_start_time

        pid = os.getpid()
        return {"host": self.name, "pid": pid, "pid_started": process_start_time(pid)}

    async def prepare_workspace(self, session_id: str, prompt: str, repos: list[str], *,
                                base: str | None, in_place: bool, allow_dirty: bool
                                ) -> Workspace:
        from aura import workspace

        return await _shielded_thread(workspace.prepare, session_id, prompt, repos,
                                      base=base, in_place=in_place, allow_dirty=allow_dirty)

    async def project_config(self, repo: str) -> dict[str, Any]:
        from aura.project import load_project_config

        return load_project_config(repo)

    async def run_script(self, command: str, cwd: str, env: Mapping[str, str],
                         output: Output) -> Outcome:
        def on_lines(stream: str, lines: list[str]) -> None:
            output.emit(script_entries(stream, lines))  # type: ignore[arg-type]

        child = await Child.spawn(["sh", "-c", command], on_lines=on_lines, cwd=cwd,
                                  env=dict(env))
        try:
            code = await child.wait()
        finally:
            if child.returncode is None:
                await asyncio.shield(child.stop(grace=1.0))
        return Outcome(code)

    async def run_agent(self, executor: Executor, request: RunRequest, output: Output
                        ) -> Outcome:
        executor.announce_npx(request, output)
        return await executor.run(request, output)

    async def changes(self, ws: Workspace) -> list[dict[str, Any]]:
        from aura import workspace

        return await _shielded_thread(workspace.changes, ws)

    async def diff(self, ws: Workspace) -> str:
        from aura import workspace

        return await _shielded_thread(workspace.diff, ws)

    async def save_work(self, ws: Workspace, message: str) -> list[dict[str, str]]:
        from aura import workspace

        return await _shielded_thread(workspace.save, ws, message)

    async def fingerprint(self, ws: Workspace) -> dict[str, list[str | None]]:
        from aura import workspace

        return await _shielded_thread(workspace.fingerprint, ws)

    async def save_apart(self, ws: Workspace, before: dict[str, list[str | None]], ref: str,
                         message: str) -> list[dict[str, Any]]:
        from aura import workspace

        return await _shielded_thread(workspace.save_apart, ws, before, ref, message)


async def _shielded_thread(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
                           ) -> _T:
    """Run a git operation in a thread and let it finish even if we are cancelled
    meanwhile (a half-made worktree or a half-written save is worse than a short wait);
    the cancellation is raised again once it is done."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            result = await task
        except Exception:
            raise asyncio.CancelledError from None
        if isinstance(result, Workspace):
            # The caller is going away; hand it what was made so it can be recorded.
            raise PreparedThenCancelled(result) from None
        raise


_P = ParamSpec("_P")
_T = TypeVar("_T")


class PreparedThenCancelled(asyncio.CancelledError):
    """Cancelled while a workspace was being made; carries the workspace it made."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__("cancelled")
        self.workspace = ws
