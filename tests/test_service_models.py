"""aura.service.models against a real fake OpenAI server on 127.0.0.1: listing, the cache
said as such, refresh, an unreachable server, the custom endpoint from the caller, the
config or the Asker, and executors without a model list."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura.errors import UsageError
from aura.paths import config_path
from aura.service.models import ServerModels, list_models

from .openai_server import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


class EndpointAnswer:
    """A person who answers the endpoint question with ``url`` (and chooses the first)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.asked = 0

    async def choose(self, title: str, options: list[str]) -> str:
        return options[0]

    async def endpoint(self) -> str:
        self.asked += 1
        return self.url


def listed(name: str, endpoint: str | None = None, refresh: bool = False,
           asker: EndpointAnswer | None = None) -> ServerModels | None:
    return asyncio.run(list_models(name, endpoint=endpoint, refresh=refresh, asker=asker))


def test_lists_then_answers_from_the_cache_then_refreshes(server: FakeOpenAI) -> None:
    first = listed("lms", endpoint=server.root)
    assert first is not None
    assert (first.executor, first.endpoint) == ("lms", server.url)
    assert first.models == ["alpha-model", "beta-model", "gamma-model"]
    assert not first.cached and first.error is None and first.hint == ""
    server.models = ["delta-model"]
    second = listed("lms", endpoint=server.root)
    assert second is not None and second.cached and second.models == first.models
    assert server.model_requests == 1
    third = listed("lms", endpoint=server.root, refresh=True)
    assert third is not None and third.models == ["delta-model"] and not third.cached
    assert server.model_requests == 2
    assert third.to_json() == {"executor": "lms", "endpoint": server.url,
                               "models": ["delta-model"], "cached": False,
                               "fetched_at": third.fetched_at, "note": None, "error": None}


def test_a_server_that_fails_is_an_error_unless_the_cache_answers(server: FakeOpenAI) -> None:
    assert listed("custom", endpoint=server.url) is not None
    server.models_status = 503
    down = listed("custom", endpoint=server.url, refresh=True)
    assert down is not None and down.cached and down.models[0] == "alpha-model"
    assert down.note is not None and "HTTP 503" in down.note
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = listed("custom", endpoint=f"http://127.0.0.1:{port}/v1")
    assert gone is not None and gone.models == [] and gone.fetched_at is None
    assert gone.error is not None and "cannot reach" in gone.error


def test_an_empty_list_comes_with_a_hint(server: FakeOpenAI) -> None:
    server.models = []
    found = listed("ollama", endpoint=server.root)
    assert found is not None and found.models == [] and found.error is None
    assert found.hint


def test_the_custom_endpoint_comes_from_the_caller_the_config_or_the_asker(
        server: FakeOpenAI) -> None:
    assert listed("custom") is None  # nobody to ask: nothing to list
    person = EndpointAnswer(server.url)
    asked = listed("custom", asker=person)
    assert person.asked == 1 and asked is not None and asked.endpoint == server.url
    assert asked.models == ["alpha-model", "beta-model", "gamma-model"]
    given = listed("custom", endpoint=server.url, asker=person)
    assert person.asked == 1 and given is not None and given.cached
    path: Path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[executors.custom]\nendpoint = "{server.url}"\n')
    configured = listed("custom", asker=person)
    assert person.asked == 1 and configured is not None and configured.endpoint == server.url


def test_agent_clis_have_no_model_list_and_a_bad_url_is_a_usage_error() -> None:
    assert listed("codex") is None
    assert listed("claude", endpoint="http://127.0.0.1:1/v1") is None
    with pytest.raises(UsageError):
        listed("custom", endpoint="ftp://nowhere")
