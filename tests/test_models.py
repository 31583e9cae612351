"""Model discovery: the 24 h cache (fresh, refreshed, stale, unreachable server), and the
questionary pickers driven through prompt_toolkit's pipe input."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from aura.cli.pickers import ask_endpoint, pick_model
from aura.errors import ExecutorError
from aura.executors.openai import models
from aura.executors.openai.models import CACHE_TTL, discover, read_cache

ENDPOINT = "http://127.0.0.1:1234/v1"


class Server:
    """A fetch function that counts calls and can be made unreachable."""

    def __init__(self, found: list[str]) -> None:
        self.found = found
        self.calls = 0
        self.down = False

    async def __call__(self) -> list[str]:
        self.calls += 1
        if self.down:
            raise ExecutorError("cannot reach LM Studio (connection refused)")
        return list(self.found)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_fresh_cache_answers_without_asking(aura_home: Path) -> None:
    server = Server(["a", "b"])
    first = run(discover("lms", ENDPOINT, server))
    assert (first.models, first.cached, server.calls) == (["a", "b"], False, 1)
    server.found = ["c"]
    again = run(discover("lms", ENDPOINT, server))
    assert (again.models, again.cached, server.calls) == (["a", "b"], True, 1)
    # The cache lives in the cache dir, one file per executor and endpoint.
    files = list((aura_home / "cache" / "models").glob("lms-*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["endpoint"] == ENDPOINT
    assert run(discover("lms", "http://other:1/v1", server)).models == ["c"]
    assert run(discover("ollama", ENDPOINT, server)).models == ["c"]


def test_refresh_asks_again() -> None:
    server = Server(["a"])
    run(discover("lms", ENDPOINT, server))
    server.found = ["a", "new"]
    listing = run(discover("lms", ENDPOINT, server, refresh=True))
    assert (listing.models, listing.cached, server.calls) == (["a", "new"], False, 2)
    assert read_cache("lms", ENDPOINT).models == ["a", "new"]  # type: ignore[union-attr]


def test_unreachable_server_with_fresh_cache_lists_the_cache() -> None:
    server = Server(["a", "b"])
    run(discover("lms", ENDPOINT, server))
    server.down = True
    listing = run(discover("lms", ENDPOINT, server, refresh=True))
    assert listing.models == ["a", "b"]
    assert listing.cached
    assert "connection refused" in (listing.note or "")


def test_stale_cache_is_not_used() -> None:
    server = Server(["a"])
    run(discover("lms", ENDPOINT, server, now=time.time() - CACHE_TTL - 60))
    server.found = ["b"]
    assert run(discover("lms", ENDPOINT, server)).models == ["b"]
    run(discover("lms", ENDPOINT, server, now=time.time() - CACHE_TTL - 60))
    server.down = True
    with pytest.raises(ExecutorError, match="connection refused"):
        run(discover("lms", ENDPOINT, server))


def test_empty_lists_and_broken_files_are_not_cached(aura_home: Path) -> None:
    server = Server([])
    assert run(discover("lms", ENDPOINT, server)).models == []
    assert read_cache("lms", ENDPOINT) is None
    models.cache_file("lms", ENDPOINT).parent.mkdir(parents=True, exist_ok=True)
    models.cache_file("lms", ENDPOINT).write_text("{not json")
    server.found = ["x"]
    assert run(discover("lms", ENDPOINT, server)).models == ["x"]


# pickers ---------------------------------------------------------------------------------

def ask_with_keys(keys: str, coro_factory):  # type: ignore[no-untyped-def]
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    async def main():  # type: ignore[no-untyped-def]
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            return await coro_factory(pipe, DummyOutput())

    return asyncio.run(main())


def test_picker_defaults_to_the_first_model() -> None:
    answer = ask_with_keys("\r", lambda i, o: pick_model(
        ["alpha", "beta", "gamma"], title="Model", interactive=True, input=i, output=o))
    assert answer == "alpha"


def test_picker_moves_down() -> None:
    answer = ask_with_keys("\x1b[B\x1b[B\r", lambda i, o: pick_model(
        ["alpha", "beta", "gamma"], title="Model", interactive=True, input=i, output=o))
    assert answer == "gamma"


def test_picker_ctrl_c_cancels() -> None:
    with pytest.raises(asyncio.CancelledError):
        ask_with_keys("\x03", lambda i, o: pick_model(
            ["alpha", "beta"], title="Model", interactive=True, input=i, output=o))


def test_no_terminal_takes_the_first_without_asking() -> None:
    assert asyncio.run(pick_model(["alpha", "beta"], title="M", interactive=False)) == "alpha"


def test_endpoint_prompt_takes_the_placeholder_or_the_typed_url() -> None:
    assert ask_with_keys("\r", lambda i, o: ask_endpoint(input=i, output=o)) == \
        "http://127.0.0.1:8000/v1"
    typed = ask_with_keys("http://10.0.0.5:9000/v1\r",
                          lambda i, o: ask_endpoint(input=i, output=o))
    assert typed == "http://10.0.0.5:9000/v1"
