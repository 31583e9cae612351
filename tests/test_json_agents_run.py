"""codex, opencode and copilot end to end: `aura run` as a real process runs a fake agent
(tests/agents/json_agent.py) placed on PATH under the real binary's name, which replays the
real agent's recorded output and logs the argv, stdin and environment it was given."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import AGENTS, FIXTURES, TIMEOUT_FACTOR, aura_argv, run_aura

PROMPT = "Create a file hello.txt containing the text hi, then say Done."
FOLLOW_UP = "Now also create bye.txt containing bye."


def meta(run: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "agents" / f"{run}.meta.json").read_text())


class Fakes:
    """A bin directory with fake codex/opencode/copilot, and what they were given."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "agent-log.jsonl"
        self.work = root / "work"
        self.work.mkdir()
        for agent in ("codex", "opencode", "copilot"):
            wrapper = self.bin / agent
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" '
                               f'"{AGENTS / "json_agent.py"}" {agent} "$@"\n')
            wrapper.chmod(0o755)
        self.env = {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                    "FAKE_AGENT_LOG": str(self.log)}

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def run(self, *args: str, env: dict[str, str] | None = None
            ) -> tuple[subprocess.CompletedProcess, list[dict[str, Any]]]:
        """`aura run … --json`: the process and its JSON lines. --no-ask: the fakes replay
        the agents' plain headless modes (their approval protocols: test_approval_channels,
        test_codex_appserver)."""
        proc = run_aura("run", *args, "--json", "--no-tui", "--no-ask",
                        env={**self.env, **(env or {})},
                        cwd=self.work)
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        return proc, lines


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


# agent → (argv of a new session, argv of the follow-up), as the agent must receive them
EXPECTED = {
    "codex": (["exec", "--json", "--skip-git-repo-check", PROMPT],
              ["exec", "--json", "--skip-git-repo-check", "resume", "{sid}", FOLLOW_UP]),
    "opencode": (["run", "--format", "json", "--thinking", PROMPT],
                 ["run", "--format", "json", "--thinking", "--session", "{sid}", FOLLOW_UP]),
    "copilot": (["-p", PROMPT, "--output-format", "json"],
                ["-p", FOLLOW_UP, "--resume={sid}", "--output-format", "json"]),
}


@pytest.mark.parametrize("agent", sorted(EXPECTED))
def test_run_then_follow_up_resumes_the_agents_own_session(fakes: Fakes, agent: str) -> None:
    # codex is the default executor: it is run without --executor.
    chosen = [] if agent == "codex" else ["--executor", agent]
    proc, lines = fakes.run(*chosen, "--prompt", PROMPT)
    assert proc.returncode == 0, proc.stderr
    summary = lines[-1]
    native = meta(f"{agent}-write")["session_id"]
    assert (summary["kind"], summary["state"], summary["native_session_id"]) == \
        ("summary", "done", native)
    writes = [e for e in lines if e["kind"] == "tool_call" and e["status"] == "ok"]
    assert [(e["action"], Path(e["target"]).name) for e in writes] == \
        [("file_write", "hello.txt")]
    assert [e["text"] for e in lines if e["kind"] == "assistant_message"][-1] == "Done."
    first_argv, resume_argv = EXPECTED[agent]
    (call,) = fakes.calls()
    assert call["argv"] == first_argv
    assert call["stdin"] == ""
    assert call["env"]["AURA_SESSION_ID"] == summary["session"]

    proc, lines = fakes.run("--session", summary["session"][:8], "--prompt", FOLLOW_UP)
    assert proc.returncode == 0, proc.stderr
    assert lines[-1]["state"] == "done"
    assert lines[-1]["session"] == summary["session"]
    assert [e["text"] for e in lines if e["kind"] == "assistant_message"][-1] == "Done again."
    assert fakes.calls()[1]["argv"] == [a.replace("{sid}", native) for a in resume_argv]


