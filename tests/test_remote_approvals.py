"""Approvals of runs on workers, as real processes on 127.0.0.1: a coordinator, a worker
running the fake approval agent (tests/approval_agent.py), and clients with AURA_HOMEs of
their own answering through `aura approvals|approve|deny --coordinator URL`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aura import rpc

from .conftest import AGENTS, TIMEOUT_FACTOR, run_aura
from .remote_cluster import Cluster, Proc, json_lines, wait_for
from .rogue_worker import Rogue, line

LAUNCHER = str(AGENTS / "aura_with_fake_agent.py")
MAKE = {"kind": "command", "title": "Run make", "detail": {"command": "make all"},
        "write": "made.txt"}
WRITE = {"kind": "file_change", "title": "Write a.txt", "detail": {"paths": ["a.txt"]},
         "write": "a.txt"}


def launcher_argv(*args: str) -> list[str]:
    return [sys.executable, LAUNCHER, *args]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, argv=launcher_argv)
    c.start_coordinator()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def start_worker(cluster: Cluster, steps: list[dict[str, Any]], name: str = "w1") -> Proc:
    return cluster.start_worker(name, env={
        "AURA_FAKE_APPROVALS": json.dumps(steps),
        "AURA_FAKE_DECISIONS": str(cluster.root / "decisions.log")})


def start_run(cluster: Cluster, work: Path, *extra: str, name: str = "client") -> Proc:
    return cluster.aura_bg("run", "--on", "w1", "--coordinator", cluster.url, "--executor",
                           "fakeapprove", "--cwd", str(work), "--prompt", "go", "--json",
                           *extra, name=name)


def other(cluster: Cluster, *args: str, home: str = "elsewhere",
          **extra: str) -> subprocess.CompletedProcess:
    """`aura …` from another machine's point of view: an AURA_HOME of its own."""
    path = cluster.root / home
    path.mkdir(exist_ok=True)
    return cluster.aura(*args, AURA_HOME=str(path), **extra)


