"""The interactive pickers (questionary): which model, which endpoint. `TerminalAsker` is
what `aura run` on a terminal hands to executors as ``RunRequest.asker``.

questionary / prompt_toolkit are imported inside the functions that use them: they are
slow to import and `aura --help` must not pay for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from aura.errors import AuraError
from aura.executors.openai.http import api_base
from aura.executors.openai.models import DEFAULT_CUSTOM_ENDPOINT


class TerminalAsker:
    """Asks the person at this terminal (see ``aura.executors.base.Asker``). ``ticker``:
    the plain view's progress line, cleared and paused while a question owns the screen."""

    def __init__(self) -> None:
        self.ticker: Any = None

    async def choose(self, title: str, options: list[str]) -> str:
        with self._screen():
            return await pick_model(options, title=title, interactive=True)

    async def endpoint(self) -> str:
        with self._screen():
            return await ask_endpoint()

    @contextlib.contextmanager
    def _screen(self) -> Iterator[None]:
        ticker = self.ticker
        if ticker is not None:
            ticker.clear()
            ticker.paused = True
        try:
            yield
        finally:
            if ticker is not None:
                ticker.paused = False


async def pick_model(models: list[str], *, title: str, interactive: bool,
                     input: Any = None, output: Any = None) -> str:
    """The model to use: asked on a terminal (first preselected), else the first.
    ``input``/``output`` are prompt_toolkit objects (tests drive the picker with them).
    Ctrl-C in the picker cancels the turn."""
    if not models:
        raise ValueError("no models to pick from")
    if not interactive:
        return models[0]
    import questionary

    question = questionary.select(title, choices=models, default=models[0],
                                  input=input, output=output)
    return str(await _answer(question))


async def ask_endpoint(*, input: Any = None, output: Any = None,
                       placeholder: str = DEFAULT_CUSTOM_ENDPOINT) -> str:
    """Ask for an OpenAI-compatible endpoint URL; Enter on an empty line takes the
    placeholder."""
    import questionary
    from prompt_toolkit.formatted_text import FormattedText

    def valid(text: str) -> bool | str:
        if not text.strip():
            return True
        try:
            api_base(text)
        except AuraError as exc:
            return str(exc)
        return True

    question = questionary.text(
        "OpenAI-compatible endpoint (Enter for the example):", validate=valid,
        placeholder=FormattedText([("class:placeholder fg:ansibrightblack", placeholder)]),
        input=input, output=output)
    answer: str = await _answer(question)
    return answer.strip() or placeholder


async def _answer(question: Any) -> Any:
    """The user's answer; Ctrl-C (or no answer) in a question cancels the turn."""
    try:
        answer = await question.unsafe_ask_async(patch_stdout=False)
    except KeyboardInterrupt:
        raise asyncio.CancelledError from None
    if answer is None:
        raise asyncio.CancelledError
    return answer
