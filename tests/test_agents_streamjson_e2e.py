"""claude, droid, cursor-agent and amp through `aura run`, end to end: real aura processes
running tests/agents/fake_stream_agent.py installed under the real binary's name in a tmp
dir on PATH (so aura's own program resolution finds it). The claude and droid fakes replay
the recorded output of the real CLIs; cursor-agent and amp have no recordings, so their
fakes print their documented stream-json formats. Each fake logs the argv, stdin and env it
got, which is what these tests check: prompt delivery, the resume flag with the stored
native id on `aura run --session ID`, and the approval-flag mapping.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .conftest import AGENTS, run_aura

FAKE = AGENTS / "fake_stream_agent.py"
PROMPT = "Create a file hello.txt containing the text hi, then say Done."


def install(bindir: Path, name: str) -> Path:
    """The fake agent as an executable called ``name`` in ``bindir``."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    # The fake answers as the name it was run by (runpy replaces sys.argv[0]).
    path.write_text(f"#!{sys.executable}\nimport os, runpy, sys\n"
                    "os.environ['FAKE_AGENT_NAME'] = os.path.basename(sys.argv[0])\n"
                    f"runpy.run_path({str(FAKE)!r}, run_name='__main__')\n")
    path.chmod(0o755)
    return path


class Agent:
    """One fake agent on PATH, its log, and `aura run` with that PATH."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.bindir = tmp_path / "bin"
        self.path = install(self.bindir, name)
        self.log = tmp_path / "agent-log.jsonl"
        self.work = tmp_path / "work"
        self.work.mkdir(exist_ok=True)
        self.env = {"PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                    "FAKE_AGENT_LOG": str(self.log)}

    def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict],
                                                                          str]:
        result = run_aura("run", "--json", "--cwd", str(self.work), *args,
                          env={**self.env, **(env or {})})
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return result.returncode, lines, result.stderr

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def of_kind(lines: list[dict], kind: str) -> list[dict]:
    return [e for e in lines if e.get("kind") == kind]


def assert_wrote_hello(lines: list[dict]) -> None:
    calls = [(e["action"], e["target"], e["status"]) for e in of_kind(lines, "tool_call")]
    assert ("file_write", "hello.txt", "ok") in calls, calls
    assert of_kind(lines, "assistant_message")[-1]["text"] in ("Done.", "Done again.")


def summary(lines: list[dict]) -> dict:
    assert lines[-1]["kind"] == "summary"
    return lines[-1]


# claude ----------------------------------------------------------------------------------

def test_claude_new_session_then_resume(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # claude 2.1 refuses --dangerously-skip-permissions as root unless IS_SANDBOX is
    # exactly "1" (seen with "yes" in the environment): aura sets it.
    monkeypatch.setenv("IS_SANDBOX", "yes")
    agent = Agent(tmp_path, "claude")
    code, lines, err = agent.run("--executor", "claude", "--prompt", PROMPT, "--yolo",
                                 "--model", "sonnet", "--var", "FAKE_EXTRA=x")
    assert code == 0, err
    [call] = agent.calls()
    argv = call["argv"]
    assert argv[:2] == ["-p", PROMPT]
    assert argv[2:5] == ["--output-format", "stream-json", "--verbose"]
    assigned = argv[argv.index("--session-id") + 1]
    assert "--resume" not in argv
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert "--dangerously-skip-permissions" in argv
    if os.geteuid() == 0:
        assert call["env"]["IS_SANDBOX"] == "1"
    assert call["env"]["FAKE_EXTRA"] == "x"
    assert call["cwd"] == str(agent.work)
    assert_wrote_hello(lines)
    result = summary(lines)
    assert result["native_session_id"] == assigned
    assert result["usage"]["input_tokens"] == 200
    assert result["usage"]["cost_usd"] == pytest.approx(0.002)

    code, lines, err = agent.run("--session", result["session"], "--prompt",
                                 "Now also create bye.txt containing bye.")
    assert code == 0, err
    argv = agent.calls()[1]["argv"]
    assert argv[argv.index("--resume") + 1] == assigned
    assert "--session-id" not in argv
    assert "--dangerously-skip-permissions" not in argv  # approvals are per turn
    assert argv[argv.index("--model") + 1] == "sonnet"  # the session's model
    assert of_kind(lines, "assistant_message")[-1]["text"] == "Done again."
    assert summary(lines)["native_session_id"] == assigned


def test_claude_prompt_starting_with_a_dash_goes_on_stdin(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "claude")
    # --yolo: the plain `-p` mode (without it claude runs the control protocol, which
    # takes the prompt as a user message and asks aura for approvals).
    code, _lines, err = agent.run("--executor", "claude", "--prompt", "--help me", "--yolo")
    assert code == 0, err
    [call] = agent.calls()
    assert call["stdin"] == "--help me"
    assert call["argv"][:2] == ["-p", "--output-format"]


def test_claude_auto_approve_maps_to_permission_mode(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "claude")
    assert agent.run("--executor", "claude", "--prompt", "x", "--auto-approve", "true")[0] == 0
    argv = agent.calls()[0]["argv"]
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"


# droid -----------------------------------------------------------------------------------

def test_droid_flags_then_refused_resume_falls_back_to_a_seeded_session(
        tmp_path: Path, aura_home: Path) -> None:
    (aura_home / "config.toml").write_text(
        '[executors.droid]\nautonomy = "medium"\nreasoning_effort = "low"\n')
    agent = Agent(tmp_path, "droid")
    code, lines, err = agent.run("--executor", "droid", "--prompt", PROMPT,
                                 "--model", "custom:mock-model")
    assert code == 0, err
    argv = agent.calls()[0]["argv"]
    assert argv[:3] == ["exec", "--output-format", "stream-json"]
    assert argv[-1] == PROMPT
    assert argv[argv.index("--auto") + 1] == "medium"
    assert argv[argv.index("--reasoning-effort") + 1] == "low"
    assert argv[argv.index("--model") + 1] == "custom:mock-model"
    assert_wrote_hello(lines)
    first = summary(lines)
    native = first["native_session_id"]
    assert native and first["usage"]["output_tokens"] == 40

    # droid 0.215 refuses `--session-id` without Factory's cloud (exit 1, no output):
    # aura says so and starts a fresh droid session seeded with the transcript.
    code, lines, err = agent.run("--session", first["session"], "--prompt", "And bye.txt",
                                 "--yolo")
    assert code == 0, err
    resumed, fresh = agent.calls()[1:]
    assert resumed["argv"][resumed["argv"].index("--session-id") + 1] == native
    assert "--skip-permissions-unsafe" in resumed["argv"]
    assert "--auto" not in resumed["argv"]
    assert "--session-id" not in fresh["argv"]
    seeded = fresh["argv"][-1]
    assert f"User: {PROMPT}" in seeded and "Assistant: Done." in seeded
    assert seeded.endswith("And bye.txt")
    notes = [e["text"] for e in of_kind(lines, "system")]
    assert any(f"resuming droid session {native} failed" in n and "fresh" in n
               for n in notes), notes
    assert summary(lines)["state"] == "done"
    assert summary(lines)["native_session_id"] not in (None, native)


def test_droid_resume_when_it_works(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "droid")
    code, lines, _ = agent.run("--executor", "droid", "--prompt", PROMPT,
                               "--auto-approve", "true")
    assert code == 0
    assert agent.calls()[0]["argv"][agent.calls()[0]["argv"].index("--auto") + 1] == "high"
    native = summary(lines)["native_session_id"]
    code, lines, _ = agent.run("--resume-latest", "--executor", "droid", "--prompt", "more",
                               "--auto-approve", "false", env={"FAKE_DROID_RESUME": "ok"})
    assert code == 0
    calls = agent.calls()
    assert len(calls) == 2
    argv = calls[1]["argv"]
    assert argv[argv.index("--session-id") + 1] == native and argv[-1] == "more"
    assert "--auto" not in argv
    assert not of_kind(lines, "system") or all("fresh" not in e["text"]
                                               for e in of_kind(lines, "system"))


# cursor-agent ------------------------------------------------------------------------------

def test_cursor_needs_force_or_trust(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "cursor-agent")
    code, _lines, err = agent.run("--executor", "cursor-agent", "--prompt", "x")
    assert code == 2
    assert "--force" in err and "--trust" in err
    assert agent.calls() == []


def test_cursor_prompt_on_stdin_and_resume(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "cursor-agent")
    code, lines, err = agent.run("--executor", "cursor", "--prompt", PROMPT, "--force",
                                 "--model", "gpt-5")
    assert code == 0, err
    [call] = agent.calls()
    assert call["stdin"] == PROMPT
    assert call["argv"][:3] == ["-p", "--output-format", "stream-json"]
    assert "--force" in call["argv"] and "--trust" not in call["argv"]
    assert PROMPT not in call["argv"]
    assert_wrote_hello(lines)
    assert of_kind(lines, "thinking")[0]["text"] == "Writing the file."
    native = summary(lines)["native_session_id"]
    assert native

    code, lines, err = agent.run("--session", summary(lines)["session"], "--prompt", "next",
                                 "--trust")
    assert code == 0, err
    argv = agent.calls()[1]["argv"]
    assert argv[argv.index("--resume") + 1] == native
    assert "--trust" in argv and "--force" not in argv
    assert agent.calls()[1]["stdin"] == "next"


# amp -------------------------------------------------------------------------------------

def test_amp_execute_yolo_and_threads_continue(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "amp")
    code, lines, err = agent.run("--executor", "amp", "--prompt", PROMPT, "--yolo")
    assert code == 0, err
    argv = agent.calls()[0]["argv"]
    assert argv == ["-x", PROMPT, "--stream-json", "--dangerously-allow-all"]
    assert_wrote_hello(lines)
    result = summary(lines)
    thread = result["native_session_id"]
    assert thread.startswith("T-")
    assert result["usage"] == {"input_tokens": 200, "output_tokens": 40,
                               "cached_input_tokens": 0}

    code, lines, err = agent.run("--session", result["session"], "--prompt", "again")
    assert code == 0, err
    assert agent.calls()[1]["argv"] == ["threads", "continue", thread, "-x", "again",
                                        "--stream-json"]


# flags with no meaning, missing binaries, --executor-path ---------------------------------

@pytest.mark.parametrize(("executor", "flags", "named"), [
    ("claude", ["--trust"], "--trust"),
    ("claude", ["--allow-all-tools"], "--allow-all-tools"),
    ("amp", ["--model", "x"], "--model"),
    ("amp", ["--auto-approve", "true"], "--auto-approve"),
    ("droid", ["--force"], "--force"),
    ("cursor-agent", ["--force", "--auto-approve", "true"], "--auto-approve"),
    ("claude", ["--allow-tool", "Bash"], "--allow-tool"),
])
def test_meaningless_flags_are_usage_errors(tmp_path: Path, executor: str,
                                            flags: list[str], named: str) -> None:
    agent = Agent(tmp_path, executor)
    code, _lines, err = agent.run("--executor", executor, "--prompt", "x", *flags)
    assert code == 2, err
    assert named in err and executor in err
    assert agent.calls() == []


def test_missing_binary_is_one_line_and_records_no_session(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_aura("run", "--executor", "claude", "--prompt", "x", "--no-tui",
                      env={"PATH": str(empty)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "claude not found on PATH" in lines[0] and str(empty) in lines[0]
    assert "--executor-path claude=" in lines[0]
    listed = run_aura("session", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_executor_path_is_remembered_and_reused(tmp_path: Path, aura_home: Path) -> None:
    agent = Agent(tmp_path, "claude")
    elsewhere = install(tmp_path / "opt", "claude")
    no_claude = {"PATH": str(tmp_path / "empty")}
    code, _lines, err = agent.run("--executor", "claude", "--yolo", "--prompt", "one",
                                  "--executor-path", f"claude={elsewhere}", env=no_claude)
    assert code == 0, err
    assert f'claude = "{elsewhere}"' in (aura_home / "config.toml").read_text()
    code, _lines, err = agent.run("--executor", "claude", "--yolo", "--prompt", "two",
                                  env=no_claude)
    assert code == 0, err
    assert [c["argv"][1] for c in agent.calls()] == ["one", "two"]

    listed = run_aura("executors", "--json", env=no_claude)
    claude = next(r for r in json.loads(listed.stdout) if r["name"] == "claude")
    assert claude["found"] and claude["path"] == str(elsewhere)
    assert claude["via"] == "executor-path"
    assert claude["version"] == "claude 9.9.9 (fake)"

    elsewhere.unlink()
    code, _lines, err = agent.run("--executor", "claude", "--yolo", "--prompt", "three",
                                  env=no_claude)
    assert code == 1
    assert "not an executable file" in err and "--executor-path claude=" in err


def test_unknown_executor_path_name_is_an_error(tmp_path: Path, aura_home: Path) -> None:
    result = run_aura("run", "--executor", "custom", "--base-command", "true", "--prompt",
                      "x", "--executor-path", f"nope={tmp_path}", "--no-tui")
    assert result.returncode == 2
    assert "nope" in result.stderr
    assert not (aura_home / "config.toml").exists()


def test_aura_executors_lists_every_executor(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "droid")
    env = {"PATH": str(agent.bindir)}
    listed = run_aura("executors", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert {"claude", "cursor-agent", "amp", "droid", "custom"} <= set(rows)
    assert rows["droid"]["found"] and rows["droid"]["path"] == str(agent.path)
    assert rows["droid"]["version"] == "droid 9.9.9 (fake)"
    assert rows["droid"]["supports"] == {"resume": True, "models": True, "asks": True,
                                         "approvals": ["--auto-approve", "--yolo"]}
    assert rows["claude"]["found"] is False
    assert rows["cursor-agent"]["aliases"] == ["cursor"]
    assert "--force" in rows["cursor-agent"]["supports"]["approvals"]
    text = run_aura("executors", env=env)
    assert text.returncode == 0
    assert "droid" in text.stdout and "missing" in text.stdout
    assert "--executor-path NAME=PATH" in text.stderr


def test_claude_refused_resume_falls_back_to_a_seeded_session(tmp_path: Path) -> None:
    agent = Agent(tmp_path, "claude")
    code, lines, err = agent.run("--executor", "claude", "--prompt", PROMPT, "--yolo")
    assert code == 0, err
    first = summary(lines)
    code, lines, err = agent.run("--session", first["session"], "--prompt", "And bye.txt", "--yolo",
                                 env={"FAKE_CLAUDE_RESUME": "refuse"})
    assert code == 0, err
    refused, fresh = agent.calls()[1:]
    assert refused["argv"][refused["argv"].index("--resume") + 1] == \
        first["native_session_id"]
    assert "--resume" not in fresh["argv"]
    new_id = fresh["argv"][fresh["argv"].index("--session-id") + 1]
    assert fresh["argv"][1].startswith("This continues an earlier conversation.")
    assert fresh["argv"][1].endswith("And bye.txt")
    raw = [e["text"] for e in of_kind(lines, "raw")]
    assert any("No conversation found with session ID" in t for t in raw)
    assert any("fresh agent session" in e["text"] for e in of_kind(lines, "system"))
    assert summary(lines)["native_session_id"] == new_id
    assert summary(lines)["state"] == "done"


def test_relative_executor_path_is_remembered_absolute(tmp_path: Path,
                                                       aura_home: Path) -> None:
    agent = Agent(tmp_path, "amp")
    install(tmp_path / "tools", "amp")
    result = run_aura("run", "--executor", "amp", "--prompt", "x", "--json", "--cwd",
                      str(agent.work), "--executor-path", "amp=tools/amp", cwd=tmp_path,
                      env={"PATH": str(tmp_path / "empty"), "FAKE_AGENT_LOG": str(agent.log)})
    assert result.returncode == 0, result.stderr
    assert f'amp = "{tmp_path / "tools" / "amp"}"' in (aura_home / "config.toml").read_text()
    assert agent.calls()[0]["argv"][:2] == ["-x", "x"]
