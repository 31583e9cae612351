"""The TUI on a real terminal (tmux): runs with a fake agent, entries appearing, scrolling
and paging back from the store, cancelling, follow-ups, slash commands, the model list,
quitting, and the terminal restored on every way out (crash and SIGTERM included); plus
the plain-text fallback when there is no terminal."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import terminal
from .conftest import ROOT, TIMEOUT_FACTOR, agent_command, aura_argv, run_aura
from .gitrepo import git_env, make_repo  # noqa: F401 (git_env: a fixture)
from .openai_server import FakeOpenAI

pytestmark = pytest.mark.skipif(not terminal.available(), reason="needs tmux")

AGENT = agent_command("tui_agent.py")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[terminal.Tmux]:
    term = terminal.Tmux(tmp_path, width=200, height=50)
    yield term
    term.close()


def start(tmux: terminal.Tmux, tmp_path: Path, argv: list[str]) -> None:
    """Run argv on the terminal, then print its exit code and the terminal's modes, then
    keep the shell alive so the pane's own flags can be read."""
    line = (f"{shlex.join(argv)}; echo EXIT=$?; stty -a | tr '\\n' ' '; echo; echo MODES; "
            "exec sleep 600")
    tmux.start(["sh", "-c", line], env={"AURA_HOME": os.environ["AURA_HOME"],
                                        "NO_COLOR": "1", "TERM": "xterm-256color"},
               cwd=tmp_path)


def assert_restored(tmux: terminal.Tmux) -> str:
    """The screen after aura exited: main screen, cursor on, no mouse, sane tty modes."""
    screen = tmux.wait_for("MODES")
    flags = tmux._tmux("display-message", "-p",
                       "#{alternate_on} #{mouse_any_flag} #{cursor_flag}").stdout.split()
    assert flags == ["0", "0", "1"], flags  # not alternate, no mouse reporting, cursor shown
    modes = screen[screen.index("speed"):]
    assert " icanon " in modes and " echo " in modes, modes
    return screen


def exit_code(screen: str) -> int:
    return int(screen.split("EXIT=")[1].split()[0])


def run_argv(*extra: str) -> list[str]:
    return aura_argv("run", "--executor", "custom", "--base-command", AGENT, *extra)