def test_codex_follow_up_usage_counts_only_the_new_turn(fakes: Fakes) -> None:
    _proc, lines = fakes.run("--prompt", PROMPT)
    assert lines[-1]["usage"]["input_tokens"] == 200
    _proc, lines = fakes.run("--session", lines[-1]["session"], "--prompt", FOLLOW_UP)
    # codex says 400/80 for the thread; this turn used 200/40
    assert (lines[-1]["usage"]["input_tokens"], lines[-1]["usage"]["output_tokens"]) == \
        (200, 40)


def test_session_show_has_the_native_id_and_entries(fakes: Fakes) -> None:
    _proc, lines = fakes.run("--executor", "copilot", "--prompt", PROMPT, "--yolo")
    shown = run_aura("session", "show", lines[-1]["session"], "--json", env=fakes.env)
    data = json.loads(shown.stdout)
    assert data["executor"] == "copilot"
    assert data["native_session_id"] == meta("copilot-write")["session_id"]
    kinds = [e["kind"] for e in data["entries"]]
    assert "tool_call" in kinds and "usage" in kinds


@pytest.mark.parametrize(("agent", "flags", "expected"), [
    ("codex", ["--yolo"], ["--dangerously-bypass-approvals-and-sandbox"]),
    ("codex", ["--auto-approve", "true"], ["--sandbox", "workspace-write"]),
    ("codex", ["--auto-approve", "false"], ["--sandbox", "read-only"]),
    ("codex", ["--model", "gpt-5.4"], ["-m", "gpt-5.4"]),
    ("opencode", ["--auto-approve", "true"], ["--auto"]),
    ("opencode", ["--model", "anthropic/claude-sonnet-4-5"],
     ["--model", "anthropic/claude-sonnet-4-5"]),
    ("copilot", ["--yolo"], ["--allow-all-tools"]),
    ("copilot", ["--allow-all-tools"], ["--allow-all-tools"]),
    ("copilot", ["--allow-tool", "shell(git:*)", "--allow-tool", "write",
                 "--deny-tool", "shell(git push)"],
     ["--allow-tool=shell(git:*)", "--allow-tool=write", "--deny-tool=shell(git push)"]),
    ("copilot", ["--model", "claude-sonnet-4.5"], ["--model", "claude-sonnet-4.5"]),
])
def test_flags_map_to_the_agents_own(fakes: Fakes, agent: str, flags: list[str],
                                     expected: list[str]) -> None:
    proc, _ = fakes.run("--executor", agent, "--prompt", PROMPT, *flags)
    assert proc.returncode == 0, proc.stderr
    argv = fakes.calls()[0]["argv"]
    start = argv.index(expected[0])
    assert argv[start:start + len(expected)] == expected
    assert argv.count(expected[0]) == expected.count(expected[0])


def test_opencode_yolo_merges_permissions_into_the_users_config(fakes: Fakes) -> None:
    mine = {"model": "mock/mock-model", "permission": {"*": "ask", "read": "deny"}}
    proc, _ = fakes.run("--executor", "opencode", "--prompt", PROMPT, "--yolo",
                        env={"OPENCODE_CONFIG_CONTENT": json.dumps(mine)})
    assert proc.returncode == 0, proc.stderr
    call = fakes.calls()[0]
    config = json.loads(call["env"]["OPENCODE_CONFIG_CONTENT"])
    assert config["model"] == "mock/mock-model"
    permission = config["permission"]
    assert permission["*"] == permission["edit"] == permission["bash"] == "allow"
    # opencode applies the last matching rule: the wildcard comes after the user's own
    assert list(permission)[:2] == ["read", "*"]
    assert set(permission.values()) == {"deny", "allow"}
    assert "--auto" not in call["argv"]


def test_opencode_settings_from_the_config(fakes: Fakes, aura_home: Path) -> None:
    (aura_home / "config.toml").write_text(
        '[executors.opencode]\nvariant = "high"\nagent = "build"\nhost = "127.0.0.1"\n'
        'port = 4096\n\n[executors.opencode.env]\nOPENCODE_EXTRA = "1"\n')
    proc, _ = fakes.run("--executor", "opencode", "--prompt", PROMPT)
    assert proc.returncode == 0, proc.stderr
    call = fakes.calls()[0]
    assert call["argv"] == ["run", "--format", "json", "--thinking", "--variant", "high",
                            "--agent", "build", "--attach", "http://127.0.0.1:4096", PROMPT]
    assert call["env"]["OPENCODE_EXTRA"] == "1"


