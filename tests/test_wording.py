"""What people read: state moves and verdicts in words, folded review prompts, failed
tool calls with their output's tail, tables that fit the terminal, coloured states only
on a terminal, relative times, cost per session, and one JSON style."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aura.cli.output import outcome_words
from aura.cli.render import Painter, format_entry, json_text, table
from aura.cli.wording import Story, ago, duration, iso_utc, repo_label
from aura.contracts import RunSummary

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura
from .gitrepo import agent_base_command, git_env, make_repo

__all__ = ["git_env"]
PLAIN = Painter(False)
T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _said(entry: dict[str, Any], story: Story | None = None, verbose: bool = False) -> str:
    shown = format_entry(entry, PLAIN, story, verbose)
    assert shown is not None
    return shown[0]


def test_state_moves_read_as_words_with_how_long_and_the_exit_code() -> None:
    story = Story()
    moves = [({"from": None, "to": "queued"}, 0, "[aura] queued"),
             ({"from": "queued", "to": "coding_initial", "reason": "start"}, 1,
              "[aura] running"),
             ({"from": "coding_initial", "to": "done", "reason": "pipeline finished"}, 13,
              "[aura] done in 12 s")]
    for entry, at, words in moves:
        assert _said({"kind": "state", "ts": _ts(at), **entry}, story) == words
    failing = Story()
    _said({"kind": "state", "from": "queued", "to": "coding_initial", "ts": _ts(0)}, failing)
    assert _said({"kind": "state", "from": "coding_initial", "to": "failed", "exit_code": 2,
                  "reason": "agent exited with code 2", "ts": _ts(185)}, failing) == \
        "[aura] failed after 3 m 5 s (exit 2)"
    assert _said({"kind": "state", "from": "coding_initial", "to": "cancelled",
                  "ts": _ts(1)}) == "[aura] cancelled after 0 s"
    # A session resting in review (moved there by hand, or after its reviewer ran).
    assert _said({"kind": "state", "from": "done", "to": "review"}) == \
        "[aura] waiting for review"
    assert _said({"kind": "state", "from": "cleanup", "to": "review",
                  "reason": "reviewing"}) == "[aura] reviewing the changes"
    assert duration(12) == "12 s" and duration(180) == "3 m" and duration(7500) == "2 h 5 m"


def test_a_review_asking_for_changes_never_reads_as_success() -> None:
    story = Story()
    entry = {"kind": "system", "text": "review verdict: request_changes",
             "data": {"type": "review", "verdict": "request_changes"}}
    assert _said(entry, story) == "[review: changes requested]"
    assert story.verdict == "request_changes"
    resting = RunSummary("3f2a9c00", "e1", "review", 0)
    assert outcome_words(resting, 4, story.verdict) == "review: changes requested"
    assert "exit" not in outcome_words(resting, 4, story.verdict)
    approved = {"kind": "system", "data": {"type": "review", "verdict": "approve"}}
    assert _said(approved) == "[review: approved]"
    done = RunSummary("3f2a9c00", "e1", "done", 0)
    assert outcome_words(done, 12, "approve") == "done in 12 s · review: approved"
    failed = RunSummary("3f2a9c00", "e1", "failed", 2)
    assert outcome_words(failed, 185) == "failed after 3 m 5 s (exit 2)"
    assert outcome_words(RunSummary("x", "e", "cancelled", 130), 3) == "cancelled after 3 s"


def test_the_review_prompt_is_one_line_unless_verbose() -> None:
    diff = "".join(f"diff --git a/f{i} b/f{i}\n+line\n" for i in range(5))
    prompt = "You are reviewing changes…\n\nDiff:\n" + diff + "VERDICT: approve"
    entry = {"kind": "user_message", "stage": "review", "session": "3f2a9c00-aaaa",
             "text": prompt}
    shown = format_entry(entry, PLAIN)
    lines = prompt.count("\n") + 1
    assert shown == (f"[review prompt ({lines} lines, diff of 5 files) — `aura session show "
                     "3f2a9c00 --verbose` to see it]", True)
    assert _said(entry, verbose=True) == "> " + prompt
    # The coding prompt is shown as it is.
    assert _said({"kind": "user_message", "stage": "coding_initial", "text": "fix it"}) == \
        "> fix it"


def test_a_failed_tool_call_shows_the_tail_of_its_output() -> None:
    output = "\n".join(f"line {i}" for i in range(1, 11))
    call = {"kind": "tool_call", "action": "command", "target": "make test",
            "status": "error", "output": output}
    assert _said(call).splitlines() == [
        "→ command make test error", "    … 5 more lines",
        *(f"    line {i}" for i in range(6, 11))]
    assert _said(call, verbose=True).splitlines()[1:] == [f"    line {i}"
                                                          for i in range(1, 11)]
    assert _said(dict(call, status="ok")) == "→ command make test ok"


def test_verbose_belongs_to_plain_runs() -> None:
    refused = run_aura("tui", "--verbose", "-p", "x")
    assert refused.returncode == 2 and "--verbose belongs to `aura run`" in refused.stderr


def test_tables_fit_cutting_the_flexible_column_then_dropping_columns() -> None:
    rows = [("ID", "LOW", "STATE", "PROMPT"),
            ("ab12cd34", "x" * 30, "done", "a prompt " * 20)]
    fitted = table(rows, 80, flexible=3, drop=(1,))
    assert all(len(line) <= 80 for line in fitted)
    assert fitted[0].split() == ["ID", "LOW", "STATE", "PROMPT"]  # the prompt was cut
    assert fitted[1].endswith("…")
    narrow = table(rows, 40, flexible=3, drop=(1,))
    assert narrow[0].split() == ["ID", "STATE", "PROMPT"] and len(narrow[1]) <= 40
    assert table(rows) == table(rows, None)  # no width: nothing is cut


def test_relative_times_and_iso_utc() -> None:
    now = T0
    assert ago(_ts(-20), now) == "just now"
    assert ago(_ts(-5 * 60), now) == "5m ago"
    assert ago(_ts(-2 * 3600 - 5), now) == "2h ago"
    assert ago(_ts(-3 * 86400), now) == "3d ago"
    assert ago(_ts(-30 * 86400), now) == (T0 - timedelta(days=30)).astimezone().strftime(
        "%Y-%m-%d")
    assert ago("not a time", now) == "-" and ago(None, now) == "-"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(None) is None and iso_utc(float("nan")) is None


def test_json_records_are_compact_like_the_stored_entries() -> None:
    assert json_text({"a": [1, {"b": "c"}]}, compact=True) == '{"a":[1,{"b":"c"}]}'


def test_repo_label_maps_a_worktree_back_to_its_repo(tmp_path: Path, aura_home: Path
                                                     ) -> None:
    ws = {"repos": [{"repo": "/src/parser", "path": "/x"}, {"repo": "/src/lexer"}]}
    assert repo_label({"workspace": ws}, "/x") == "parser,lexer"
    assert repo_label({}, str(tmp_path / "project")) == "project"
    # A worktree under aura's workspaces without the session's record of it.
    tree = aura_home / "workspaces" / "3f2a9c00-fix-it"
    tree.mkdir(parents=True)
    (tree / ".git").write_text("gitdir: /home/me/src/parser/.git/worktrees/3f2a9c00-fix-it\n")
    assert repo_label({}, str(tree)) == "parser"


COSTLY_AGENT = """\
import json
out = "\\n".join(f"step {i}" for i in range(1, 9))
print(json.dumps({"kind": "tool_call", "id": "1", "action": "command", "target": "make test",
                  "status": "error", "output": out}), flush=True)
