"""The orchestrator: drives one session through its stages by asking a Host to do the I/O.

    queued → prepare_workspace → setup → coding_initial → cleanup → review → done
                                  review → coding_follow_up → cleanup → review

Stages a run does not need are skipped (no repo: no prepare_workspace; no scripts: no
setup or cleanup; no --review: no review). Every move goes through ``engine.transition`` and
is stored with the execution that caused it. Each stage that runs something is its own
Execution with its own recorder (seq continues from the store), so setup/cleanup output,
the agent and the reviewer are stored and shown apart.

Failure, cancellation (the awaiting task is cancelled: Ctrl-C) and crashes finish the
running execution, save the workspace's uncommitted work on ``refs/aura/saved/<session>``
(saying where) and move the session to failed/cancelled. Where the work runs is the Host's
business (hosts.py); nothing here spawns a process or runs git.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aura import prompts
from aura.contracts import EntryKind, ExecutionStatus, Session, State
from aura.errors import AuraError, StageFailed
from aura.executors.base import Executor, Outcome, RunRequest
from aura.recorder import Recorder, Watcher
from aura.service.hosts import Host, PreparedThenCancelled
from aura.service.ledger import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from aura.service.ledger import Finished, Ledger
from aura.service.time_limits import TimeLimits
from aura.store import Store
from aura.workspace import Workspace, changes_text

SCRIPT = "script"
RESERVED_EXIT_CODES = frozenset({2, 129, 130, 143})  # aura's own: usage, signals
OUTPUT_TAIL = 20  # lines of a failed script's output repeated in its error
EXIT_TIMED_OUT = 124  # --timeout/--idle-timeout ended the run (as timeout(1) exits)


@dataclass(frozen=True, slots=True)
class WorkspaceRequest:
    repos: tuple[str, ...]
    base: str | None = None
    in_place: bool = False
    allow_dirty: bool = False


@dataclass(frozen=True, slots=True)
class ReviewPlan:
    executor: Executor
    request: RunRequest  # prompt and cwd are filled in when the review runs


@dataclass(slots=True)
class Plan:
    """What one turn will do; built by service.run from the options and the session."""

    prompt: str  # the user's request for this turn (before templates)
    stage: State  # coding_initial or coding_follow_up
    executor: Executor
    request: RunRequest  # the agent's request; prompt and cwd are set per stage
    workspace_request: WorkspaceRequest | None = None
    subdir: str = ""  # where in the workspace the agent runs (a --cwd below a repo's top)
    setup: tuple[str, ...] = ()  # --setup commands (run in the workspace root)
    cleanup: tuple[str, ...] = ()  # --cleanup commands
    checks: tuple[str, ...] = ()  # --check commands (service/checks.py)
    # The reviewer, made from the project's [review] table (.aura.toml); None: no review.
    review: Callable[[dict[str, Any]], ReviewPlan] | None = None
    templates: dict[str, str] = field(default_factory=dict)  # the user's [templates]
    vars: dict[str, str] = field(default_factory=dict)
    max_cost: float | None = None  # --max-cost: the turn is stopped once it spent more


def judge(outcome: Outcome) -> tuple[int, State, str | None]:
    """Exit code and success come from the agent's exit status and its final result."""
    if outcome.exit_code == 0 and outcome.error is None:
        return 0, State.DONE, None
    if outcome.exit_code == 0:
        return 1, State.FAILED, outcome.error
    if outcome.exit_code < 0:
        reason = f"killed by signal {-outcome.exit_code}"
        return 128 - outcome.exit_code, State.FAILED, outcome.error or reason
    return (outcome.exit_code, State.FAILED,
            outcome.error or f"agent exited with code {outcome.exit_code}")


