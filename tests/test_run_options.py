"""The run-options model: parsed from a real `aura run` command line, sent on the wire
exactly as `aura run --on` always has, and read back on a worker with every malformed
field refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from aura.cli.run import run_command
from aura.errors import UsageError
from aura.executors.base import Approvals
from aura.process import DEFAULT_LINE_CAP
from aura.service.run_options import WIRE_KEYS, RunOptions, WireError


def _parsed(*args: str) -> dict[str, Any]:
    """The kwargs click gives `aura run` for this command line (callbacks included)."""
    with run_command.make_context("run", list(args)) as ctx:
        return dict(ctx.params)


# what `aura run --on -p go` has always sent (the coordinator passes it on unchanged)
PLAIN_WIRE = {
    "prompt": "go", "executor": None, "append_prompt": "", "cwd": None, "session": None,
    "model": None, "base_command": None, "params": [], "vars": {}, "openai_endpoint": None,
    "line_cap": None, "repos": [], "base": None, "in_place": False, "allow_dirty": False,
    "setup": [], "cleanup": [], "review": None, "review_executor": None,
    "approvals": {"yolo": False, "force": False, "trust": False, "auto_approve": None,
                  "allow_all_tools": False, "allow_tools": [], "deny_tools": []},
}


def test_defaults_of_the_command_line_are_the_models_defaults() -> None:
    assert RunOptions.from_cli(_parsed("-p", "go")) == RunOptions(prompt="go")


def test_every_option_lands_in_its_field() -> None:
    options = RunOptions.from_cli(_parsed(
        "-p", "ignored", "-e", "claude", "--append-prompt", "!", "--cwd", "/tmp",
        "--session", "abc", "-m", "big", "--base-command", "agent --x", "--param", "-v",
        "--var", "A=1", "--openai-endpoint", "http://h", "--refresh-model-cache",
        "--yolo", "--force", "--trust", "--auto-approve", "no", "--allow-all-tools",
        "--allow-tool", "t1", "--deny-tool", "t2", "--line-cap", "4096", "--repo", "r",
        "--base", "main", "--in-place", "--allow-dirty", "--setup", "s", "--cleanup", "c",
        "--review-executor", "codex"), prompt="resolved")
    assert options == RunOptions(
        prompt="resolved", executor="claude", append_prompt="!", cwd="/tmp", session="abc",
        model="big", base_command="agent --x", params=("-v",), vars={"A": "1"},
        approvals=Approvals(yolo=True, force=True, trust=True, auto_approve=False,
                            allow_all_tools=True, allow_tools=("t1",), deny_tools=("t2",)),
        openai_endpoint="http://h", line_cap=4096, refresh_model_cache=True, repos=("r",),
        base="main", in_place=True, allow_dirty=True, setup=("s",), cleanup=("c",),
        review=True, review_executor="codex")  # a review executor asks for a review


def test_the_wire_carries_exactly_what_it_always_did() -> None:
    wire = RunOptions.from_cli(_parsed("-p", "go")).to_wire()
    assert wire == PLAIN_WIRE
    assert tuple(wire) == WIRE_KEYS
    full = RunOptions.from_cli(_parsed("-p", "go", "--line-cap", "4096", "--var", "A=1",
                                       "--param", "x", "--allow-tool", "t",
                                       "--review")).to_wire()
    assert full["line_cap"] == 4096 and full["vars"] == {"A": "1"}
    assert full["params"] == ["x"] and full["approvals"]["allow_tools"] == ["t"]
    assert full["review"] is True


def test_options_naming_this_machine_do_not_travel() -> None:
    with pytest.raises(UsageError, match="--resume-latest does not combine with --on"):
        RunOptions(prompt="go", resume_latest=True).to_wire()
    with pytest.raises(UsageError, match="--executor-path names a path on this machine"):
        RunOptions(prompt="go", executor_paths={"codex": "/bin/codex"}).to_wire()


def test_a_worker_reads_back_what_was_sent() -> None:
    sent = RunOptions(prompt="go", executor="claude", params=("-v",), vars={"A": "1"},
                      approvals=Approvals(yolo=True, allow_tools=("t",)), line_cap=4096,
                      setup=("make",), review=False, review_executor="codex")
    assert RunOptions.from_wire(sent.to_wire(), follow_up=False) == sent


def test_from_wire_fills_the_workers_defaults() -> None:
    new = RunOptions.from_wire({"prompt": "go"}, follow_up=False, default_cwd="/work")
    assert new.executor == "codex" and new.cwd == "/work" and new.line_cap == DEFAULT_LINE_CAP
    # A follow-up runs in its session's directory, not the worker's.
    assert RunOptions.from_wire({"prompt": "go"}, follow_up=True, default_cwd="/w").cwd is None
    assert RunOptions.from_wire({**PLAIN_WIRE, "executor": "cursor"},
                                follow_up=False).executor == "cursor-agent"


@pytest.mark.parametrize(("change", "message"), [
    ({"surprise": 1}, "unknown option\\(s\\) surprise"),
    ({"prompt": None}, "'prompt' is required"),
    ({"params": "x"}, "params must be strings"),
    ({"params": [1]}, "params must be strings"),
    ({"setup": [None]}, "setup must be strings"),
    ({"vars": {"A": 1}}, "vars must map names to strings"),
    ({"vars": ["A"]}, "vars must map names to strings"),
    ({"cwd": 3}, "cwd must be a string"),
    ({"approvals": ["yolo"]}, "approvals must be an object"),
    ({"approvals": {"sudo": True}}, "unknown approval flag\\(s\\) sudo"),
    ({"approvals": {"yolo": "yes"}}, "flags are true/false"),
    ({"approvals": {"allow_tools": [1]}}, "tools are strings"),
    ({"executor": "no-such-agent"}, "no-such-agent"),
    ({"review_executor": "no-such-agent"}, "no-such-agent"),
])
def test_malformed_wire_options_are_refused_by_name(change: dict[str, Any], message: str
                                                    ) -> None:
    with pytest.raises(WireError, match=message):
        RunOptions.from_wire({**PLAIN_WIRE, **change}, follow_up=False)


def test_secret_vars_travel_only_when_given_and_come_back() -> None:
    assert "secret_vars" not in RunOptions(prompt="go").to_wire()
    sent = RunOptions(prompt="go", executor="codex", secret_vars={"API_KEY": "s"})
    assert sent.to_wire()["secret_vars"] == {"API_KEY": "s"}
    assert RunOptions.from_wire(sent.to_wire(), follow_up=False) == sent
    with pytest.raises(WireError, match="secret_vars must map names to strings"):
        RunOptions.from_wire({"prompt": "go", "secret_vars": {"A": 1}}, follow_up=False)
