"""Agent text written to a terminal: every control sequence an agent could use to act on
the user's terminal (OSC 0 title, OSC 52 clipboard write, OSC 8 hyperlinks, clear screen,
reset, cursor moves, C1 controls, a lone carriage return, bidi overrides) is dropped by
the --no-tui printer, `session show`'s renderer and the TUI's Logs pane; the text around
them stays."""

from __future__ import annotations

import io

import pytest

from aura.cli.render import Painter, StreamPrinter, format_entry, terminal_text
from aura.tui.logview import LogView, entry_lines

from .fuzz_support import TERMINAL_ATTACK, terminal_safe

SEQUENCES = {
    "osc 0 title": "\x1b]0;PWNED\x07",
    "osc 52 clipboard": "\x1b]52;c;aGVsbG8=\x07",
    "osc 52 with ST": "\x1b]52;c;aGVsbG8=\x1b\\",
    "osc 8 hyperlink": "\x1b]8;;http://evil/\x1b\\",
    "clear screen": "\x1b[2J",
    "cursor home": "\x1b[H",
    "full reset": "\x1bc",
    "colour": "\x1b[31;1m",
    "dcs": "\x1bP+q544e\x1b\\",
    "c1 csi": "\x9b2J",
    "c1 osc": "\x9d0;t\x07",
    "carriage return": "\r",
    "backspace": "\x08",
    "bell": "\x07",
    "bidi override": "\u202e",
    "unterminated osc": "\x1b]0;title to the end",
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_terminal_text_drops_the_sequence_and_keeps_the_text(name: str) -> None:
    shown = terminal_text(f"before{SEQUENCES[name]}after")
    terminal_safe(shown, painted=False)
    assert shown.startswith("before")
    if name != "unterminated osc":
        assert shown.endswith("after")


def test_text_without_controls_is_unchanged() -> None:
    for text in ("plain", "tab\tand\nnewline", "ünïcødé → ✓", ""):
        assert terminal_text(text) == text
    assert terminal_text("lone \ud800 surrogate") == "lone \ufffd surrogate"


ENTRIES = [
    {"kind": "assistant_message", "text": TERMINAL_ATTACK},
    {"kind": "thinking", "text": TERMINAL_ATTACK},
    {"kind": "user_message", "text": TERMINAL_ATTACK},
    {"kind": "raw", "stream": "stderr", "text": TERMINAL_ATTACK},
    {"kind": "error", "text": TERMINAL_ATTACK},
    {"kind": "system", "text": TERMINAL_ATTACK},
    {"kind": "tool_call", "action": TERMINAL_ATTACK, "target": TERMINAL_ATTACK,
     "tool": "x", "status": TERMINAL_ATTACK},
    {"kind": "state", "from": TERMINAL_ATTACK, "to": TERMINAL_ATTACK,
     "reason": TERMINAL_ATTACK},
    {"kind": "state", "from": "coding_initial", "to": "cancelled",
     "reason": TERMINAL_ATTACK},
    {"kind": "tool_call", "action": "command", "target": "make", "status": "error",
     "output": TERMINAL_ATTACK},
    {"kind": "system", "text": "r", "data": {"type": "review", "skipped": TERMINAL_ATTACK}},
    {"kind": "user_message", "stage": "review", "session": TERMINAL_ATTACK,
     "text": TERMINAL_ATTACK},
    {"kind": "system", "text": "c", "data": {"type": "changes", "name": TERMINAL_ATTACK,
                                             "files": [{"path": TERMINAL_ATTACK}],
                                             "commits": [{"sha": "1", "subject":
                                                          TERMINAL_ATTACK}],
                                             "uncommitted": [{"path": TERMINAL_ATTACK}]}},
]


@pytest.mark.parametrize("painted", [False, True])
def test_session_show_renderer_is_terminal_safe(painted: bool) -> None:
    for entry in ENTRIES:
        shown = format_entry(entry, Painter(painted))  # type: ignore[arg-type]
        assert shown is not None
        terminal_safe(shown[0], painted)
        assert "link" in shown[0] or entry["kind"] in ("tool_call", "user_message")


def test_stream_printer_is_terminal_safe_for_whole_and_streamed_text() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = StreamPrinter(out, err)
    streamed = [{"kind": "assistant_message", "text": part, "delta": True}
                for part in ("\x1b]52;c;", "aGk=\x07", "\x1b[2Jtext")]
    printer([(i, entry, "") for i, entry in enumerate([*ENTRIES, *streamed])])
    terminal_safe(out.getvalue() + err.getvalue(), painted=False)
    assert "text" in out.getvalue()


def test_tui_log_lines_are_terminal_safe() -> None:
    view = LogView()
    for seq, entry in enumerate(ENTRIES):
        for _seq, fragments in entry_lines(entry, seq):  # type: ignore[arg-type]
            for _style, text, *_ in fragments:
                terminal_safe(text, painted=False)
        view.add(seq, entry)  # type: ignore[arg-type]
    for row in view.rows(80, 200):
        for _style, text, *_ in row:
            terminal_safe(text, painted=False)