print(json.dumps({"kind": "usage", "usage": {"input_tokens": 10, "output_tokens": 5,
                                             "cost_usd": 0.25}}), flush=True)
"""


def test_session_list_fits_80_columns_with_repo_names_and_cost(tmp_path: Path) -> None:
    agent = agent_base_command(tmp_path / "costly.py", COSTLY_AGENT)
    run = run_aura("run", "-e", "custom", "--base-command", agent, "--no-tui", "-p",
                   "a long prompt that says what to do " * 6)
    assert run.returncode == 0, run.stderr
    # The failed call's output tail, indented, and no more.
    assert "→ command make test error\n    … 3 more lines\n    step 4\n" in run.stdout
    assert "step 3" not in run.stdout
    plain = run_aura("run", "-e", "custom", "--base-command", "true", "--no-tui", "-p", "x")
    assert plain.returncode == 0, plain.stderr
    listing = run_aura("session", "list", env={"COLUMNS": "80"})
    lines = listing.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("ID") and "STATE" in lines[0] and "COST" in lines[0]
    assert "$0.25" in lines[2] and lines[2].endswith("…")
    assert tmp_path.name[:17] in lines[2]  # the directory's name, not its path
    assert lines[1].split()[-2:] == ["-", "x"]  # no usage recorded: no cost
    data = json.loads(run_aura("session", "list", "--json").stdout)
    assert [d["cost_usd"] for d in data] == [None, 0.25]
    # Narrow: low-value columns go rather than lines wrapping.
    narrow = run_aura("session", "list", env={"COLUMNS": "50"}).stdout.splitlines()
    assert all(len(line) <= 50 for line in narrow) and "DURATION" not in narrow[0]
    usage = run_aura("usage", "--by", "session", env={"COLUMNS": "40"}).stdout.splitlines()
    assert usage[0].startswith("SESSION") and all(len(line) <= 40 for line in usage), usage
    added = run_aura("task", "add", "-e", "custom", "--base-command", "true", "-p",
                     "a queued task whose title is long enough to be cut " * 3)
    assert added.returncode == 0, added.stderr
    tasks = run_aura("task", "list", env={"COLUMNS": "60"}).stdout.splitlines()
    assert len(tasks) == 2 and all(len(line) <= 60 for line in tasks), tasks


def _colour_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**env, **extra}


def test_states_are_coloured_only_when_asked_for_and_not_with_no_color(tmp_path: Path
                                                                        ) -> None:
    assert run_aura("run", "-e", "custom", "--base-command", "true", "--no-tui",
                    "-p", "x").returncode == 0

    def listing(**env: str) -> str:
        return subprocess.run(aura_argv("session", "list"), capture_output=True, text=True,
                              env=_colour_env(**env), timeout=60 * TIMEOUT_FACTOR,
                              stdin=subprocess.DEVNULL).stdout

    assert "\x1b" not in listing()  # piped: plain text
    assert "\x1b[32mdone\x1b[0m" in listing(FORCE_COLOR="1")
    assert "\x1b" not in listing(FORCE_COLOR="1", NO_COLOR="1")


REVIEWER = """\
print("the change needs a test")
print("VERDICT: request_changes")
"""


@pytest.mark.usefixtures("git_env")
def test_a_review_run_folds_its_prompt_and_says_changes_were_requested(tmp_path: Path
                                                                       ) -> None:
    reviewer = agent_base_command(tmp_path / "reviewer.py", REVIEWER)
    repo = make_repo(tmp_path / "parser", {
        ".aura.toml": f"[review]\nexecutor = \"custom\"\nbase_command = {json.dumps(reviewer)}\n"})
    agent = agent_base_command(tmp_path / "agent.py")
    run = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                   "--review", "-p", "first", "--no-tui")
    assert run.returncode == 0, run.stderr
    assert "Diff:" not in run.stdout + run.stderr  # the prompt is folded
    assert "[review prompt (" in run.stderr and "--verbose` to see it]" in run.stderr
    assert "[review: changes requested]" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "review: changes requested" in last and "exit 0" not in last
    assert "→" not in run.stderr.replace("→ file_write", "")  # no machine-name moves
    sid = json.loads(run_aura("session", "list", "--json").stdout)[0]["id"]
    shown = run_aura("session", "show", sid[:8])
    assert "Diff:" not in shown.stdout and "[aura] reviewing the changes" in shown.stdout
    full = run_aura("session", "show", sid[:8], "--verbose")
    assert "Diff:\n      diff --git" in full.stdout  # whole, in the entry's gutter
    stored = json.loads(run_aura("session", "show", sid, "--json").stdout)
    assert any("Diff:" in str(e.get("text")) for e in stored["entries"])
    assert json.loads(run_aura("session", "list", "--json").stdout)[0]["cost_usd"] is None
    rows = run_aura("session", "list").stdout.splitlines()
    assert "parser" in rows[1] and "workspaces" not in rows[1]
    spaces = run_aura("workspace", "list", env={"COLUMNS": "60"}).stdout.splitlines()
    assert "parser" in spaces[1] and all(len(line) <= 60 for line in spaces), spaces
    # Followed as JSON lines: compact, like the store's.
    followed = run_aura("session", "show", sid, "-f", "--json").stdout.splitlines()
    assert followed and all(line == json_text(json.loads(line), compact=True)
                            for line in followed)
