"""What the Queue pane, the Model pane and the footer show, drawn from ``TuiState`` as
styled fragments, and the style sheet that colours them (and the Logs pane, the overlay)."""

from __future__ import annotations

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.styles import Style

from aura.tui.commands import footer_items
from aura.tui.logview import clip
from aura.tui.state import TuiState
from aura.tui.tally import age, elapsed

MODEL_ROWS = 7  # discovered models shown at once around the cursor
FOOTER_KEYS = [("Enter", "send"), ("Alt-Enter", "newline"), ("Esc", "cancel"),
               ("^C^C", "quit"), ("Tab", "pane"), ("PgUp/Dn", "scroll"), ("?", "help"),
               ("F3", "diff")]
NARROW_KEYS = [("Enter", "send"), ("Esc", "cancel"), ("^C^C", "quit"), ("Tab", "pane"),
               ("?", "help"), ("F2", "side panes"), ("F3", "diff")]
PROMPT_CHARS = 40  # of a session's prompt in its Queue row

STYLE = Style.from_dict({
    "frame.border": "#5f5f87",
    "frame.label": "bold",
    "focused frame.border": "#87afff bold",
    "focused frame.label": "#87afff bold reverse",
    "overlay": "bg:#1c1c1c",
    "code": "#afd787 bg:#262626",
    "diff.add": "#5faf5f",
    "diff.remove": "#ff5f5f",
    "diff.hunk": "#5fafaf",
    "diff.file": "bold",
    "user": "bold #87d7ff",
    "assistant": "",
    "thinking": "italic #8a8a8a",
    "tool": "#5fafaf",
    "tool.action": "#5fafaf bold",
    "tool.target": "",
    "status.ok": "#5faf5f",
    "status.running": "#d7af00",
    "status.error": "#ff5f5f bold",
    "error": "bg:#5f0000 #ffffff bold",
    "state": "#af87d7",
    "dim": "#808080",
    "raw": "#808080",
    "queue.current": "bold",
    "queue.running": "#d7af00",
    "queue.done": "#5faf5f",
    "queue.failed": "#ff5f5f",
    "queue.cancelled": "#d7875f",
    "model.selected": "reverse",
    "log.selected": "reverse",
    "footer": "bg:#262626 #bcbcbc",
    "footer.key": "bg:#262626 #ffffff bold",
    "footer.status": "bg:#262626 #87d7ff",
    "notice": "#d7af00",
    "approval.head": "bg:#5f5f00 #ffffff bold",
    "approval.detail": "#d7d7af",
})


def state_style(state: str) -> str:
    if state in {"done", "failed", "cancelled"}:
        return f"class:queue.{state}"
    return "class:dim" if state == "worker_lost" else "class:queue.running"


def queue_text(state: TuiState, focused: bool) -> StyleAndTextTuples:
    queue = state.queue
    hint = "  ↑/↓, Enter opens" if focused else ""
    out: StyleAndTextTuples = [("class:dim", f"sessions (newest first){hint}\n")]
    for i, s in enumerate(queue.sessions):
        current = s.id == state.session_id
        style = "class:model.selected" if focused and i == queue.cursor else (
            "class:queue.current" if current else "")
        out.append((style, f"{'▶ ' if current else '  '}{s.id[:8]} "))
        out.append((state_style(s.state), f"{s.state:<8} "))
        out.append(("class:dim", f"{age(s.created_at):>4} {queue.tally(s.id).cost():>7} "))
        out.append(("", f"{clip(s.prompt, PROMPT_CHARS) or '-'}\n"))
        why = queue.waiting.get(s.id)
        if why:
            out.append(("class:notice", f"    waits: {clip(why, 120)}\n"))
    if queue.executions:
        out.append(("class:dim", "\nexecutions of this session\n"))
        for e in queue.executions:
            out.append(("", f"  {e.id[:8]} {e.stage[:18]:<18} "))
            out.append((state_style(e.status), f"{e.status}\n"))
    if queue.error:
        out.append(("class:status.error", f"cannot read the store: {queue.error}\n"))
    return out


def model_text(state: TuiState, focused: bool) -> StyleAndTextTuples:
    choice = state.models
    out: StyleAndTextTuples = [
        ("class:dim", "executor "), ("bold", f"{state.executor or 'codex (default)'}"),
        ("class:dim", "  ←/→\n" if focused else "\n"),
        ("class:dim", "model    "), ("bold", f"{state.model or '(agent default)'}\n"),
        ("class:dim", "review   "),
        ("", f"{'on' if state.review else 'off'}\n")]
    if choice.models:
        out.append(("class:dim", "discovered models (↑/↓, Enter):\n"))
        start = max(0, min(choice.cursor - 3, len(choice.models) - MODEL_ROWS))
        for i, name in enumerate(choice.models[start:start + MODEL_ROWS], start):
            selected = focused and i == choice.cursor
            mark = "● " if name == state.model else "  "
            out.append(("class:model.selected" if selected else "", f"{mark}{name}\n"))
    elif choice.note:
        out.append(("class:dim", clip(choice.note, 80) + "\n"))
    return out


NARROW_ROOM = 62  # columns of slash commands in the narrow footer (80 - the '… ? lists all')


def footer_text(state: TuiState, running: bool, following: bool,
                narrow: bool = False) -> StyleAndTextTuples:
    out: StyleAndTextTuples = []
    for key, what in NARROW_KEYS if narrow else FOOTER_KEYS:
        out += [("class:footer.key", f" {key}"), ("class:footer", f" {what} ")]
    out.append(("class:footer", "\n"))
    if narrow:  # under 100 columns: the names that fit, the rest in the help (?)
        shown, room = [], NARROW_ROOM
        for name, _arg in footer_items():
            if room < len(name) + 1:
                shown.append(" … ? lists all")
                break
            shown.append(f" {name}")
            room -= len(name) + 1
        out += [("class:footer.key", "".join(shown))]
    else:
        for name, arg in footer_items():
            out += [("class:footer.key", f" {name}"),
                    ("class:footer", f" {arg}" if arg else "")]
    out.append(("class:footer", "\n"))
    where = f"session {state.session_id[:8]}" if state.session_id else "new session"
    follow = "" if following else "  scrolled (End follows)"
    turn = ""
    if running and state.turn_started is not None:
        import time

        usage = state.turn_usage
        spent = f"  {usage.tokens()} {usage.cost()}" if usage.entries else ""
        turn = f" {elapsed(time.monotonic() - state.turn_started)}{spent}"
    out.append(("class:footer.status",
                f" {'● running' + turn if running else '○ idle'}{follow}  {where}  "
                f"{state.status}"))
    return out