def last_review(entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The data of the newest review verdict entry of a session."""
    for item in reversed(entries):
        data = item.get("data")
        if item.get("kind") == EntryKind.SYSTEM.value and isinstance(data, dict) and \
                data.get("type") == "review":
            return data
    return None


class Orchestrator:
    """Runs one turn of one session (see the module docstring)."""

    def __init__(self, store: Store, host: Host, session: Session,
                 watcher: Watcher | None = None, *, timeout: float | None = None,
                 idle_timeout: float | None = None) -> None:
        self.store = store
        self.host = host
        self.ledger = Ledger(store, host, session, watcher)
        self._projects: dict[str, dict[str, Any]] = {}
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self._overrun: str | None = None  # why the watchdog ended the turn

    @property
    def session(self) -> Session:
        return self.ledger.session

    @property
    def workspace(self) -> Workspace | None:
        return self.ledger.workspace

    async def _project(self, repo: str) -> dict[str, Any]:
        if repo not in self._projects:
            self._projects[repo] = await self.host.project_config(repo)
        return self._projects[repo]

    async def _templates(self, plan: Plan) -> dict[str, str]:
        """The user's [templates], overridden by the first repo's .aura.toml ones."""
        merged = dict(plan.templates)
        if self.workspace is not None and self.workspace.repos:
            merged.update((await self._project(self.workspace.repos[0].repo))["templates"])
        return merged

    def _agent_cwd(self, plan: Plan) -> str:
        ws = self.workspace
        if ws is None:
            return plan.request.cwd
        import os

        inside = os.path.join(ws.root, plan.subdir) if plan.subdir else ws.root
        return inside if os.path.isdir(inside) else ws.root

    def _values(self, plan: Plan, **extra: str) -> dict[str, str]:
        ws = self.workspace
        branches = [r.branch or r.base_name for r in ws.repos] if ws else []
        values = dict(plan.vars)
        values.update({
            "prompt": plan.prompt, "task": self.session.prompt,
            "branch": ", ".join(dict.fromkeys(branches)),
            "repo": ", ".join(r.repo for r in ws.repos) if ws else "",
            "workspace": ws.root if ws else self.session.cwd,
            "stage": plan.stage.value,
        })
        values.update(extra)
        return values

    def _script_env(self, plan: Plan, stage: State) -> dict[str, str]:
        import os

        env = dict(os.environ)
        env.update(plan.vars)
        ws = self.workspace
        env.update({"AURA_SESSION_ID": self.session.id, "AURA_STAGE": stage.value,
                    "AURA_WORKSPACE": ws.root if ws else self.session.cwd})
        if ws is not None and ws.repos:
            env["AURA_BRANCH"] = ws.repos[0].branch or ""
        return env

    # stages ---------------------------------------------------------------------------

    async def run(self, plan: Plan) -> Finished:
        self.ledger.max_cost = plan.max_cost
        task = asyncio.current_task()
        watchdog = None
        if task is not None and (self.timeout or self.idle_timeout):
            limits = TimeLimits(self.timeout, self.idle_timeout)
            watchdog = asyncio.create_task(limits.watch(task, self.ledger, self._overran))
        try:
            return await self._run(plan)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _overran(self, reason: str) -> None:
        self._overrun = reason

    async def _run(self, plan: Plan) -> Finished:
        try:
            state = await self._stages(plan)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if isinstance(exc, PreparedThenCancelled):
                self.ledger.store_workspace(exc.workspace)
            if self._overrun is not None:
                return await self.ledger.end_failed(self._overrun, EXIT_TIMED_OUT)
            return await self.ledger.end_cancelled(str(exc.args[0]) if exc.args else None)
        except StageFailed as exc:
            return await self.ledger.end_failed(str(exc), exc.exit_code)
        except AuraError as exc:
            return await self.ledger.end_failed(str(exc), exc.exit_code, aura_error=True)
        except BaseException as exc:
            # A bug in aura: record it so no row stays running, then let it show.
            reason = f"aura crashed: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self.ledger.finish(ExecutionStatus.FAILED, None, reason)
                self.ledger.emit({"kind": EntryKind.ERROR.value, "text": reason})
                self.ledger.move(State.FAILED, reason)
            with contextlib.suppress(Exception):
                assert self.ledger.recorder is not None
                self.ledger.recorder.close()  # stores what is pending and stops its writer
            raise
        return self.ledger.result(state, 0)

    async def _stages(self, plan: Plan) -> State:
        if plan.stage is State.CODING_INITIAL:
            if plan.workspace_request is not None:
                await self._prepare(plan.workspace_request)
            await self._scripts(plan, State.SETUP, "setup", plan.setup)
        elif self.workspace is not None and self.workspace.removed:
            raise AuraError(f"the workspace of session {self.session.id[:8]} was removed; "
                            "start a new session")
        await self._code(plan)
        await self._scripts(plan, State.CLEANUP, "cleanup", plan.cleanup)
        await self._checks(plan)
        if plan.review is not None:
            verdict = await self._review(plan)
            if verdict not in ("approve", "skipped"):
                # The session rests in review: its work is saved like a finished one's.
                await self.ledger.save(f"aura: saved after review of session {self.session.id}")
                self.ledger.finish(ExecutionStatus.DONE, 0, f"verdict: {verdict or 'none'}")
                return State.REVIEW
        await self.ledger.save(f"aura: saved when session {self.session.id} was done")
        self.ledger.finish(ExecutionStatus.DONE, 0, "done")
        self.ledger.move(State.DONE, "pipeline finished")
        return State.DONE

    async def _prepare(self, req: WorkspaceRequest) -> None:
        self.ledger.open(State.PREPARE_WORKSPACE, None)
        self.ledger.move(State.PREPARE_WORKSPACE, "preparing the workspace")
        ws = await self.host.prepare_workspace(
            self.session.id, self.session.prompt, list(req.repos), base=req.base,
            in_place=req.in_place, allow_dirty=req.allow_dirty)
        self.ledger.store_workspace(ws)
        for repo, data in zip(ws.repos, ws.to_json()["repos"], strict=True):
            where = "in place, in the checkout itself" if repo.in_place else \
                f"in worktree {repo.path} (the checkout is untouched)"
            self.ledger.emit({"kind": EntryKind.SYSTEM.value,
                       "text": f"workspace: {repo.repo} on branch "
                               f"{repo.branch or '(detached)'} from {repo.base_name} "
                               f"{repo.base[:12]}, {where}",
                       "data": {"type": "workspace", **data}})
        self.ledger.finish(ExecutionStatus.DONE, 0, "workspace ready")

    async def _scripts(self, plan: Plan, stage: State, key: str,
                       given: tuple[str, ...]) -> None:
        """Setup or cleanup: each repo's .aura.toml commands (in that repo), then the
        command-line ones (in the workspace root), each its own execution."""
        commands: list[tuple[str, str]] = []
        ws = self.workspace
        if ws is not None:
            for repo in ws.repos:
                config = await self._project(repo.repo)
                commands += [(c, repo.path) for c in config.get(key, [])]
        root = ws.root if ws else self.session.cwd
        commands += [(c, root) for c in given]
        if not commands:
            return
        if stage is State.CLEANUP:
            await self.ledger.save(f"aura: saved before cleanup of session {self.session.id}")
        env = self._script_env(plan, stage)
        for i, (command, cwd) in enumerate(commands):
            self.ledger.finish(ExecutionStatus.DONE, 0, "done")
            recorder = self.ledger.open(stage, SCRIPT)
            if i == 0:
                self.ledger.move(stage, f"running {key} scripts")
            self.ledger.emit({"kind": EntryKind.SYSTEM.value, "text": f"{key}: {command}",
                       "data": {"type": "script", "command": command, "cwd": cwd}})
            tail: list[str] = []
            seen = recorder.seq
            outcome = await self.ledger.timed(self.host.run_script(command, cwd, env, recorder))
            recorder.flush()
            for item in self.store.entries(self.session.id, after_seq=seen):
                if item.get("kind") == EntryKind.RAW.value:
                    tail.append(str(item.get("text", "")))
            if outcome.exit_code != 0:
                output = "\n".join(tail[-OUTPUT_TAIL:])
                code = outcome.exit_code if outcome.exit_code > 0 else 128 - outcome.exit_code
                if code in RESERVED_EXIT_CODES:  # `make` exits 2: not a usage error of aura's
                    code = 1
                raise StageFailed(f"{key} script failed (exit {outcome.exit_code}): {command}" +
                              (f"\n{output}" if output else ""), code)
        self.ledger.finish(ExecutionStatus.DONE, 0, "done")

    async def _checks(self, plan: Plan) -> None:
        """Each repo's .aura.toml ``check`` commands (in that repo), then the --check ones
        (in the workspace root); their results are stored, they never fail the turn."""
        from aura.service.checks import run_checks

        commands: list[tuple[str, str]] = []
        ws = self.workspace
        if ws is not None:
            for repo in ws.repos:
                config = await self._project(repo.repo)
                commands += [(c, repo.path) for c in config.get("check", [])]
        commands += [(c, ws.root if ws else self.session.cwd) for c in plan.checks]
        if commands:
            await run_checks(self.ledger, commands, self._script_env(plan, State.CLEANUP),
                             self.host.run_script)

    async def _code(self, plan: Plan) -> None:
        self.ledger.finish(ExecutionStatus.DONE, 0, "done")
        session_id = self.session.id

        def on_native(native_id: str) -> None:
            self.store.update_session(session_id, native_session_id=native_id)

        from_review = self.session.state == State.REVIEW.value
        recorder = self.ledger.open(plan.stage, plan.executor.name, on_native=on_native)
        self.ledger.main_execution = recorder.execution_id
        follow_up = plan.stage is State.CODING_FOLLOW_UP
        self.ledger.move(plan.stage, ("follow-up after review" if from_review else "follow-up")
                  if follow_up else "start")
        review = ""
        if from_review:
            found = last_review(self.store.entries(session_id))
            review = prompts.review_note(str(found.get("text", ""))) if found else ""
        template = prompts.template_for(plan.stage.value, await self._templates(plan))
        text = prompts.render(template, self._values(plan, review=review),
                              name=plan.stage.value)
        ws = self.workspace
        from dataclasses import replace

        env = dict(plan.request.env)
        env["AURA_STAGE"] = plan.stage.value
        request = replace(plan.request, prompt=text, cwd=self._agent_cwd(plan), env=env,
                          execution_id=recorder.execution_id)
        self.ledger.emit({"kind": EntryKind.USER_MESSAGE.value, "text": text})
        request = await self._settle(plan, request, recorder)
        outcome = await self.ledger.timed(self.host.run_agent(plan.executor, request, recorder))
        if ws is not None and not ws.removed:
            for change in await self.host.changes(ws):
                self.ledger.emit({"kind": EntryKind.SYSTEM.value, "text": changes_text(change),
                           "data": change})
        code, state, error = judge(outcome)
        if state is not State.DONE:
            raise StageFailed(error or "failed", code)
        self.ledger.finish(ExecutionStatus.DONE, 0, "exit code 0")

    async def _settle(self, plan: Plan, request: RunRequest, recorder: Recorder
                      ) -> RunRequest:
        """Let the executor pick a model or ask for an endpoint (not timed: it may wait
        for the user); the session and the later stages remember what was chosen."""
        from dataclasses import replace

        settled = await plan.executor.prepare(request, recorder)
        if (settled.model, settled.openai_endpoint) != (request.model,
                                                        request.openai_endpoint):
            options = dict(self.session.options, openai_endpoint=settled.openai_endpoint)
            self.ledger.session = self.store.update_session(self.session.id, model=settled.model,
                                                     options=options)
            plan.request = replace(plan.request, model=settled.model,
                                   openai_endpoint=settled.openai_endpoint)
        return settled

    async def _review(self, plan: Plan) -> str | None:
        """Run the reviewer read-only on the change; "skipped" when there is nothing to
        review (no workspace, an empty diff), without starting it."""
        assert plan.review is not None
        ws = self.workspace
        diff = await self.host.diff(ws) if ws is not None else ""
        if ws is None or not diff:
            why = ("there is no workspace to review (run inside a git repo or with --repo)"
                   if ws is None else "the agent changed nothing")
            self.ledger.emit({"kind": EntryKind.SYSTEM.value, "text": f"review skipped: {why}",
                              "data": {"type": "review", "verdict": None, "skipped": why}})
            return "skipped"
        project = (await self._project(ws.repos[0].repo))["review"] if ws.repos else {}
        review = plan.review(project)
        self.ledger.finish(ExecutionStatus.DONE, 0, "done")
        recorder = self.ledger.open(State.REVIEW, review.executor.name)
        self.ledger.move(State.REVIEW, "reviewing")
        from aura.workspace import changes_text as describe

        changed = "\n".join(describe(c) for c in await self.host.changes(ws))
        task = self.session.prompt
        if plan.stage is State.CODING_FOLLOW_UP:
            task += f"\n\nLatest request: {plan.prompt}"
        template = prompts.template_for("review", await self._templates(plan))
        text = prompts.render(template, self._values(plan, diff=diff, task=task,
                                                     changes=changed or "(none)"),
                              name="review")
        request = reviewer_request(self.ledger, review, text, self._agent_cwd(plan),
                                   recorder.execution_id)
        self.ledger.emit({"kind": EntryKind.USER_MESSAGE.value, "text": text})
        seen = recorder.seq
        before = await self.host.fingerprint(ws)
        outcome = await self.ledger.timed(self.host.run_agent(review.executor, request, recorder))
        wrote = await report_reviewer_writes(self.host, self.ledger, ws, before)
        recorder.flush()
        said = [str(e.get("text", "")) for e in self.store.entries(self.session.id, seen)
                if e.get("kind") == EntryKind.ASSISTANT_MESSAGE.value and
                e.get("execution") == recorder.execution_id]
        code, state, error = judge(outcome)
        if state is not State.DONE:
            raise StageFailed(f"review failed: {error}", code)
        answer = "\n".join(said).strip()
        verdict = None if wrote else prompts.verdict(answer)
        self.ledger.emit({"kind": EntryKind.SYSTEM.value,
                   "text": f"review verdict: {verdict or 'none given'}" +
                           (" (the reviewer wrote to the workspace)" if wrote else ""),
                   "data": {"type": "review", "verdict": verdict,
                            "executor": review.executor.name, "text": answer}})
        return verdict


def reviewer_request(ledger: Ledger, review: ReviewPlan, text: str, cwd: str,
                     execution_id: str) -> RunRequest:
    """The reviewer's request: read-only where its agent has a read-only mode (then
    without the coder's approvals, which could grant writes)."""
    from dataclasses import replace

    from aura.executors.base import Approvals

    env = dict(review.request.env)
    env["AURA_STAGE"] = State.REVIEW.value
    request = replace(review.request, prompt=text, cwd=cwd, env=env,
                      execution_id=execution_id, session_id=ledger.session.id)
    mode = review.executor.read_only_mode
    if mode is not None:
        return replace(request, read_only=True, approvals=Approvals())
    ledger.emit({"kind": EntryKind.SYSTEM.value,
                 "text": f"the reviewer ({review.executor.name}) has no read-only "
                         "mode: anything it writes is reported and saved apart",
                 "data": {"type": "review_read_only", "supported": False}})
    return request


async def report_reviewer_writes(host: Host, ledger: Ledger, ws: Workspace,
                                 before: dict[str, list[str | None]]) -> bool:
    """Report (as an error entry) and save on ``refs/aura/saved/<session>.reviewer``
    anything the reviewer changed; True if it changed something."""
    ref = f"{ws.ref}.reviewer"
    apart = await host.save_apart(
        ws, before, ref, f"aura: what the reviewer of session {ledger.session.id} wrote")
    for save in apart:
        files = ", ".join(save["files"][:5]) + \
            (f" and {len(save['files']) - 5} more" if len(save["files"]) > 5 else "")
        ledger.emit({
            "kind": EntryKind.ERROR.value,
            "text": f"the reviewer wrote to {save['repo']} although a review must not "
                    f"({files or 'commits only'}); saved apart on {save['ref']} "
                    f"(commit {save['commit'][:12]}); the changes are still in the "
                    f"work tree: look at them before approving",
            "data": {"type": "reviewer_wrote", **save}})
    return bool(apart)
