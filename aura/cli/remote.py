"""Remote-worker commands: `aura serve`, `aura worker`, `aura workers`, and the client side
of `aura run --on` and `aura session show --coordinator`.

Only click and light aura modules are imported here at module level; asyncio, websockets
and the store are imported inside the commands (`aura --help` stays fast).

Where settings come from (first found wins):
- coordinator address: ``--coordinator``/``--connect``, ``AURA_COORDINATOR``, config
  ``coordinator = "wss://host:8765"``;
- token: ``--token-file``, ``AURA_TOKEN``, config ``token_file``. It is read once and
  removed from the environment so no child process inherits it; it is never passed on a
  command line, never logged, and travels only in the WebSocket handshake header;
- CA file to trust a self-signed coordinator: ``--cafile``, ``AURA_CAFILE``, config
  ``cafile``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from aura.cli.completion import remember_workers
from aura.cli.output import CONTEXT_SETTINGS, debug_option
from aura.errors import AuraError, UsageError

# settings -------------------------------------------------------------------------------------

def _config() -> dict[str, Any]:
    from aura import config

    return config.load()


def read_token(token_file: str | None) -> str:
    """The shared token; removed from this process's environment once read."""
    env_token = os.environ.pop("AURA_TOKEN", None)
    path = token_file or (None if env_token else _config().get("token_file"))
    if path:
        try:
            token = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {path}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {path} is empty")
        return token
    if env_token and env_token.strip():
        return env_token.strip()
    raise UsageError("no token: set AURA_TOKEN or pass --token-file FILE (the coordinator, "
                     "its workers and its clients share one token)")


def coordinator_url(given: str | None) -> str:
    url = given or os.environ.get("AURA_COORDINATOR") or _config().get("coordinator")
    if not url:
        raise UsageError("no coordinator: pass --coordinator ws(s)://HOST:PORT, set "
                         "AURA_COORDINATOR, or set coordinator = \"…\" in the config")
    if not str(url).startswith(("ws://", "wss://")):
        raise UsageError(f"coordinator address {url!r} must start with ws:// or wss://")
    return str(url)


def ca_setting(given: str | None) -> str | None:
    return given or os.environ.get("AURA_CAFILE") or _config().get("cafile")


def _logging(debug: bool = False) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    # The handshake library's own chatter (including refused handshakes we log ourselves).
    logging.getLogger("aura.websockets").setLevel(logging.CRITICAL)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", listen
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"--listen port {number} is out of range")
    return host, number


def _run_until_signal(coro_factory: Any) -> Any:
    """asyncio.run with SIGINT/SIGTERM cancelling the main task (a clean shutdown)."""
    import asyncio
    import signal

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await coro_factory()

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return None


# aura serve -----------------------------------------------------------------------------------

@click.command("serve", context_settings=CONTEXT_SETTINGS)
@click.option("--listen", default="127.0.0.1:8765", show_default=True, metavar="HOST:PORT",
              help="Address to listen on (port 0: any free port).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), metavar="PEM",
              help="Certificate for wss:// (with --tls-key).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), metavar="PEM",
              help="Private key for wss://.")
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="File holding the shared token (default: AURA_TOKEN).")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0.05), default=5.0,
              show_default=True, envvar="AURA_HEARTBEAT_INTERVAL", metavar="SECONDS",
              help="How often workers send a heartbeat.")
@click.option("--offline-after", type=click.FloatRange(min=0.1), default=15.0,
              show_default=True, envvar="AURA_OFFLINE_AFTER", metavar="SECONDS",
              help="Silence after which a worker is offline and its runs worker_lost.")
@click.option("--max-message", type=click.IntRange(min=4096), default=16 << 20,
              show_default=True, metavar="BYTES", help="Largest message accepted.")
@debug_option("Verbose logs and tracebacks.")
def serve_command(listen: str, tls_cert: str | None, tls_key: str | None,
                  token_file: str | None, heartbeat_interval: float, offline_after: float,
                  max_message: int, debug: bool) -> None:
    """Run the coordinator: workers dial in, clients run agents on them (`--on`).

    \b
    AURA_TOKEN=… aura serve --listen 0.0.0.0:8765 --tls-cert cert.pem --tls-key key.pem
    """
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if offline_after <= heartbeat_interval:
        raise UsageError("--offline-after must be longer than --heartbeat-interval")
    token = read_token(token_file)
    host, port = _parse_listen(listen)
    context = None
    if tls_cert and tls_key:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(tls_cert, tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"cannot load --tls-cert/--tls-key: {exc}") from None
    _logging(debug)
    from aura.remote.coordinator.coordinator import Coordinator
    from aura.remote.coordinator.server import serve
    from aura.store_sqlite import open_store

    store = open_store()
    coordinator = Coordinator(store, token, heartbeat_interval=heartbeat_interval,
                              offline_after=offline_after, max_message=max_message)
    try:
        _run_until_signal(lambda: serve(coordinator, host, port, ssl_context=context))
    except OSError as exc:
        raise AuraError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    finally:
        store.close()


