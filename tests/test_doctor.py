"""`aura doctor`: real files, a real database, real sockets, real binaries on PATH."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from aura.contracts import Session, State, Transition
from aura.store_sqlite import SQLiteStore

from .conftest import run_aura, write_agent


def report(*env_pairs: tuple[str, str]) -> tuple[int, dict]:
    result = run_aura("doctor", "--json", env=dict(env_pairs))
    return result.returncode, json.loads(result.stdout)


def by_name(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["checks"]}


def test_a_fresh_machine_is_healthy(aura_home: Path) -> None:
    code, data = report()
    assert code == 0 and data["ok"] is True
    checks = by_name(data)
    assert checks["python"]["data"]["version"].startswith(f"{sys.version_info[0]}.")
    assert checks["data"]["data"]["path"] == str(aura_home)
    assert checks["database"]["data"]["exists"] is False
    assert checks["custom"]["status"] == "ok"
    assert checks["coordinator"]["data"]["url"] is None


def test_human_output_lists_every_check(aura_home: Path) -> None:
    result = run_aura("doctor")
    assert result.returncode == 0
    for word in ("python", "database", "custom", "claude", "coordinator", "0 error(s)"):
        assert word in result.stdout


def test_database_health_size_and_sessions(aura_home: Path) -> None:
    store = SQLiteStore(aura_home / "aura.db")
    at = "2026-11-25T10:00:00.000Z"
    store.create_session(Session(id="s1", executor="custom", state="queued", cwd="/",
                                 created_at=at, updated_at=at))
    store.record_transition(Transition("s1", None, State.QUEUED.value, at, "created"))
    store.close()
    code, data = report()
    db = by_name(data)["database"]
    assert code == 0 and db["status"] == "ok"
    assert db["data"]["integrity"] == ["ok"]
    assert db["data"]["sessions"] == 1
    assert db["data"]["size_bytes"] > 0


def test_a_corrupt_database_is_an_error_with_its_fix(aura_home: Path) -> None:
    (aura_home / "aura.db").write_bytes(b"this is not a database" * 100)
    code, data = report()
    db = by_name(data)["database"]
    assert code == 1 and data["ok"] is False
    assert db["status"] == "error"
    assert f"mv {aura_home / 'aura.db'}" in db["fix"]
    human = run_aura("doctor")
    assert human.returncode == 1 and "fix:" in human.stdout


def test_a_broken_config_is_an_error_with_its_fix(aura_home: Path) -> None:
    (aura_home / "config.toml").write_text("this = = broken\n")
    code, data = report()
    cfg = by_name(data)["config file"]
    assert code == 1 and cfg["status"] == "error"
    assert "config.toml" in cfg["fix"]


def test_a_configured_executor_path_that_is_gone(aura_home: Path) -> None:
    (aura_home / "config.toml").write_text('[executor_paths]\ncustom = "/nonexistent/agent"\n')
    code, data = report()
    check = by_name(data)["custom"]
    assert code == 1 and check["status"] == "error"
    assert "--executor-path custom=" in check["fix"]


def test_coordinator_reachable_and_unreachable(aura_home: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        code, data = report(("AURA_COORDINATOR", f"ws://127.0.0.1:{port}"))
        assert code == 0
        assert by_name(data)["coordinator"]["data"]["reachable"] is True
    finally:
        listener.close()
    code, data = report(("AURA_COORDINATOR", f"ws://127.0.0.1:{port}"))
    check = by_name(data)["coordinator"]
    assert code == 1 and check["status"] == "error"
    assert f"aura serve --listen 127.0.0.1:{port}" in check["fix"]
    code, data = report(("AURA_COORDINATOR", "ftp://x"))
    assert code == 1 and "ws://" in by_name(data)["coordinator"]["detail"]


def test_an_installed_agent_reports_its_path_and_version(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = write_agent(bin_dir / "claude",
                         [f"#!{sys.executable}", "print('2.0.1 (Claude Code)')"])
    binary.chmod(0o755)
    _code, data = report(("PATH", str(bin_dir)))
    check = by_name(data)["claude"]
    assert check["status"] == "ok"
    assert check["data"]["path"] == str(binary)
    assert check["data"]["version"] == "2.0.1 (Claude Code)"
    assert "2.0.1" in check["detail"]


def test_a_missing_agent_is_a_warning_naming_the_fix(tmp_path: Path) -> None:
    code, data = report(("PATH", str(tmp_path)))  # neither the agents nor npx
    check = by_name(data)["claude"]
    assert code == 0  # a missing agent is not an error: not everyone uses every agent
    assert check["status"] == "warn"
    assert "--executor-path claude=/path/to/claude" in check["fix"]


def test_model_servers_are_asked_reachable_and_down(aura_home: Path) -> None:
    from .openai_server import FakeOpenAI

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    config = aura_home / "config.toml"
    config.write_text(f'[executors.lms]\nendpoint = "http://127.0.0.1:{port}"\n')
    with FakeOpenAI() as server:
        code, data = report(("OLLAMA_HOST", server.root), ("AURA_CONFIG", str(config)))
        asked = server.model_requests
    checks = by_name(data)
    assert code == 0  # a server that is down is a warning, not an error
    assert checks["ollama"]["status"] == "ok"
    assert checks["ollama"]["data"]["server"] == {"url": server.root, "reachable": True,
                                                  "error": None}
    assert asked >= 1  # the server was really asked, not assumed
    assert checks["lms"]["status"] == "warn"
    assert checks["lms"]["data"]["server"]["reachable"] is False
    assert "down (connection refused)" in checks["lms"]["detail"]
    assert "lms server start" in checks["lms"]["fix"]


def test_doctor_in_a_fresh_home_creates_no_database(aura_home: Path) -> None:
    result = run_aura("doctor")
    assert result.returncode == 0, result.stderr
    assert not (aura_home / "aura.db").exists()
    assert "not created yet" in result.stdout


def test_one_session_is_said_in_the_singular(aura_home: Path) -> None:
    store = SQLiteStore(aura_home / "aura.db")
    at = "2026-11-25T10:00:00.000Z"
    store.create_session(Session(id="s1", executor="custom", state="queued", cwd="/",
                                 created_at=at, updated_at=at))
    store.close()
    text = run_aura("doctor").stdout
    assert ", 1 session, schema" in text
    assert "1 sessions" not in text
