"""Entries and sessions as text for people (the --no-tui stream, `session show|list`), and
the two shapes every listing command prints: aligned tables and JSON.

Data (what the agent said and did) goes to stdout; diagnostics (state changes, the agent's
stderr) to stderr. Colours follow NO_COLOR and whether the stream is a terminal.

Agent text never reaches the terminal as it came: ``terminal_text`` drops every control
sequence and control character in it (an OSC 52 clipboard write, a window title, clear
screen, hyperlinks, cursor moves; colours too: aura paints its own), so what an agent
printed cannot act on the user's terminal. The JSON outputs keep the exact text; they are
strict JSON (``json_text``: no NaN or Infinity, lone surrogates escaped).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from aura.cli.wording import Story, verdict_words
from aura.contracts import Entry
from aura.recorder import json_safe

_STYLES = {"dim": "2", "bold": "1", "red": "31", "green": "32", "yellow": "33",
           "cyan": "36", "magenta": "35"}


# What a terminal would act on rather than show: OSC (title, clipboard, hyperlinks…) to its
# terminator, DCS/SOS/PM/APC strings, CSI sequences, any other escape, C0 controls but tab
# and newline (a lone carriage return rewrites the line), DEL, C1 controls (0x9b and 0x9d
# are CSI and OSC on their own), and the bidirectional overrides that reorder what is
# shown. Lone surrogates cannot be written to a UTF-8 terminal at all.
_CONTROLS = re.compile(
    r"\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[P_^X][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_SESSION_ID = re.compile(r'"session":"([0-9a-f-]{8,64})"')


def terminal_text(text: str) -> str:
    """``text`` (an agent's, or anything it could have set) safe to write to a terminal:
    control sequences and characters removed, lone surrogates shown as U+FFFD."""
    if text.isascii():
        if text.isprintable():
            return text
        return _CONTROLS.sub("", text)
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def use_color(stream: IO[str]) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Painter:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _figure(value: Any, spec: str = "") -> str:
    """A usage figure as text; '?' for anything that is not a finite number (a stored
    session may hold what an older aura let through: Infinity, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)):
        return "?"
    try:
        return format(value, spec) if spec else str(int(value))
    except OverflowError:  # an int too large for a float format (10**400)
        return str(value)


def format_usage(usage: Any) -> str:
    if not isinstance(usage, dict):
        return "-"
    parts = []
    if "input_tokens" in usage:
        parts.append(f"in {_figure(usage['input_tokens'])}")
    if "output_tokens" in usage:
        parts.append(f"out {_figure(usage['output_tokens'])}")
    if usage.get("cached_input_tokens"):
        parts.append(f"cached {_figure(usage['cached_input_tokens'])}")
    if usage.get("cost_usd"):
        parts.append(f"${_figure(usage['cost_usd'], '.4f')}")
    if "premium_requests" in usage:  # copilot counts these instead of dollars
        parts.append(f"premium requests {_figure(usage['premium_requests'], 'g')}")
    return " ".join(parts) or "-"


def _field(entry: Entry, key: str) -> str:
    """One of an entry's fields as terminal-safe text ('' when absent)."""
    value = entry.get(key)
    return terminal_text(value if isinstance(value, str) else str(value or ""))


TAIL_LINES = 5  # lines of a failed tool call's output shown under it