# aura worker ----------------------------------------------------------------------------------

@click.command("worker", context_settings=CONTEXT_SETTINGS)
@click.option("--connect", "url", metavar="URL",
              help="Coordinator address, ws:// or wss:// (default: AURA_COORDINATOR).")
@click.option("--name", metavar="NAME", help="This worker's name (default: the host name).")
@click.option("--labels", default="", metavar="A,B", help="Labels for `--on label:X`.")
@click.option("--capacity", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many executions at once.")
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="File holding the shared token (default: AURA_TOKEN).")
@click.option("--allow-command", is_flag=True,
              help="Allow the command executor and --base-command (arbitrary programs).")
@click.option("--workdir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Where new sessions run unless the client passes --cwd.")
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), metavar="PEM",
              help="CA certificate to trust (a self-signed coordinator).")
@debug_option("Verbose logs and tracebacks.")
def worker_command(url: str | None, name: str | None, labels: str, capacity: int,
                   token_file: str | None, allow_command: bool, workdir: str | None,
                   cafile: str | None, debug: bool) -> None:
    """Run executions for a coordinator (dials out; no inbound port needed).

    \b
    AURA_TOKEN=… aura worker --connect wss://coord:8765 --name gpu1 --labels gpu,linux
    """
    import socket

    from aura import config as config_module
    from aura.paths import data_dir
    from aura.remote.worker.daemon import Fatal, Worker
    from aura.service.inventory import describe_all, offered

    address = coordinator_url(url)
    token = read_token(token_file)
    config = config_module.load()
    section = config.get("worker", {}) if isinstance(config.get("worker"), dict) else {}
    allow = allow_command or bool(section.get("allow_command"))
    name = name or socket.gethostname().split(".")[0]
    label_list = tuple(x.strip() for x in labels.split(",") if x.strip())
    _logging(debug)
    executors = offered(describe_all(dict(config.get("executor_paths", {}))),
                        allow_command=allow)
    home = data_dir() / "workers" / name
    chosen_cafile = ca_setting(cafile)
    async def main() -> None:
        import asyncio
        import signal

        worker = Worker(address, name, token, home=home, labels=label_list, capacity=capacity,
                        allow_command=allow, workdir=str(Path(workdir or os.getcwd()).resolve()),
                        cafile=chosen_cafile, executors=executors)
        runner = asyncio.create_task(worker.run())
        stopping: list[asyncio.Task[None]] = []

        async def graceful() -> None:
            # Stop the agents (recorded as cancelled) and let the relay deliver that,
            # then leave; a second signal leaves at once.
            await worker.drain(10.0)
            runner.cancel()

        def on_signal() -> None:
            if stopping:
                runner.cancel()
            else:
                stopping.append(asyncio.create_task(graceful()))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await runner
        except asyncio.CancelledError:
            pass
        finally:
            worker.close()

    import asyncio

    try:
        asyncio.run(main())
    except Fatal as exc:
        raise AuraError(str(exc)) from None
    except KeyboardInterrupt:
        pass


# client side ----------------------------------------------------------------------------------

async def _client(url: str, token: str, ca: str | None, route: Any = None,
                  batches: dict[str, Any] | None = None) -> Any:
    """A connected, greeted Peer to the coordinator (its reader runs in a task)."""
    import asyncio

    from aura import __version__
    from aura.rpc import PROTOCOL_VERSION, Peer, connect

    try:
        ws = await connect(url, token, cafile=ca)
    except (OSError, TimeoutError) as exc:
        raise AuraError(f"cannot reach the coordinator at {url}: "
                        f"{getattr(exc, 'strerror', None) or exc or type(exc).__name__}"
                        ) from None
    peer = Peer(ws, route or (lambda _m: None), name="coordinator", batches=batches)
    peer.reader = asyncio.create_task(peer.run())  # type: ignore[attr-defined]
    await peer.request("client.hello", {"protocol": PROTOCOL_VERSION, "version": __version__})
    return peer


