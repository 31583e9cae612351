"""`aura session show` as a work log: which entries (--kind, --grep, --since, --tail) and
how they read: a header at each turn (its local time and what it used), each transition
once (where a state entry tells it, in the flow; else in the list above the entries), and
multi-line entries kept in a gutter (the seq on the first line, the rest indented under
it)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import click

from aura.contracts import ENTRY_KINDS, Entry
from aura.errors import UsageError

if TYPE_CHECKING:
    from aura.cli.render import Painter

GUTTER = 5


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What `session show` keeps: kinds, a case-insensitive text, a moment."""

    kinds: frozenset[str] | None = None
    grep: str | None = None
    since: str | None = None  # a stored-timestamp string (cli.timespec)

    @property
    def active(self) -> bool:
        return bool(self.kinds or self.grep or self.since)

    def keep(self, entry: Entry) -> bool:
        if self.kinds is not None and entry.get("kind") not in self.kinds:
            return False
        if self.since is not None and str(entry.get("ts") or "") < self.since:
            return False
        if self.grep is not None:
            text = json.dumps(entry, ensure_ascii=False)
            return self.grep.casefold() in text.casefold()
        return True


def parse_kinds(text: str | None) -> frozenset[str] | None:
    """``tool_call,error`` as a set of entry kinds; an unknown one is a usage error."""
    if text is None:
        return None
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - ENTRY_KINDS)
    if unknown or not kinds:
        what = f"unknown kind {unknown[0]!r}" if unknown else "no kind given"
        raise UsageError(f"--kind {text!r}: {what}; kinds are "
                         f"{', '.join(sorted(ENTRY_KINDS))}")
    return kinds


def select(entries: Sequence[Entry], flt: EntryFilter, tail: int | None, *,
           deltas: bool = False) -> list[Entry]:
    """The entries the filter keeps, the last ``tail`` of them when given. Streamed pieces
    are left out of the text (the whole message follows them), kept with ``deltas`` (the
    JSON holds every stored entry)."""
    kept = [e for e in entries if (deltas or not e.get("delta")) and flt.keep(e)]
    return kept[max(0, len(kept) - tail):] if tail is not None else kept


# turns --------------------------------------------------------------------------------

@dataclass(slots=True)
class Turn:
    number: int
    ts: str
    usage: dict[str, float]
    asked: bool = False  # a user_message is in it already


def turns_of(entries: Iterable[Entry]) -> dict[int, Turn]:
    """The turn each entry belongs to (by seq): a turn starts at each user_message (what
    comes before the first one, such as preparing the workspace, belongs to the first
    turn; a stage without a prompt of its own, such as the checks, to the turn before);
    its usage is the sum of what its entries carry."""
    out: dict[int, Turn] = {}
    turn: Turn | None = None
    for entry in entries:
        asks = entry.get("kind") == "user_message"
        if turn is None or (asks and turn.asked):
            turn = Turn((turn.number + 1) if turn else 1, str(entry.get("ts") or ""), {})
        turn.asked = turn.asked or asks
        figures = entry.get("usage")
        for key, value in (figures.items() if isinstance(figures, dict) else ()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                turn.usage[key] = turn.usage.get(key, 0) + value
        out[int(entry.get("seq") or 0)] = turn
    return out


def turn_header(turn: Turn, paint: Callable[..., str]) -> str:
    from aura.cli.render import parse_ts

    when = parse_ts(turn.ts)
    shown = when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "?"
    return paint(f"── turn {turn.number} · {shown} · {turn_figures(turn.usage)}", "bold")


def turn_figures(usage: dict[str, float]) -> str:
    """``120 tokens · $0.0100``; '?' for a figure that is no finite number (a stored
    session may hold Infinity or NaN from an older aura)."""
    tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    cost = usage.get("cost_usd")
    shown = f"{int(tokens)}" if math.isfinite(tokens) else "?"
    if cost is not None and not math.isfinite(cost):
        return f"{shown} tokens · $?"
    return f"{shown} tokens" + (f" · ${cost:.4f}" if cost else "")


# the text ------------------------------------------------------------------------------

def unshown_transitions(transitions: Sequence[dict[str, Any]], entries: Sequence[Entry]
                        ) -> list[dict[str, Any]]:
    """The transitions that no shown state entry tells already (each is shown once: in
    the flow of entries where there is one, else in the list above them)."""
    told: dict[tuple[Any, Any], int] = {}
    for entry in entries:
        if entry.get("kind") == "state":
            key = (entry.get("from"), entry.get("to"))
            told[key] = told.get(key, 0) + 1
    out = []
    for t in transitions:
        key = (t.get("from"), t.get("to"))
        if told.get(key):
            told[key] -= 1
        else:
            out.append(t)
    return out


def gutter_lines(seq: Any, text: str, paint: Callable[..., str], width: int = GUTTER
                 ) -> list[str]:
    """The entry's first line after its seq, each further line indented under it."""
    lines = text.split("\n")
    head = f"{paint(str(seq).rjust(width), 'dim')} {lines[0]}"
    return [head, *(" " * (width + 1) + line for line in lines[1:])]


def write_entries(out: IO[str], entries: Sequence[Entry], every: Sequence[Entry],
                  paint: Painter, *, verbose: bool = False) -> None:
    """``entries`` (a selection of ``every``) with the headers of their turns. The story
    of the turn (its stage, how long it took, the verdict) follows every entry, shown or
    filtered out, so a filtered view words its lines as the whole one does."""
    from aura.cli.render import format_entry
    from aura.cli.wording import Story

    turns = turns_of(every)
    shown_seqs = {int(e.get("seq") or 0) for e in entries}
    width = max(GUTTER, len(str(max(shown_seqs, default=0))))
    story = Story()
    current: Turn | None = None
    for entry in every:
        seq = int(entry.get("seq") or 0)
        if seq not in shown_seqs:
            if entry.get("kind") == "state":
                story.move(entry)
            continue
        turn = turns.get(seq)
        if turn is not None and turn is not current:
            current = turn
            click.echo(turn_header(turn, paint), file=out)
        try:
            shown = format_entry(entry, paint, story, verbose)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            shown = (f"[unprintable {entry.get('kind')} entry: {type(exc).__name__}]", True)
        if shown is not None:
            for line in gutter_lines(entry.get("seq", ""), shown[0], paint, width):
                click.echo(line, file=out)
