"""The trust model of remote workers, with a real coordinator and real workers on
127.0.0.1 and raw WebSocket clients playing misbehaving workers: per-worker identity
(enrol, prove, revoke, re-enrol), ownership of every message a worker sends, and
validated entry streams (nothing refused is stored or acknowledged, nothing good is lost).
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aura import rpc
from aura.rpc_codec import BAD_ENTRY, IDENTITY_REFUSED, NOT_OWNER

from .conftest import agent_command, run_aura
from .remote_cluster import Cluster, Proc, json_lines, wait_for
from .rogue_worker import Rogue, line, snapshot

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.start_coordinator()
    try:
        yield c
    finally:
        c.close()


def _key_file(cluster: Cluster, name: str) -> Path:
    found = list((cluster.root / f"{name}-home").rglob("worker.key"))
    assert len(found) == 1, found
    return found[0]


def _worker(cluster: Cluster, name: str) -> dict[str, Any]:
    return next(w for w in cluster.workers() if w["name"] == name)


def _coord_log(cluster: Cluster) -> str:
    assert cluster.coordinator is not None
    return cluster.coordinator.log()


def _start(cluster: Cluster, on: str, command: str, name: str = "client") -> Proc:
    return cluster.aura_bg("run", "--on", on, "--coordinator", cluster.url, "--executor",
                           "custom", "--base-command", command, "--prompt", "go", "--json",
                           name=name)


def _first_entry(proc: Proc) -> dict[str, Any]:
    return wait_for(lambda: next(iter(json_lines(proc.log())), None), 20,
                    f"a first entry from {proc.name}")


def test_identity_enrols_refuses_impostors_revokes_and_re_enrols(cluster: Cluster) -> None:
    w1 = cluster.start_worker("w1")
    key_file = _key_file(cluster, "w1")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    identity = _worker(cluster, "w1")["identity"]
    assert identity.startswith("sha256:") and key not in _coord_log(cluster)
    for db in cluster.coord_home.rglob("*.db"):  # the store keeps only its hash
        assert key.encode() not in db.read_bytes()
    listed = cluster.aura("workers", "--coordinator", cluster.url)
    assert identity in listed.stdout

    # An impostor with the name (no key, a wrong key, a real process elsewhere) is refused.
    for forged in (None, "not-the-key"):
        rogue = Rogue(cluster, "w1", key=forged)
        assert rogue.answer["error"]["code"] == IDENTITY_REFUSED
        rogue.close()
    # A second host with the same name (its own data dir, no key of w1's).
    clone = cluster.start_worker("w1", wait=False, env={
        "AURA_HOME": str(cluster.root / "clone-home")})
    assert clone.popen.wait(20) == 1 and "refused this worker" in clone.log()
    assert "refused worker.hello as w1" in _coord_log(cluster)
    assert _worker(cluster, "w1")["state"] == "online"
    done = cluster.run_on("w1", agent_command("lines_agent.py", "3"))
    assert done.returncode == 0, done.stderr

    # The same identity again (the line dropped) replaces its old link.
    again = Rogue(cluster, "w1", key=key)
    assert again.answer["result"]["identity"] == identity
    again.close()
    cluster.wait_online("w1")

    # Revoked: the live connection is cut, the key refused from then on.
    revoked = cluster.aura("workers", "revoke", "w1", "--coordinator", cluster.url)
    assert revoked.returncode == 0, revoked.stderr
    assert w1.popen.wait(20) == 1 and "revoked" in w1.log()
    assert _worker(cluster, "w1")["state"] == "revoked"
    assert Rogue(cluster, "w1", key=key).answer["error"]["code"] == IDENTITY_REFUSED
    assert Rogue(cluster, "w1").answer["error"]["code"] == IDENTITY_REFUSED
    missing = cluster.aura("workers", "revoke", "nobody", "--coordinator", cluster.url)
    assert missing.returncode != 0 and "no enrolled worker" in missing.stderr

    # A reinstalled host: the admin allows a fresh enrolment, the old key stays refused.
    allowed = cluster.aura("workers", "revoke", "w1", "--re-enroll", "--coordinator",
                           cluster.url)
    assert allowed.returncode == 0 and "enrolls it afresh" in allowed.stdout
    key_file.unlink()  # the reinstall lost the data dir
    cluster.start_worker("w1")
    fresh = _worker(cluster, "w1")["identity"]
    assert fresh != identity and _key_file(cluster, "w1").read_text().strip() != key
    assert Rogue(cluster, "w1", key=key).answer["error"]["code"] == IDENTITY_REFUSED
    done = cluster.run_on("w1", agent_command("lines_agent.py", "3"))
    assert done.returncode == 0, done.stderr


def test_a_foreign_worker_cannot_end_or_write_into_another_workers_run(
        cluster: Cluster) -> None:
    cluster.start_worker("w1")
    evil = Rogue(cluster, "evil")
    assert "result" in evil.answer and "key" in evil.answer["result"]
    client = _start(cluster, "w1", agent_command("lines_agent.py", "600", "20", "0.03"))
    first = _first_entry(client)
    session_id, execution_id = first["session"], first["execution"]

    forged_summary = {"session": session_id, "execution": execution_id, "state": "done",
                      "exit_code": 0, "error": "FORGED"}
    evil.notify("execution.state", {"session": session_id, "execution": execution_id,
                                    "final": True, "summary": forged_summary,
                                    "snapshot": snapshot(session_id, execution_id, "done")})
    evil.send_entries(session_id, execution_id,
                      [line(session_id, execution_id, 100_000)])
    evil.notify("execution.state", {"session": session_id, "execution": execution_id,
                                    "snapshot": snapshot(session_id, execution_id,
                                                         base_command="touch PLANTED")})
    refused = [evil.wait("execution.refused") for _ in range(3)]
    assert {r["params"]["error"]["code"] for r in refused} == {NOT_OWNER}
    assert not evil.drain("execution.ack")

    assert client.popen.wait(60) == 0, client.log()
    lines = json_lines(client.log())
    summary, printed = lines[-1], lines[:-1]
    assert summary["state"] == "done" and summary.get("error") != "FORGED"
    stored = cluster.stored(session_id)
    assert printed == stored["entries"]
    assert len(stored["entries"]) > 600 and max(e["seq"] for e in stored["entries"]) < 100_000
    assert "PLANTED" not in json.dumps(stored["options"])
    assert _coord_log(cluster).count("was not given to worker evil") == 1  # logged once


def test_no_worker_can_touch_a_local_session_or_plant_a_command(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    env = {"AURA_HOME": str(cluster.coord_home)}
    local = run_aura("run", "--executor", "custom", "--base-command",
                     agent_command("lines_agent.py", "2"), "--prompt", "go", "--json",
                     env=env, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    local_id = json_lines(local.stdout)[-1]["session"]
    local_execution = json_lines(local.stdout)[-1]["execution"]
    before = cluster.stored(local_id)

    evil = Rogue(cluster, "evil")
    for execution_id in (local_execution, "made-up"):
        evil.notify("execution.state", {"session": local_id, "execution": execution_id,
                                        "snapshot": snapshot(local_id, execution_id, "done",
                                                             base_command="touch PLANTED")})
        evil.send_entries(local_id, execution_id,
                          [line(local_id, execution_id, 999)])
    evil.notify("execution.state", {"session": "new-session", "execution": "new-exec",
                                    "snapshot": snapshot("new-session", "new-exec")})
    for _ in range(5):
        assert evil.wait("execution.refused")["params"]["error"]["code"] == NOT_OWNER
    assert cluster.stored(local_id) == before
    assert run_aura("session", "show", "new-session", env=env).returncode != 0

    # A run given to the rogue: it answers with a session planting a command; what is
    # stored is the client's command, so a local follow-up runs that, never the plant.
    marker = tmp_path / "ran"
    command = agent_command("lines_agent.py", "1") + f" && touch {marker}"
    client = _start(cluster, "evil", f"sh -c {json.dumps(command)}")
    session_id, execution_id = wait_for(lambda: evil.started and evil.started[0], 20,
                                        "the rogue given a run")
    wait_for(lambda: run_aura("session", "show", session_id, env=env).returncode == 0, 20,
             "the run's session stored")
    stored = cluster.stored(session_id)
    assert "PLANTED" not in json.dumps(stored["options"]) and stored["prompt"] == "go"
    evil.notify("execution.state", {"session": session_id, "execution": execution_id,
                                    "final": True, "summary": {"state": "done",
                                                               "exit_code": 0},
                                    "snapshot": snapshot(session_id, execution_id, "done",
                                                         base_command="touch PLANTED")})
    assert client.popen.wait(30) == 0, client.log()
    follow = run_aura("run", "--session", session_id, "--prompt", "again", "--json",
                      env=env, cwd=tmp_path)
    assert not (tmp_path / "PLANTED").exists()
    assert marker.exists(), follow.stdout + follow.stderr


def test_a_bad_stream_from_the_runs_own_worker_is_refused_and_nothing_is_lost(
        cluster: Cluster) -> None:
    bad = Rogue(cluster, "bad")
    client = _start(cluster, "bad", "unused")
    session_id, execution_id = wait_for(lambda: bad.started and bad.started[0], 20,
                                        "the rogue given a run")
    good = [line(session_id, execution_id, n) for n in range(1, 201)]
    bad.send_entries(session_id, execution_id, good[:50])
    newline = line(session_id, execution_id, 51).replace("line 51", "a\nb")
    spaced = json.dumps(json.loads(line(session_id, execution_id, 51)))
    for batch in ([line(session_id, execution_id, 100_000)],  # future seq
                  [line(session_id, execution_id, 60)],  # gap
                  ["[51]"], ['"text"'],  # not objects
                  [newline],  # a raw newline inside the text
                  [spaced]):  # an object, but not laid out as entries are
        bad.send_entries(session_id, execution_id, batch)
    bad.send_entries(session_id, execution_id, good[40:])  # 41-50 again, then the rest
    acks: list[int] = []
    deadline = time.monotonic() + 20
    while 200 not in acks and time.monotonic() < deadline:
        acks.append(bad.wait("execution.ack")["params"]["seq"])
    refused = bad.drain("execution.refused")
    assert 200 in acks and max(acks) == 200 and 100_000 not in acks and 60 not in acks
    bad.notify("execution.state", {"session": session_id, "execution": execution_id,
                                   "final": True, "summary": {"state": "done",
                                                              "exit_code": 0},
                                   "snapshot": snapshot(session_id, execution_id, "done")})
    assert client.popen.wait(30) == 0, client.log()
    printed = json_lines(client.log())[:-1]
    stored = cluster.stored(session_id)["entries"]
    assert [e["seq"] for e in stored] == list(range(1, 201))
    assert printed == stored
    assert len(refused) >= 4 and {r["params"]["error"]["code"] for r in refused} <= {
        BAD_ENTRY, rpc.PARSE_ERROR}


def test_a_worker_that_keeps_sending_bad_data_is_disconnected(cluster: Cluster) -> None:
    bad = Rogue(cluster, "bad")
    client = _start(cluster, "bad", "unused")
    session_id, execution_id = wait_for(lambda: bad.started and bad.started[0], 20,
                                        "the rogue given a run")
    for n in range(20):
        bad.send_entries(session_id, execution_id, [json.dumps([n])])
        if bad.closed.wait(0.05):
            break
    assert bad.closed.wait(10), "the coordinator kept the connection open"
    assert "refused messages" in _coord_log(cluster)
    assert cluster.stored(session_id)["entries"] == []
    client.stop()
