"""The executor base shared by every agent: program resolution and its one-line error,
refusing meaningless flags, and the native-resume fallback (a fresh agent session seeded
with the transcript) — all through real child processes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aura.contracts import Entry
from aura.errors import ExecutorNotFound, UsageError
from aura.executors.base import (
    CommandExecutor,
    Invocation,
    LineParser,
    Outcome,
    RunRequest,
)


class Collect:
    """An Output that keeps what the executor emitted."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.native: list[str] = []

    def emit(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)

    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        self.entries.extend(e for e, _ in items)

    def set_native_session_id(self, native_id: str) -> None:
        self.native.append(native_id)


class EventParser(LineParser):
    """{"say": text} → assistant text; {"id": x} → native id; else raw."""

    def feed(self, line: str) -> list[Entry]:
        obj: Any = json.loads(line) if line.startswith("{") else None
        if isinstance(obj, dict) and "id" in obj:
            self.native_session_id = obj["id"]
            return []
        if isinstance(obj, dict) and "say" in obj:
            return [{"kind": "assistant_message", "text": obj["say"]}]
        return [{"kind": "raw", "text": line}]


AGENT = r'''
import json, os, sys
args = sys.argv[1:]
log = os.environ["FAKE_LOG"]
with open(log, "a") as fh:
    fh.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_MODE", "ok")
if "--resume" in args:
    sid = args[args.index("--resume") + 1]
    if mode == "refuse":
        print(f"No conversation found with session ID: {sid}", file=sys.stderr)
        sys.exit(1)
    if mode == "silent":
        sys.exit(1)
    if mode == "task-failed":
        print(json.dumps({"say": "I tried"}))
        sys.exit(3)
    if mode == "auth":
        print("Invalid API key", file=sys.stderr)
        sys.exit(1)
print(json.dumps({"id": "native-" + str(len(open(log).readlines()))}))
print(json.dumps({"say": "got: " + args[-1]}))
'''


class FakeExecutor(CommandExecutor):
    name = "fake"
    program = "fake-agent-binary"
    features: ClassVar[frozenset[str]] = frozenset({"resume", "--yolo"})

    def __init__(self, script: Path) -> None:
        self.script = script

    def build_command(self, request: RunRequest) -> Invocation:
        argv = [sys.executable, str(self.script)]
        if request.native_session_id:
            argv += ["--resume", request.native_session_id]
        return Invocation(argv=[*argv, request.prompt], env=request.child_env())

    def parser(self, request: RunRequest) -> LineParser:
        return EventParser()


HISTORY: tuple[Entry, ...] = (
    {"kind": "user_message", "text": "make hello.txt"},
    {"kind": "tool_call", "action": "file_write", "target": "hello.txt", "status": "ok"},
    {"kind": "assistant_message", "text": "Done."},
)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
         native: str | None, history: tuple[Entry, ...] = HISTORY
         ) -> tuple[Outcome, Collect, list[list[str]]]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_MODE", mode)
    request = RunRequest(prompt="now bye.txt", cwd=str(tmp_path), session_id="s",
                         execution_id="e", native_session_id=native, history=history)
    out = Collect()
    outcome = asyncio.run(FakeExecutor(script).run(request, out))
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return outcome, out, calls


def _systems(out: Collect) -> list[str]:
    return [e["text"] for e in out.entries if e["kind"] == "system"]


def test_resume_with_the_native_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, out, calls = _run(tmp_path, monkeypatch, "ok", "native-0")
    assert calls == [["--resume", "native-0", "now bye.txt"]]
    assert outcome.exit_code == 0
    assert _systems(out) == []


