"""History as a work log, through the real CLI: `session show` filters, turn headers and
pager, `session search`, `session export` (the HTML read back by a headless browser),
`session rm | prune` and `workspace prune`, which never lose unsaved work."""

from __future__ import annotations

import json
import os
import pty
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aura.contracts import Session
from aura.store_sqlite import SQLiteStore

from .conftest import aura_argv, run_aura, write_agent
from .gitrepo import git, git_env, make_repo

__all__ = ["git_env"]
PY = sys.executable

AGENT = [
    "import json, os",
    "print(json.dumps({'kind': 'tool_call', 'tool': 'Bash', 'action': 'command',",
    "    'target': 'pytest -q', 'status': 'ok',",
    "    'output': '\\n'.join(f'out {i}' for i in range(40)) + '\\n<script>alert(1)</script>'}))",
    "print(json.dumps({'kind': 'assistant_message',",
    "    'text': 'first line ' + os.environ['AURA_PROMPT'] + '\\nsecond line </pre> & <b>'}))",
    "print(json.dumps({'kind': 'error', 'text': 'Flaky build broke'}))",
    "print(json.dumps({'kind': 'usage', 'usage': {'input_tokens': 100, 'output_tokens': 20,",
    "    'cost_usd': 0.01}}))",
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One session of two turns, recorded once for the module: (its id, its database)."""
    tmp = tmp_path_factory.mktemp("history")
    env = {"AURA_HOME": str(tmp / "home")}
    agent = write_agent(tmp / "agent.py", AGENT)
    base = ["-e", "custom", "--base-command", f"{PY} {agent}", "--json", "--cwd", str(tmp)]
    first = run_aura("run", *base, "-p", "turn one", env=env)
    assert first.returncode == 0, first.stderr
    sid = json.loads(first.stdout.splitlines()[-1])["session"]
    second = run_aura("run", "--session", sid, "-p", "turn two <i>", "--json", env=env)
    assert second.returncode == 0, second.stderr
    return str(sid), tmp / "home" / "aura.db"


@pytest.fixture
def two_turns(recorded: tuple[str, Path], aura_home: Path) -> str:
    """The recorded session, in a copy of its database that this test may change."""
    sid, db = recorded
    shutil.copy(db, aura_home / "aura.db")
    return sid


def test_show_filters_turn_headers_and_gutter(two_turns: str) -> None:
    sid = two_turns
    shown = run_aura("session", "show", sid[:6])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    headers = [line for line in lines if line.startswith("── turn")]
    assert len(headers) == 2 and all("120 tokens · $0.0100" in h for h in headers)
    at = next(i for i, line in enumerate(lines) if "first line turn one" in line)
    seq = lines[at].split()[0]
    assert lines[at].startswith(seq.rjust(5) + " ")
    assert lines[at + 1] == " " * 6 + "second line </pre> & <b>"  # under the first line
    # Each transition once: the two turns' ends are told in the flow of entries, so the
    # list above the entries leaves them out.
    transitions = shown.stdout.split("\ntransitions\n", 1)[1].split("\nentries\n", 1)
    assert "done" not in transitions[0]
    assert transitions[1].count("[aura] done in") == 2
    only = run_aura("session", "show", sid, "--kind", "tool_call,error", "--tail", "2")
    body = only.stdout.split("\nentries\n", 1)[1].splitlines()
    assert [b.split()[1] for b in body if not b.startswith(("──", "usage"))] == ["→", "error:"]
    assert sum(b.startswith("── turn 2") for b in body) == 1
    grep = json.loads(run_aura("session", "show", sid, "--grep", "FLAKY", "--json").stdout)
    assert [e["kind"] for e in grep["entries"]] == ["error", "error"]
    later = json.loads(run_aura("session", "show", sid, "--since", "2099-01-01",
                                "--json").stdout)
    assert later["entries"] == []
    assert len(json.loads(run_aura("session", "show", sid, "--since", "1h",
                                   "--json").stdout)["entries"]) > 4


@pytest.mark.parametrize("args, message", [
    (["--kind", "tool_call,nope"], "--kind 'tool_call,nope': unknown kind 'nope'; kinds are"),
    (["--since", "yesterday"], "--since takes an age (10m, 2h, 7d, 1w) or an ISO date"),
    (["--tail", "-1"], "Invalid value for '--tail'"),
])
def test_bad_show_options_are_one_line_errors(two_turns: str, args: list[str],
                                              message: str) -> None:
    sid = two_turns
    result = run_aura("session", "show", sid, *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_short_prefix_is_refused_everywhere_it_resolves(two_turns: str) -> None:
    sid = two_turns
    for args in (["session", "show", sid[:3]], ["session", "export", sid[:2]],
                 ["workspace", "diff", sid[:3]], ["approve", "abc"],
                 ["run", "--session", sid[:3], "-p", "x"]):
        result = run_aura(*args)
        assert result.returncode != 0, args
        assert "too short for a" in result.stderr and "at least 4 characters" in \
            result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert run_aura("session", "show", sid[:4]).returncode == 0


def test_follow_with_tail_starts_near_the_end_and_filters_apply(two_turns: str) -> None:
    sid = two_turns
    result = run_aura("session", "show", sid, "-f", "--tail", "2", "--kind", "error,usage",
                      "--json")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["kind"] for e in entries] == ["error", "usage"]
    assert entries[0]["stage"] == "coding_follow_up"


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(argv, stdout=secondary, stderr=subprocess.PIPE, env=env,
                              stdin=subprocess.DEVNULL, timeout=60)
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0, proc.stderr


def test_the_pager_is_used_on_a_terminal_only(tmp_path: Path, two_turns: str) -> None:
    sid = two_turns
    caught = tmp_path / "paged.txt"
    pager = shlex.join([PY, "-c", f"import sys; open({str(caught)!r}, 'w')"
                                  ".write(sys.stdin.read())"])
    env = dict(os.environ, AURA_PAGER=pager, PAGER="false")
    _on_a_terminal(aura_argv("session", "show", sid), env)
    assert "── turn 2" in caught.read_text() and "second line </pre>" in caught.read_text()
    caught.unlink()
    _on_a_terminal(aura_argv("session", "show", sid, "--no-pager"), env)
    assert not caught.exists()
    piped = run_aura("session", "show", sid, env=env)
    assert "── turn 1" in piped.stdout and not caught.exists()
    env.pop("AURA_PAGER")
    env["PAGER"] = pager
    _on_a_terminal(aura_argv("session", "show", sid), env)
    assert "── turn 1" in caught.read_text()


def test_search_finds_entries_of_every_session(two_turns: str) -> None:
    sid = two_turns
    found = run_aura("session", "search", "flaky BUILD")
    assert found.returncode == 0, found.stderr
    rows = found.stdout.splitlines()
    assert rows[0].split() == ["SESSION", "EXECUTOR", "TIME", "SEQ", "MATCH"]
    assert len(rows) == 3 and all(r.startswith(sid[:8]) and "error: Flaky build broke" in r
                                  for r in rows[1:])
    hits = json.loads(run_aura("session", "search", "second", "--json", "--limit", "1").stdout)
    assert hits == [{"session": sid, "executor": "custom", "seq": hits[0]["seq"],
                     "ts": hits[0]["ts"], "kind": "assistant_message",
                     "snippet": "first line turn two <i> second line </pre> & <b>"}]
    assert json.loads(run_aura("session", "search", "flaky", "-e", "claude",
                               "--json").stdout) == []
    none = run_aura("session", "search", "zebra")
    assert none.returncode == 0 and "no entry holds 'zebra'" in none.stderr
    assert run_aura("session", "search", "flaky", "--since", "nope").returncode == 2


def test_export_markdown_and_json(tmp_path: Path, two_turns: str) -> None:
    sid = two_turns
    md = run_aura("session", "export", sid[:8]).stdout
    assert md.startswith(f"# Session {sid}") and "## Prompt\n\n```text\nturn one\n```" in md
    assert "**Tool** `command` pytest -q — ok" in md
    assert "… 21 lines above\nout 21" in md and "out 20\n" not in md  # the output's tail
    assert "### Turn 2" in md and "## Usage\n\nin 200 out 40 $0.0200" in md
    doc = json.loads(run_aura("session", "export", sid, "--format", "json").stdout)
    assert doc["id"] == sid and doc["usage"]["input_tokens"] == 200 and doc["diff"] is None
    out = tmp_path / "t.md"
    assert run_aura("session", "export", sid, "-o", str(out)).returncode == 0
    assert out.read_text() == md


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("no chromium here (apt-get install -y chromium) to render the HTML")


def test_export_html_renders_in_a_browser_with_hostile_text_as_text(tmp_path: Path,
                                                                   two_turns: str) -> None:
    sid = two_turns
    page = tmp_path / "t.html"
    assert run_aura("session", "export", sid, "--format", "html", "-o",
                    str(page)).returncode == 0
    source = page.read_text()
    assert "<script>" not in source and "http" not in source.split("<body>")[0]
    browser = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True,
                             timeout=120)
    dom = browser.stdout
    assert "<h1>Session " + sid in dom, browser.stderr[-500:]
    assert "first line turn one\nsecond line &lt;/pre&gt; &amp; &lt;b&gt;</pre>" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script" not in dom
    assert "turn two &lt;i&gt;" in dom and "<i>" not in dom
    assert dom.count('<div class="entry agent">') == 2 and "Flaky build broke" in dom


def _put_session(sid: str, state: str, home: Path, updated: str = "2026-01-01T00:00:00.000Z"
                 ) -> None:
    store = SQLiteStore(home / "aura.db")
    store.create_session(Session(id=sid, executor="custom", state=state, cwd="/",
                                 created_at=updated, updated_at=updated, prompt="p"))
    store.close()


def test_rm_and_prune_remove_whole_sessions_but_not_running_ones(two_turns: str,
                                                                 aura_home: Path) -> None:
    sid = two_turns
    _put_session("0ld0-failed", "failed", aura_home)
    _put_session("0ld1-done", "done", aura_home)
    _put_session("runn-1", "coding_initial", aura_home)
    refused = run_aura("session", "rm", "runn-1", sid)
    assert refused.returncode == 1 and "session runn-1 is coding_initial; cancel it with " \
        "`aura session cancel runn-1` first" in refused.stderr
    assert run_aura("session", "show", sid).returncode == 0  # nothing was removed
    dry = run_aura("session", "prune", "--older-than", "30d", "--state", "failed", "--dry-run")
    assert dry.stdout.splitlines() == ["would remove session 0ld0-fai (failed, "
                                       "2026-01-01T00:00:00.000Z)"]
    pruned = run_aura("session", "prune", "--older-than", "30d")
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(pruned.stdout.splitlines()) == [
        "removed session 0ld0-fai (failed, 2026-01-01T00:00:00.000Z)",
        "removed session 0ld1-don (done, 2026-01-01T00:00:00.000Z)"]
    assert run_aura("session", "rm", sid[:8]).stdout == f"removed session {sid[:8]}\n"
    left = SQLiteStore(aura_home / "aura.db")
    assert [s.id for s in left.list_sessions()] == ["runn-1"]
    for table in ("entries", "executions", "transitions", "entry_docs"):
        assert left._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    left.close()
    assert "no session" in run_aura("session", "rm", "zzzz").stderr


@pytest.mark.usefixtures("git_env")
def test_rm_refuses_unsaved_workspace_work_until_it_is_saved(tmp_path: Path,
                                                             aura_home: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    agent = write_agent(tmp_path / "agent.py", ["print('did nothing')"])
    run = run_aura("run", "-e", "custom", "--base-command", f"{PY} {agent}", "--repo",
                   str(repo), "-p", "work", "--json")
    assert run.returncode == 0, run.stderr
    sid = json.loads(run.stdout.splitlines()[-1])["session"]
    ws = json.loads(run_aura("workspace", "list", "--json").stdout)[0]
    worktree = Path(ws["repos"][0]["path"])
    (worktree / "a.txt").write_text("changed by hand\n")
    md = run_aura("session", "export", sid).stdout
    assert "## Workspace diff\n\n```diff\n" in md and "+changed by hand" in md
    refused = run_aura("session", "rm", sid)
    assert refused.returncode == 1
    assert f"save it with `aura workspace save {sid[:8]}`" in refused.stderr
    assert "aura workspace remove" in refused.stderr and worktree.is_dir()
    kept = run_aura("workspace", "prune")
    assert "kept" in kept.stderr and "unsaved work" in kept.stderr and worktree.is_dir()
    assert run_aura("workspace", "save", sid).returncode == 0
    removed = run_aura("session", "rm", sid)
    assert removed.returncode == 0, removed.stderr
    assert "removed the workspace" in removed.stderr and not worktree.exists()
    saved = git(repo, "show", f"refs/aura/saved/{sid}:a.txt")
    assert saved == "changed by hand"


@pytest.mark.usefixtures("git_env")
def test_workspace_prune_takes_orphans_only_when_their_work_is_saved(tmp_path: Path,
                                                                    aura_home: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    parent = aura_home / "workspaces"
    parent.mkdir()
    clean, dirty = parent / "aura-clean", parent / "aura-dirty"
    git(repo, "worktree", "add", "-q", "-b", "aura/clean", str(clean))
    git(repo, "worktree", "add", "-q", "-b", "aura/dirty", str(dirty))
    (dirty / "new.txt").write_text("not saved\n")
    (parent / "stray").mkdir()
    dry = run_aura("workspace", "prune", "--dry-run")
    assert f"would remove {clean} (no session" in dry.stdout and clean.is_dir()
    result = run_aura("workspace", "prune")
    assert result.returncode == 0, result.stderr
    assert f"removed {clean}" in result.stdout and not clean.exists()
    assert f"kept {dirty}" in result.stderr and "uncommitted work" in result.stderr
    assert "stray (no session: no git worktree in it" in result.stderr
    assert dirty.is_dir() and (dirty / "new.txt").exists()
    assert git(repo, "rev-parse", "--verify", "aura/clean")  # its branch stays


def test_preparing_the_workspace_belongs_to_the_first_turn() -> None:
    from aura.cli.session_view import turns_of

    entries = [{"seq": 1, "kind": "state", "execution": "prep"},
               {"seq": 2, "kind": "system", "execution": "prep"},
               {"seq": 3, "kind": "user_message", "execution": "code"},
               {"seq": 4, "kind": "usage", "execution": "code",
                "usage": {"input_tokens": 10, "output_tokens": 2}},
               {"seq": 5, "kind": "system", "execution": "check"},
               {"seq": 6, "kind": "user_message", "execution": "again"}]
    turns = turns_of(entries)
    assert [turns[seq].number for seq in range(1, 7)] == [1, 1, 1, 1, 1, 2]
    assert turns[1].usage == {"input_tokens": 10, "output_tokens": 2}
