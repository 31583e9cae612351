"""`aura session export`: a session as a readable transcript in Markdown, a self-contained
HTML page (inline CSS, no scripts, every piece of text escaped), or one JSON document.

The transcript: the session's facts and prompt, then turn by turn the messages, tool calls
(with the tail of their output), errors and approvals; the approval requests, the diff of
the workspace when there is one, and the usage totals."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from aura.cli.session_view import turn_figures, turns_of

OUTPUT_TAIL = 20  # lines of a tool's output kept in the transcript


def transcript(store: Any, session_id: str) -> dict[str, Any]:
    """Everything an export shows, as one JSON-able document."""
    from aura.store import session_history

    data = session_history(store, session_id)
    entries = [e for e in data["entries"] if not e.get("delta")]
    usage: dict[str, float] = {}
    for entry in entries:
        figures = entry.get("usage")
        for key, value in (figures.items() if isinstance(figures, dict) else ()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                usage[key] = usage.get(key, 0) + value
    data["entries"] = entries
    data["usage"] = usage
    data["approvals"] = [a.to_json() for a in store.list_approvals(session_id=data["id"])]
    data["diff"] = _diff(store, data["id"])
    return data


def _diff(store: Any, session_id: str) -> str | None:
    from aura.errors import AuraError
    from aura.service.workspaces import diff

    try:
        return diff(store, session_id) or None
    except AuraError:
        return None  # no workspace, or removed (its work is on its branch)


def _tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    parts = text.rstrip("\n").split("\n")
    if len(parts) <= lines:
        return "\n".join(parts)
    return f"… {len(parts) - lines} lines above\n" + "\n".join(parts[-lines:])


def _s(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _items(data: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(turn header text or "", entry) pairs in order, the header on each turn's first."""
    from aura.cli.render import parse_ts

    turns = turns_of(data["entries"])
    out = []
    current = None
    for entry in data["entries"]:
        if entry.get("kind") in ("state", "summary"):
            continue
        turn = turns.get(int(entry.get("seq") or 0))
        header = ""
        if turn is not None and turn is not current:
            current = turn
            when = parse_ts(turn.ts)
            header = (f"Turn {turn.number} · "
                      f"{when.astimezone().strftime('%Y-%m-%d %H:%M:%S') if when else '?'} · "
                      f"{turn_figures(turn.usage)}")
        out.append((header, turn, entry))
    return out


# markdown -------------------------------------------------------------------------------

def _fence(text: str, lang: str = "text") -> str:
    """A fenced block longer than any run of backticks inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _md_entry(entry: dict[str, Any]) -> str | None:
    kind, text = entry.get("kind"), _s(entry.get("text"))
    if kind == "user_message":
        return "**User**\n\n" + _fence(text)
    if kind == "assistant_message":
        return "**Agent**\n\n" + text
    if kind == "thinking":
        return "*Thinking:* " + " ".join(text.split())[:400]
    if kind == "tool_call":
        line = (f"**Tool** `{_s(entry.get('action')) or 'other'}` "
                f"{_s(entry.get('target')) or _s(entry.get('tool'))}"
                f"{' — ' + _s(entry.get('status')) if entry.get('status') else ''}")
        output = _s(entry.get("output"))
        return line + ("\n\n" + _fence(_tail(output)) if output else "")
    if kind == "error":
        return "**Error**\n\n" + _fence(text)
    if kind == "approval":
        d = entry.get("data") or {}
        return (f"**Approval** {_s(d.get('id'))[:8]} {_s(d.get('kind'))}: "
                f"{_s(d.get('title'))} — {_s(d.get('state'))}"
                f"{' by ' + _s(d.get('by')) if d.get('by') else ''}")
    if kind == "usage":
        return None
    return f"*{kind}* {text}" if text else None


def markdown(data: dict[str, Any]) -> str:
    from aura.cli.render import format_usage

    out = [f"# Session {data['id']}", "",
           f"- executor: {data['executor']}" + (f" (model {data['model']})"
                                                 if data.get("model") else ""),
           f"- state: {data['state']}", f"- cwd: {data['cwd']}",
           f"- created: {data['created_at']} · updated: {data['updated_at']}", "",
           "## Prompt", "", _fence(_s(data.get("prompt"))), "", "## Transcript"]
    for header, _turn, entry in _items(data):
        if header:
            out += ["", f"### {header}"]
        shown = _md_entry(entry)
        if shown is not None:
            out += ["", shown]
    if data["approvals"]:
        out += ["", "## Approvals", ""]
        out += [f"- {a['id'][:8]} {a['kind']}: {a['title']} — {a['state']}"
                f"{' by ' + _s(a.get('by')) if a.get('by') else ''}"
                for a in data["approvals"]]
    if data["diff"]:
        out += ["", "## Workspace diff", "", _fence(data["diff"].rstrip("\n"), "diff")]
    out += ["", "## Usage", "", format_usage(data["usage"]) if data["usage"] else "-", ""]
    return "\n".join(out)


# html -----------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;color:#555;margin-top:1.5rem}
pre{background:#f5f5f7;padding:.6rem .8rem;overflow-x:auto;white-space:pre-wrap;
word-break:break-word;border-radius:4px}
.entry{margin:.6rem 0}.who{font-weight:600;margin-right:.4rem}
.user .who{color:#0a58ca}.agent .who{color:#198754}.tool .who{color:#6f42c1}
.error{color:#b02a37}.thinking{color:#777;font-style:italic}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#555}
@media (prefers-color-scheme:dark){body{background:#1d1d1f;color:#eee}
pre{background:#2a2a2e}h3,dt,.thinking{color:#aaa}}
"""


