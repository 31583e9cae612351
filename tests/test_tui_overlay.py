"""The TUI's overlay without a terminal: a diff coloured line by line, escape sequences
in it made harmless, scrolling within the wrapped rows, and the attach poller reading a
real store until the session rests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aura.contracts import Session, State
from aura.store_sqlite import open_store
from aura.tui import attach
from aura.tui.overlay import Overlay, diff_lines

DIFF = """\
diff --git a/a.txt b/a.txt
index 1..2 100644
--- a/a.txt
+++ b/a.txt
@@ -1 +1 @@
-old
+new \x1b]52;c;Zm9v\x07
 same"""


def test_a_diff_is_coloured_and_made_safe() -> None:
    lines = diff_lines(DIFF)
    assert [line[0][0] for line in lines] == [
        "class:diff.file", "class:diff.file", "class:diff.file", "class:diff.file",
        "class:diff.hunk", "class:diff.remove", "class:diff.add", ""]
    assert diff_lines("") == [[("class:dim", "(no changes)")]]
    overlay = Overlay()
    overlay.show("diff", lines)
    assert "\x1b" not in "".join(text for line in overlay.lines for _s, text in line)


def test_the_overlay_scrolls_within_its_rows() -> None:
    overlay = Overlay()
    overlay.show("help", [[("", f"row {i}")] for i in range(30)])
    content = overlay.create_content(20, 10)
    assert content.get_line(0) == [("", "row 0")] and content.line_count == 10
    overlay.end()
    assert overlay.create_content(20, 10).get_line(9) == [("", "row 29")]
    overlay.scroll(-100)
    assert overlay.top == 0
    overlay.close()
    assert not overlay.visible


def test_attach_follows_a_store_until_the_session_rests(tmp_path: Path) -> None:
    store = open_store(tmp_path / "aura.db")
    store.create_session(Session(id="s1", executor="custom", state=State.CODING_INITIAL,
                                 cwd="/tmp", created_at="", updated_at=""))
    got: list[int] = []

    def row(seq: int) -> tuple[int, str, str, str]:
        return (seq, "e1", "raw", json.dumps({"seq": seq, "kind": "raw", "text": str(seq)}))

    async def drive() -> None:
        store.append_entries("s1", [row(1)])
        assert attach.runs_elsewhere(store, "s1")
        def emit(entries: list) -> None:
            got.extend(seq for seq, _entry in entries)

        follower = asyncio.create_task(attach.follow(store, "s1", 0, emit, poll=0.01))
        await asyncio.sleep(0.05)
        store.append_entries("s1", [row(2), row(3)])
        await asyncio.sleep(0.05)
        store.update_session("s1", state=State.DONE)
        store.append_entries("s1", [row(4)])
        await asyncio.wait_for(follower, 2)

    try:
        asyncio.run(drive())
        assert got == [1, 2, 3, 4] and not attach.runs_elsewhere(store, "s1")
    finally:
        store.close()
