"""`aura usage`: tokens and cost of the stored sessions, grouped (the cost ledger)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from aura.cli.output import CONTEXT_SETTINGS, open_user_store

if TYPE_CHECKING:
    from aura.service.usage import Total

_BY = ("day", "executor", "model", "repo", "session")  # as aura.service.usage.GROUPINGS


def _tokens(value: float) -> str:
    return f"{int(value):,}"


def _cost(total: Total) -> str:
    if total.unpriced == total.entries:
        return "cost unknown"
    text = f"${total.cost_usd:.4f}"
    return text if not total.unpriced else f"{text} + unknown"


@click.command("usage", context_settings=CONTEXT_SETTINGS)
@click.option("--since", metavar="AGE|DATE",
              help="Only usage since then: 7d, 12h, 30m, 2w or 2026-11-30 (default: all).")
@click.option("--by", type=click.Choice(_BY), default="day", show_default=True,
              help="What to group by.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the groups.")
def usage_command(since: str | None, by: str, as_json: bool) -> None:
    """Tokens (in, out, cached) and cost of every session; prices of agents that report
    only tokens come from the config's [prices."MODEL"] tables."""
    from aura import config
    from aura.service.usage import report

    totals = report(open_user_store(), config.load(), since=since, by=by)
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text([t.to_json() for t in totals]))
        return
    if not totals:
        click.echo("no usage recorded" + (f" since {since}" if since else ""), err=True)
        return
    from aura.cli.render import short_path, table, terminal_text, terminal_width

    rows = [(by.upper(), "IN", "OUT", "CACHED", "ENTRIES", "COST")]
    for t in totals:
        key = short_path(t.key) if by == "repo" else t.key[:8] if by == "session" else t.key
        rows.append((terminal_text(key), _tokens(t.input_tokens), _tokens(t.output_tokens),
                     _tokens(t.cached_input_tokens), str(t.entries), _cost(t)))
    # A long key (a repo's path, a model) is cut first, then entries and cached go.
    for line in table(rows, terminal_width(), flexible=0, drop=(4, 3)):
        click.echo(line)
