"""The TUI without a terminal: the state a prompt turns into run options, the Queue read
from a real SQLite store, the Model pane's list, Ctrl-C's quit window, and the slash
commands (table, generated /help and footer, dispatch on a real Tui with prompt_toolkit's
dummy output)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from aura.contracts import Execution, Session
from aura.errors import NotFound
from aura.service.models import ServerModels
from aura.service.runner import RunOptions
from aura.store_sqlite import SQLiteStore, open_store
from aura.tui.commands import COMMANDS, CommandCompleter, footer_items, help_text
from aura.tui.state import NO_MODEL_LIST, QUIT_WINDOW, TuiState

# The help overlay's text: the keys, then every command of the table, aligned.
HELP = """\
keys
  Enter send · Alt-Enter newline · Esc or Ctrl-C cancel the run
  Ctrl-C twice quit · Ctrl-D on an empty prompt quit
  Tab/Shift-Tab next/previous pane (in the prompt, Tab completes a /command)
  PgUp/PgDn scroll the logs; Home/End: in the prompt the start/end of the
    line, elsewhere the top/bottom of the logs (End follows the tail)
  ? this help (on an empty prompt, or in another pane) · Esc closes it
  F2 the side panes instead of the logs (terminals under 100 columns)
  F3 the diff of the session's workspace · F9 mouse capture on/off
  keys typed in the Logs, Queue or Model pane go to the prompt
  Logs pane: ↑/↓ select an entry, Enter shows it whole (thinking, a tool
    call's input and output), Enter or Esc folds it again
  Queue pane: ↑/↓ and Enter open a session (one that runs elsewhere is
    followed live)
  Model pane: ↑/↓ choose a model, ←/→ choose an executor, Enter apply
  an approval waits: y allow once · a allow for this session · n deny
    (then a message for the agent and Enter; Esc goes back)
prompt
  /name runs a command (below) · //text sends /text as a prompt
  an unknown /word is said; Enter again sends it as a prompt
commands
  /executor NAME    run the next new session with this executor
  /model NAME       use this model from the next turn on
  /session ID       open a session (a unique id prefix is enough); sends follow it up
  /new              the next send starts a new session
  /review [on|off]  run the review stage after each turn (toggles without an argument)
  /cancel           cancel the running execution
  /interrupt [TEXT] end the turn the agent's way, keep its session; TEXT runs next
  /quit             leave (the running execution is cancelled first)
  /diff             show the diff of the session's workspace (F3)
  /compare [GROUP]  a best-of-N group's attempts ranked (the open session's group)
  /mouse            mouse capture on/off: wheel scrolling, or text selection (F9)
  /help             this text (also ?)"""


def session(sid: str, executor: str = "codex", model: str | None = None) -> Session:
    return Session(id=sid, executor=executor, state="done", cwd="/tmp",
                   created_at=f"2026-01-01T00:00:0{sid[-1]}", updated_at="", model=model)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    db = open_store(tmp_path / "aura.db")
    yield db
    db.close()


def test_help_and_footer_come_from_the_table() -> None:
    assert help_text() == HELP
    assert footer_items() == [("/executor", "NAME"), ("/model", "NAME"), ("/session", "ID"),
                              ("/new", ""), ("/review", ""), ("/cancel", ""),
                              ("/interrupt", ""), ("/quit", ""), ("/diff", ""),
                              ("/compare", ""), ("/mouse", ""), ("/help", "")]
    assert list(COMMANDS) == [name[1:] for name, _ in footer_items()]


def test_a_prompt_follows_up_the_session_unless_another_executor_was_chosen() -> None:
    state = TuiState(RunOptions(prompt="", resume_latest=True, model="m0"), "codex")
    options, follow_up = state.turn_options("first")
    assert not follow_up and options.executor == "codex" and options.session is None
    assert options.prompt == "first" and options.model == "m0" and not options.resume_latest
    assert not state.base.resume_latest
    state.adopt(session("s1", "claude", model="m1"))
    assert (state.executor, state.model) == ("claude", "m1")
    options, follow_up = state.turn_options("again")
    assert follow_up and options.session == "s1" and options.executor is None
    state.choose_executor("gemini")
    assert state.status == "the next send starts a new gemini session"
    options, follow_up = state.turn_options("elsewhere")
    assert not follow_up and options.executor == "gemini" and state.session_id is None


def test_the_first_record_names_the_new_session() -> None:
    state = TuiState(RunOptions(prompt=""), "codex")
    state.learn_session("not json")
    assert state.session_id is None
    state.learn_session('{"session": "abc", "seq": 1}')
    assert (state.session_id, state.session_executor) == ("abc", "codex")
    state.learn_session('{"session": "other"}')
    assert state.session_id == "abc"


def test_the_queue_reads_sessions_and_executions_from_the_store(store: SQLiteStore) -> None:
    for sid in ("s1", "s2", "s3"):
        store.create_session(session(sid))
    store.create_execution(Execution(id="e1", session="s2", stage="coding_initial"))
    state = TuiState(RunOptions(prompt=""), None)
    state.queue.refresh(store, "s2")
    assert [s.id for s in state.queue.sessions] == ["s3", "s2", "s1"]
    assert [e.stage for e in state.queue.executions] == ["coding_initial"]
    state.queue.move(5)
    assert state.queue.selected() == state.queue.sessions[-1]
    state.queue.move(-9)
    assert state.queue.cursor == 0
    store.close()
    state.queue.refresh(store, "s2")  # a store that cannot be read is said, not raised
    assert state.queue.error and len(state.queue.sessions) == 3


def test_the_model_pane_offers_what_discovery_found() -> None:
    state = TuiState(RunOptions(prompt="", model="b"), "lms")
    state.models.offer(ServerModels("lms", "u", ["a", "b", "c"]), state.model)
    assert state.models.selected() == "b"
    state.models.move(1)
    state.models.move(1)
    assert state.models.selected() == "c"
    state.models.reset()
    state.models.offer(None, None)
    assert state.models.note == NO_MODEL_LIST and state.models.selected() is None
    state.models.reset()
    state.models.offer(ServerModels("lms", "u", error="cannot reach it"), None)
    assert state.models.note == "cannot reach it"


def test_a_second_ctrl_c_within_the_window_quits() -> None:
    state = TuiState(RunOptions(prompt=""), None)
    now = time.monotonic()
    assert not state.interrupt(now)
    assert state.interrupt(now + QUIT_WINDOW / 2)
    assert not state.interrupt(now + 3 * QUIT_WINDOW)


def test_a_failed_turn_sets_the_exit_code() -> None:
    state = TuiState(RunOptions(prompt=""), None)
    assert state.turn_failed(NotFound("no such session")) == "aura: error: no such session"
    assert state.status == "error" and state.exit_code == NotFound.exit_code
    assert state.turn_failed(RuntimeError("boom")) == "aura crashed: RuntimeError: boom"
    assert state.exit_code == 1


def test_slash_commands_on_a_real_tui(store: SQLiteStore) -> None:
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from aura.tui.app import Tui

    store.create_session(session("s1", "claude", model="m1"))

    def logs(tui: Tui) -> str:
        return "\n".join("".join(f[1] for f in line) for _seq, line in tui.logs.lines)

    async def drive() -> None:
        with create_pipe_input() as pipe, create_app_session(input=pipe,
                                                             output=DummyOutput()):
            tui = Tui(RunOptions(prompt="", executor="codex"), store)
            tui.command("/help")
            shown = "\n".join("".join(f[1] for f in line) for line in tui.overlay.lines)
            assert tui.overlay.visible and "/session ID       open a session" in shown
            assert not list(CommandCompleter().get_completions(Document("/fr"),
                                                               CompleteEvent()))
            assert [c.text for c in CommandCompleter().get_completions(
                Document("/se"), CompleteEvent())] == ["/session"]
            assert not list(CommandCompleter().get_completions(Document("/session x"),
                                                              CompleteEvent()))
            tui.command("/frobnicate now")
            assert "unknown command /frobnicate; /help lists them" in logs(tui)
            assert not tui.send("/frobnicate now")  # said first, the text stays
            assert "Enter again sends it to the agent" in logs(tui)
            tui.command("/cancel")
            assert "nothing is running" in logs(tui)
            tui.command("/review on")
            tui.command("/model m-two")
            assert tui.state.review is True and tui.state.model == "m-two"
            tui.command("/executor nope")
            assert "unknown executor 'nope'" in logs(tui)
            tui.command("/session zzz")
            assert "zzz" in logs(tui).splitlines()[-1]
            tui.command("/session s1")
            assert (tui.state.session_id, tui.state.model) == ("s1", "m1")
            for _ in range(100):  # claude lists no models: the pane says so
                if tui.state.models.note:
                    break
                await asyncio.sleep(0.01)
            assert tui.state.models.note == NO_MODEL_LIST
            tui.command("/new")
            assert tui.state.session_id is None and tui.logs.lines == []

    asyncio.run(drive())


def test_queue_rows_count_cost_and_say_why_a_task_waits(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from aura.service import tasks
    from aura.tui.tally import Tally, age, elapsed

    first = tasks.add(store, RunOptions(prompt="first task", executor="custom"))
    second = tasks.add(store, RunOptions(prompt="after the first", executor="custom"),
                       after=(first.id,))
    def usage(seq: int, **counts: float) -> tuple[int, str, str, str]:
        body = {"seq": seq, "kind": "usage", "usage": counts}
        return (seq, "e1", "usage", json.dumps(body))

    store.append_entries(first.id, [usage(1, input_tokens=1500, output_tokens=20,
                                          cost_usd=0.25)])
    state = TuiState(RunOptions(prompt=""), None)
    state.queue.refresh(store, None)
    assert state.queue.tally(first.id).cost() == "$0.2500"
    assert state.queue.tally(second.id).cost() == "-"
    assert "dependency" in state.queue.waiting[second.id]
    store.append_entries(first.id, [usage(2, input_tokens=1)])
    state.queue.refresh(store, None)
    assert state.queue.tally(first.id).input_tokens == 1500  # a running one: not yet again
    monkeypatch.setattr("aura.tui.state.TALLY_EVERY", 0.0)
    state.queue.refresh(store, None)  # read on from the last entry counted
    tally = state.queue.tally(first.id)
    assert (tally.input_tokens, tally.tokens()) == (1501, "in 1.5k out 20")
    # A turn of this TUI streams seq 3: counted once, whether streamed or read back.
    streamed = {"seq": 3, "kind": "usage", "usage": {"input_tokens": 4}}
    state.queue.streamed(first.id, 3, [(3, streamed)], None)
    store.append_entries(first.id, [usage(3, input_tokens=4)])
    state.queue.refresh(store, None)
    assert state.queue.tally(first.id).input_tokens == 1505
    assert Tally().cost() == "-" and age("not a time") == "?" and elapsed(3725) == "1:02:05"
    state.count_usage({"kind": "usage", "usage": {"output_tokens": 7}})
    assert state.turn_usage.cost() == "$?" and state.turn_usage.output_tokens == 7


def test_the_narrow_footer_fits_80_columns_and_points_at_the_help() -> None:
    from aura.tui.panes import footer_text

    state = TuiState(RunOptions(prompt=""), "codex")
    lines = "".join(text for _style, text, *_ in footer_text(state, False, True, narrow=True)
                    ).split("\n")
    assert all(len(line) <= 80 for line in lines[:2]), lines
    assert lines[1].startswith(" /executor /model") and lines[1].endswith("? lists all")
