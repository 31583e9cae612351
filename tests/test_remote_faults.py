"""Remote workers under faults: a worker killed or frozen, a connection dropped mid-stream
(through a TCP proxy the test controls), the coordinator restarted mid-run. Nothing the
agent printed may be lost or stored twice."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import TIMEOUT_FACTOR, agent_command, run_aura
from .remote_cluster import Cluster, json_lines, wait_for


class Proxy:
    """A TCP proxy on 127.0.0.1 whose connections the test can cut at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.accepted = 0
        self.paused = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused:  # the far end is unreachable
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Cut every connection now (both sides see the line die)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def pause(self) -> None:
        """Cut every connection and refuse new ones until resume()."""
        self.paused = True
        self.drop()

    def resume(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.listener.close()
        self.drop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _contiguous(entries: list[dict]) -> list[int]:
    return [e["seq"] for e in entries]


def _session_of(cluster: Cluster) -> dict:
    listing = run_aura("session", "list", "--json", env={"AURA_HOME": str(cluster.coord_home)})
    return json.loads(listing.stdout)[0]


def test_sigkill_worker_becomes_worker_lost(tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat=0.25, offline=2.0)
    try:
        c.start_coordinator()
        worker = c.start_worker("doomed")
        client = c.aura_bg("run", "--on", "doomed", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", "100", "1", "0.2"), "--prompt",
                           "x", "--json")
        client.wait_log(r'"text":"line 2"')
        worker.stop(signal.SIGKILL)
        assert client.popen.wait(20 * TIMEOUT_FACTOR) == 1
        summary = json_lines(client.log())[-1]
        assert summary["state"] == "worker_lost"
        assert "silent for 2 s" in summary["error"]
        stored = c.stored(summary["session"])
        assert stored["state"] == "worker_lost"
        assert stored["executions"][0]["state"] == "worker_lost"
        assert stored["transitions"][-1]["to"] == "worker_lost"
        assert {w["name"]: w["state"] for w in c.workers()} == {"doomed": "offline"}
    finally:
        c.close()


def test_worker_lost_at_the_default_intervals_within_16_s(tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat=5.0, offline=15.0)
    try:
        c.start_coordinator()
        worker = c.start_worker("slow")
        client = c.aura_bg("run", "--on", "slow", "--coordinator", c.url, "--executor",
                           "custom", "--base-command", "sleep 60", "--prompt", "x", "--json")
        wait_for(lambda: c.coordinator and "started on slow" in c.coordinator.log(), 20,
                 "run started")
        worker.stop(signal.SIGKILL)
        killed = time.monotonic()
        assert client.popen.wait(16 * TIMEOUT_FACTOR + 5) == 1
        detected = time.monotonic() - killed
        assert json_lines(client.log())[-1]["state"] == "worker_lost"
        assert detected <= 16 * TIMEOUT_FACTOR + 1, detected
    finally:
        c.close()


def test_dropped_connection_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    proxy = None
    try:
        c.start_coordinator()
        proxy = Proxy(_port(c.url))
        c.start_worker("far", url=f"ws://127.0.0.1:{proxy.port}")
        total = 30_000
        client = c.aura_bg("run", "--on", "far", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", str(total), "500", "0.05"),
                           "--prompt", "x", "--json")
        for mark in (2000, 12000, 22000):
            client.wait_log(rf'"text":"line {mark}"', timeout=60)
            proxy.drop()
        assert client.popen.wait(120 * TIMEOUT_FACTOR) == 0, client.log()[-2000:]
        assert proxy.accepted >= 3
        printed = json_lines(client.log())
        summary = printed.pop()
        assert summary["state"] == "done"
        count = total + 5  # state, prompt, token line, …lines…, usage, state
        assert _contiguous(printed) == list(range(1, count + 1))
        stored = c.stored(summary["session"])
        assert _contiguous(stored["entries"]) == list(range(1, count + 1))
        assert [e["text"] for e in stored["entries"] if e["kind"] == "assistant_message"] == \
            [f"line {i}" for i in range(1, total + 1)]
        assert stored["state"] == "done"
    finally:
        if proxy is not None:
            proxy.close()
        c.close()


def test_coordinator_restart_mid_run_keeps_the_history_complete(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        url = c.start_coordinator()
        c.start_worker("steady")
        total = 3000
        client = c.aura_bg("run", "--on", "steady", "--coordinator", url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", str(total), "50", "0.1"),
                           "--prompt", "x", "--json")
        client.wait_log(r'"text":"line 500"', timeout=60)
        assert c.coordinator is not None
        c.coordinator.stop(signal.SIGKILL)
        time.sleep(0.5)
        c.start_coordinator(port=_port(url))
        assert c.url == url
        assert client.popen.wait(120 * TIMEOUT_FACTOR) == 0, client.log()[-2000:]
        printed = json_lines(client.log())
        summary = printed.pop()
        assert summary["state"] == "done"
        assert _contiguous(printed) == list(range(1, total + 6))
        stored = c.stored(summary["session"])
        assert _contiguous(stored["entries"]) == list(range(1, total + 6))
        assert stored["state"] == "done"
        assert [t["to"] for t in stored["transitions"]] == ["queued", "coding_initial", "done"]
    finally:
        c.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_frozen_worker_is_lost_then_its_late_output_is_kept(tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat=0.25, offline=1.5)
    try:
        c.start_coordinator()
        worker = c.start_worker("frozen")
        client = c.aura_bg("run", "--on", "frozen", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", "30", "1", "0.1"), "--prompt",
                           "x", "--json")
        client.wait_log(r'"text":"line 2"')
        worker.popen.send_signal(signal.SIGSTOP)
        try:
            assert client.popen.wait(20 * TIMEOUT_FACTOR) == 1
        finally:
            worker.popen.send_signal(signal.SIGCONT)
        summary = json_lines(client.log())[-1]
        assert summary["state"] == "worker_lost"

        def complete() -> dict | None:
            stored = c.stored(summary["session"])
            texts = [e.get("text") for e in stored["entries"]]
            return stored if "line 30" in texts and \
                "later reported" in (stored["executions"][0]["reason"] or "") else None

        stored = wait_for(complete, 30, "the late output stored")
        assert _contiguous(stored["entries"]) == list(range(1, len(stored["entries"]) + 1))
        assert stored["state"] == "worker_lost"
        assert stored["executions"][0]["state"] == "worker_lost"
        assert "done" in stored["executions"][0]["reason"]
        assert "worker_lost" in c.procs[1].log()  # the worker was told (lease_expired)
    finally:
        c.close()


def _spool_last_seq(cluster: Cluster, worker: str, session: str) -> int:
    from aura.store_sqlite import SQLiteStore

    store = SQLiteStore(cluster.root / f"{worker}-home" / "workers" / worker / "spool.db")
    try:
        return store.last_seq(session)
    finally:
        store.close()


def test_entries_beyond_the_memory_cap_come_back_from_the_spool(tmp_path: Path) -> None:
    c = Cluster(tmp_path, offline=30)
    proxy = None
    try:
        c.start_coordinator()
        proxy = Proxy(_port(c.url))
        c.start_worker("thrifty", url=f"ws://127.0.0.1:{proxy.port}",
                       env={"AURA_WORKER_MEMORY_CAP": "500"})
        total = 6000
        client = c.aura_bg("run", "--on", "thrifty", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", str(total), "200", "0.1"),
                           "--prompt", "x", "--json")
        client.wait_log(r'"text":"line 400"', timeout=60)
        proxy.pause()  # the worker cannot reach the coordinator while most lines come out
        wait_for(lambda: (c.root / "thrifty.log").read_text()
                 .count("cannot reach") >= 2, 30, "worker retrying")
        time.sleep(2)
        proxy.resume()
        assert client.popen.wait(120 * TIMEOUT_FACTOR) == 0, client.log()[-2000:]
        printed = json_lines(client.log())
        summary = printed.pop()
        assert summary["state"] == "done"
        assert _contiguous(printed) == list(range(1, total + 6))
        stored = c.stored(summary["session"])
        assert _contiguous(stored["entries"]) == list(range(1, total + 6))
    finally:
        if proxy is not None:
            proxy.close()
        c.close()


def test_a_restarted_worker_resends_what_its_spool_holds(tmp_path: Path) -> None:
    c = Cluster(tmp_path, offline=30)
    proxy = None
    try:
        c.start_coordinator()
        proxy = Proxy(_port(c.url))
        worker = c.start_worker("phoenix", url=f"ws://127.0.0.1:{proxy.port}")
        client = c.aura_bg("run", "--on", "phoenix", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", "100000", "100", "0.05"),
                           "--prompt", "x", "--json")
        client.wait_log(r'"text":"line 300"', timeout=60)
        session = json_lines(client.log())[0]["session"]
        proxy.pause()
        wait_for(lambda: _spool_last_seq(c, "phoenix", session) > 1000, 30,
                 "entries in the spool the coordinator has not got")
        worker.stop(signal.SIGKILL)
        spooled = _spool_last_seq(c, "phoenix", session)
        assert c.stored(session)["entries"][-1]["seq"] < spooled
        proxy.resume()
        c.start_worker("phoenix", url=f"ws://127.0.0.1:{proxy.port}")

        def caught_up() -> dict | None:
            stored = c.stored(session)
            return stored if stored["entries"][-1]["seq"] >= spooled and \
                stored["state"] != "coding_initial" else None

        stored = wait_for(caught_up, 30, "the spool resent")
        assert _contiguous(stored["entries"]) == list(range(1, len(stored["entries"]) + 1))
        assert stored["state"] == "failed"  # the run died with its worker
        assert "produced before the restart" in c.procs[-1].log()
    finally:
        if proxy is not None:
            proxy.close()
        c.close()


def test_a_worker_back_without_its_run_has_that_run_lost_at_once(tmp_path: Path) -> None:
    import shutil

    c = Cluster(tmp_path, heartbeat=0.25, offline=30)
    try:
        c.start_coordinator()
        worker = c.start_worker("amnesiac")
        client = c.aura_bg("run", "--on", "amnesiac", "--coordinator", c.url, "--executor",
                           "custom", "--base-command",
                           agent_command("lines_agent.py", "1000", "1", "0.05"),
                           "--prompt", "x", "--json")
        client.wait_log(r'"text":"line 2"')
        worker.stop(signal.SIGKILL)
        shutil.rmtree(c.root / "amnesiac-home")
        # Its key went with its data dir (a reinstall): refused until the admin allows a
        # fresh enrolment.
        refused = c.start_worker("amnesiac", wait=False)
        assert refused.popen.wait(20 * TIMEOUT_FACTOR) == 1
        assert "refused this worker" in refused.log()
        allowed = c.aura("workers", "revoke", "amnesiac", "--re-enroll", "--coordinator", c.url)
        assert allowed.returncode == 0, allowed.stderr
        c.start_worker("amnesiac")
        assert client.popen.wait(20 * TIMEOUT_FACTOR) == 1
        summary = json_lines(client.log())[-1]
        assert summary["state"] == "worker_lost"
        assert "came back without this run" in summary["error"]
        assert c.stored(summary["session"])["state"] == "worker_lost"
    finally:
        c.close()


def test_a_follow_up_after_worker_lost_is_not_disturbed_by_the_lost_runs_tail(
        tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat=0.25, offline=1.5)
    try:
        c.start_coordinator()
        lost = c.start_worker("lost")
        c.start_worker("spare")
        first = c.aura_bg("run", "--on", "lost", "--coordinator", c.url, "--executor",
                          "custom", "--base-command",
                          agent_command("lines_agent.py", "40", "1", "0.1"), "--prompt",
                          "one", "--json")
        first.wait_log(r'"text":"line 2"')
        lost.popen.send_signal(signal.SIGSTOP)
        try:
            assert first.popen.wait(20 * TIMEOUT_FACTOR) == 1
            session = json_lines(first.log())[-1]["session"]
            again = c.aura("run", "--on", "spare", "--coordinator", c.url, "--session",
                           session, "--prompt", "two", "--json")
            assert again.returncode == 0, again.stderr
        finally:
            lost.popen.send_signal(signal.SIGCONT)
        assert c.coordinator is not None
        c.coordinator.wait_log(r"dropping late entries of lost run", timeout=30)

        def settled() -> dict | None:
            stored = c.stored(session)
            reason = stored["executions"][0]["reason"] or ""
            return stored if "later reported" in reason else None

        stored = wait_for(settled, 30, "the lost run's outcome noted")
        assert stored["state"] == "done"
        assert _contiguous(stored["entries"]) == list(range(1, len(stored["entries"]) + 1))
        # Up to the loss: the first run's entries; after it: only the follow-up's.
        before = len(json_lines(first.log())) - 1
        follow_up = {e["id"] for e in stored["executions"][1:]}
        assert {e["execution"] for e in stored["entries"][before:]} <= follow_up
        assert stored["entries"][before + 1]["text"] == "two"
        assert [t["to"] for t in stored["transitions"]][-3:] == \
            ["worker_lost", "coding_follow_up", "done"]
    finally:
        c.close()