def test_codex_sandbox_from_the_config_and_yolo_over_it(fakes: Fakes, aura_home: Path) -> None:
    (aura_home / "config.toml").write_text('[executors.codex]\nsandbox = "workspace-write"\n')
    proc, _ = fakes.run("--prompt", PROMPT)
    assert proc.returncode == 0, proc.stderr
    proc, _ = fakes.run("--prompt", PROMPT, "--yolo")
    first, second = fakes.calls()
    assert first["argv"][3:5] == ["--sandbox", "workspace-write"]
    assert "--sandbox" not in second["argv"]
    (aura_home / "config.toml").write_text('[executors.codex]\nsandbox = "everything"\n')
    proc, _ = fakes.run("--prompt", PROMPT)
    assert proc.returncode == 1
    assert "sandbox" in proc.stderr and "workspace-write" in proc.stderr


def test_params_vars_and_a_prompt_that_looks_like_an_option(fakes: Fakes) -> None:
    odd = "--help is broken, fix it"
    for agent in ("codex", "opencode", "copilot"):
        proc, _ = fakes.run("--executor", agent, "--prompt", odd, "--param", "--verbose",
                            "--var", "FAKE_VAR=42")
        assert proc.returncode == 0, proc.stderr
    codex, opencode, copilot = fakes.calls()
    assert codex["argv"][-3:] == ["--verbose", "--", odd]
    assert opencode["argv"][-3:] == ["--verbose", "--", odd]
    assert copilot["argv"][0] == f"--prompt={odd}"
    assert copilot["argv"][-1] == "--verbose"
    assert {c["env"]["FAKE_VAR"] for c in (codex, opencode, copilot)} == {"42"}


@pytest.mark.parametrize(("agent", "flags"), [
    ("codex", ["--force"]), ("codex", ["--trust"]), ("codex", ["--allow-all-tools"]),
    ("codex", ["--allow-tool", "write"]),
    ("opencode", ["--force"]), ("opencode", ["--deny-tool", "bash"]),
    ("opencode", ["--model", "sonnet"]),
    ("copilot", ["--auto-approve", "true"]), ("copilot", ["--trust"]),
])
def test_flags_without_meaning_are_usage_errors(fakes: Fakes, agent: str,
                                                flags: list[str]) -> None:
    proc, _ = fakes.run("--executor", agent, "--prompt", PROMPT, *flags)
    assert proc.returncode == 2
    assert proc.stderr.startswith("aura: error:")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert fakes.calls() == []  # the agent never ran


@pytest.mark.parametrize(("agent", "sigints"), [
    ("codex", 1), ("opencode", 1), ("copilot", 1), ("copilot", 2)])
