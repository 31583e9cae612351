"""`aura run` and `aura session` end to end, as real processes with real fake agents."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura, write_agent

PY = sys.executable
SPEC_EXAMPLE = ["run", "--executor", "custom", "--prompt", "ignored", "--base-command", "sh",
                "--param", "-lc", "--param", "echo out_line; echo err_line 1>&2", "--no-tui"]


def jsonl(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def latest(aura_home: Path) -> dict:
    result = run_aura("session", "latest", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_specification_example_works_as_written(aura_home: Path) -> None:
    result = run_aura(*SPEC_EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "out_line" in result.stdout.splitlines()
    assert "err_line" not in result.stdout
    data = latest(aura_home)
    assert data["state"] == "done"
    kinds = [(e["kind"], e.get("text")) for e in data["entries"]]
    assert ("assistant_message", "out_line") in kinds
    raw = [e for e in data["entries"] if e["kind"] == "raw"]
    assert raw == [{**raw[0], "text": "err_line", "stream": "stderr"}]
    assert [(t["from"], t["to"]) for t in data["transitions"]] == [
        (None, "queued"), ("queued", "coding_initial"), ("coding_initial", "done")]


def test_argv_env_prompt_placeholder_vars_and_append_prompt(tmp_path: Path) -> None:
    agent = write_agent(tmp_path / "agent.py", [
        "import json, os, sys",
        "print(json.dumps({'kind': 'system', 'text': 'argv',",
        "                  'data': {'argv': sys.argv[1:], 'prompt': os.environ['AURA_PROMPT'],",
        "                           'session': os.environ['AURA_SESSION_ID'],",
        "                           'key': os.environ.get('API_KEY'), 'cwd': os.getcwd()}}))",
    ])
    workdir = tmp_path / "my app"
    workdir.mkdir()
    result = run_aura("run", "--executor", "custom", "--base-command", f"{PY} '{agent}'",
                      "--param", "--fast", "--param", "--task={{prompt}}!", "--prompt",
                      "fix the bug", "--var", "API_KEY=x=y", "--append-prompt", " (be brief)",
                      "--cwd", str(workdir), "--json")
    assert result.returncode == 0, result.stderr
    entries = jsonl(result.stdout)
    data = next(e for e in entries if e["kind"] == "system")["data"]
    assert data["argv"] == ["--fast", "--task=fix the bug (be brief)!"]
    assert data["prompt"] == "fix the bug (be brief)"
    assert data["key"] == "x=y"
    assert data["cwd"] == str(workdir)
    summary = entries[-1]
    assert summary["kind"] == "summary" and summary["state"] == "done"
    assert data["session"] == summary["session"]
    seqs = [e["seq"] for e in entries[:-1]]
    assert seqs == list(range(1, len(seqs) + 1))
    for e in entries[:-1]:
        assert e["session"] == summary["session"] and e["stage"] == "coding_initial"
        assert e["execution"] == summary["execution"] and e["ts"].endswith("Z")


def test_native_json_entries_pass_through_and_other_lines_become_text(tmp_path: Path) -> None:
    agent = write_agent(tmp_path / "agent.py", [
        "import json",
        "print(json.dumps({'kind': 'tool_call', 'tool': 'Write', 'action': 'file_write',",
        "                  'target': 'hello.txt', 'status': 'ok'}))",
        "print('{not json')",
        "print(json.dumps({'kind': 'no-such-kind', 'x': 1}))",
        "print(json.dumps([1, 2]))",
        "print(json.dumps({'kind': 'usage', 'seq': 99, 'usage': {'input_tokens': 5,"
        " 'output_tokens': 2, 'cost_usd': 0.5}}))",
    ])
    result = run_aura("run", "-e", "custom", "--base-command", f"{PY} {agent}", "-p", "go",
                      "--no-tui")
    assert result.returncode == 0, result.stderr
    assert "→ file_write hello.txt ok" in result.stdout
    entries = latest(Path())["entries"]
    body = [e for e in entries if e["kind"] not in ("state", "user_message")]
    assert [e["kind"] for e in body] == ["tool_call", "assistant_message", "assistant_message",
                                         "assistant_message", "usage"]
    assert body[1]["text"] == "{not json"
    assert body[4]["seq"] != 99 and body[4]["data"] == {"agent_seq": 99}
    summary = jsonl(run_aura("run", "-e", "custom", "--base-command", f"{PY} {agent}",
                             "-p", "go", "--json").stdout)[-1]
    assert summary["usage"] == {"input_tokens": 5, "output_tokens": 2, "cost_usd": 0.5}


def test_an_agent_that_prints_nothing_is_done(aura_home: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command", "true", "-p", "x", "--json")
    assert result.returncode == 0
    assert jsonl(result.stdout)[-1]["state"] == "done"


def test_an_agent_that_fails_gives_its_own_exit_code_and_a_failed_session() -> None:
    result = run_aura("run", "-e", "custom", "--base-command", "sh -c 'echo oops >&2; exit 7'",
                      "-p", "x", "--json")
    assert result.returncode == 7
    entries = jsonl(result.stdout)
    assert entries[-1]["state"] == "failed" and entries[-1]["exit_code"] == 7
    assert any(e["kind"] == "error" and "exit" in e["text"] for e in entries)
    data = latest(Path())
    assert data["state"] == "failed"
    assert data["executions"][0]["state"] == "failed" and data["executions"][0]["exit_code"] == 7


def test_a_one_mebibyte_line_and_binary_garbage_are_stored(tmp_path: Path) -> None:
    agent = write_agent(tmp_path / "agent.py", [
        "import sys",
        "sys.stdout.write('x' * (1 << 20) + '\\n')",
        "sys.stdout.flush()",
        "sys.stdout.buffer.write(b'\\xff\\xfe garbage\\n')",
    ])
    result = run_aura("run", "-e", "custom", "--base-command", f"{PY} {agent}", "-p", "x",
                      "--json")
    assert result.returncode == 0, result.stderr
    texts = [e["text"] for e in latest(Path())["entries"] if e["kind"] == "assistant_message"]
    assert texts == ["x" * (1 << 20), "\ufffd\ufffd garbage"]


def test_line_cap_truncates_with_a_marker(tmp_path: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command",
                      f"{PY} -c \"print('y' * 5000)\"", "-p", "x", "--line-cap", "1024",
                      "--json")
    assert result.returncode == 0, result.stderr
    text = next(e["text"] for e in jsonl(result.stdout) if e["kind"] == "assistant_message")
    assert text.startswith("y" * 1024) and "3976 bytes dropped" in text


@pytest.mark.parametrize(("args", "message"), [
    (["-e", "nope", "-p", "x"], "unknown executor 'nope'"),
    (["-e", "custom", "--base-command", "true"], "a prompt is required"),
    (["-e", "custom", "--base-command", "", "-p", "x"], "--base-command is empty"),
    (["-e", "custom", "--base-command", "sh -c 'oops", "-p", "x"], "cannot parse --base-command"),
    (["-e", "custom", "--base-command", "true", "-p", "x", "--var", "NOEQUALS"], "'NOEQUALS'"),
    (["-e", "custom", "--base-command", "true", "-p", "x", "--cwd", "/no/such/dir"],
     "/no/such/dir"),
    (["-e", "custom", "--base-command", "true", "-p", "x", "--yolo"],
     "--yolo has no meaning for --executor custom"),
    (["-e", "custom", "--base-command", "true", "-p", "x", "--session", "nope"],
     "aura session list"),
    (["-e", "custom", "--base-command", "true", "-p", "x", "--auto-approve", "maybe"],
     "'maybe' is not true or false"),
])
def test_usage_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = run_aura("run", *args)
    expected = 1 if message == "aura session list" else 2
    assert result.returncode == expected, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aura: error:"), result.stderr
    assert message in lines[0]


def test_a_missing_agent_binary_is_one_line_before_any_session(aura_home: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command", "no-such-agent-xyz", "-p", "x")
    assert result.returncode == 1
    assert result.stderr == "aura: error: executable not found on PATH: no-such-agent-xyz\n"
    assert run_aura("session", "latest").returncode == 1  # no session was created


def test_follow_up_with_session_id_and_resume_latest(tmp_path: Path) -> None:
    agent = write_agent(tmp_path / "agent.py", [
        "import os; print('turn for', os.environ['AURA_SESSION_ID'], os.environ['AURA_PROMPT'])"])
    base = ["-e", "custom", "--base-command", f"{PY} {agent}", "--cwd", str(tmp_path)]
    first = jsonl(run_aura("run", *base, "-p", "one", "--json").stdout)[-1]
    sid = first["session"]
    second = run_aura("run", "--session", sid[:8], "-p", "two", "--json")
    assert second.returncode == 0, second.stderr
    assert jsonl(second.stdout)[-1]["session"] == sid
    third = run_aura("run", "--resume-latest", "-p", "three", "--cwd", str(tmp_path), "--json")
    assert third.returncode == 0, third.stderr
    data = latest(Path())
    assert data["id"] == sid and data["state"] == "done"
    assert [e["stage"] for e in data["executions"]] == [
        "coding_initial", "coding_follow_up", "coding_follow_up"]
    texts = [e["text"] for e in data["entries"] if e["kind"] == "assistant_message"]
    assert texts == [f"turn for {sid} {p}" for p in ("one", "two", "three")]
    seqs = [e["seq"] for e in data["entries"]]
    assert seqs == list(range(1, len(seqs) + 1))
    other = run_aura("run", "--resume-latest", "-p", "x", "--cwd", "/")
    assert other.returncode == 1 and "no session to resume in /" in other.stderr


def test_ctrl_c_cancels_stops_the_group_and_keeps_what_was_printed(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    agent = write_agent(tmp_path / "agent.py", [
        "import subprocess, sys, time",
        f"p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(120)'])",
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))",
        "print('working', flush=True)",
        "time.sleep(120)",
    ])
    proc = subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command", f"{PY} {agent}",
                                      "-p", "forever", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if '"working"' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == 130, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["state"] == "cancelled"
    grandchild = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    data = latest(Path())
    assert data["state"] == "cancelled"
    assert any(e.get("text") == "working" for e in data["entries"])
    assert data["executions"][0]["state"] == "cancelled"


def test_sigterm_to_aura_also_cancels(tmp_path: Path) -> None:
    proc = subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command",
                                      "sh -c 'echo started; sleep 100'", "-p", "x", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while '"started"' not in proc.stdout.readline():
        pass
    proc.terminate()
    out, _ = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == 143  # terminated, not interrupted (130 is Ctrl-C's)
    summary = json.loads(out.splitlines()[-1])
    assert summary["state"] == "cancelled" and summary["exit_code"] == 143


def test_a_crashed_aura_leaves_no_row_running(tmp_path: Path, aura_home: Path) -> None:
    proc = subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command",
                                      "sh -c 'echo up; sleep 100'", "-p", "x", "--json"),
                            stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    while '"up"' not in proc.stdout.readline():
        pass
    proc.kill()  # SIGKILL: aura gets no chance to finish its rows
    proc.wait()
    data = latest(aura_home)
    assert data["state"] == "failed"
    assert data["executions"][0]["state"] == "failed"
    assert data["executions"][0]["reason"] == "orphaned"
    assert data["transitions"][-1]["reason"] == "orphaned"


def test_session_list_and_show(tmp_path: Path) -> None:
    for prompt in ("first task", "second task " + "long " * 20):
        run_aura("run", "-e", "custom", "--base-command", "echo hi", "-p", prompt, "--no-tui")
    listing = run_aura("session", "list")
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "EXECUTOR", "STATE", "REPO", "STARTED", "DURATION",
                                "COST", "PROMPT"]
    assert "second task" in lines[1] and lines[1].endswith("…") and "first task" in lines[2]
    as_json = json.loads(run_aura("session", "list", "--json", "--limit", "1").stdout)
    assert len(as_json) == 1 and "entries" not in as_json[0]
    assert as_json[0]["executions"][0]["state"] == "done"
    sid = as_json[0]["id"]
    shown = run_aura("session", "show", sid)
    assert shown.returncode == 0 and sid in shown.stdout and "hi" in shown.stdout
    assert json.loads(run_aura("session", "show", sid, "--json").stdout)["id"] == sid
    missing = run_aura("session", "show", "zzzz")
    assert missing.returncode == 1 and "aura session list" in missing.stderr


def test_session_latest_on_an_empty_store_says_how_to_start() -> None:
    result = run_aura("session", "latest")
    assert result.returncode == 1 and "aura run" in result.stderr
    assert run_aura("session", "list").returncode == 0


def test_a_corrupt_database_is_one_line_and_left_alone(aura_home: Path) -> None:
    db = aura_home / "aura.db"
    db.write_bytes(b"garbage" * 1000)
    result = run_aura("session", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == f"aura: error: cannot open database {db}: " \
        "file is not a database"
    assert db.read_bytes() == b"garbage" * 1000


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_database_is_a_clear_error(aura_home: Path) -> None:
    run_aura(*SPEC_EXAMPLE)
    for path in aura_home.iterdir():
        path.chmod(0o444)
    aura_home.chmod(0o555)
    try:
        result = run_aura(*SPEC_EXAMPLE)
        assert result.returncode == 1 and "database" in result.stderr
    finally:
        aura_home.chmod(0o755)


def test_a_read_only_database_as_root_is_a_clear_error(aura_home: Path) -> None:
    run_aura(*SPEC_EXAMPLE)
    before = sqlite3.connect(aura_home / "aura.db").execute(
        "SELECT COUNT(*) FROM sessions").fetchone()[0]
    uri = f"file:{aura_home}/aura.db?mode=ro"
    result = run_aura(*SPEC_EXAMPLE, env={"AURA_DB": uri})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"aura: error: cannot write database {uri}: attempt to write a readonly database"]
    listed = run_aura("session", "list", "--json", env={"AURA_DB": uri})
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == before
    after = sqlite3.connect(aura_home / "aura.db").execute(
        "SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert after == before


def test_two_aura_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    agent = write_agent(tmp_path / "agent.py", [
        "import json",
        "for i in range(20000):",
        "    print(json.dumps({'kind': 'assistant_message', 'text': f'line {i}'}))",
    ])
    procs = [subprocess.Popen(aura_argv("run", "-e", "custom", "--base-command",
                                        f"{PY} {agent}", "-p", f"p{n}", "--json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120 * TIMEOUT_FACTOR)
        assert proc.returncode == 0, err
    sessions = json.loads(run_aura("session", "list", "--json").stdout)
    assert len(sessions) == 2
    for session in sessions:
        entries = json.loads(run_aura("session", "show", session["id"], "--json").stdout)["entries"]
        texts = [e["text"] for e in entries if e["kind"] == "assistant_message"]
        assert texts == [f"line {i}" for i in range(20000)]


def test_help_and_version() -> None:
    for args in (["--help"], ["help"], ["run", "--help"], ["help", "run"],
                 ["help", "session", "list"]):
        result = run_aura(*args)
        assert result.returncode == 0 and "Usage:" in result.stdout, args
    assert "--base-command" in run_aura("help", "run").stdout
    version = run_aura("--version")
    assert version.returncode == 0 and version.stdout.startswith("aura ")
    assert run_aura("help", "nope").returncode == 2


def test_json_gets_a_summary_even_when_the_run_never_starts() -> None:
    result = run_aura("run", "-e", "custom", "--base-command", "no-such-prog-xyz", "-p", "x",
                      "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["kind"] == "summary" and summary["state"] == "failed"
    assert summary["session"] is None and "no-such-prog-xyz" in summary["error"]


def test_an_agent_failing_with_code_1_is_reported_once_as_the_agents(tmp_path: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command", "false", "-p", "x", "--no-tui")
    assert result.returncode == 1
    assert result.stderr.count("error: agent exited with code 1") == 1
    assert "aura: error" not in result.stderr


def test_malformed_native_entries_become_raw_and_nothing_breaks(tmp_path: Path) -> None:
    lines = tmp_path / "out.jsonl"
    lines.write_text('{"kind":"usage","usage":5}\n{"kind":"tool_call","status":5}\n'
                     '{"kind":"assistant_message","text":"a\\ud800b"}\nlast line\n')
    result = run_aura("run", "-e", "custom", "--base-command", f"cat {lines}", "-p", "x",
                      "--no-tui")
    assert result.returncode == 0, result.stderr
    assert "last line" in result.stdout and "done" in result.stderr
    shown = run_aura("session", "latest")
    assert shown.returncode == 0, shown.stderr
    entries = latest(Path())["entries"]
    raws = [e["text"] for e in entries if e["kind"] == "raw"]
    assert raws == ['{"kind":"usage","usage":5}', '{"kind":"tool_call","status":5}',
                    '{"kind":"assistant_message","text":"a\\ud800b"}']


def test_ambiguous_prefix_and_help_paths_and_bare_commands() -> None:
    for _ in range(12):
        run_aura("run", "-e", "custom", "--base-command", "true", "-p", "x", "--json")
    ids = [s["id"] for s in json.loads(run_aura("session", "list", "--json").stdout)]
    short = run_aura("session", "show", ids[0][0])
    assert short.returncode == 1 and "too short for a session id prefix" in short.stderr
    first = ids[0][:4]
    if sum(i.startswith(first) for i in ids) > 1:
        result = run_aura("session", "show", first)
        assert result.returncode == 1 and "matches several sessions" in result.stderr
    assert run_aura("help", "session", "list").stdout.startswith("Usage: aura session list")
    bare = run_aura()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: aura")
    listed = run_aura("session", "list", "-e", "cursor")
    assert listed.returncode == 0 and "no cursor-agent sessions" in listed.stderr


def test_a_bad_executor_path_is_refused_and_not_remembered(aura_home: Path) -> None:
    result = run_aura("run", "-e", "claude", "--executor-path", "claude=/nonexistent/claude",
                      "-p", "x")
    assert result.returncode == 2 and "not an executable file" in result.stderr
    assert not (aura_home / "config.toml").exists()


def test_a_config_with_a_wrong_shape_is_one_line(aura_home: Path) -> None:
    (aura_home / "config.toml").write_text("executor_paths = 5\n")
    result = run_aura("run", "-e", "custom", "--base-command", "true", "-p", "x")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"aura: error: config {aura_home}/config.toml: [executor_paths] must be a table like "
        '`[executor_paths]` / `claude = "/opt/claude/bin/claude"`']


def test_prompt_from_stdin_loses_its_trailing_newline(tmp_path: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command",
                      "sh -c 'printf \"[%s]\" \"$AURA_PROMPT\"'", "-p", "-",
                      "--append-prompt", "!", "--json", input="hi\n")
    assert any(json.loads(line).get("text") == "[hi!]" for line in result.stdout.splitlines())
