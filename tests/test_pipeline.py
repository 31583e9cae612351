"""The pipeline through the CLI with real repos and fake agents: workspaces, changes,
setup/cleanup scripts, templates, review and follow-up, cancellation."""

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

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura
from .gitrepo import agent_base_command, git, git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")


def show(session: str) -> dict[str, Any]:
    result = run_aura("session", "show", session, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def summary(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def path_of(states: dict[str, Any]) -> list[str]:
    return [t["to"] for t in states["transitions"]]


def of_type(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in data["entries"]
            if isinstance(e.get("data"), dict) and e["data"].get("type") == kind]


def test_single_repo_run_records_changes_and_saves_leftovers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py")
    result = run_aura("run", "--executor", "custom", "--base-command", agent, "--repo",
                      str(repo), "--prompt", "Add the feature", "--json")
    assert result.returncode == 0, result.stderr
    done = summary(result.stdout)
    assert done["state"] == "done"
    data = show(done["session"])
    assert path_of(data) == ["queued", "prepare_workspace", "coding_initial", "done"]
    assert [e["stage"] for e in data["executions"]] == ["prepare_workspace", "coding_initial"]
    (ws,) = of_type(data, "workspace")
    branch = ws["branch"]
    assert branch.startswith("aura/" + done["session"][:8] + "-add-the-feature")
    assert data["cwd"] == ws["path"] and Path(ws["path"]).is_dir()
    (change,) = of_type(data, "changes")
    assert [c["subject"] for c in change["commits"]] == ["agent: Add the feature"]
    assert {f["path"] for f in change["files"]} == {"agent.txt", "notes.txt"}
    assert change["uncommitted"] == [{"path": "notes.txt", "status": "??"}]
    # The agent's commit is on the branch in the user's repo; its leftover is saved.
    assert git(repo, "log", "-1", "--format=%s", branch) == "agent: Add the feature"
    ref = f"refs/aura/saved/{done['session']}"
    assert git(repo, "show", f"{ref}:notes.txt") == "uncommitted by the agent"
    assert any(ref in e.get("text", "") for e in data["entries"] if e["kind"] == "system")
    text = run_aura("session", "show", done["session"][:8]).stdout
    assert "[changes] repo (" + branch + "): 2 files, +2 -0, 1 commit, 1 uncommitted" in text
    assert "A agent.txt +1 -0" in text and "uncommitted: notes.txt" in text


MULTI_AGENT = """\
import os, subprocess
for name in sorted(os.listdir(".")):
    with open(os.path.join(name, "change.txt"), "w") as fh:
        fh.write(name + "\\n")
    subprocess.run(["git", "add", "change.txt"], cwd=name, check=True)
    subprocess.run(["git", "commit", "-qm", "change " + name], cwd=name, check=True)
print("changed", len(os.listdir(".")), "repos")
"""


def test_multi_repo_run(tmp_path: Path) -> None:
    a, b = make_repo(tmp_path / "alpha"), make_repo(tmp_path / "beta")
    agent = agent_base_command(tmp_path / "agent.py", MULTI_AGENT)
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(a),
                      "--repo", str(b), "--prompt", "both", "--json")
    assert result.returncode == 0, result.stderr
    data = show(summary(result.stdout)["session"])
    changes = {c["name"]: c for c in of_type(data, "changes")}
    assert set(changes) == {"alpha", "beta"}
    for name, change in changes.items():
        assert change["commits"][0]["subject"] == f"change {name}"
        assert change["uncommitted"] == []
    assert sorted(os.listdir(data["cwd"])) == ["alpha", "beta"]


def test_cwd_inside_a_repo_makes_a_workspace_and_runs_in_the_same_subdir(tmp_path: Path
                                                                         ) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/mod.py": "x = 1\n"})
    agent = agent_base_command(tmp_path / "agent.py",
                               "import os\nprint('cwd=' + os.getcwd())\n")
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--cwd",
                      str(repo / "pkg"), "--prompt", "look", "--json")
    assert result.returncode == 0, result.stderr
    data = show(summary(result.stdout)["session"])
    (ws,) = of_type(data, "workspace")
    said = [e["text"] for e in data["entries"] if e["kind"] == "assistant_message"]
    assert said == ["cwd=" + str(Path(ws["path"]) / "pkg")]