def listed(cluster: Cluster, *flags: str) -> list[dict[str, Any]]:
    done = other(cluster, "approvals", "--coordinator", cluster.url, "--json", *flags)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def waiting(cluster: Cluster, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(lambda: (lambda a: a if len(a) >= count else None)(listed(cluster)),
                    20, f"{count} pending approval(s) on the coordinator")


def decisions(cluster: Cluster) -> list[dict[str, Any]]:
    log = cluster.root / "decisions.log"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def finished(proc: Proc, timeout: float = 30) -> tuple[int, list[dict[str, Any]]]:
    code = proc.popen.wait(timeout * TIMEOUT_FACTOR)
    return code, json_lines(proc.log())


def test_a_remote_run_is_approved_from_another_home(cluster: Cluster, work: Path) -> None:
    start_worker(cluster, [MAKE])
    run = start_run(cluster, work)
    [request] = waiting(cluster)
    assert (request["kind"], request["title"], request["state"], request["worker"]) == \
        ("command", "Run make", "pending", "w1")
    table = other(cluster, "approvals", "--coordinator", cluster.url)
    assert request["id"][:8] in table.stdout and "w1" in table.stdout
    assert "--coordinator URL" in table.stderr
    assert not (work / "made.txt").exists()
    # The coordinator's own home holds the mirror row: answering it there is refused.
    local = run_aura("approve", request["id"][:8], env={"AURA_HOME": str(cluster.coord_home)})
    assert local.returncode == 1 and "through the coordinator" in local.stderr
    assert not (work / "made.txt").exists()

    approved = other(cluster, "approve", request["id"][:8], "--coordinator", cluster.url)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"{request['id'][:8]} allowed once: Run make"
    code, lines = finished(run)
    assert code == 0, run.log()
    assert (work / "made.txt").exists()
    [told] = decisions(cluster)
    assert told["choice"] == "allow" and told["option"] == "proceed_once"
    assert "aura approve" in told["by"] and " via 127.0.0.1:" in told["by"]
    assert [e["status"] for e in lines if e.get("kind") == "approval"] == \
        ["pending", "allowed"]

    again = other(cluster, "approve", request["id"][:8], "--coordinator", cluster.url)
    assert again.returncode == 3 and "already answered: allowed by" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert listed(cluster) == []
    [row] = listed(cluster, "--all")
    assert row["state"] == "allowed" and row["by"] == told["by"]


def test_first_answer_wins_between_two_clients_and_a_deny_reaches_the_agent(
        cluster: Cluster, work: Path) -> None:
    start_worker(cluster, [MAKE, WRITE])
    run = start_run(cluster, work)
    first = waiting(cluster)[0]["id"]
    for home in ("alice", "bob"):
        (cluster.root / home).mkdir(exist_ok=True)
    racers = [subprocess.Popen(cluster.argv(*args, "--coordinator", cluster.url),
                               env=cluster.env(cluster.root / home), cwd=cluster.root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
              for home, args in (("alice", ("approve", first)),
                                 ("bob", ("deny", first, "--message", "not now")))]
    results = [(p.wait(60 * TIMEOUT_FACTOR), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    loser = next(err for code, _, err in results if code == 3)
    assert "already answered" in loser and len(loser.strip().splitlines()) == 1
    alice_won = results[0][0] == 0
    second = wait_for(lambda: [a for a in listed(cluster) if a["id"] != first], 20,
                      "the second request")[0]
    assert second["title"] == "Write a.txt"
    denied = other(cluster, "deny", second["id"][:8], "-m", "use make test instead",
                   "--coordinator", cluster.url)
    assert denied.returncode == 0, denied.stderr
    assert denied.stdout.strip().endswith("denied: Write a.txt")
    code, _ = finished(run)
    assert code == 0, run.log()
    told = decisions(cluster)
    assert [d["choice"] for d in told] == ["allow" if alice_won else "deny", "deny"]
    assert told[1]["message"] == "use make test instead" and told[1]["option"] == "cancel"
    assert (work / "made.txt").exists() is alice_won
    assert not (work / "a.txt").exists()


def test_a_lost_worker_leaves_its_request_lost_and_a_late_answer_is_refused(
        cluster: Cluster, work: Path) -> None:
    worker = start_worker(cluster, [MAKE])
    run = start_run(cluster, work)
    request = waiting(cluster)[0]
    worker.stop(signal.SIGKILL)
    assert cluster.coordinator is not None
    cluster.coordinator.wait_log(r"on w1: worker_lost")
    [row] = wait_for(lambda: [a for a in listed(cluster, "--all") if a["state"] == "lost"],
                     10, "the request marked lost")
    assert row["id"] == request["id"] and "silent" in row["by"]
    assert listed(cluster) == []
    late = other(cluster, "approve", request["id"][:8], "--coordinator", cluster.url)
    assert late.returncode == 3, late.stderr
    assert f"approval {request['id'][:8]} is lost" in late.stderr
    assert len(late.stderr.strip().splitlines()) == 1
    code, _ = finished(run)
    assert code != 0
    assert not (work / "made.txt").exists() and decisions(cluster) == []


def test_nobody_answering_a_headless_remote_run_expires_it_denied(
        cluster: Cluster, work: Path) -> None:
    start_worker(cluster, [MAKE])
    run = start_run(cluster, work, "--approval-timeout", "1")
    code, lines = finished(run)
    assert code == 0, run.log()
    [told] = decisions(cluster)
    assert told["choice"] == "deny" and told["by"] == "timeout"
    assert not (work / "made.txt").exists()
    assert [e["status"] for e in lines if e.get("kind") == "approval"] == \
        ["pending", "expired"]
    [row] = listed(cluster, "--all")
    assert row["state"] == "expired"
    late = other(cluster, "approve", row["id"], "--coordinator", cluster.url)
    assert late.returncode == 3 and "expired" in late.stderr
    unknown = other(cluster, "deny", "zzzz", "--coordinator", cluster.url)
    assert unknown.returncode == 1
    assert "no approval request 'zzzz'" in unknown.stderr and "--coordinator" in unknown.stderr


def test_a_wrong_token_and_a_hostile_worker_cannot_answer_or_forge(
        cluster: Cluster, work: Path) -> None:
    start_worker(cluster, [MAKE])
    run = start_run(cluster, work)
    request = waiting(cluster)[0]
    for args in (("approvals",), ("approve", request["id"]), ("deny", request["id"])):
        refused = other(cluster, *args, "--coordinator", cluster.url, AURA_TOKEN="wrong")
        assert refused.returncode == 1 and "refused the token" in refused.stderr

    rogue = Rogue(cluster, "rogue")
    assert "result" in rogue.answer
    # A worker's line has no approvals methods: it cannot answer anyone's request.
    rogue.ws.send(rpc.request("approvals.answer", {"approval": request["id"],
                                                   "choice": "allow"}, 7))
    reply = wait_for(lambda: next((m for m in list(rogue.inbox.queue)
                                   if m.get("id") == 7), None), 10, "the rogue's answer")
    assert reply["error"]["code"] == rpc.METHOD_NOT_FOUND
    # Given a run of its own, it relays "outcomes" of w1's request: none is taken.
    hijack = cluster.aura_bg("run", "--on", "rogue", "--coordinator", cluster.url,
                             "--executor", "custom", "--base-command", "true", "--prompt",
                             "x", name="hijack")
    wait_for(lambda: rogue.started, 20, "a run given to the rogue")
    session, execution = rogue.started[0]
    forged = dict(request, state="allowed", by="rogue", answered_at=request["created_at"],
                  choice="allow", option="proceed_once")
    texts = [line(session, execution, 1)]
    for seq, data in enumerate((forged, dict(forged, session=session),
                                dict(forged, session=session, execution=execution)), 2):
        entry = json.loads(line(session, execution, seq))
        entry.update(kind="approval", id=data["id"], status="allowed", data=data)
        texts.append(json.dumps(entry, separators=(",", ":")))
    rogue.send_entries(session, execution, texts)
    wait_for(lambda: rogue.drain("execution.ack"), 10, "the rogue's batch stored")
    [still] = listed(cluster)
    assert still["id"] == request["id"] and still["state"] == "pending"
    assert still["worker"] == "w1"
    assert not (work / "made.txt").exists()
    assert cluster.coordinator is not None
    assert "worker rogue relayed approval" in cluster.coordinator.log()

    denied = other(cluster, "deny", request["id"][:8], "--coordinator", cluster.url)
    assert denied.returncode == 0, denied.stderr
    code, _ = finished(run)
    assert code == 0 and decisions(cluster)[0]["choice"] == "deny"
    hijack.stop()
    rogue.close()


def test_a_pending_request_survives_a_coordinator_restart(cluster: Cluster, work: Path
                                                          ) -> None:
    start_worker(cluster, [MAKE])
    run = start_run(cluster, work)
    request = waiting(cluster)[0]
    assert cluster.coordinator is not None
    url = cluster.url
    cluster.coordinator.stop(signal.SIGKILL)
    cluster.start_coordinator(port=int(url.rsplit(":", 1)[1]))
    assert cluster.url == url
    cluster.wait_online("w1")
    assert [a["id"] for a in waiting(cluster)] == [request["id"]]
    approved = other(cluster, "approve", request["id"][:8], "--coordinator", url)
    assert approved.returncode == 0, approved.stderr
    code, _ = finished(run, timeout=60)
    assert code == 0, run.log()
    assert (work / "made.txt").exists()
    [row] = wait_for(lambda: [a for a in listed(cluster, "--all") if a["state"] != "pending"],
                     10, "the outcome on the coordinator")
    assert row["state"] == "allowed"


def test_an_answer_on_the_worker_machine_and_a_remote_one_race_safely(
        cluster: Cluster, work: Path) -> None:
    start_worker(cluster, [MAKE, WRITE])
    run = start_run(cluster, work)
    spool = {"AURA_HOME": str(cluster.root / "w1-home"),
             "AURA_DB": str(cluster.root / "w1-home" / "workers" / "w1" / "spool.db")}
    first = waiting(cluster)[0]["id"]
    local = run_aura("deny", first[:8], "-m", "not on this box", env=spool)
    assert local.returncode == 0, local.stderr
    remote = other(cluster, "approve", first[:8], "--coordinator", cluster.url)
    assert remote.returncode == 3 and "already answered: denied by" in remote.stderr
    second = wait_for(lambda: [a for a in listed(cluster) if a["id"] != first], 20,
                      "the second request")[0]["id"]
    remote = other(cluster, "approve", second[:8], "--coordinator", cluster.url)
    assert remote.returncode == 0, remote.stderr
    local = run_aura("deny", second[:8], env=spool)
    assert local.returncode == 3 and "already answered: allowed by" in local.stderr
    code, _ = finished(run)
    assert code == 0, run.log()
    assert [(d["choice"], d["message"]) for d in decisions(cluster)] == \
        [("deny", "not on this box"), ("allow", None)]
    assert (work / "a.txt").exists() and not (work / "made.txt").exists()
