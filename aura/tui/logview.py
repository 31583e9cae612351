"""The TUI's Logs pane: entries turned into styled lines, the bounded live buffer that pages
older entries back in from the store, and the wrapping of only the rows on screen.

Staying responsive under a flood (10,000 lines/s and more): the buffer keeps at most
``LIVE_LINES`` lines; older entries are paged back in when the user scrolls past the top
(the store has every entry); only the visible lines are wrapped and styled at draw time.

With the focus, the pane has a selected entry (↑/↓ move it, the view follows it); its
whole text (``full_lines``: thinking unfolded, a tool call's input and output) opens in the
overlay.

Every fragment an entry becomes passes through ``render.terminal_text``: an agent's escape
sequences (clipboard writes, titles, clear screen) are dropped, never handed to the screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.utils import get_cwidth

from aura.cli.render import format_usage, terminal_text
from aura.cli.wording import state_words
from aura.contracts import Entry

LIVE_LINES = 5000  # lines kept in memory; the rest is paged from the store
LINE_CHARS = 4000  # one logical line is cut here (the store keeps the whole text)

Line = tuple[int, StyleAndTextTuples]  # (seq of its entry, fragments)
LoadBefore = Callable[[int], list[tuple[int, Entry]]]  # (seq) -> older entries


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def entry_lines(entry: Entry, seq: int) -> list[Line]:
    """The lines one entry shows as (folded thinking, one line per tool call), their text
    terminal-safe."""
    return [(at, safe_fragments(fragments)) for at, fragments in _entry_lines(entry, seq)]


def safe_fragments(fragments: StyleAndTextTuples) -> StyleAndTextTuples:
    # The Logs pane's fragments are (style, text) pairs: no mouse handlers to carry over.
    return [(fragment[0], terminal_text(fragment[1])) for fragment in fragments]


def _entry_lines(entry: Entry, seq: int) -> list[Line]:
    kind = entry.get("kind")
    text = entry.get("text") or ""
    if kind == "assistant_message":
        return [(seq, fragments) for fragments in assistant_lines(text)]
    if kind == "user_message":
        parts = text.split("\n")
        return [(seq, [("class:user", ("› " if i == 0 else "  ") + part[:LINE_CHARS])])
                for i, part in enumerate(parts)]
    if kind == "thinking":
        count = text.count("\n") + 1
        more = f"  ({count} lines)" if count > 1 else ""
        return [(seq, [("class:thinking", f"▸ thinking: {clip(text, 120)}{more}")])]
    if kind == "tool_call":
        return [(seq, tool_fragments(entry))]
    if kind == "error":
        return [(seq, [("class:error", f" ✗ {part[:LINE_CHARS]} ")]) for part in
                (text or "error").split("\n")]
    if kind == "state":  # in words, as the plain run says it (the machine names: --json)
        return [(seq, [("class:state", f"● {state_words(entry)}")])]
    if kind == "usage":
        return [(seq, [("class:dim", f"usage: {format_usage(entry.get('usage') or {})}")])]
    if kind == "raw":
        return [(seq, [("class:raw", text[:LINE_CHARS])])]
    if kind == "system":
        return [(seq, [("class:dim", f"[{clip(text, 200)}]" if text else "[system]")])]
    if kind == "approval":
        from aura.tui.approval_bar import approval_log_line

        return [(seq, approval_log_line(entry))]
    return [(seq, [("class:dim", f"[{kind}] {clip(text, 200)}")])]


def assistant_lines(text: str) -> list[StyleAndTextTuples]:
    """An assistant message line by line; the lines of a fenced code block (between two
    ``` lines) and the fences themselves in the code style."""
    if "```" not in text:
        return [[("class:assistant", part[:LINE_CHARS])] for part in text.split("\n")]
    out: list[StyleAndTextTuples] = []
    in_code = False
    for part in text.split("\n"):
        fence = part.lstrip().startswith("```")
        style = "class:code" if in_code or fence else "class:assistant"
        out.append([(style, part[:LINE_CHARS])])
        if fence:
            in_code = not in_code
    return out


def tool_fragments(entry: Entry) -> StyleAndTextTuples:
    action = entry.get("action") or "other"
    target = entry.get("target") or entry.get("tool") or ""
    status = entry.get("status") or ""
    style = {"ok": "class:status.ok", "error": "class:status.error",
             "failed": "class:status.error"}.get(status, "class:status.running")
    return [("class:tool", "→ "), ("class:tool.action", f"{action:<10}"),
            ("class:tool.target", " " + clip(target, 160)), ("", "  "), (style, status)]


def _fit(text: str, room: int) -> int:
    """How many characters of ``text`` fit in ``room`` cells (wide characters take two)."""
    used = 0
    for i, char in enumerate(text):
        used += get_cwidth(char)
        if used > room:
            return i
    return len(text)


def wrap(fragments: StyleAndTextTuples, width: int) -> list[StyleAndTextTuples]:
    """Cut one logical line into rows of at most ``width`` cells (CJK and emoji count two),
    at a space where one is near the end of the row."""
    width = max(width, 2)  # a wide character always fits a row
    rows: list[StyleAndTextTuples] = [[]]
    used = 0
    for style, text, *_ in fragments:
        while text:
            room = width - used
            if room <= 0:
                rows.append([])
                used, room = 0, width
            fit = len(text) if text.isascii() and len(text) <= room else _fit(text, room)
            if fit >= len(text):
                rows[-1].append((style, text))
                used += get_cwidth(text)
                break
            cut = text.rfind(" ", 0, fit + 1)
            if cut < fit // 2:  # no space worth breaking at: cut the word
                cut = fit
            if cut == 0 and used == 0:
                cut = 1  # never an empty row
            if cut:
                rows[-1].append((style, text[:cut]))
            text = text[cut:].lstrip(" ") if cut else text
            used = width  # this row is full
    return rows


class LogView(UIControl):
    """The Logs pane: a bounded buffer of lines, drawn from the bottom while following
    the tail, from ``top`` once the user scrolled up."""

    def __init__(self, load_before: LoadBefore | None = None,
                 max_lines: int = LIVE_LINES) -> None:
        self.lines: list[Line] = []
        self.max_lines = max_lines
        self.follow = True
        self.top = 0  # first visible line when not following
        self.height = 10
        self.width = 80
        self.trimmed = 0  # lines dropped from the front so far (tool-call indexes use it)
        self.tool_index: dict[str, int] = {}  # tool call id → absolute line number
        self.load_before = load_before
        self.complete_history = True  # nothing older than lines[0] exists in the store
        # Streamed text (model endpoints send it in pieces marked "delta", then the whole
        # message marked "streamed"): the pieces grow one block of lines in place.
        self.stream_at: int | None = None  # absolute line number where the block starts
        self.stream_kind: str | None = None
        self.stream_text: list[str] = []
        self.streamed_kinds: set[str] = set()  # kinds shown piecewise since the last turn
        # The entry behind each seq on screen (a tool call's start and end merged, a
        # streamed message whole), for its full text; trimmed with the lines.
        self.entries: dict[int, Entry] = {}
        self.selected: int | None = None  # seq of the selected entry; None: the last shown
        self.show_selection: Callable[[], bool] = lambda: False  # the pane has the focus

    # content -------------------------------------------------------------------------

    def clear(self) -> None:
        self.lines.clear()
        self.entries.clear()
        self.selected = None
        self.tool_index.clear()
        self.trimmed = 0
        self.follow = True
        self.top = 0
        self.complete_history = True
        self.stream_at = None
        self.streamed_kinds.clear()

    def add(self, seq: int, entry: Entry) -> None:
        """Append one entry (a tool call's end replaces its start line)."""
        if entry.get("delta") or entry.get("streamed"):
            self._add_streamed(seq, entry)
        elif entry.get("kind") == "tool_call":
            call_id = entry.get("id")
            if call_id:
                at = self.tool_index.get(call_id)
                if at is not None and at - self.trimmed >= 0 and at - self.trimmed < len(
                        self.lines):
                    old = self.lines[at - self.trimmed][0]
                    self.entries[seq] = {**self.entries.pop(old, {}), **entry}
                    if self.selected == old:
                        self.selected = seq
                    self.lines[at - self.trimmed] = (seq, safe_fragments(tool_fragments(entry)))
                    return
                self.tool_index[call_id] = self.trimmed + len(self.lines)
            self.lines.append((seq, safe_fragments(tool_fragments(entry))))
            self.entries[seq] = entry
        else:
            self.lines.extend(entry_lines(entry, seq))
            self.entries[seq] = entry
        if not (entry.get("delta") or entry.get("streamed")):
            self.stream_at = None
            if entry.get("kind") == "user_message":
                self.streamed_kinds.clear()
        if len(self.lines) > self.max_lines + self.max_lines // 10:
            self._trim()

    def _add_streamed(self, seq: int, entry: Entry) -> None:
        kind = str(entry.get("kind"))
        if entry.get("streamed"):
            # The whole message: already on screen if its pieces were.
            if kind not in self.streamed_kinds:
                self.lines.extend(entry_lines(entry, seq))
                self.entries[seq] = entry
            elif self.stream_at is not None and \
                    0 <= self.stream_at - self.trimmed < len(self.lines):
                # The pieces' block (its lines carry the last piece's seq), now whole.
                self.entries[self.lines[self.stream_at - self.trimmed][0]] = entry
            self.streamed_kinds.discard(kind)
            self.stream_at = None
            return
        if self.stream_at is None or self.stream_kind != kind or self.stream_at < self.trimmed:
            self.stream_at = self.trimmed + len(self.lines)
            self.stream_kind = kind
            self.stream_text = []
            self.streamed_kinds.add(kind)
        self.stream_text.append(str(entry.get("text") or ""))
        del self.lines[self.stream_at - self.trimmed:]
        whole: Entry = {"kind": kind, "text": "".join(self.stream_text)}
        self.lines.extend(entry_lines(whole, seq))
        self.entries[seq] = whole

    def add_note(self, text: str, style: str = "class:notice") -> None:
        for part in text.split("\n"):
            self.lines.append((self.lines[-1][0] if self.lines else 0, [(style, part)]))

    def _trim(self) -> None:
        # Whole entries only, so paging an entry back in never shows half of it twice.
        cut = len(self.lines) - self.max_lines
        while cut < len(self.lines) and cut > 0 and self.lines[cut][0] == self.lines[cut - 1][0]:
            cut += 1
        del self.lines[:cut]
        self.trimmed += cut
        self.complete_history = False
        if not self.follow:
            self.top = max(0, self.top - cut)
        first = self.lines[0][0] if self.lines else 0
        self.entries = {k: v for k, v in self.entries.items() if k >= first}
        if len(self.tool_index) > 4 * self.max_lines:
            self.tool_index = {k: v for k, v in self.tool_index.items() if v >= self.trimmed}

    def set_history(self, entries: list[tuple[int, Entry]], complete: bool) -> None:
        self.clear()
        for seq, entry in entries:
            self.add(seq, entry)
        self.complete_history = complete

    def page_in(self) -> bool:
        """Load older entries from the store in front of the buffer; False at the start."""
        if self.complete_history or self.load_before is None or not self.lines:
            return False
        older = self.load_before(self.lines[0][0])
        if not older:
            self.complete_history = True
            return False
        lines = coalesce(older)
        self.lines[:0] = lines
        self.entries.update(coalesced_entries(older))
        self.trimmed -= len(lines)  # keep absolute numbers of later lines stable
        self.top += len(lines)
        return True

    # scrolling ---------------------------------------------------------------------------

    def _bottom_top(self) -> int:
        """The ``top`` that shows the tail (counting wrapped rows of the last lines)."""
        rows = 0
        index = len(self.lines)
        while index > 0:
            need = len(wrap(self.lines[index - 1][1], self.width))
            if rows + need > self.height:
                break
            rows += need
            index -= 1
        return index

    def scroll(self, lines: int) -> None:
        """Move the view by ``lines`` (negative: up). Reaching the bottom follows again."""
        if self.follow:
            self.top = self._bottom_top()
        self.top += lines
        if self.top < 0:
            if self.page_in():
                self.top = max(0, self.top)
            else:
                self.top = 0
        bottom = self._bottom_top()
        if self.top >= bottom:
            self.top = bottom
            self.follow = True
        else:
            self.follow = False

    def home(self) -> None:
        if self.follow:
            self.top = self._bottom_top()
        if self.top == 0:
            self.page_in()
        self.top = 0
        self.follow = self._bottom_top() == 0 and self.complete_history

    def end(self) -> None:
        self.follow = True

    # the selected entry ------------------------------------------------------------------

    def _shown(self) -> tuple[int, int]:
        """The first and last line (indexes into ``lines``) on screen, wholly or in part."""
        first = self._bottom_top() if self.follow else self.top
        rows, index = 0, first
        while index < len(self.lines) and rows < self.height:
            rows += len(wrap(self.lines[index][1], self.width))
            index += 1
        return first, max(first, index - 1)

    def current(self) -> int | None:
        """The seq of the selected entry: the one chosen while it is on screen, else the
        last on screen (after PgUp/PgDn the selection starts again from the view)."""
        if not self.lines:
            return None
        first, last = self._shown()
        if self.selected is not None and self.selected in self.entries:
            start, end = self._span(self.selected)
            if self.lines[start][0] == self.selected and start <= last and end >= first:
                return self.selected
        return self.lines[last][0]

    def _span(self, seq: int) -> tuple[int, int]:
        """The first and last line of the entry ``seq``."""
        at = [i for i, (line_seq, _) in enumerate(self.lines) if line_seq == seq]
        return (at[0], at[-1]) if at else (0, 0)

    def select(self, step: int) -> None:
        """Move the selection ``step`` entries (negative: up), paging older ones in at the
        top, and scroll so that the selected entry is on screen."""
        seq = self.current()
        if seq is None:
            return
        seqs = list(dict.fromkeys(line_seq for line_seq, _ in self.lines))
        index = seqs.index(seq) + step if seq in seqs else len(seqs) - 1
        if index < 0 and self.page_in():
            seqs = list(dict.fromkeys(line_seq for line_seq, _ in self.lines))
            index = seqs.index(seq) + step
        self.selected = seqs[max(0, min(index, len(seqs) - 1))]
        self._reveal(*self._span(self.selected))

    def _reveal(self, start: int, end: int) -> None:
        first, last = self._shown()
        if start < first:
            self.follow, self.top = False, start
        elif end > last and not self.follow:
            bottom = self._bottom_top()
            self.top = min(bottom, first + (end - last))
            while self.top < bottom and self._shown()[1] < end:
                self.top += 1
            self.follow = self.top >= bottom

    def selected_entry(self) -> Entry | None:
        seq = self.current()
        return self.entries.get(seq) if seq is not None else None

    # drawing -----------------------------------------------------------------------------

    def rows(self, width: int, height: int) -> list[StyleAndTextTuples]:
        self.width, self.height = width, height
        mark = self.current() if self.show_selection() else None
        out: list[StyleAndTextTuples] = []
        if self.follow:
            index = len(self.lines)
            while index > 0 and len(out) < height:
                index -= 1
                out[:0] = self._wrapped(index, mark)
            return out[-height:] if len(out) > height else out
        index = self.top
        while index < len(self.lines) and len(out) < height:
            out.extend(self._wrapped(index, mark))
            index += 1
        return out[:height]

    def _wrapped(self, index: int, mark: int | None) -> list[StyleAndTextTuples]:
        seq, fragments = self.lines[index]
        rows = wrap(fragments, self.width)
        if seq != mark:
            return rows
        return [[("class:log.selected " + style, text) for style, text, *_ in row]
                for row in rows]

    def create_content(self, width: int, height: int) -> UIContent:
        rows = self.rows(width, height)
        return UIContent(get_line=lambda i: rows[i] if i < len(rows) else [],
                         line_count=len(rows), show_cursor=False)

    def is_focusable(self) -> bool:
        return True

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        return wheel(mouse_event, self.scroll)


def coalesced_entries(entries: list[tuple[int, Entry]]) -> dict[int, Entry]:
    """The entry behind each seq ``coalesce`` shows: a tool call's entries merged."""
    out: dict[int, Entry] = {}
    calls: dict[str, Entry] = {}
    for seq, entry in entries:
        if entry.get("delta"):
            continue
        call_id = entry.get("id") if entry.get("kind") == "tool_call" else None
        if call_id:
            entry = calls[str(call_id)] = {**calls.get(str(call_id), {}), **entry}
        out[seq] = entry
    return out


def full_lines(entry: Entry) -> list[StyleAndTextTuples]:
    """The whole of one entry, for the overlay: thinking unfolded, a tool call's target,
    input and whole output, any message every line of it."""
    kind = entry.get("kind")
    text = str(entry.get("text") or "")
    if kind == "tool_call":
        out: list[StyleAndTextTuples] = [tool_fragments(entry)]
        if entry.get("tool"):
            out.append([("class:dim", "tool: "), ("", str(entry["tool"]))])
        out += _section("target", str(entry.get("target") or ""))
        data = entry.get("data")
        if data:
            out += _section("input", data if isinstance(data, str) else
                            json.dumps(data, indent=2, ensure_ascii=False, default=str))
        out += _section("output", str(entry.get("output") or ""))
        return out
    style = {"thinking": "class:thinking", "user_message": "class:user",
             "error": "class:error", "raw": "class:raw"}.get(str(kind), "")
    if not text:
        shown = {k: v for k, v in entry.items() if k not in ("session", "execution")}
        text = json.dumps(shown, indent=2, ensure_ascii=False, default=str)
    return [[(style, part.expandtabs(4))] for part in text.split("\n")]


def _section(name: str, text: str) -> list[StyleAndTextTuples]:
    if not text:
        return []
    out: list[StyleAndTextTuples] = [[("class:dim", f"{name}:")]]
    out += [[("", "  " + part.expandtabs(4))] for part in text.split("\n")]
    return out


def coalesce(entries: list[tuple[int, Entry]]) -> list[Line]:
    """Lines for a page of stored entries: a tool call shows once, with its last status."""
    last: dict[str, int] = {}
    for seq, entry in entries:
        if entry.get("kind") == "tool_call" and entry.get("id"):
            last[str(entry["id"])] = seq
    lines: list[Line] = []
    for seq, entry in entries:
        if entry.get("delta"):
            continue  # a streamed piece; the whole message follows it
        call_id = entry.get("id") if entry.get("kind") == "tool_call" else None
        if call_id and last.get(str(call_id)) != seq:
            continue
        lines.extend(entry_lines(entry, seq))
    return lines


def wheel(mouse_event: MouseEvent, scroll: Callable[[int], None]) -> Any:
    """The mouse wheel scrolls three rows; other mouse events are not handled here."""
    if mouse_event.event_type == MouseEventType.SCROLL_UP:
        scroll(-3)
        return None
    if mouse_event.event_type == MouseEventType.SCROLL_DOWN:
        scroll(3)
        return None
    return NotImplemented