def test_ctrl_c_interrupts_the_agent_with_sigint(fakes: Fakes, agent: str,
                                                 sigints: int) -> None:
    # sigints=2: an agent that only aborts its turn on the first SIGINT gets a second.
    env = {**os.environ, **fakes.env, "FAKE_AGENT_HANG": str(sigints)}
    proc = subprocess.Popen(aura_argv("run", "--executor", agent, "--prompt", PROMPT,
                                      "--json", "--no-tui", "--no-ask"),
                            cwd=fakes.work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
        while not any(c.get("waiting") for c in fakes.calls()):
            assert time.monotonic() < deadline, "the fake agent never started"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert [c.get("signal") for c in fakes.calls() if "signal" in c] == ["SIGINT"] * sigints
    summary = json.loads(out.splitlines()[-1]) if out.strip() else None
    if summary is not None and summary.get("kind") == "summary":
        assert summary["state"] == "cancelled"


def test_refused_resume_falls_back_to_a_seeded_fresh_session(fakes: Fakes) -> None:
    # The first turn is the recording of another copilot session; the fake copilot only
    # knows how to resume the session of its resume recording, so it refuses this one the
    # way copilot does, and aura starts a fresh copilot session seeded with the transcript.
    proc, lines = fakes.run("--executor", "copilot", "--prompt", PROMPT, "--yolo",
                            env={"FAKE_AGENT_RUN": "copilot-anthropic-write"})
    assert proc.returncode == 0, proc.stderr
    stored = lines[-1]["native_session_id"]
    assert stored == meta("copilot-anthropic-write")["session_id"]
    proc, lines = fakes.run("--session", lines[-1]["session"], "--prompt", FOLLOW_UP, "--yolo")
    assert proc.returncode == 0, proc.stderr
    _, refused, fresh = fakes.calls()
    assert f"--resume={stored}" in refused["argv"]
    assert not any(arg.startswith("--resume") for arg in fresh["argv"])
    seeded = fresh["argv"][fresh["argv"].index("-p") + 1]
    assert "Create a file hello.txt" in seeded and seeded.endswith(FOLLOW_UP)
    assert any(e["kind"] == "system" and "fresh agent session" in e["text"] for e in lines)
    # the fresh session's id replaces the one copilot would not resume
    assert lines[-1]["native_session_id"] == meta("copilot-write")["session_id"]


def test_version_is_reported_by_aura_executors(fakes: Fakes) -> None:
    shown = run_aura("executors", "--json", env=fakes.env)
    assert shown.returncode == 0, shown.stderr
    rows = {row["name"]: row for row in json.loads(shown.stdout)}
    for agent in ("codex", "opencode", "copilot"):
        row = rows[agent]
        assert (row["found"], row["via"]) == (True, "PATH")
        assert row["version"] == meta(f"{agent}-write")["version"]
        assert row["supports"]["resume"] is True


def test_plain_output_shows_the_work_and_copilots_premium_requests(fakes: Fakes) -> None:
    proc = run_aura("run", "--executor", "copilot", "--prompt", PROMPT, "--yolo", "--no-tui",
                    env=fakes.env, cwd=fakes.work)
    assert proc.returncode == 0, proc.stderr
    assert "→ file_write hello.txt ok" in proc.stdout
    assert proc.stdout.rstrip().endswith("Done.")
    # the streamed pieces of the reply are not printed besides the reply
    assert proc.stdout.splitlines().count("Done.") == 1
    assert "premium requests 0" in proc.stderr


def test_resume_latest_continues_the_newest_session_here(fakes: Fakes) -> None:
    proc, lines = fakes.run("--executor", "opencode", "--prompt", PROMPT, "--yolo")
    assert proc.returncode == 0, proc.stderr
    proc, follow = fakes.run("--executor", "opencode", "--resume-latest", "--prompt", FOLLOW_UP,
                             "--yolo")
    assert proc.returncode == 0, proc.stderr
    assert follow[-1]["session"] == lines[-1]["session"]
    argv = fakes.calls()[1]["argv"]
    assert argv[argv.index("--session") + 1] == meta("opencode-write")["session_id"]


def test_base_command_replaces_the_program(fakes: Fakes) -> None:
    # e.g. --base-command "npx -y @openai/codex@0.169.0": the agent's own arguments follow.
    empty_path = {"PATH": "/usr/bin:/bin"}  # no codex on PATH: only the base command runs it
    base = f'"{sys.executable}" "{AGENTS / "json_agent.py"}" codex'
    proc, lines = fakes.run("--prompt", PROMPT, "--base-command", base, env=empty_path)
    assert proc.returncode == 0, proc.stderr
    assert fakes.calls()[0]["argv"] == EXPECTED["codex"][0]
    proc, _ = fakes.run("--session", lines[-1]["session"], "--prompt", FOLLOW_UP, env=empty_path)
    assert proc.returncode == 0, proc.stderr  # the session remembers its base command
    assert fakes.calls()[1]["argv"][3] == "resume"