def format_entry(entry: Entry, paint: Painter, story: Story | None = None,
                 verbose: bool = False) -> tuple[str, bool] | None:
    """(text, to_stderr) for one entry, or None when it shows nothing. Every field of the
    entry goes through ``terminal_text`` before aura paints it. ``story`` follows the
    turn (for "done in 12 s" and the verdict); ``verbose`` shows every entry whole."""
    kind = _field(entry, "kind")
    text = _field(entry, "text")
    if entry.get("delta"):
        return None  # a streamed piece: the whole message follows it
    if kind == "assistant_message":
        return text, False
    if kind == "user_message":
        if (story or Story()).stage_of(entry) == "review" and not verbose:
            session = str(entry.get("session") or (story.session if story else ""))
            return paint(review_prompt_line(text, session), "dim"), True
        return paint(f"> {text}", "bold"), False
    if kind == "thinking":
        return paint(f"· {text if verbose else _clip(text, 160)}", "dim"), False
    if kind == "tool_call":
        return format_tool_call(entry, paint, verbose), False
    if kind == "error":
        return paint(f"error: {text}", "red", "bold"), True
    if kind == "usage":
        return paint(f"usage: {format_usage(entry.get('usage') or {})}", "dim"), True
    if kind == "state":
        words, styles = (story or Story()).move(entry)
        return paint(f"[aura] {terminal_text(words)}", *styles), True
    if kind == "raw":
        return paint(text, "dim"), True
    if kind == "approval":
        return format_approval(entry.get("data") or {}, paint), False
    if kind == "system":
        data = entry.get("data")
        if isinstance(data, dict) and data.get("type") == "changes":
            return format_changes(data, paint), True
        if isinstance(data, dict) and data.get("type") == "review":
            if story is not None:
                story.verdict = data.get("verdict") if isinstance(data.get("verdict"),
                                                                  str) else None
            words, styles = verdict_words(data)
            wrote = " (the reviewer wrote to the workspace)" if "wrote to" in text else ""
            return paint(terminal_text(f"[{words}{wrote}]"), *styles), True
        return paint(f"[{text}]" if text else "[system]", "dim"), True
    return paint(f"[{kind}] {text}", "dim"), True


def format_tool_call(entry: Entry, paint: Painter, verbose: bool = False) -> str:
    """``→ action target status``; under a failed call the last lines of its output
    (dimmed, indented), under every call its whole output when ``verbose``."""
    action = _field(entry, "action") or "other"
    target = _field(entry, "target") or _field(entry, "tool")
    status = _field(entry, "status")
    color = {"ok": "green", "error": "red", "failed": "red"}.get(status, "yellow")
    line = f"→ {action} {target if verbose else _clip(target, 120)}"
    head = paint(line, "cyan") + (" " + paint(status, color) if status else "")
    output = _field(entry, "output").rstrip("\n")
    if not output or not (verbose or status in ("error", "failed")):
        return head
    lines = output.splitlines()
    shown = lines if verbose else lines[-TAIL_LINES:]
    cut = [] if len(shown) == len(lines) else [f"… {len(lines) - len(shown)} more lines"]
    return "\n".join([head, *(paint(f"    {part}", "dim")
                              for part in [*cut, *shown])])


def review_prompt_line(text: str, session: str) -> str:
    """The review prompt (boilerplate and the whole diff) folded to one line."""
    lines = text.count("\n") + 1
    files = sum(1 for part in text.splitlines() if part.startswith("diff --git "))
    which = session[:8] if re.fullmatch(r"[0-9a-f-]{8,64}", session) else "ID"
    return (f"[review prompt ({lines:,} line{'s' * (lines != 1)}, diff of {files} "
            f"file{'s' * (files != 1)}) — `aura session show {which} --verbose` to see it]")


def format_approval(data: dict[str, Any], paint: Painter) -> str:
    """An approval entry: the request with what it is about, or its outcome and by whom."""
    short = str(data.get("id", ""))[:8]
    state = data.get("state")
    if state == "pending":
        head = paint(f"? approval {short} ({data.get('kind')}): {data.get('title')}",
                     "yellow", "bold")
        return "\n".join([head, *approval_detail(data)])
    mark, color = {"allowed": ("✓", "green"), "denied": ("✗", "red"),
                   "expired": ("✗", "red"), "lost": ("∅", "yellow")}.get(str(state),
                                                                       ("?", "yellow"))
    how = " for this session" if data.get("choice") == "allow_session" and \
        state == "allowed" else ""
    said = f": {data['message']}" if data.get("message") else ""
    return paint(f"{mark} approval {short} {state}{how} by {data.get('by') or '?'}{said}",
                 color)


