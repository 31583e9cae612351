"""The TUI's overlay: one box over the panes for text to read, not to follow — the help
(keys and slash commands, from the command table) and the diff of the open session's
workspace, coloured. Esc closes it; ↑/↓, PgUp/PgDn, Home/End scroll it.
"""

from __future__ import annotations

from typing import Any

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent

from aura.cli.render import terminal_text
from aura.tui.logview import wheel, wrap


class Overlay(UIControl):
    """What the box shows (a title and lines), where it is scrolled to, and whether it is
    open."""

    def __init__(self) -> None:
        self.title = ""
        self.lines: list[StyleAndTextTuples] = []
        self.visible = False
        self.top = 0  # first visible row
        self.height = 10
        self.rows_count = 0
        self._rows: tuple[int, list[StyleAndTextTuples]] | None = None  # (width, rows)

    def show(self, title: str, lines: list[StyleAndTextTuples]) -> None:
        self.title = title
        self.lines = [[(style, terminal_text(text)) for style, text, *_ in line]
                      for line in lines]
        self.top = 0
        self.visible = True
        self._rows = None

    def close(self) -> None:
        self.visible = False

    def scroll(self, rows: int) -> None:
        self.top = max(0, min(self.top + rows, self.rows_count - self.height))

    def home(self) -> None:
        self.top = 0

    def end(self) -> None:
        self.top = max(0, self.rows_count - self.height)

    def create_content(self, width: int, height: int) -> UIContent:
        if self._rows is None or self._rows[0] != width:  # wrapped once per width
            wrapped: list[StyleAndTextTuples] = []
            for line in self.lines:
                wrapped.extend(wrap(line, width))
            self._rows = (width, wrapped)
        rows = self._rows[1]
        self.height, self.rows_count = height, len(rows)
        self.top = max(0, min(self.top, len(rows) - height))
        shown = rows[self.top:self.top + height]
        return UIContent(get_line=lambda i: shown[i] if i < len(shown) else [],
                         line_count=len(shown), show_cursor=False)

    def is_focusable(self) -> bool:
        return False

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        return wheel(mouse_event, self.scroll)


def diff_lines(text: str) -> list[StyleAndTextTuples]:
    """``git diff`` output coloured line by line: added, removed, hunk heads, file heads."""
    out: list[StyleAndTextTuples] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---", "diff --git", "index ")):
            style = "class:diff.file"
        elif line.startswith("+"):
            style = "class:diff.add"
        elif line.startswith("-"):
            style = "class:diff.remove"
        elif line.startswith("@@"):
            style = "class:diff.hunk"
        else:
            style = ""
        out.append([(style, line.expandtabs(4))])
    return out or [[("class:dim", "(no changes)")]]