@click.command("workers", context_settings=CONTEXT_SETTINGS)
@click.option("--coordinator", metavar="URL", help="Coordinator address (AURA_COORDINATOR).")
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="File holding the shared token (default: AURA_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of workers.")
def workers_command(coordinator: str | None, token_file: str | None, as_json: bool) -> None:
    """Workers known to the coordinator: labels, state, load, last heartbeat, version."""
    import asyncio
    import json

    url = coordinator_url(coordinator)
    token = read_token(token_file)

    async def main() -> Any:
        peer = await _client(url, token, ca_setting(None))
        try:
            return await peer.request("workers.list", {})
        finally:
            await peer.close()

    workers = asyncio.run(main())
    remember_workers(workers)  # what a TAB after --on offers
    if as_json:
        click.echo(json.dumps(workers, ensure_ascii=False, indent=2))
        return
    if not workers:
        click.echo("no workers yet; start one with `aura worker --connect URL --name NAME`",
                   err=True)
        return
    rows = [("NAME", "STATE", "RUNNING", "LABELS", "LAST HEARTBEAT", "VERSION", "EXECUTORS")]
    for w in workers:
        rows.append((w["name"], w["state"], f"{w['running']}/{w['capacity']}",
                     ",".join(w["labels"]) or "-", w["last_heartbeat"] or "-",
                     w["version"] or "-", ",".join(sorted(w["executors"])) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=False)) +
                   "  " + row[-1])


def fetch_session(given_url: str | None, session_id: str) -> dict[str, Any]:
    """`aura session show --json`'s object, read from the coordinator over the protocol."""
    import asyncio

    url = coordinator_url(given_url)
    token = read_token(None)

    async def main() -> dict[str, Any]:
        peer = await _client(url, token, ca_setting(None))
        try:
            data = await peer.request("session.get", {"session": session_id})
            entries: list[Any] = []
            after = 0
            while True:
                page = await peer.request("session.entries", {
                    "session": data["id"], "after_seq": after, "limit": 5000}, timeout=120)
                entries.extend(page["entries"])
                if not page["entries"] or not page["more"]:
                    break
                after = page["entries"][-1]["seq"]
            data.pop("last_seq", None)
            data["entries"] = entries
            return data
        finally:
            await peer.close()

    return asyncio.run(main())


def fetch_sessions(given_url: str | None, limit: int, executor: str | None
                   ) -> list[dict[str, Any]]:
    """`aura session list --json`'s array, read from the coordinator."""
    import asyncio

    url = coordinator_url(given_url)
    token = read_token(None)

    async def main() -> list[dict[str, Any]]:
        peer = await _client(url, token, ca_setting(None))
        try:
            return await peer.request("session.list", {"limit": limit, "executor": executor})
        finally:
            await peer.close()

    return asyncio.run(main())


def _remote_options(kw: dict[str, Any], prompt: str) -> dict[str, Any]:
    if kw.get("resume_latest"):
        raise UsageError("--resume-latest does not combine with --on; pass --session ID")
    if kw.get("executor_path"):
        raise UsageError("--executor-path names a path on this machine; with --on, set "
                         "[executor_paths] in the worker's config instead")
    return {
        "prompt": prompt, "executor": kw.get("executor"),
        "append_prompt": kw.get("append_prompt") or "", "cwd": kw.get("cwd"),
        "session": kw.get("session_id"), "model": kw.get("model"),
        "base_command": kw.get("base_command"), "params": list(kw.get("params") or ()),
        "vars": dict(kw.get("vars_") or {}), "openai_endpoint": kw.get("openai_endpoint"),
        "line_cap": kw.get("line_cap"),
        "repos": list(kw.get("repos") or ()), "base": kw.get("base"),
        "in_place": bool(kw.get("in_place")), "allow_dirty": bool(kw.get("allow_dirty")),
        "setup": list(kw.get("setup") or ()), "cleanup": list(kw.get("cleanup") or ()),
        "review": kw.get("review") or (True if kw.get("review_executor") else None),
        "review_executor": kw.get("review_executor"),
        "approvals": {"yolo": kw.get("yolo", False), "force": kw.get("force", False),
                      "trust": kw.get("trust", False), "auto_approve": kw.get("auto_approve"),
                      "allow_all_tools": kw.get("allow_all_tools", False),
                      "allow_tools": list(kw.get("allow_tools") or ()),
                      "deny_tools": list(kw.get("deny_tools") or ())},
    }


