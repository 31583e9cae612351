"""Secrets at rest: aura's files are private whatever the umask, a token file others can
read is refused, and a --secret-var value is given to the agent but stored nowhere (the
local database, a worker's spool, the coordinator's database)."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import run_aura
from .remote_cluster import Cluster, json_lines, wait_for

# The agent shows how long the secret is, never the secret itself.
SHOW_LENGTH = ["--executor", "custom", "--base-command", "sh", "--param", "-lc",
               "--param", 'printf "len=%s plain=%s\\n" "${#API_KEY}" "$PLAIN"', "--no-tui"]


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def all_bytes(home: Path) -> bytes:
    """Every file under ``home`` (databases with their -wal and -shm, relay.json…)."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_the_database_its_log_and_its_directory_are_private(tmp_path: Path, mask: int
                                                             ) -> None:
    home = tmp_path / "new" / "home"
    with umask(mask):
        done = run_aura("run", "--prompt", "x", *SHOW_LENGTH, env={"AURA_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    files = [p for p in home.iterdir() if p.name.startswith("aura.db")]
    assert {p.name for p in files} >= {"aura.db"}
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(home) == mode(home.parent) == 0o700


def test_an_existing_world_readable_database_is_made_private(aura_home: Path) -> None:
    db = aura_home / "aura.db"
    assert run_aura("run", "--prompt", "x", *SHOW_LENGTH).returncode == 0
    for path in aura_home.glob("aura.db*"):
        path.chmod(0o644)
    assert run_aura("session", "list").returncode == 0
    assert mode(db) == 0o600
    assert all(mode(p) == 0o600 for p in aura_home.glob("aura.db*"))


def test_a_secret_var_reaches_the_agent_and_is_stored_nowhere(aura_home: Path) -> None:
    secret = "sk-" + secrets.token_hex(20)
    first = run_aura("run", "--prompt", "x", *SHOW_LENGTH, "--var", "PLAIN=kept",
                     "--secret-var", f"API_KEY={secret}")
    assert first.returncode == 0, first.stderr
    assert f"len={len(secret)} plain=kept" in first.stdout
    assert secret.encode() not in all_bytes(aura_home)
    shown = json.loads(run_aura("session", "latest", "--json").stdout)
    assert shown["options"]["vars"] == {"PLAIN": "kept"}
    assert shown["options"]["secret_vars"] == ["API_KEY"]
    session = shown["id"]

    # A follow-up reads it again from the environment, and refuses when it is not there
    # (before recording anything).
    again = run_aura("run", "--session", session, "--prompt", "y", "--no-tui",
                     env={"API_KEY": "abc"})
    assert again.returncode == 0, again.stderr
    assert "len=3 plain=kept" in again.stdout
    missing = run_aura("run", "--session", session, "--prompt", "z", "--no-tui")
    assert missing.returncode == 2
    assert missing.stderr.count("aura: error:") == 1
    assert "API_KEY" in missing.stderr and "not stored" in missing.stderr
    assert secret.encode() not in all_bytes(aura_home)


def test_a_secret_var_named_alone_takes_its_value_from_the_environment(aura_home: Path
                                                                       ) -> None:
    secret = "env-" + secrets.token_hex(16)
    done = run_aura("run", "--prompt", "x", *SHOW_LENGTH, "--secret-var", "API_KEY",
                    env={"API_KEY": secret})
    assert done.returncode == 0, done.stderr
    assert f"len={len(secret)}" in done.stdout
    assert secret.encode() not in all_bytes(aura_home)
    unset = run_aura("run", "--prompt", "x", *SHOW_LENGTH, "--secret-var", "NOT_SET_HERE")
    assert unset.returncode == 2 and "NOT_SET_HERE" in unset.stderr
    assert unset.stderr.count("aura: error:") == 1


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o644)
    shared = run_aura("workers", "--coordinator", "ws://127.0.0.1:9", "--token-file",
                      str(token))
    assert shared.returncode == 2
    assert shared.stderr.strip().splitlines() == [
        f"aura: error: --token-file {token} can be read by others (mode 644); run "
        f"`chmod 600 {token}` and use a new token"]
    token.chmod(0o600)
    private = run_aura("workers", "--coordinator", "ws://127.0.0.1:9", "--token-file",
                       str(token))
    assert "cannot reach the coordinator" in private.stderr  # the token was accepted


@pytest.mark.slow
def test_remote_secret_is_in_no_spool_or_coordinator_db_and_files_are_private(
        tmp_path: Path) -> None:
    secret = "remote-" + secrets.token_hex(16)
    cluster = Cluster(tmp_path)
    try:
        with umask(0o022):
            cluster.start_coordinator()
            cluster.start_worker("w1")
        done = cluster.run_on("w1", "sh", "--param", "-lc", "--param",
                              'echo "len=${#API_KEY}"', "--secret-var", f"API_KEY={secret}")
        assert done.returncode == 0, done.stderr
        summary = json_lines(done.stdout)[-1]
        assert any(e.get("text") == f"len={len(secret)}" for e in json_lines(done.stdout))
        stored = cluster.stored(summary["session"])
        assert stored["options"]["secret_vars"] == ["API_KEY"]
        worker_home = tmp_path / "w1-home"
        wait_for(lambda: list(worker_home.rglob("relay.json")), 10, "relay.json written")
        for home in (cluster.coord_home, worker_home, cluster.client_home):
            assert secret.encode() not in all_bytes(home), home
        spool_dir = next(worker_home.rglob("relay.json")).parent
        files = [*spool_dir.glob("spool.db*"), spool_dir / "relay.json",
                 *cluster.coord_home.glob("aura.db*")]
        assert len(files) >= 3
        for path in files:
            assert mode(path) == 0o600, path
        assert mode(spool_dir) == 0o700
    finally:
        cluster.close()