def approval_detail(data: dict[str, Any], diff_lines: int = 20) -> list[str]:
    """What a request is about, as indented lines: the command and where, the paths and
    the start of the diff, or the tool's input."""
    detail = data.get("detail") or {}
    if not isinstance(detail, dict):
        return []
    lines = []
    command = detail.get("command")
    if command:
        shown = command if isinstance(command, str) else " ".join(map(str, command))
        lines.append(f"    $ {shown}")
    if detail.get("cwd"):
        lines.append(f"    in {detail['cwd']}")
    paths = detail.get("paths") or ([detail["path"]] if detail.get("path") else [])
    if paths:
        lines.append("    " + ", ".join(map(str, paths[:10])) +
                     (f" … +{len(paths) - 10}" if len(paths) > 10 else ""))
    diff = str(detail.get("diff") or "").splitlines()
    lines += [f"    {line}" for line in diff[:diff_lines]]
    if len(diff) > diff_lines:
        lines.append(f"    … {len(diff) - diff_lines} more lines")
    if detail.get("tool") and not (command or paths):
        lines.append(f"    {detail['tool']} {_clip(json.dumps(detail.get('input', {})), 200)}")
    return lines


def format_changes(change: dict[str, Any], paint: Painter, limit: int = 50) -> str:
    """What the agent changed in one repo: a summary line, then files, commits and what
    is left uncommitted."""
    files = change.get("files") or []
    commits = change.get("commits") or []
    uncommitted = change.get("uncommitted") or []
    branch = change.get("branch") or change.get("base_name") or ""
    # Paths and commit subjects are the agent's doing: shown through terminal_text too.
    head = terminal_text(f"[changes] {change.get('name') or change.get('repo')} ({branch}): "
                         f"{len(files)} file{'s' * (len(files) != 1)}, "
                         f"+{change.get('insertions', 0)} -{change.get('deletions', 0)}, "
                         f"{len(commits)} commit{'s' * (len(commits) != 1)}, "
                         f"{len(uncommitted)} uncommitted")
    lines = [paint(head, "bold")]
    for item in files[:limit]:
        extra = " (binary)" if item.get("binary") else \
            f" +{item.get('insertions', 0)} -{item.get('deletions', 0)}"
        lines.append(f"    {item.get('status', 'M')} {item.get('path')}{extra}")
    if len(files) > limit:
        lines.append(f"    … {len(files) - limit} more files")
    for commit in commits[:limit]:
        lines.append(f"    commit {str(commit.get('sha', ''))[:10]} {commit.get('subject', '')}")
    if uncommitted:
        shown = ", ".join(str(u.get("path")) for u in uncommitted[:10])
        more = f" … +{len(uncommitted) - 10}" if len(uncommitted) > 10 else ""
        lines.append(f"    uncommitted: {shown}{more}")
    return "\n".join([lines[0], *(terminal_text(line) for line in lines[1:])])


class Ticker:
    """The one-line progress of a plain run on a terminal's stderr (elapsed time, tokens,
    cost), redrawn in place at most every ``interval`` seconds and cleared before any
    other line is printed."""

    CLEAR = "\r\x1b[K"

    def __init__(self, err: IO[str], interval: float = 0.25) -> None:
        import time

        self.err = err
        self.interval = interval
        self.started = time.monotonic()
        self.usage: dict[str, float] = {}
        self.shown = False
        self.paused = False  # a prompt owns the terminal (an approval is asked)
        self._drawn_at = 0.0

    def add(self, entry: Entry) -> None:
        usage = entry.get("usage")
        if isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                        math.isfinite(value):
                    self.usage[key] = self.usage.get(key, 0) + value

    def line(self) -> str:
        import time

        tokens = int(self.usage.get("input_tokens", 0) + self.usage.get("output_tokens", 0))
        cost = self.usage.get("cost_usd")
        return (f"[aura] running {format_duration(time.monotonic() - self.started)}"
                f" · {tokens} tokens" + (f" · ${cost:.4f}" if cost else ""))

    def clear(self) -> None:
        if self.shown:
            self.err.write(self.CLEAR)
            self.err.flush()
            self.shown = False

    def draw(self) -> None:
        import shutil
        import time

        now = time.monotonic()
        if self.paused or now - self._drawn_at < self.interval:
            return
        self._drawn_at = now
        width = shutil.get_terminal_size((80, 24)).columns
        self.err.write(self.CLEAR + _clip(self.line(), max(10, width - 1)))
        self.err.flush()
        self.shown = True