def _e(value: Any) -> str:
    return html.escape(_s(value), quote=True)


def _html_entry(entry: dict[str, Any]) -> str | None:
    kind, text = entry.get("kind"), _s(entry.get("text"))
    block: Callable[[str], str] = lambda t: f"<pre>{_e(t)}</pre>"  # noqa: E731
    if kind == "user_message":
        return f'<div class="entry user"><span class="who">User</span>{block(text)}</div>'
    if kind == "assistant_message":
        return f'<div class="entry agent"><span class="who">Agent</span>{block(text)}</div>'
    if kind == "thinking":
        return f'<div class="entry thinking">{_e(" ".join(text.split())[:400])}</div>'
    if kind == "tool_call":
        output = _s(entry.get("output"))
        return (f'<div class="entry tool"><span class="who">Tool</span>'
                f"<code>{_e(entry.get('action') or 'other')}</code> "
                f"{_e(entry.get('target') or entry.get('tool'))} "
                f"<em>{_e(entry.get('status'))}</em>"
                f"{block(_tail(output)) if output else ''}</div>")
    if kind == "error":
        return f'<div class="entry error"><span class="who">Error</span>{block(text)}</div>'
    if kind == "approval":
        d = entry.get("data") or {}
        return (f'<div class="entry approval"><span class="who">Approval</span>'
                f"{_e(_s(d.get('id'))[:8])} {_e(d.get('kind'))}: {_e(d.get('title'))} — "
                f"{_e(d.get('state'))}{' by ' + _e(d.get('by')) if d.get('by') else ''}</div>")
    if kind == "usage":
        return None
    return f'<div class="entry other"><em>{_e(kind)}</em> {_e(text)}</div>' if text else None


def _by(approval: dict[str, Any]) -> str:
    who = approval.get("by")
    return f" by {_e(who)}" if who else ""


def html_page(data: dict[str, Any]) -> str:
    from aura.cli.render import format_usage

    facts = [("executor", data["executor"]), ("model", data.get("model") or "-"),
             ("state", data["state"]), ("cwd", data["cwd"]),
             ("created", data["created_at"]), ("updated", data["updated_at"])]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>aura session {_e(data['id'][:8])}</title><style>{_CSS}</style>",
           "</head><body>", f"<h1>Session {_e(data['id'])}</h1>", "<dl>",
           *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts), "</dl>",
           "<h2>Prompt</h2>", f"<pre>{_e(data.get('prompt'))}</pre>", "<h2>Transcript</h2>"]
    for header, _turn, entry in _items(data):
        if header:
            out.append(f"<h3>{_e(header)}</h3>")
        shown = _html_entry(entry)
        if shown is not None:
            out.append(shown)
    if data["approvals"]:
        out.append("<h2>Approvals</h2><ul>")
        out += [f"<li>{_e(a['id'][:8])} {_e(a['kind'])}: {_e(a['title'])} — "
                f"{_e(a['state'])}{_by(a)}</li>" for a in data["approvals"]]
        out.append("</ul>")
    if data["diff"]:
        out += ["<h2>Workspace diff</h2>", f"<pre>{_e(data['diff'])}</pre>"]
    out += ["<h2>Usage</h2>", f"<p>{_e(format_usage(data['usage']) if data['usage'] else '-')}</p>",
            "</body></html>", ""]
    return "\n".join(out)
