"""The Logs pane's buffer without a terminal: wrapping, one line per tool call, the bounded
buffer, paging older entries back in, scrolling and following the tail, the selected
entry and its whole text."""

from __future__ import annotations

from aura.tui.logview import LogView, coalesce, entry_lines, full_lines, wrap


def text_of(row: list) -> str:
    return "".join(fragment[1] for fragment in row)


def say(text: str) -> dict:
    return {"kind": "assistant_message", "text": text}


def test_wrap_breaks_at_spaces_and_cuts_long_words() -> None:
    rows = [text_of(r) for r in wrap([("", "alpha beta gamma delta")], 11)]
    assert rows == ["alpha beta", "gamma delta"]
    rows = [text_of(r) for r in wrap([("", "x" * 25)], 10)]
    assert rows == ["x" * 10, "x" * 10, "x" * 5]
    styled = wrap([("class:a", "→ "), ("class:b", "file_edit  some/long/path.py")], 12)
    assert all(len(text_of(r)) <= 12 for r in styled)
    assert "".join(text_of(r) for r in styled).replace(" ", "") == \
        "→file_editsome/long/path.py"


def test_a_tool_call_is_one_line_with_its_last_status() -> None:
    view = LogView()
    call = {"kind": "tool_call", "id": "c1", "action": "command", "target": "make test"}
    view.add(1, {**call, "status": "running"})
    view.add(2, say("working"))
    view.add(3, {**call, "status": "error"})
    assert [text_of(line) for _seq, line in view.lines] == ["→ command    make test  error",
                                                            "working"]


def test_thinking_is_folded_and_errors_stand_out() -> None:
    (line,) = entry_lines({"kind": "thinking", "text": "a\nb\nc"}, 1)
    assert text_of(line[1]) == "▸ thinking: a b c  (3 lines)"
    (error,) = entry_lines({"kind": "error", "text": "boom"}, 2)
    assert error[1][0][0] == "class:error"


def test_the_buffer_is_bounded_and_pages_older_entries_back_in() -> None:
    stored = [(seq, say(f"line {seq}")) for seq in range(1, 1001)]

    def load_before(seq: int) -> list:
        return [item for item in stored if seq - 100 <= item[0] < seq]

    view = LogView(load_before=load_before, max_lines=200)
    for seq, entry in stored:
        view.add(seq, entry)
    assert len(view.lines) <= 220
    assert view.lines[-1][0] == 1000
    view.width, view.height = 40, 10
    view.home()  # the top of the buffer, plus one page from the store
    first = view.lines[0][0]
    assert first < 1000 - 200
    for _ in range(20):
        view.home()
    assert view.lines[0][0] == 1
    assert text_of(view.rows(40, 10)[0]) == "line 1"
    assert view.follow is False
    view.end()
    assert text_of(view.rows(40, 10)[-1]) == "line 1000"


def test_scrolling_up_stops_following_and_reaching_the_bottom_follows_again() -> None:
    view = LogView()
    for seq in range(1, 101):
        view.add(seq, say(f"line {seq}"))
    view.rows(40, 10)
    view.scroll(-5)
    assert view.follow is False
    assert text_of(view.rows(40, 10)[-1]) == "line 95"
    view.add(101, say("line 101"))  # new entries do not move a scrolled view
    assert text_of(view.rows(40, 10)[-1]) == "line 95"
    view.scroll(100)
    assert view.follow is True
    assert text_of(view.rows(40, 10)[-1]) == "line 101"


def test_coalesce_shows_each_stored_tool_call_once() -> None:
    entries = [(1, {"kind": "tool_call", "id": "a", "action": "file_read", "target": "x",
                    "status": "running"}),
               (2, say("hi")),
               (3, {"kind": "tool_call", "id": "a", "action": "file_read", "target": "x",
                    "status": "ok"})]
    assert [text_of(line) for _seq, line in coalesce(entries)] == \
        ["hi", "→ file_read  x  ok"]


def test_wide_characters_wrap_by_display_width() -> None:
    from prompt_toolkit.utils import get_cwidth

    rows = [text_of(r) for r in wrap([("", "漢" * 150 + " END")], 78)]
    assert "".join(rows).replace(" ", "") == "漢" * 150 + "END"  # nothing cut
    assert all(get_cwidth(r) <= 78 for r in rows) and rows[-1].endswith("END")
    assert len(rows) == 4  # 300 cells and the word: four rows of 78, not two of 78 chars
    emoji = [text_of(r) for r in wrap([("a", "ab"), ("b", "🙂" * 5)], 5)]
    assert all(get_cwidth(r) <= 5 for r in emoji) and "".join(emoji) == "ab" + "🙂" * 5