def run_remote(kw: dict[str, Any], prompt: str) -> int:
    """`aura run --on WORKER|label:X`: start on a worker via the coordinator, stream the
    entries as they are stored, Ctrl-C interrupts the remote agent. Returns the exit code."""
    import asyncio
    import json
    import signal
    from types import SimpleNamespace

    from aura.cli.render import JsonPrinter, StreamPrinter
    from aura.recorder import encode
    from aura.rpc import seq_of

    if not prompt:
        raise UsageError("--prompt is required with --on (the TUI drives local runs only)")
    url = coordinator_url(kw.get("coordinator"))
    token = read_token(None)
    ca = ca_setting(None)
    options = _remote_options(kw, prompt)
    as_json = bool(kw.get("as_json"))
    printer = JsonPrinter() if as_json else StreamPrinter()
    state: dict[str, Any] = {"last": 0, "execution": None, "session": None,
                             "interrupts": 0}
    summaries: dict[str, dict[str, Any]] = {}

    def on_texts(_header: dict[str, Any], texts: list[str]) -> None:
        records = []
        for text in texts:
            seq = seq_of(text)
            if seq > state["last"]:
                state["last"] = seq
                # --json prints the text as stored; only the human view needs the entry.
                records.append((seq, None if as_json else json.loads(text), text))
        if records:
            try:
                printer(records)
            except BrokenPipeError:
                pass

    def on_entries(params: dict[str, Any]) -> None:
        entries = params.get("entries")
        if isinstance(entries, list):
            on_texts(params, [encode(e) for e in entries if isinstance(e, dict)])

    def on_finished(params: dict[str, Any]) -> None:
        summary = params.get("summary") or {}
        summaries[str(params.get("execution") or summary.get("execution"))] = summary
        if state.get("wake") is not None:
            state["wake"].set()

    def route(method: str) -> Any:
        return {"session.entries": on_entries, "execution.finished": on_finished}.get(method)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        state["wake"] = asyncio.Event()
        peer = await _client(url, token, ca, route, {"session.entries": on_texts})
        state["peer"] = peer

        def on_signal() -> None:
            state["interrupts"] += 1
            if state["interrupts"] > 1 or state["execution"] is None:
                main_task.cancel()
                return
            click.echo("[aura] interrupting the remote agent (Ctrl-C again to stop waiting)",
                       err=True)
            task = asyncio.ensure_future(state["peer"].request(
                "execution.interrupt", {"execution": state["execution"]}))
            state["interrupt_task"] = task

        main_task = asyncio.current_task()
        assert main_task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        started = await peer.request("run.start", {"on": kw["on"], "options": options},
                                     timeout=150)
        state["execution"], state["session"] = started["execution"], started["session"]
        while started["execution"] not in summaries:
            if state["peer"].closed.is_set():
                state["peer"] = await _reconnect(url, token, ca, route, state,
                                                 {"session.entries": on_texts})
            state["wake"].clear()
            closed = asyncio.ensure_future(state["peer"].closed.wait())
            woke = asyncio.ensure_future(state["wake"].wait())
            await asyncio.wait({closed, woke}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            woke.cancel()
        await state["peer"].close()
        return summaries[started["execution"]]

    try:
        summary = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("[aura] stopped waiting; the run goes on on the worker" if
                   state["execution"] else "[aura] interrupted", err=True)
        return 130
    if kw.get("as_json"):
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        from aura.cli.output import print_outcome

        result = SimpleNamespace(session=SimpleNamespace(id=summary.get("session", "")),
                                 state=summary.get("state"),
                                 exit_code=summary.get("exit_code", 1),
                                 usage=summary.get("usage") or {})
        print_outcome(result)
        if summary.get("error") and summary.get("exit_code") == 1:
            click.echo(f"aura: error: {summary['error']}", err=True)
    code = summary.get("exit_code")
    return code if isinstance(code, int) else 1


async def _reconnect(url: str, token: str, ca: str | None, route: Any,
                     state: dict[str, Any], batches: dict[str, Any]) -> Any:
    """The line to the coordinator dropped mid-run: follow the session again from the last
    seq printed (the coordinator may be restarting: retry for a minute)."""
    import asyncio

    delay = 0.2
    for _attempt in range(40):
        try:
            peer = await _client(url, token, ca, route, batches)
            await peer.request("session.follow", {"session": state["session"],
                                                  "after_seq": state["last"],
                                                  "execution": state["execution"]})
            return peer
        except (AuraError, OSError, TimeoutError):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
    raise AuraError("lost the coordinator; the run goes on on the worker: see "
                    f"`aura session show {state['session'][:8]} --coordinator {url}`")
