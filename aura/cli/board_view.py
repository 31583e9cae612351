"""How `aura board` draws the board: columns side by side on a terminal wide enough,
else one column after the other; each card with its id and title, executor, age,
state, cost, and for a queued task why it waits."""

from __future__ import annotations

import shutil
from itertools import zip_longest
from typing import Any, TextIO

MIN_COLUMN_WIDTH = 24
GAP = "  "


def _age(ts: str | None) -> str:
    from aura.cli.wording import ago

    return ago(ts)


def _cost(card: dict[str, Any]) -> str:
    value = card.get("cost_usd")
    return f"${value:.2f}" if isinstance(value, (int, float)) else "-"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def card_lines(card: dict[str, Any], width: int) -> list[str]:
    """A card in three lines (four for a waiting task), each at most ``width`` wide."""
    lines = [_fit(f"{card['id'][:8]} {card['title']}", width),
             _fit(f"  {card['executor']} · {_age(card.get('created_at'))} · {_cost(card)}",
                  width),
             _fit(f"  {card['state']}" + (f" ({card['status']})" if card.get("status") and
                                          card["status"] != card["state"] else ""), width)]
    if card.get("waiting"):
        lines.append(_fit(f"  ⧗ {card['waiting']}", width))
    return lines


def _sections(data: dict[str, Any]) -> list[dict[str, Any]]:
    sections = list(data["columns"])
    if data["other"]:
        sections.append({"name": "(no column)", "state": "", "wip_limit": None,
                         "sessions": data["other"]})
    return sections


def _heading(column: dict[str, Any]) -> str:
    limit = f"/{column['wip_limit']}" if column["wip_limit"] else ""
    return f"{column['name']} ({len(column['sessions'])}{limit})"


def render(data: dict[str, Any], layout: str, out: TextIO) -> list[str]:
    from aura.cli.render import Painter, use_color

    paint = Painter(use_color(out))
    sections = _sections(data)
    width = shutil.get_terminal_size((80, 24)).columns
    column_width = (width - len(GAP) * (len(sections) - 1)) // max(1, len(sections))
    wide = column_width >= MIN_COLUMN_WIDTH and (layout == "columns" or
                                                 (layout == "auto" and out.isatty()))
    if layout == "columns" and not wide:
        column_width = MIN_COLUMN_WIDTH
        wide = True
    return _side_by_side(sections, column_width, paint) if wide else _listed(sections, paint)


def _side_by_side(sections: list[dict[str, Any]], width: int, paint: Any) -> list[str]:
    blocks = []
    for column in sections:
        block: list[tuple[str, str | None]] = [(_fit(_heading(column), width), "bold"),
                                               ("─" * width, "dim")]
        for card in column["sessions"]:
            block += [(line, None) for line in card_lines(card, width)] + [("", None)]
        blocks.append(block)
    lines = []
    for row in zip_longest(*blocks, fillvalue=("", None)):
        cells = [paint(text.ljust(width), style) if style else text.ljust(width)
                 for text, style in row]
        lines.append(GAP.join(cells).rstrip())
    return lines


def _listed(sections: list[dict[str, Any]], paint: Any) -> list[str]:
    lines = []
    for column in sections:
        state = f"  [{column['state']}]" if column["state"] else ""
        lines.append(paint(_heading(column), "bold") + paint(state, "dim"))
        for card in column["sessions"]:
            title = _fit(card["title"], 50)
            branch = f"  {', '.join(card['branches'])}" if card["branches"] else ""
            lines.append(f"  {card['id'][:8]}  {card['state']:<16} {card['executor']:<12} "
                         f"{_age(card.get('created_at')):>10} {_cost(card):>7}  {title}" +
                         paint(branch, "dim"))
            if card.get("waiting"):
                lead = "" if card.get("status") == "ready" else "waits: "
                lines.append(paint(f"            {lead}{card['waiting']}", "dim"))
    return lines