def test_fenced_code_in_assistant_messages_has_the_code_style() -> None:
    lines = entry_lines(say("before\n```py\nx = 1\n```\nafter"), 1)
    assert [line[1][0][0] for line in lines] == [
        "class:assistant", "class:code", "class:code", "class:code", "class:assistant"]


def selected_rows(view: LogView) -> list[str]:
    return [text_of(row) for row in view.rows(40, 6)
            if row and row[0][0].startswith("class:log.selected")]


def test_the_selected_entry_moves_scrolls_into_view_and_shows_whole() -> None:
    view = LogView()
    view.show_selection = lambda: True
    view.add(1, {"kind": "thinking", "text": "first step\nsecond step\nthird step"})
    call = {"kind": "tool_call", "id": "c1", "action": "command", "target": "make test"}
    view.add(2, {**call, "status": "running", "data": {"command": "make test -j2"}})
    view.add(3, {**call, "status": "error", "output": "compiling\nFAILED: test_x"})
    for seq in range(4, 14):
        view.add(seq, say(f"line {seq}"))
    assert selected_rows(view) == ["line 13"]  # nothing chosen: the last entry on screen
    view.select(-1)
    assert selected_rows(view) == ["line 12"] and view.follow is True
    for _ in range(9):
        view.select(-1)  # past the top of the view: it scrolls up to keep it shown
    assert view.current() == 3  # the tool call, under its end's seq
    assert selected_rows(view) == ["→ command    make test  error"]
    assert view.follow is False
    assert [text_of(line) for line in full_lines(view.selected_entry() or {})] == [
        "→ command    make test  error", "target:", "  make test", "input:", "  {",
        '    "command": "make test -j2"', "  }", "output:", "  compiling", "  FAILED: test_x"]
    view.select(-5)  # stops at the first entry
    assert view.current() == 1 and view.top == 0
    assert selected_rows(view)[0].startswith("▸ thinking: first step")
    assert [text_of(line) for line in full_lines(view.selected_entry() or {})] == [
        "first step", "second step", "third step"]
    for _ in range(20):
        view.select(1)  # down to the last entry: the view follows the tail again
    assert view.current() == 13 and view.follow is True
    assert text_of(view.rows(40, 6)[-1]) == "line 13"
    view.show_selection = lambda: False  # without the focus nothing is marked
    assert selected_rows(view) == []


def test_a_streamed_message_and_paged_in_entries_show_whole() -> None:
    view = LogView(load_before=lambda seq: [(1, {"kind": "thinking", "text": "old\nidea"})])
    view.complete_history = False
    view.add(2, {"kind": "assistant_message", "text": "Hel", "delta": True})
    view.add(3, {"kind": "assistant_message", "text": "lo\nthere", "delta": True})
    view.add(4, {"kind": "assistant_message", "text": "Hello\nthere", "streamed": True,
                 "model": "m1"})
    view.rows(40, 6)
    view.select(0)
    assert (view.selected_entry() or {}).get("model") == "m1"  # the whole message's entry
    assert [text_of(line) for line in full_lines(view.selected_entry() or {})] == [
        "Hello", "there"]
    view.select(-1)  # the page before the buffer is read in from the store
    assert view.current() == 1
    assert [text_of(line) for line in full_lines(view.selected_entry() or {})] == [
        "old", "idea"]


def test_state_entries_read_as_words_not_machine_names() -> None:
    def said(**entry: object) -> str:
        ((_seq, fragments),) = entry_lines({"kind": "state", **entry}, 1)
        return "".join(text for _style, text, *_ in fragments)

    assert said(**{"from": "queued", "to": "coding_initial"}) == "● running"
    assert said(**{"from": "coding_initial", "to": "failed", "exit_code": 3}) == \
        "● failed (exit 3)"
    assert said(**{"to": "cancelled", "reason": "interrupted by the user"}) == \
        "● cancelled: interrupted by the user"
    assert said(to="review") == "● waiting for review"
    assert said(to="done") == "● done"