def test_no_native_id_seeds_a_fresh_session(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, out, calls = _run(tmp_path, monkeypatch, "ok", None)
    assert len(calls) == 1 and "--resume" not in calls[0]
    prompt = calls[0][-1]
    assert "User: make hello.txt" in prompt and "Assistant: Done." in prompt
    assert prompt.endswith("now bye.txt")
    assert "no native session id" in _systems(out)[0]
    assert outcome.exit_code == 0 and outcome.native_session_id == "native-1"


def test_first_turn_is_not_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _outcome, out, calls = _run(tmp_path, monkeypatch, "ok", None, history=())
    assert calls == [["now bye.txt"]]
    assert _systems(out) == []


@pytest.mark.parametrize("mode", ["refuse", "silent"])
def test_refused_resume_falls_back_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        mode: str) -> None:
    outcome, out, calls = _run(tmp_path, monkeypatch, mode, "gone-id")
    assert calls[0] == ["--resume", "gone-id", "now bye.txt"]
    assert len(calls) == 2 and "--resume" not in calls[1]
    assert "Transcript so far" in calls[1][-1]
    assert "resuming fake session gone-id failed" in _systems(out)[0]
    assert outcome.exit_code == 0
    assert out.native == ["native-2"]
    if mode == "refuse":  # the agent's complaint is kept
        assert any("No conversation found" in e.get("text", "") for e in out.entries)


@pytest.mark.parametrize("mode", ["task-failed", "auth"])
def test_other_failures_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        mode: str) -> None:
    outcome, out, calls = _run(tmp_path, monkeypatch, mode, "native-0")
    assert len(calls) == 1
    assert outcome.exit_code != 0
    assert _systems(out) == []


def test_missing_binary_is_one_line_naming_binary_path_and_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    executor = FakeExecutor(tmp_path / "x.py")
    request = RunRequest(prompt="p", cwd=str(tmp_path), session_id="s", execution_id="e")
    with pytest.raises(ExecutorNotFound) as info:
        executor.preflight(request)
    message = str(info.value)
    assert "\n" not in message
    assert "fake-agent-binary not found on PATH" in message
    assert str(tmp_path) in message
    assert "--executor-path fake=/path/to/fake-agent-binary" in message
    bad = RunRequest(prompt="p", cwd=str(tmp_path), session_id="s", execution_id="e",
                     program=str(tmp_path / "nope"))
    with pytest.raises(ExecutorNotFound, match="is not an executable file"):
        executor.preflight(bad)


def test_executor_path_wins_over_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    binary = tmp_path / "bin" / "my-agent"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    executor = FakeExecutor(tmp_path / "x.py")
    request = RunRequest(prompt="p", cwd=str(tmp_path), session_id="s", execution_id="e",
                         program=str(binary))
    assert executor.base_argv(request) == [str(binary)]
    assert executor.locate(str(binary)) == ([str(binary)], "executor-path")


def test_flags_without_meaning_are_usage_errors(tmp_path: Path) -> None:
    from aura.executors.base import Approvals

    executor = FakeExecutor(tmp_path / "x.py")
    base = {"prompt": "p", "cwd": str(tmp_path), "session_id": "s", "execution_id": "e"}
    executor.validate(RunRequest(**base, approvals=Approvals(yolo=True)))
    with pytest.raises(UsageError, match="--trust has no meaning for --executor fake"):
        executor.validate(RunRequest(**base, approvals=Approvals(trust=True)))
    with pytest.raises(UsageError, match="--model has no meaning"):
        executor.validate(RunRequest(**base, model="m"))


class NoResumeExecutor(FakeExecutor):
    features: ClassVar[frozenset[str]] = frozenset()


def test_agent_without_native_resume_always_gets_the_transcript(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "argv.log"))
    request = RunRequest(prompt="again", cwd=str(tmp_path), session_id="s",
                         execution_id="e", history=HISTORY)
    out = Collect()
    outcome = asyncio.run(NoResumeExecutor(script).run(request, out))
    assert outcome.exit_code == 0
    assert _systems(out) == ["fake cannot resume a session: starting a fresh agent session "
                             "seeded with the transcript of this session"]
    argv = json.loads((tmp_path / "argv.log").read_text())
    assert argv[-1].startswith("This continues an earlier conversation.")
