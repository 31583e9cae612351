"""Endpoint models on workers: a worker with no vendor CLI on its PATH offers ollama, lms
and the custom OpenAI-compatible endpoint (they need only reach to the server, here the
worker's own 127.0.0.1), and `aura run --on W` against the fake OpenAI server streams and
stores like a local run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .openai_server import FakeOpenAI
from .remote_cluster import Cluster, json_lines


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.start_coordinator()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # No vendor CLI, no npx: only the endpoint executors can be offered.
    c.start_worker("gpu1", allow_command=False, env={"PATH": str(empty)})
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_a_worker_without_vendor_clis_offers_the_endpoint_executors(cluster: Cluster) -> None:
    (worker,) = cluster.workers()
    assert sorted(worker["executors"]) == ["custom", "lms", "ollama"]


@pytest.mark.parametrize("executor", ["lms", "ollama", "custom"])
def test_an_endpoint_run_on_a_worker_streams_and_stores_like_a_local_run(
        cluster: Cluster, server: FakeOpenAI, executor: str) -> None:
    done = cluster.aura("run", "--on", "gpu1", "--coordinator", cluster.url,
                        "--executor", executor, "--openai-endpoint", server.url,
                        "--model", "beta-model", "--prompt", "hello over there", "--json")
    assert done.returncode == 0, done.stderr
    printed = json_lines(done.stdout)
    summary = printed[-1]
    assert summary["state"] == "done" and summary["exit_code"] == 0
    assert server.requests[-1]["model"] == "beta-model"
    assert server.requests[-1]["messages"][-1]["content"] == "hello over there"
    stored = cluster.stored(summary["session"])
    assert stored["executor"] == executor
    entries = stored["entries"]
    assert [e["seq"] for e in printed[:-1]] == [e["seq"] for e in entries]
    finals = [e for e in entries if e["kind"] == "assistant_message" and not e.get("delta")]
    assert [e["text"] for e in finals] == ["You said: hello over there"]
    assert any(e.get("delta") for e in entries)  # streamed as it came


def test_a_command_run_is_still_refused_without_allow_command(cluster: Cluster) -> None:
    done = cluster.run_on("gpu1", "echo hi")
    assert done.returncode != 0
    assert "refuses --base-command" in done.stderr


def test_workers_show_the_model_servers_a_worker_reaches_and_models_on_lists_them(
        tmp_path: Path, server: FakeOpenAI) -> None:
    c = Cluster(tmp_path / "probe")
    try:
        c.start_coordinator()
        # This worker's lms is the fake server; its ollama points at a closed port.
        home = c.root / "gpu2-home"
        home.mkdir(parents=True)
        (home / "config.toml").write_text(
            f'[executors.lms]\nendpoint = "{server.url}"\n'
            '[executors.ollama]\nendpoint = "http://127.0.0.1:9"\n')
        c.start_worker("gpu2", allow_command=False)
        (worker,) = c.workers()
        servers = worker["model_servers"]
        assert servers["lms"] == {"endpoint": servers["lms"]["endpoint"], "reachable": True,
                                  "models": 3}
        assert servers["ollama"]["reachable"] is False
        table = c.aura("workers", "--coordinator", c.url)
        assert table.returncode == 0 and "MODEL SERVERS" in table.stdout
        assert "lms(3)" in table.stdout and "ollama(" not in table.stdout

        listed = c.aura("models", "--on", "gpu2", "--coordinator", c.url, "--executor", "lms",
                        "--json")
        assert listed.returncode == 0, listed.stderr
        (lms,) = json.loads(listed.stdout)
        assert lms["models"] == ["alpha-model", "beta-model", "gamma-model"]
        plain = c.aura("models", "--on", "gpu2", "--coordinator", c.url)
        assert plain.returncode == 0, plain.stderr  # lms answers, ollama does not
        assert "beta-model" in plain.stdout and "unavailable" in plain.stdout
        missing = c.aura("models", "--on", "nobody", "--coordinator", c.url)
        assert missing.returncode != 0 and "nobody" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1
    finally:
        c.close()