def test_in_place_refuses_dirty_checkout_unless_allowed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("dirty\n")
    agent = agent_base_command(tmp_path / "agent.py")
    args = ["run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
            "--in-place", "--prompt", "here"]
    refused = run_aura(*args)
    assert refused.returncode == 1
    assert "uncommitted changes" in refused.stderr and "--allow-dirty" in refused.stderr
    allowed = run_aura(*args, "--allow-dirty", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert git(repo, "log", "-1", "--format=%s") == "agent: here"  # in the checkout itself
    assert git(repo, "branch", "--list", "aura/*") == ""


def test_setup_failure_shows_the_output_and_fails(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py")
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                      "--setup", "echo installing; echo 'no such package' >&2; exit 3",
                      "--prompt", "never runs", "--no-tui")
    assert result.returncode == 3
    assert "no such package" in result.stderr and "setup script failed (exit 3)" in \
        result.stderr
    data = show(run_aura("session", "latest", "--json") and
                json.loads(run_aura("session", "latest", "--json").stdout)["id"])
    assert data["state"] == "failed"
    assert path_of(data) == ["queued", "prepare_workspace", "setup", "failed"]
    setup = [e for e in data["executions"] if e["stage"] == "setup"]
    assert setup[0]["state"] == "failed" and setup[0]["exit_code"] == 3
    stored = [e["text"] for e in data["entries"] if e["kind"] == "raw"]
    assert "installing" in stored and "no such package" in stored
    assert not any(e["stage"] == "coding_initial" for e in data["executions"])


def test_setup_and_cleanup_from_config_and_flags_are_their_own_executions(tmp_path: Path
                                                                          ) -> None:
    repo = make_repo(tmp_path / "repo", {
        ".aura.toml": 'setup = "echo from-config > setup.txt"\n'
                      'cleanup = ["git status --short | wc -l > /dev/null; echo cleaned"]\n'})
    agent = agent_base_command(tmp_path / "agent.py",
                               "print(open('setup.txt').read().strip())\n")
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                      "--setup", "echo flag-setup", "--cleanup", "echo flag-cleanup",
                      "--prompt", "go", "--json")
    assert result.returncode == 0, result.stderr
    data = show(summary(result.stdout)["session"])
    assert path_of(data) == ["queued", "prepare_workspace", "setup", "coding_initial",
                             "cleanup", "done"]
    stages = [(e["stage"], e["executor"]) for e in data["executions"]]
    assert stages == [("prepare_workspace", None), ("setup", "script"), ("setup", "script"),
                      ("coding_initial", "custom"), ("cleanup", "script"),
                      ("cleanup", "script")]
    said = [e["text"] for e in data["entries"] if e["kind"] == "assistant_message"]
    assert said == ["from-config"]
    raw = [(e["stage"], e["text"]) for e in data["entries"] if e["kind"] == "raw"]
    assert ("setup", "flag-setup") in raw and ("cleanup", "cleaned") in raw
    assert ("cleanup", "flag-cleanup") in raw
    # setup.txt was left uncommitted: saved before cleanup ran.
    saved = of_type(data, "saved")
    assert saved and git(repo, "show", f"{saved[0]['ref']}:setup.txt") == "from-config"


def test_unknown_template_key_is_an_error_naming_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        ".aura.toml": '[templates]\ninitial = "Do {{prompt}} on {{branch}} for {{ticket}}"\n'})
    agent = agent_base_command(tmp_path / "agent.py")
    bad = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                   "--prompt", "x")
    assert bad.returncode == 2
    assert "unknown placeholder {{ticket}} in the coding_initial template" in bad.stderr
    echo = agent_base_command(tmp_path / "echo.py",
                              "import os\nprint(os.environ['AURA_PROMPT'])\n")
    good = run_aura("run", "-e", "custom", "--base-command", echo, "--repo", str(repo),
                    "--var", "ticket=T-42", "--prompt", "x", "--json")
    assert good.returncode == 0, good.stderr
    data = show(summary(good.stdout)["session"])
    said = [e["text"] for e in data["entries"] if e["kind"] == "assistant_message"]
    assert said[0].startswith("Do x on aura/") and said[0].endswith(" for T-42")


REVIEWER = """\
import os
prompt = os.environ["AURA_PROMPT"]
assert os.environ["AURA_STAGE"] == "review"
if "+second" in prompt:
    print("Looks complete now.")
    print("VERDICT: approve")
else:
    print("agent.txt needs a second line.")
    print("VERDICT: request_changes")
"""


def test_review_follow_up_review_done_through_the_cli(tmp_path: Path) -> None:
    reviewer = agent_base_command(tmp_path / "reviewer.py", REVIEWER)
    repo = make_repo(tmp_path / "repo", {
        ".aura.toml": f"[review]\nexecutor = \"custom\"\nbase_command = {json.dumps(reviewer)}\n"})
    agent = agent_base_command(tmp_path / "agent.py")
    first = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                     "--review", "--prompt", "first", "--json")
    assert first.returncode == 0, first.stderr
    done = summary(first.stdout)
    assert done["state"] == "review"
    sid = done["session"]
    data = show(sid)
    assert path_of(data) == ["queued", "prepare_workspace", "coding_initial", "review"]
    (verdict,) = of_type(data, "review")
    assert verdict["verdict"] == "request_changes"
    review_prompt = next(e["text"] for e in data["entries"]
                     if e["kind"] == "user_message" and e["stage"] == "review")
    assert "+first" in review_prompt and "Task:\nfirst" in review_prompt

    second = run_aura("run", "--session", sid[:8], "--prompt", "second", "--json")
    assert second.returncode == 0, second.stderr
    assert summary(second.stdout)["state"] == "done"
    data = show(sid)
    assert path_of(data) == ["queued", "prepare_workspace", "coding_initial", "review",
                             "coding_follow_up", "review", "done"]
    follow_prompt = next(e["text"] for e in data["entries"]
                     if e["kind"] == "user_message" and e["stage"] == "coding_follow_up")
    assert "agent.txt needs a second line." in follow_prompt and \
        follow_prompt.endswith("second")
    assert [v["verdict"] for v in of_type(data, "review")] == ["request_changes", "approve"]
    # Same workspace, same branch: both commits are on it.
    (ws,) = of_type(data, "workspace")
    subjects = git(repo, "log", "--format=%s", f"{ws['base']}..{ws['branch']}").splitlines()
    assert len(subjects) == 2 and subjects[-1] == "agent: first"
    assert subjects[0].startswith("agent: A reviewer looked")  # the follow-up's prompt


