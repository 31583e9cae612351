"""`aura models`: the models local servers and OpenAI-compatible endpoints offer.

Lists are discovered through the 24 h cache of ``aura.executors.openai.models`` (the same one the
picker of `aura run` uses) and say when they come from it. Without --executor, ollama and
LM Studio are both asked (or the custom endpoint alone when --openai-endpoint is given);
the command fails only when none of them answers. The listing itself is
``aura.service.models``; this module parses the options and prints. With --on NAME the
worker NAME asks its own servers (127.0.0.1 is then that worker's host), through the
coordinator.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from aura.cli.completion import complete_model_executor
from aura.cli.output import CONTEXT_SETTINGS
from aura.errors import AuraError, UsageError
from aura.executors import registry

if TYPE_CHECKING:
    from aura.service.models import ServerModels

MODEL_EXECUTORS = registry.MODEL_EXECUTORS


@click.command("models", context_settings=CONTEXT_SETTINGS)
@click.option("--executor", "-e", metavar="ollama|lms|custom",
              shell_complete=complete_model_executor,
              help="Only this server (default: ollama and lms; custom with --openai-endpoint).")
@click.option("--openai-endpoint", metavar="URL", help="The server to ask (custom, ollama, lms).")
@click.option("--refresh-model-cache", is_flag=True,
              help="Ask the servers again instead of using the 24 h cache.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per server.")
@click.option("--on", "on", metavar="WORKER",
              help="Ask the model servers this remote worker reaches.")
@click.option("--coordinator", metavar="URL", help="Coordinator address (with --on).")
def models_command(executor: str | None, openai_endpoint: str | None,
                   refresh_model_cache: bool, as_json: bool, on: str | None,
                   coordinator: str | None) -> None:
    """Models offered by ollama, LM Studio or an OpenAI-compatible endpoint."""
    import asyncio

    if executor is not None:
        name = registry.canonical(executor)
        if name not in MODEL_EXECUTORS:
            raise UsageError(f"--executor {executor}: `aura models` knows "
                             f"{', '.join(MODEL_EXECUTORS)}")
        names = [name]
    else:
        names = ["custom"] if openai_endpoint else ["ollama", "lms"]
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if on is not None:
        results = _on_worker(on, coordinator, executor and names[0], openai_endpoint,
                             refresh_model_cache)
    else:
        if coordinator is not None:
            raise UsageError("--coordinator goes with --on WORKER")
        results = asyncio.run(_gather(names, openai_endpoint, refresh_model_cache,
                                      interactive))
    if as_json:
        from aura.cli.render import json_text
        from aura.cli.wording import iso_utc

        # Times in aura's JSON are ISO-8601 UTC (the listing itself keeps epoch seconds).
        click.echo(json_text([dict(r.to_json(), fetched_at=iso_utc(r.fetched_at))
                              for r in results]))
    else:
        _print(results)
    failures = [r.error for r in results if r.error]
    if len(failures) == len(results):
        if len(results) == 1:
            raise AuraError(failures[0])
        raise AuraError("no model server answered; start ollama (`ollama serve`) or LM "
                        "Studio (`lms server start`), or pass --openai-endpoint URL")


async def _gather(names: list[str], endpoint: str | None, refresh: bool,
                  interactive: bool) -> list[ServerModels]:
    from aura.cli.pickers import TerminalAsker
    from aura.service.models import list_models

    results = []
    for name in names:
        found = await list_models(name, endpoint=endpoint, refresh=refresh,
                                  asker=TerminalAsker() if interactive else None)
        if found is None:  # only custom has no list: its endpoint is unknown
            raise UsageError(f"--executor {name} needs --openai-endpoint URL")
        results.append(found)
    return results


def _on_worker(on: str, coordinator: str | None, executor: str | None,
               endpoint: str | None, refresh: bool) -> list[ServerModels]:
    from aura.remote.client import models_on
    from aura.service.models import ServerModels

    params: dict[str, object] = {"refresh": refresh}
    if executor:
        params["executor"] = executor
    if endpoint:
        params["endpoint"] = endpoint
    fields = set(ServerModels.__dataclass_fields__)
    try:
        return [ServerModels(**{k: v for k, v in item.items() if k in fields})
                for item in models_on(coordinator, on, params)]
    except (TypeError, AttributeError):
        raise AuraError(f"worker {on} sent a malformed model listing") from None


def _print(results: list[ServerModels]) -> None:
    from aura.cli.render import Painter, terminal_text, terminal_width, use_color
    from aura.cli.wording import ago, iso_utc

    paint = Painter(use_color(sys.stdout))
    width = terminal_width()

    def fit(text: str) -> str:  # a model's name or an endpoint: cut, not wrapped
        text = terminal_text(text)
        return text if width is None or len(text) <= width else text[:width - 1] + "…"

    for found in results:
        result, hint = found.to_json(), found.hint
        endpoint = fit(f"{result['executor']}  {result['endpoint']}")[len(result['executor']):]
        head = f"{paint(result['executor'], 'bold')}{endpoint}"
        room = None if width is None else width - len(result["executor"]) - len(endpoint) - 2
        if result["error"]:
            click.echo(_after(head, paint("unavailable", "red"), "unavailable", room))
            if len(results) > 1:  # a single failure is the command's error line
                click.echo(f"aura: {result['executor']}: {result['error']}", err=True)
            continue
        count = len(result["models"])
        status = f"{count} model{'s' if count != 1 else ''}"
        if result["cached"]:
            age = ago(iso_utc(result["fetched_at"]))
            status += f", cached {age} (--refresh-model-cache to ask again)"
        click.echo(_after(head, paint(_cut(status, room), "dim"), _cut(status, room), room))
        if result["note"]:
            click.echo(f"aura: {result['executor']}: {result['note']}; showing the cached "
                       "list", err=True)
        for model in result["models"]:
            click.echo(fit(f"  {model}"))
        if hint:
            click.echo(f"aura: {result['executor']}: {hint}", err=True)


def _cut(text: str, room: int | None) -> str:
    """What follows a server's endpoint, cut to the room left (left out without any)."""
    if room is None or len(text) <= room:
        return text
    return text[:room - 1] + "…" if room > 8 else ""


def _after(head: str, painted: str, plain: str, room: int | None) -> str:
    return f"{head}  {painted}" if plain and (room is None or len(plain) <= room) else head