class StreamPrinter:
    """Prints entries as they come (the --no-tui view), under a ticker when given."""

    def __init__(self, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr,
                 ticker: Ticker | None = None, verbose: bool = False) -> None:
        self.out = out
        self.err = err
        self.ticker = ticker
        self.verbose = verbose
        self.story = Story()  # the turn so far: its start, the review's verdict
        self.paint_out = Painter(use_color(out))
        self.paint_err = Painter(use_color(err))
        self.open_line: str | None = None  # kind of the streamed text being printed
        self._ended = False  # that text ended with a newline already

    def __call__(self, records: list[tuple[int, Entry, str]]) -> None:
        ticker = self.ticker
        if ticker is not None:
            ticker.clear()
            ticker.paused = False  # whatever was asked was answered: output moves on
        for _seq, entry, text in records:
            if not self.story.session:
                # Live entries carry the session's id only in their stored text.
                found = _SESSION_ID.search(text)
                self.story.session = found.group(1) if found else ""
            if ticker is not None:
                ticker.add(entry)
            self.print_entry(entry)
        self.out.flush()
        self.err.flush()
        self.tick()

    def tick(self) -> None:
        """Redraw the ticker, unless streamed text is mid-line (it would be erased)."""
        if self.ticker is not None and (self.open_line is None or self._ended):
            self.ticker.draw()

    def _close_line(self) -> None:
        if not self._ended:
            self.out.write("\n")
        self.open_line = None
        self._ended = False

    def print_entry(self, entry: Entry) -> None:
        kind = entry.get("kind")
        if entry.get("delta") or entry.get("streamed"):
            # Streamed text is printed as it comes, on one line; the whole message that
            # ends the stream only closes that line.
            if self.open_line is not None and (self.open_line != kind or
                                               entry.get("streamed")):
                self._close_line()
            if entry.get("delta"):
                text = terminal_text(str(entry.get("text") or ""))
                self.out.write(self.paint_out(text, "dim") if kind == "thinking" else text)
                self.open_line = kind
                self._ended = text.endswith("\n") or (self._ended and not text)
            return
        if self.open_line is not None:
            self._close_line()
        to_err = kind in {"error", "usage", "state", "raw", "system"} or \
            (kind == "user_message" and self.story.stage_of(entry) == "review" and
             not self.verbose)
        try:
            shown = format_entry(entry, self.paint_err if to_err else self.paint_out,
                                 self.story, self.verbose)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # An entry this printer cannot read (stored by another version, say) is
            # named, not allowed to stop the stream.
            shown = (f"[unprintable {kind} entry: {type(exc).__name__}]", True)
        if shown is not None:
            text, to_err = shown
            print(text, file=self.err if to_err else self.out)


class JsonPrinter:
    """Prints each entry's stored JSON text, one per line (`aura run --json`)."""

    def __init__(self, out: IO[str] = sys.stdout) -> None:
        self.out = out

    def __call__(self, records: list[tuple[int, Entry, str]]) -> None:
        if not records:
            return  # an empty batch is no line (a blank line is not JSON)
        self.out.write("\n".join(text for _seq, _entry, text in records))
        self.out.write("\n")
        self.out.flush()


def parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def short_path(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home) else path


def terminal_width(stream: IO[str] = sys.stdout) -> int | None:
    """How wide a table may be: COLUMNS when set, else the terminal's width; None when
    the output is no terminal (a pipe, a file: nothing is cut)."""
    import shutil

    if os.environ.get("COLUMNS", "").strip().isdigit() or \
            (hasattr(stream, "isatty") and stream.isatty()):
        return max(20, shutil.get_terminal_size((80, 24)).columns)
    return None