SLOW_AGENT = """\
import time
with open("work.txt", "w") as fh:
    fh.write("half done\\n")
with open("started", "w") as fh:
    fh.write("yes")
print("working", flush=True)
time.sleep(60)
"""


def test_cancel_saves_the_work_and_stops_the_agent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py", SLOW_AGENT)
    proc = subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command", agent,
                                      "--repo", str(repo), "--prompt", "slow", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    workspaces = Path(os.environ["AURA_HOME"]) / "workspaces"
    while time.monotonic() < deadline:
        if workspaces.is_dir() and any((p / "started").exists() for p in workspaces.iterdir()):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the agent never started")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == 130, err
    done = summary(out)
    assert done["state"] == "cancelled"
    data = show(done["session"])
    assert path_of(data)[-1] == "cancelled"
    assert data["executions"][-1]["state"] == "cancelled"
    ref = f"refs/aura/saved/{done['session']}"
    assert git(repo, "show", f"{ref}:work.txt") == "half done"
    (ws,) = of_type(data, "workspace")
    assert (Path(ws["path"]) / "work.txt").exists()  # left in place, and saved


def test_follow_up_flags_that_only_fit_a_new_session_are_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py", "print('hi')\n")
    first = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                     "--prompt", "a", "--json")
    sid = summary(first.stdout)["session"]
    again = run_aura("run", "--session", sid, "--repo", str(repo), "--prompt", "b")
    assert again.returncode == 2 and "--repo applies to a new session" in again.stderr
    assert sys.executable  # the agent ran with this interpreter


def test_workspace_cli_list_diff_remove(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py")
    first = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                     "--prompt", "work", "--json")
    sid = summary(first.stdout)["session"]
    listed = json.loads(run_aura("workspace", "list", "--json").stdout)
    assert [w["session"] for w in listed] == [sid] and listed[0]["unsaved"] == []
    assert sid[:8] in run_aura("workspace", "list").stdout
    diff = run_aura("workspace", "diff", sid[:8])
    assert diff.returncode == 0 and "+work" in diff.stdout and "notes.txt" in diff.stdout
    root = Path(listed[0]["root"])
    (root / "extra.txt").write_text("unsaved\n")
    refused = run_aura("workspace", "remove", sid[:8])
    assert refused.returncode == 1 and "uncommitted work" in refused.stderr
    assert root.exists()
    removed = run_aura("workspace", "remove", sid[:8], "--force")
    assert removed.returncode == 0, removed.stderr
    assert f"refs/aura/saved/{sid}" in removed.stderr and not root.exists()
    assert git(repo, "show", f"refs/aura/saved/{sid}:extra.txt") == "unsaved"
    assert git(repo, "show", f"refs/aura/saved/{sid}:notes.txt") == "uncommitted by the agent"
    assert json.loads(run_aura("workspace", "list", "--json").stdout) == []
    again = run_aura("run", "--session", sid, "--prompt", "more")
    assert again.returncode == 1 and "was removed" in again.stderr
    missing = run_aura("workspace", "diff", "nope")
    assert missing.returncode == 1 and "no session" in missing.stderr


def test_cancel_during_setup_stops_the_script_group(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py", "print('never')\n")
    pidfile = tmp_path / "setup.pid"
    script = f"echo partial > partial.txt; sleep 60 & echo $! > '{pidfile}'; wait"
    proc = subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command", agent,
                                      "--repo", str(repo), "--setup", script,
                                      "--prompt", "x", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    while not (pidfile.exists() and pidfile.read_text().strip()):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the setup script never started")
        time.sleep(0.05)
    sleeper = int(pidfile.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == 130, err
    data = show(summary(out)["session"])
    assert path_of(data) == ["queued", "prepare_workspace", "setup", "cancelled"]
    assert [e["state"] for e in data["executions"]] == ["done", "cancelled"]
    assert not any(e["stage"] == "coding_initial" for e in data["executions"])
    # The script's whole process group is gone (a background child included).
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper, 0)
    ref = f"refs/aura/saved/{data['id']}"
    assert git(repo, "show", f"{ref}:partial.txt") == "partial"


def test_resume_latest_from_the_checkout_finds_its_workspace_session(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_base_command(tmp_path / "agent.py", "print('turn')\n")
    first = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                     "--prompt", "one", "--json")
    sid = summary(first.stdout)["session"]
    again = run_aura("run", "--resume-latest", "--prompt", "two", "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout)["session"] == sid
    assert path_of(show(sid))[-2:] == ["coding_follow_up", "done"]
