"""The TUI's Logs pane with streamed text (model endpoints): the pieces grow one block in
place, the whole message that follows them is not shown twice, and history pages read
from the store skip the pieces."""

from __future__ import annotations

from aura.tui.logview import LogView, coalesce


def texts(view: LogView) -> list[str]:
    return ["".join(fragment[1] for fragment in line) for _seq, line in view.lines]


def test_pieces_grow_one_block_and_the_whole_message_is_not_repeated() -> None:
    view = LogView()
    view.add(1, {"kind": "user_message", "text": "hi"})
    view.add(2, {"kind": "thinking", "delta": True, "text": "let me"})
    view.add(3, {"kind": "thinking", "delta": True, "text": " think"})
    view.add(4, {"kind": "assistant_message", "delta": True, "text": "Hello "})
    view.add(5, {"kind": "assistant_message", "delta": True, "text": "there\nsecond "})
    view.add(6, {"kind": "assistant_message", "delta": True, "text": "line"})
    assert texts(view) == ["› hi", "▸ thinking: let me think", "Hello there", "second line"]
    view.add(7, {"kind": "thinking", "streamed": True, "text": "let me think"})
    view.add(8, {"kind": "assistant_message", "streamed": True,
                 "text": "Hello there\nsecond line"})
    view.add(9, {"kind": "usage", "usage": {"input_tokens": 1, "output_tokens": 2}})
    assert texts(view) == ["› hi", "▸ thinking: let me think", "Hello there", "second line",
                           "usage: in 1 out 2"]
    # The next turn streams a new block.
    view.add(10, {"kind": "user_message", "text": "more"})
    view.add(11, {"kind": "assistant_message", "delta": True, "text": "Sure"})
    view.add(12, {"kind": "assistant_message", "streamed": True, "text": "Sure"})
    assert texts(view)[-2:] == ["› more", "Sure"]


def test_history_pages_skip_the_pieces() -> None:
    entries = [
        (1, {"kind": "user_message", "text": "hi"}),
        (2, {"kind": "assistant_message", "delta": True, "text": "Hel"}),
        (3, {"kind": "assistant_message", "delta": True, "text": "lo"}),
        (4, {"kind": "assistant_message", "streamed": True, "text": "Hello"}),
    ]
    lines = coalesce(entries)
    assert ["".join(f[1] for f in line) for _seq, line in lines] == ["› hi", "Hello"]
    view = LogView()
    view.set_history(entries, complete=True)
    assert texts(view) == ["› hi", "Hello"]
