"""`aura models`: listing, JSON, the cache said as such, refresh, unreachable servers."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest

from .conftest import run_aura
from .openai_server import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_lists_then_says_cached_then_refreshes(server: FakeOpenAI) -> None:
    args = ("models", "--executor", "lms", "--openai-endpoint", server.root)
    first = run_aura(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"lms  {server.url}  3 models", "  alpha-model", "  beta-model", "  gamma-model"]
    assert server.model_requests == 1
    server.models = ["delta-model"]
    second = run_aura(*args)
    assert "cached just now" in second.stdout
    narrow = run_aura(*args, env={"COLUMNS": "40"}).stdout.splitlines()
    assert narrow[0].startswith("lms  ") and all(len(line) <= 40 for line in narrow), narrow
    assert "alpha-model" in second.stdout and server.model_requests == 1
    third = run_aura(*args, "--refresh-model-cache", "--json")
    data = json.loads(third.stdout)
    assert data == [{"executor": "lms", "endpoint": server.url, "models": ["delta-model"],
                     "cached": False, "fetched_at": data[0]["fetched_at"], "note": None,
                     "error": None}]
    # aura's JSON says times in ISO-8601 UTC, never epoch seconds.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data[0]["fetched_at"])
    assert server.model_requests == 2


def test_unreachable_server_with_fresh_cache(server: FakeOpenAI) -> None:
    args = ("models", "--executor", "custom", "--openai-endpoint", server.url)
    assert run_aura(*args).returncode == 0
    server.models_status = 503
    down = run_aura(*args, "--refresh-model-cache")
    assert down.returncode == 0, down.stderr
    assert "alpha-model" in down.stdout and "cached" in down.stdout
    assert "HTTP 503" in down.stderr and "showing the cached list" in down.stderr


def test_ollama_models_from_api_tags(server: FakeOpenAI) -> None:
    result = run_aura("models", "--executor", "ollama", "--json",
                      env={"OLLAMA_HOST": f"http://127.0.0.1:{server.port}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["models"] == ["alpha-model", "beta-model",
                                                      "gamma-model"]


def test_nothing_reachable_is_one_error_line() -> None:
    port = free_port()
    single = run_aura("models", "--executor", "ollama",
                      env={"OLLAMA_HOST": f"127.0.0.1:{port}"})
    assert single.returncode == 1
    assert single.stderr.count("aura: error:") == 1
    assert "ollama serve" in single.stderr
    both = run_aura("models", env={"OLLAMA_HOST": f"127.0.0.1:{port}"},
                    cwd=None)
    # LM Studio's default port may or may not answer on this machine; ollama cannot.
    assert "ollama" in both.stdout
    assert "unavailable" in both.stdout


def test_bad_executor_and_missing_endpoint() -> None:
    assert run_aura("models", "--executor", "codex").returncode == 2
    missing = run_aura("models", "--executor", "custom")
    assert missing.returncode == 2
    assert "--openai-endpoint" in missing.stderr
