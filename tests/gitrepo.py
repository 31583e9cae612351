"""Real git repositories in tmp dirs for the workspace, pipeline and board tests.

``git_env`` (a fixture) gives every git the tests or aura run an identity and an empty
global config, so nothing depends on (or touches) the user's own git config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    config = tmp_path / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n")
    values = {
        "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.com",
        "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def git(repo: Path | str, *args: str) -> str:
    """Run git in ``repo`` with the test's environment; return stdout stripped."""
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env=dict(os.environ))
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
    """A repository at ``path`` with ``files`` committed on main."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


EDIT_AGENT = """\
import json, os, subprocess, sys
prompt = os.environ.get("AURA_PROMPT", "")
stage = os.environ.get("AURA_STAGE", "")
# Edits a file and commits it, then leaves one more file uncommitted.
with open("agent.txt", "a") as fh:
    fh.write(prompt + "\\n")
subprocess.run(["git", "add", "agent.txt"], check=True)
subprocess.run(["git", "commit", "-q", "-m", "agent: " + prompt[:40]], check=True)
with open("notes.txt", "w") as fh:
    fh.write("uncommitted by the agent\\n")
print(json.dumps({"kind": "tool_call", "id": "1", "tool": "Write", "action": "file_write",
                  "target": "agent.txt", "status": "ok"}), flush=True)
print("edited agent.txt in " + os.getcwd(), flush=True)
"""


def agent_base_command(path: Path, source: str = EDIT_AGENT) -> str:
    import shlex

    path.write_text(source)
    return shlex.join([sys.executable, str(path)])
