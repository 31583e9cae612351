"""`aura compare GROUP [--json] [--diff A B]`: the attempts of a group, ranked best first
(service/compare.py), or two attempts' diffs side by side (one after the other on a
terminal narrower than ``WIDE`` columns or when not a terminal)."""

from __future__ import annotations

from typing import Any

import click

from aura.cli.completion import complete_group
from aura.cli.output import CONTEXT_SETTINGS, open_user_store

WIDE = 160  # columns from which two diffs are shown side by side


def _money(value: Any) -> str:
    return "?" if value is None else f"${value:.4f}"


def _tokens(data: dict[str, Any]) -> str:
    total = (data.get("input_tokens") or 0) + (data.get("output_tokens") or 0)
    return "-" if not total else f"{total / 1000:.1f}k" if total >= 1000 else f"{total:g}"


def _chosen(value: bool | None) -> str:
    return "" if value is None else "landed" if value else "not chosen"


def _rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    from aura.service.checks import summary

    out: list[tuple[str, ...]] = [
        ("RANK", "#", "SESSION", "EXECUTOR", "MODEL", "STATE", "TIME", "TOKENS", "COST",
         "FILES", "+/-", "CHECKS", "REVIEW", "CHOSEN")]
    for d in rows:
        secs = d.get("duration_s")
        out.append((str(d["rank"]), str(d["number"]), d["session"][:8], d["executor"],
                    d.get("model") or "-", d["state"],
                    "-" if secs is None else f"{secs:.1f}s", _tokens(d),
                    _money(d.get("cost_usd")) if d.get("usage_entries") else "-",
                    "-" if d.get("files") is None else str(d["files"]),
                    "-" if d.get("files") is None else f"+{d['insertions']} -{d['deletions']}",
                    summary(d["checks"]), d.get("review") or "-", _chosen(d.get("chosen"))))
    return out


def side_by_side(left: str, right: str, width: int, titles: tuple[str, str]) -> list[str]:
    """Two texts in two columns of ``(width - 3) // 2`` characters, cut to fit."""
    half = (width - 3) // 2
    a, b = left.splitlines(), right.splitlines()
    lines = [f"{titles[0][:half]:<{half}} | {titles[1][:half]}", f"{'-' * half}-+-{'-' * half}"]
    for i in range(max(len(a), len(b))):
        x = a[i].expandtabs(4) if i < len(a) else ""
        y = b[i].expandtabs(4) if i < len(b) else ""
        lines.append(f"{x[:half]:<{half}} | {y[:half]}".rstrip())
    return lines


@click.command("compare", context_settings=CONTEXT_SETTINGS)
@click.argument("group_id", metavar="[GROUP]", required=False, shell_complete=complete_group)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the ranked attempts.")
@click.option("--diff", "diff_pair", nargs=2, metavar="A B",
              help="Show two attempts' diffs (attempt numbers 1..N or session id prefixes).")
def compare_command(group_id: str | None, as_json: bool, diff_pair: tuple[str, str] | None) -> None:
    """Compare the attempts of a group (made by `aura run -e A -e B` or --attempts N):
    ranked by checks passing, fewer failures, the review verdict, then cost (without
    GROUP: the newest group).

    \b
    EXAMPLES
      aura compare 3f2a9c
      aura compare 3f2a9c --diff 1 2
    """
    from aura import config
    from aura.cli.render import json_text, table, terminal_text
    from aura.service import attempts, compare

    store = open_user_store()
    group = attempts.find_group(store, group_id) if group_id is not None else \
        attempts.newest_group(store)
    if diff_pair:
        chosen = [attempts.find_attempt(store, group, ref) for ref in diff_pair]
        texts = [compare.diff(store, a) or "(no changes)\n" for a in chosen]
        titles = (f"#{chosen[0].number} {chosen[0].executor} {chosen[0].session[:8]}",
                  f"#{chosen[1].number} {chosen[1].executor} {chosen[1].session[:8]}")
        import shutil

        width = shutil.get_terminal_size((80, 24)).columns
        import sys

        if sys.stdout.isatty() and width >= WIDE:
            for line in side_by_side(terminal_text(texts[0]), terminal_text(texts[1]), width,
                                     titles):
                click.echo(line)
            return
        for title, text in zip(titles, texts, strict=True):
            click.echo(f"=== {title}")
            click.echo(terminal_text(text), nl=not text.endswith("\n"))
        return
    rows = compare.ranked(store, group, config.load())
    if as_json:
        click.echo(json_text({**group.to_json(), "attempts": rows}))
        return
    click.echo(f"group {group.id[:8]}: {' '.join(group.prompt.split())[:100]}")
    for line in table(_rows(rows)):
        click.echo(line)