def latest() -> dict:
    result = run_aura("session", "latest", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_run_streams_cancels_follows_up_and_quits(tmux: terminal.Tmux, tmp_path: Path) -> None:
    start(tmux, tmp_path, run_argv("--prompt", "slow task"))
    screen = tmux.wait_for("waiting for a long time")
    assert "Logs" in screen and "Queue" in screen and "Model" in screen and "Prompt" in screen
    assert "▸ thinking: Let me think about this" in screen  # folded to one line
    assert "second line of thought" in screen and "(2 lines)" in screen
    tool_lines = [ln for ln in screen.splitlines() if "file_write" in ln]
    assert len(tool_lines) == 1 and "hello.txt" in tool_lines[0] and " ok" in tool_lines[0]
    assert "● running" in screen and "/executor" in screen  # footer: state and commands

    tmux.send("Escape")
    screen = tmux.wait_for("● cancelled: interrupted by the user")
    tmux.wait_for("○ idle")

    tmux.type("second question")
    tmux.send("Enter")
    screen = tmux.wait_for("done (exit 0)")
    assert "› second question" in screen and "echo: second question" in screen
    assert "coding_follow_up" in screen  # the Queue pane lists both executions

    tmux.type("/quit")
    tmux.send("Enter")
    screen = assert_restored(tmux)
    assert exit_code(screen) == 0
    assert "[aura] session" in screen  # the outcome line, on the normal screen

    data = latest()
    assert [e["stage"] for e in data["executions"]] == ["coding_initial", "coding_follow_up"]
    assert [e["state"] for e in data["executions"]] == ["cancelled", "done"]
    assert data["state"] == "done"


def test_scrolls_pages_older_entries_from_the_store_and_follows_again(
        tmux: terminal.Tmux, tmp_path: Path) -> None:
    # 30,000 lines: six times what the live buffer keeps, so the top comes from the store.
    start(tmux, tmp_path, run_argv("--prompt", "flood 30000"))
    tmux.wait_for("done (exit 0)", timeout=60)
    screen = tmux.wait_for("line 030000")
    tmux.send("PageUp")
    screen = tmux.wait_for("End follows")
    assert "line 030000" not in screen
    tmux.send("Tab")  # to the Logs pane
    for _ in range(60):
        tmux.send("Home")
        if "line 000001" in tmux.screen():
            break
        time.sleep(0.05)
    screen = tmux.wait_for("line 000001")
    assert "› flood 30000" in screen  # the very start of the session
    tmux.send("End")
    screen = tmux.wait_for(lambda s: "line 030000" in s and "End follows" not in s)
    tmux.send("C-c")
    tmux.send("C-c")
    assert exit_code(assert_restored(tmux)) == 130


def test_ctrl_c_cancels_then_a_second_ctrl_c_quits(tmux: terminal.Tmux, tmp_path: Path) -> None:
    start(tmux, tmp_path, run_argv("--prompt", "slow task"))
    tmux.wait_for("waiting for a long time")
    tmux.send("C-c")
    tmux.send("C-c")
    screen = assert_restored(tmux)
    assert exit_code(screen) == 130
    assert latest()["state"] == "cancelled"  # the agent was stopped and it was recorded


def test_slash_commands_and_sessions(tmux: terminal.Tmux, tmp_path: Path) -> None:
    first = run_aura("run", "--executor", "custom", "--base-command", AGENT, "--prompt",
                     "earlier work", "--no-tui", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    earlier = latest()["id"]
    start(tmux, tmp_path, aura_argv("tui", "--executor", "custom", "--base-command", AGENT))
    tmux.wait_for("○ idle")
    tmux.type("/help")
    tmux.send("Enter")
    tmux.wait_for(lambda s: "Help (Esc closes" in s and "/session ID" in s)
    tmux.send("Escape")
    tmux.wait_for(lambda s: "Help (Esc closes" not in s)
    for command, expected in (("/executor nope", "unknown executor 'nope'"),
                              ("/review", "review   on")):
        tmux.type(command)
        tmux.send("Enter")
        tmux.wait_for(expected)
    tmux.type("/frobnicate")
    tmux.send("Enter")
    tmux.wait_for("unknown command /frobnicate")
    assert "› /frobnicate" in tmux.screen()  # kept: Enter again would send it as a prompt
    tmux.send("C-u")
    tmux.type(f"/session {earlier[:8]}")
    tmux.send("Enter")
    screen = tmux.wait_for("echo: earlier work")
    assert f"session {earlier[:8]}" in screen
    tmux.type("/review off")
    tmux.send("Enter")
    tmux.type("/model m-one")  # after /session, which adopts the session's model
    tmux.send("Enter")
    tmux.wait_for("model    m-one")
    tmux.type("and a follow-up")
    tmux.send("Enter")
    tmux.wait_for("echo: and a follow-up")
    tmux.wait_for("done (exit 0)")
    tmux.type("/new")
    tmux.send("Enter")
    screen = tmux.wait_for("new session")
    assert "echo: earlier work" not in screen
    tmux.type("fresh start")
    tmux.send("Enter")
    tmux.wait_for("echo: fresh start")
    tmux.wait_for("done (exit 0)")
    tmux.send("Tab")
    tmux.send("Tab")  # Prompt → Logs → Queue
    tmux.wait_for("Enter opens")
    tmux.send("Down")  # from the newest session to the earlier one
    tmux.send("Enter")
    screen = tmux.wait_for("echo: and a follow-up")
    assert "echo: fresh start" not in screen and f"session {earlier[:8]}" in screen
    tmux.send("C-c")
    tmux.wait_for("press Ctrl-C again to quit")
    tmux.send("C-c")
    assert_restored(tmux)
    sessions = json.loads(run_aura("session", "list", "--json").stdout)
    assert len(sessions) == 2
    follow = next(s for s in sessions if s["id"] == earlier)
    assert [e["stage"] for e in follow["executions"]] == ["coding_initial", "coding_follow_up"]
    assert follow["model"] == "m-one"


def test_model_pane_lists_discovered_models(tmux: terminal.Tmux, tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        start(tmux, tmp_path, aura_argv("tui", "--executor", "lms", "--openai-endpoint",
                                        server.root))
        tmux.wait_for("gamma-model")
        for _ in range(3):
            tmux.send("Tab")  # Prompt → Logs → Queue → Model
        tmux.send("Down")
        tmux.send("Enter")
        screen = tmux.wait_for("model    beta-model")
        assert "alpha-model" in screen
        tmux.send("Tab")
        tmux.type("hello model")
        tmux.send("Enter")
        tmux.wait_for("done (exit 0)")
        assert server.requests[-1]["model"] == "beta-model"
        tmux.type("/quit")
        tmux.send("Enter")
        assert exit_code(assert_restored(tmux)) == 0


def test_sigterm_cancels_the_turn_and_restores_the_terminal(tmux: terminal.Tmux,
                                                            tmp_path: Path) -> None:
    pidfile = tmp_path / "aura.pid"
    argv = shlex.join(run_argv("--prompt", "slow x"))
    inner = f"echo $$ > {shlex.quote(str(pidfile))}; exec {argv}"
    start(tmux, tmp_path, ["sh", "-c", inner])
    tmux.wait_for("waiting for a long time")
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    screen = assert_restored(tmux)
    assert exit_code(screen) == 128 + signal.SIGTERM
    assert latest()["state"] == "cancelled"


CRASH = """\
import sys
sys.path.insert(0, {root!r})
import aura.tui.app
calls = []
real = aura.tui.app.LogView.create_content
def create_content(self, width, height):
    calls.append(1)
    if len(calls) > 3:
        raise RuntimeError("boom in the renderer")
    return real(self, width, height)
aura.tui.app.LogView.create_content = create_content
from aura.cli.app import main
main(sys.argv[1:])
"""


def test_a_crash_restores_the_terminal(tmux: terminal.Tmux, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH.format(root=str(ROOT)))
    start(tmux, tmp_path, [sys.executable, str(script), "tui", "--executor", "custom",
                           "--base-command", AGENT, "--prompt", "flood 2000"])
    screen = assert_restored(tmux)
    assert exit_code(screen) == 1
    assert "RuntimeError: boom in the renderer" in screen


def test_without_a_terminal_run_streams_plain_text(tmp_path: Path) -> None:
    result = run_aura("run", "--executor", "custom", "--base-command", AGENT, "--prompt",
                      "plain please", cwd=tmp_path, timeout=60 * TIMEOUT_FACTOR)
    assert result.returncode == 0, result.stderr
    assert "echo: plain please" in result.stdout
    assert "\x1b[?1049h" not in result.stdout  # never the alternate screen
    refused = run_aura("tui", "--executor", "custom", "--base-command", AGENT, cwd=tmp_path)
    assert refused.returncode == 2
    assert "needs a terminal" in refused.stderr
    remote = run_aura("tui", "--on", "box1", cwd=tmp_path)
    assert remote.returncode == 2 and "aura run --on" in remote.stderr


@pytest.mark.usefixtures("git_env")
def selected_line(term: terminal.Tmux) -> str:
    """The first screen line drawn in reverse video (SGR 7): the Logs pane's selection."""
    for line in term._tmux("capture-pane", "-e", "-p").stdout.splitlines():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if plain.startswith("│") and re.search(r"\x1b\[(?:[0-9]+;)*7(?:;[0-9]+)*m", line):
            return plain  # inside a pane (the focused pane's title is reversed too)
    return ""


def select_entry(term: terminal.Tmux, key: str, text: str) -> None:
    """Press ``key`` until the selected entry's line shows ``text``."""
    for _ in range(20):
        if text in selected_line(term):
            return
        term.send(key)
        time.sleep(0.2)
    raise AssertionError(f"no selected line shows {text!r}: {selected_line(term)!r}")


def test_narrow_terminal_wraps_wide_text_and_keeps_every_keystroke(tmp_path: Path) -> None:
    # 80 columns: full-width Logs (F2 swaps in the side panes), CJK wrapped by display width,
    # code blocks, the help and diff overlays, the focus drawn, Home/End and // in the
    # prompt, the log following a new turn, the selected entry in the Logs pane shown whole
    # and folded again, typing in the Logs pane, completion.
    repo = make_repo(tmp_path / "repo")
    term = terminal.Tmux(tmp_path, width=80, height=30)
    try:
        start(term, repo, run_argv("--prompt", "rich answer"))
        screen = term.wait_for("done (exit 0)")
        assert screen.count("漢") == 150 and "END" in screen  # wrapped, nothing cut
        assert "Queue" not in screen and "▶ Prompt ◀" in screen and "F2 side panes" in screen
        styled = term._tmux("capture-pane", "-e", "-p").stdout.splitlines()
        top = next(ln for ln in styled if "Prompt" in ln)
        logs = next(ln for ln in styled if "Logs" in ln)
        # The focused pane's border corner in the focused (bold) style, the other's not.
        assert "\x1b[1m" in top.split("┌")[0] and "\x1b[1m" not in logs.split("┌")[0]
        term.send("F2")
        screen = term.wait_for("sessions (newest first)")
        assert "rich answer" in screen and "$0.0123" in screen and "▶ Queue ◀" in screen
        assert "Logs" not in screen
        term.send("F2")
        term.wait_for(lambda s: "Logs" in s and "▶ Prompt ◀" in s)
        term.type("?")
        screen = term.wait_for("Help (Esc closes")
        assert "F2 the side panes" in screen and "mouse capture on/off:" not in screen
        term.send("End")  # scrolls the help to its end: the commands of the table
        term.wait_for(lambda s: "mouse capture on/off:" in s and "show the diff" in s)
        term.send("Escape")
        term.wait_for(lambda s: "Help (Esc closes" not in s)
        term.send("F3")
        screen = term.wait_for("+from the agent")
        assert "notes.txt" in screen
        term.send("Escape")
        term.wait_for(lambda s: "+from the agent" not in s)
        term.send("PageUp")
        term.wait_for("End follows")
        term.type("etc/hosts explain")
        term.send("Home")
        term.type("//")
        term.send("End")
        term.type(" now")
        term.send("Enter")  # sent as a prompt that starts with one /
        screen = term.wait_for("echo: /etc/hosts explain now")
        assert "End follows" not in screen  # the new turn is followed
        term.wait_for("done (exit 0)")
        term.send("Tab")
        term.wait_for("▶ Logs ◀")
        # The selected entry is drawn in reverse; ↑ moves it up to the turn's thinking,
        # Enter shows it whole, Enter folds it; ↓ to the tool call, Enter, Esc folds it.
        select_entry(term, "Up", "▸ thinking: Let me think")
        term.send("Enter")
        screen = term.wait_for("thinking (Enter or Esc folds")
        assert re.search(r"│Let me think about this +│", screen), screen
        assert re.search(r"│second line of thought +│", screen), screen
        term.send("Enter")
        term.wait_for(lambda s: "Enter or Esc folds" not in s and "▶ Logs ◀" in s)
        select_entry(term, "Down", "file_write")
        term.send("Enter")
        screen = term.wait_for("tool call (Enter or Esc folds")
        assert "tool: Write" in screen and re.search(r"│  hello\.txt +│", screen), screen
        term.send("Escape")
        term.wait_for(lambda s: "Enter or Esc folds" not in s and "▶ Logs ◀" in s)
        term.type("/qu")  # typed in the Logs pane: goes to the prompt
        term.wait_for(lambda s: "› /qu" in s and "▶ Prompt ◀" in s)
        term.send("Tab")  # completes the command
        term.wait_for("› /quit")
        term.send("Enter")
        assert exit_code(assert_restored(term)) == 0
    finally:
        term.close()


def test_wide_terminal_follows_a_detached_run_live_and_counts_the_turn(
        tmux: terminal.Tmux, tmp_path: Path) -> None:
    # 150x40: side by side; a session run by another process streams in after it is
    # opened from the Queue, which gives the focus back to the prompt; a queued task says
    # why it waits; the footer counts the running turn's time, tokens and cost.
    detached = run_aura("run", "-d", "--executor", "custom", "--base-command", AGENT,
                        "--prompt", "tick 30", cwd=tmp_path)
    assert detached.returncode == 0, detached.stderr
    sid = latest()["id"]
    queued = run_aura("task", "add", "-e", "custom", "--base-command", AGENT, "--after",
                      sid, "--prompt", "after the ticks", cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    term = terminal.Tmux(tmp_path, width=150, height=40)
    try:
        start(term, tmp_path, aura_argv("tui", "--executor", "custom", "--base-command",
                                        AGENT))
        screen = term.wait_for("○ idle")
        assert any("Logs" in ln and "Queue" in ln for ln in screen.splitlines())
        screen = term.wait_for(f"waits: dependency {sid[:8]}")
        term.send("Tab")
        term.send("Tab")
        term.wait_for("▶ Queue ◀")
        term.send("Down")  # the newest is the queued task; the ticking run is next
        term.send("Enter")
        term.type("follow")
        screen = term.wait_for("following it live")
        assert "› follow" in screen and "▶ Prompt ◀" in screen
        term.wait_for("tick 2")
        # Typing while the followed session runs steers it: a custom agent takes no text
        # mid-turn, so the run queues it as its next follow-up.
        term.send("C-u")
        term.type("steer me")
        term.send("Enter")
        term.wait_for("queued: it runs as the next follow-up")
        later = term.wait_for("tick 26", timeout=30)  # written after it was opened
        assert "tick 25" in later
        term.wait_for("echo: steer me", timeout=30)  # the queued follow-up ran
        term.wait_for("(no longer followed)", timeout=30)
        term.send("C-u")
        term.type("tick 6")
        term.send("Enter")
        term.wait_for(lambda s: "● running 0:0" in s and "in 100 out 50 $0.5000" in s)
        term.wait_for("done (exit 0)", timeout=30)
        term.send("C-c")
        term.send("C-c")
        assert exit_code(assert_restored(term)) == 130
    finally:
        term.close()


def test_compare_shows_a_groups_attempts_ranked(tmux: terminal.Tmux, tmp_path: Path,
                                                git_env: None) -> None:  # noqa: F811
    # Two attempts in a real repo; the TUI opens the newest session (an attempt) and
    # /compare shows its group's ranked table, as `aura compare` prints it.
    repo = make_repo(tmp_path / "repo")
    made = run_aura("run", "-e", "custom", "--attempts", "2", "--no-tui", "--base-command",
                    AGENT, "hello attempts", cwd=repo)
    assert made.returncode == 0, made.stderr
    group = made.stdout.splitlines()[0][:8]
    start(tmux, repo, aura_argv("tui", "--executor", "custom", "--base-command", AGENT))
    tmux.wait_for("○ idle")
    tmux.type("/compare")
    tmux.send("Enter")
    screen = tmux.wait_for(f"attempts of group {group}")
    assert "RANK" in screen and "CHECKS" in screen
    rows = [ln for ln in screen.splitlines() if " custom " in ln and " done " in ln]
    assert len(rows) == 2, screen
    tmux.send("Escape")
    tmux.wait_for(lambda screen: "attempts of group" not in screen)
    tmux.type("/compare nosuchgroup")
    tmux.send("Enter")
    tmux.wait_for("no comparison: no group 'nosuchgroup'")
    tmux.type("/quit")
    tmux.send("Enter")
    assert exit_code(assert_restored(tmux)) == 0