MIN_FLEXIBLE = 20  # a shrinking column (a prompt, a title) keeps this much before others go


def _fit(rows: list[list[str]], width: int, flexible: Sequence[int],
         drop: Sequence[int]) -> list[int]:
    """The columns kept so that lines fit ``width``: the first ``flexible`` one is cut
    first (down to MIN_FLEXIBLE), then columns of ``drop`` go in that order; with none
    left to drop, the other flexible ones are cut too. Flexible cells are cut in place."""
    keep = list(range(len(rows[0])))
    pending = list(drop)
    while True:
        widths = {i: max(len(row[i]) for row in rows) for i in keep}
        excess = sum(widths.values()) + 2 * (len(keep) - 1) - width
        if excess <= 0:
            return keep
        cuttable = [i for i in flexible if i in keep]
        if not cuttable:
            if not pending:
                return keep
            keep.remove(pending.pop(0))
            continue
        first = cuttable[0]
        if widths[first] - excess >= MIN_FLEXIBLE:
            _cut_column(rows, first, widths[first] - excess)
            return keep
        if pending:
            keep.remove(pending.pop(0))
            continue
        # Nothing left to drop: the others give what they have beyond MIN_FLEXIBLE, the
        # first takes the rest.
        for i in reversed(cuttable[1:]):
            spare = min(excess, max(0, widths[i] - MIN_FLEXIBLE))
            _cut_column(rows, i, widths[i] - spare)
            excess -= spare
        _cut_column(rows, first, max(widths[first] - excess, 4))
        return keep


def _cut_column(rows: list[list[str]], column: int, width: int) -> None:
    for row in rows:
        row[column] = _clip(row[column], width)


def table(rows: Sequence[Sequence[str]], width: int | None = None, *,
          flexible: int | Sequence[int] = (), drop: Sequence[int] = (),
          styles: dict[int, Any] | None = None) -> list[str]:
    """``rows`` (the header first, when there is one) as lines of aligned columns two
    spaces apart. Every column but the last is padded to its widest cell; the last is
    left as it is, so a long last column (a prompt, a path) does not widen the others
    and lines carry no padding at their end.

    With ``width`` the lines fit it: the ``flexible`` column (the first, when several)
    is cut first, then the columns of ``drop`` are left out, in that order, then the
    other flexible columns are cut. ``styles`` maps a column to a
    function painting its body cells (applied after the layout, so colour escapes do
    not count as width)."""
    if not rows:
        return []
    cells = [[str(cell) for cell in row] for row in rows]
    flexibles = (flexible,) if isinstance(flexible, int) else tuple(flexible)
    keep = _fit(cells, width, flexibles, drop) if width else list(range(len(cells[0])))
    widths = {i: max(len(row[i]) for row in cells) for i in keep}
    styles = styles or {}
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i in keep:
            cell = row[i]
            pad = "" if i == keep[-1] else " " * (widths[i] - len(cell))
            parts.append((styles[i](cell) if n and i in styles else cell) + pad)
        lines.append("  ".join(parts))
    return lines


def json_text(value: Any, *, compact: bool = False) -> str:
    """``value`` as JSON the way aura prints it: non-ASCII kept as is; indented for a
    document (`--json` of a listing), on one line for a stream of records. Always strict
    JSON that can be written as UTF-8: a non-finite number (which a session stored by an
    older aura may hold) becomes null, and a lone surrogate is written as its escape."""
    indent = None if compact else 2
    # One line per record, as the store writes entries: no spaces after , and :.
    separators = (",", ":") if compact else None
    try:
        text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False,
                          separators=separators)
    except (ValueError, RecursionError):
        value = json_safe(value)
        text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False,
                          separators=separators)
    if not text.isascii() and _SURROGATES.search(text):
        text = json.dumps(value, indent=indent, allow_nan=False, separators=separators)
    return text
