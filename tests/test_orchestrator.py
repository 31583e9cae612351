"""The orchestrator against a Host that runs nothing: the stage order, executions and
transitions depend only on what the host reports, not on where work runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aura.contracts import Session, State, Transition
from aura.executors.base import Executor, Outcome, Output, RunRequest
from aura.service.pipeline import Orchestrator, Plan, ReviewPlan, WorkspaceRequest
from aura.store import MemoryStore
from aura.workspace import RepoWorkspace, Workspace


class ScriptedHost:
    """Reports what it is told to; records every call."""

    name = "box1"

    def __init__(self, script_codes: Mapping[str, int] | None = None,
                 review_text: str = "VERDICT: approve") -> None:
        self.calls: list[tuple[str, Any]] = []
        self.script_codes = dict(script_codes or {})
        self.review_text = review_text

    def execution_fields(self) -> dict[str, Any]:
        return {"host": self.name, "pid": None, "pid_started": None}

    async def prepare_workspace(self, session_id: str, prompt: str, repos: list[str], *,
                                base: str | None, in_place: bool, allow_dirty: bool
                                ) -> Workspace:
        self.calls.append(("prepare", tuple(repos)))
        repo = RepoWorkspace(repo=repos[0], path="/remote/ws", branch="aura/x", base="b" * 40,
                             base_name="main", name="app")
        return Workspace(session=session_id, root="/remote/ws", repos=(repo,))

    async def project_config(self, repo: str) -> dict[str, Any]:
        return {"setup": ["make deps"], "cleanup": [], "templates": {}, "review": {}}

    async def run_script(self, command: str, cwd: str, env: Mapping[str, str],
                         output: Output) -> Outcome:
        self.calls.append(("script", command))
        output.emit([{"kind": "raw", "stream": "stdout", "text": f"ran {command}"}])
        return Outcome(self.script_codes.get(command, 0))

    async def run_agent(self, executor: Executor, request: RunRequest, output: Output
                        ) -> Outcome:
        stage = request.env.get("AURA_STAGE")
        self.calls.append(("agent", stage))
        text = self.review_text if stage == "review" else f"did: {request.prompt}"
        output.emit([{"kind": "assistant_message", "text": text}])
        return Outcome(0)

    async def changes(self, ws: Workspace) -> list[dict[str, Any]]:
        return [{"type": "changes", "repo": "app", "name": "app", "branch": "aura/x",
                 "base_name": "main", "files": [], "insertions": 0, "deletions": 0,
                 "commits": [], "uncommitted": []}]

    async def diff(self, ws: Workspace) -> str:
        return "+line"

    async def save_work(self, ws: Workspace, message: str) -> list[dict[str, str]]:
        self.calls.append(("save", message.split(" ")[2]))
        return []

    async def fingerprint(self, ws: Workspace) -> dict[str, list[str | None]]:
        return {}

    async def save_apart(self, ws: Workspace, before: dict[str, list[str | None]], ref: str,
                         message: str) -> list[dict[str, Any]]:
        return []


class NoAgent(Executor):
    name = "custom"

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        raise AssertionError("the host runs agents, not the orchestrator")


def _session(store: MemoryStore) -> Session:
    session = Session("s1", "custom", State.QUEUED.value, "/here", "t", "t", prompt="task")
    store.create_session(session)
    store.record_transition(Transition("s1", None, "queued", "t", "created"))
    return store.get_session("s1")


def _plan(review: bool) -> Plan:
    request = RunRequest(prompt="task", cwd="/here", session_id="s1", execution_id="")
    plan = Plan(prompt="task", stage=State.CODING_INITIAL, executor=NoAgent(),
                request=request, workspace_request=WorkspaceRequest(("/src/app",)),
                setup=("echo extra",))
    if review:
        plan.review = lambda project: ReviewPlan(NoAgent(), request)
    return plan


def test_stages_run_in_order_through_the_host() -> None:
    store = MemoryStore()
    host = ScriptedHost()
    finished = asyncio.run(Orchestrator(store, host, _session(store)).run(_plan(True)))
    assert finished.state is State.DONE and finished.exit_code == 0
    assert [t.dst for t in store.transitions("s1")] == [
        "queued", "prepare_workspace", "setup", "coding_initial", "review", "done"]
    assert [c for c in host.calls if c[0] != "save"] == [
        ("prepare", ("/src/app",)), ("script", "make deps"), ("script", "echo extra"),
        ("agent", "coding_initial"), ("agent", "review")]
    executions = store.list_executions("s1")
    assert {e.host for e in executions} == {"box1"}
    assert [e.stage for e in executions] == ["prepare_workspace", "setup", "setup",
                                             "coding_initial", "review"]
    assert all(e.status == "done" for e in executions)
    assert store.get_session("s1").cwd == "/remote/ws"
    entries = store.entries("s1")
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    verdicts = [e["data"]["verdict"] for e in entries if e.get("data", {}).get("type") ==
                "review"]
    assert verdicts == ["approve"]


def test_a_failing_setup_script_fails_the_session_and_saves() -> None:
    store = MemoryStore()
    host = ScriptedHost({"make deps": 2})
    finished = asyncio.run(Orchestrator(store, host, _session(store)).run(_plan(False)))
    # make's 2 would read as aura's usage error: the script's failure exits 1 instead.
    assert finished.state is State.FAILED and finished.exit_code == 1
    assert "setup script failed (exit 2): make deps\nran make deps" in (finished.error or "")
    assert [t.dst for t in store.transitions("s1")][-2:] == ["setup", "failed"]
    assert ("save", "when") in host.calls
    assert not any(c == ("agent", "coding_initial") for c in host.calls)


def test_without_a_verdict_the_session_rests_in_review() -> None:
    store = MemoryStore()
    host = ScriptedHost(review_text="hmm")
    finished = asyncio.run(Orchestrator(store, host, _session(store)).run(_plan(True)))
    assert finished.state is State.REVIEW
    assert store.get_session("s1").state == "review"
