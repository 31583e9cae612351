"""`aura models`: the models local servers and OpenAI-compatible endpoints offer.

Lists are discovered through the 24 h cache of ``aura.executors.models`` (the same one the
picker of `aura run` uses) and say when they come from it. Without --executor, ollama and
LM Studio are both asked (or the custom endpoint alone when --openai-endpoint is given);
the command fails only when none of them answers.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.output import CONTEXT_SETTINGS
from aura.errors import AuraError, UsageError

MODEL_EXECUTORS = ("ollama", "lms", "custom")


@click.command("models", context_settings=CONTEXT_SETTINGS)
@click.option("--executor", "-e", metavar="ollama|lms|custom",
              help="Only this server (default: ollama and lms; custom with --openai-endpoint).")
@click.option("--openai-endpoint", metavar="URL", help="The server to ask (custom, ollama, lms).")
@click.option("--refresh-model-cache", is_flag=True,
              help="Ask the servers again instead of using the 24 h cache.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per server.")
def models_command(executor: str | None, openai_endpoint: str | None,
                   refresh_model_cache: bool, as_json: bool) -> None:
    """Models offered by ollama, LM Studio or an OpenAI-compatible endpoint."""
    import asyncio

    from aura.executors import registry

    if executor is not None:
        name = registry.canonical(executor)
        if name not in MODEL_EXECUTORS:
            raise UsageError(f"--executor {executor}: `aura models` knows "
                             f"{', '.join(MODEL_EXECUTORS)}")
        names = [name]
    else:
        names = ["custom"] if openai_endpoint else ["ollama", "lms"]
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    results = asyncio.run(_gather(names, openai_endpoint, refresh_model_cache, interactive))
    if as_json:
        import json

        click.echo(json.dumps([r for r, _ in results], ensure_ascii=False, indent=2))
    else:
        _print(results)
    failures = [r for r, _ in results if r["error"]]
    if len(failures) == len(results):
        if len(results) == 1:
            raise AuraError(failures[0]["error"])
        raise AuraError("no model server answered; start ollama (`ollama serve`) or LM "
                        "Studio (`lms server start`), or pass --openai-endpoint URL")


async def _gather(names: list[str], endpoint: str | None, refresh: bool,
                  interactive: bool) -> list[tuple[dict[str, Any], str]]:
    results = []
    for name in names:
        results.append(await _one(name, endpoint, refresh, interactive))
    return results


async def _one(name: str, endpoint: str | None, refresh: bool, interactive: bool
               ) -> tuple[dict[str, Any], str]:
    """(JSON object, hint when empty) for one server."""
    from aura import config as config_module
    from aura.cli.pickers import TerminalAsker
    from aura.executors import registry
    from aura.executors.base import RunRequest

    settings = config_module.executor_settings(config_module.load(), name)
    executor: Any = registry.load(name)()
    if name == "custom":
        # `custom` is the command executor with --base-command; here, the endpoint one.
        from aura.executors.endpoint import CustomEndpointExecutor

        executor = CustomEndpointExecutor()
        if not (endpoint or settings.get("endpoint")):
            if not interactive:
                raise UsageError("--executor custom needs --openai-endpoint URL")
            endpoint = await TerminalAsker().endpoint()
    request = RunRequest(prompt="", cwd=".", session_id="", execution_id="",
                         openai_endpoint=endpoint, settings=settings,
                         refresh_model_cache=refresh,
                         asker=TerminalAsker() if interactive else None)
    base = executor.base_url(request)
    result: dict[str, Any] = {"executor": name, "endpoint": executor.where(base), "models": [],
                              "cached": False, "fetched_at": None, "note": None,
                              "error": None}
    try:
        listing = await executor.model_listing(request, base)
    except AuraError as exc:
        result["error"] = str(exc)
        return result, ""
    result.update(listing.to_json())
    result["endpoint"] = executor.where(base)
    return result, "" if listing.models else executor.no_models_hint(base)


def _print(results: list[tuple[dict[str, Any], str]]) -> None:
    import time

    from aura.cli.render import Painter, use_color
    from aura.executors.openai.models import describe_age

    paint = Painter(use_color(sys.stdout))
    for result, hint in results:
        head = f"{paint(result['executor'], 'bold')}  {result['endpoint']}"
        if result["error"]:
            click.echo(f"{head}  {paint('unavailable', 'red')}")
            if len(results) > 1:  # a single failure is the command's error line
                click.echo(f"aura: {result['executor']}: {result['error']}", err=True)
            continue
        count = len(result["models"])
        status = f"{count} model{'s' if count != 1 else ''}"
        if result["cached"]:
            age = describe_age(time.time() - result["fetched_at"])
            status += f", cached {age} (--refresh-model-cache to ask again)"
        click.echo(f"{head}  {paint(status, 'dim')}")
        if result["note"]:
            click.echo(f"aura: {result['executor']}: {result['note']}; showing the cached "
                       "list", err=True)
        for model in result["models"]:
            click.echo(f"  {model}")
        if hint:
            click.echo(f"aura: {result['executor']}: {hint}", err=True)
