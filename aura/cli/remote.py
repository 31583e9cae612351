"""Remote-worker commands: `aura serve`, `aura worker`, `aura workers`, and the printing
side of `aura run --on` (the protocol side is aura.remote.client, which also says where
the coordinator address, the token and the CA file come from).

Only click and light aura modules are imported here at module level; asyncio, websockets
and the store are imported inside the commands (`aura --help` stays fast).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from aura.cli.completion import remember_workers
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, debug_option
from aura.errors import AuraError, UsageError

# settings -------------------------------------------------------------------------------------

_Command = TypeVar("_Command", bound=Callable[..., Any])
# The daemons' --debug also turns on verbose logs.
_daemon_debug: Callable[[_Command], _Command] = debug_option("Verbose logs and tracebacks.")

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
@click.option("--max-connections", type=click.IntRange(min=1), default=1000,
              show_default=True, metavar="N",
              help="Connections at once; more are refused with HTTP 503.")
@click.option("--hello-timeout", type=click.FloatRange(min=0.1), default=5.0,
              show_default=True, metavar="SECONDS",
              help="Close a connection that has not said hello by then.")
@_daemon_debug
def serve_command(listen: str, tls_cert: str | None, tls_key: str | None,
                  token_file: str | None, heartbeat_interval: float, offline_after: float,
                  max_message: int, max_connections: int, hello_timeout: float,
                  debug: bool) -> None:
    """Run the coordinator: workers dial in, clients run agents on them (`--on`).

    \b
    AURA_TOKEN=… aura serve --listen 0.0.0.0:8765 --tls-cert cert.pem --tls-key key.pem
    """
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if offline_after <= heartbeat_interval:
        raise UsageError("--offline-after must be longer than --heartbeat-interval")
    from aura.remote.client import read_token

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
    from aura.remote.coordinator.server import Limits, serve
    from aura.store_sqlite import open_store

    store = open_store()
    coordinator = Coordinator(store, token, heartbeat_interval=heartbeat_interval,
                              offline_after=offline_after, max_message=max_message)
    limits = Limits(max_connections=max_connections, hello_timeout=hello_timeout)
    try:
        _run_until_signal(lambda: serve(coordinator, host, port, ssl_context=context,
                                        limits=limits))
    except OSError as exc:
        raise AuraError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    finally:
        store.close()


# aura worker ----------------------------------------------------------------------------------

@click.command("worker", context_settings=CONTEXT_SETTINGS)
@click.option("--coordinator", "--connect", "url", metavar="URL",
              help="Coordinator address, ws:// or wss:// (default: AURA_COORDINATOR, "
                   "config); --connect is the older name.")
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
@_daemon_debug
def worker_command(url: str | None, name: str | None, labels: str, capacity: int,
                   token_file: str | None, allow_command: bool, workdir: str | None,
                   cafile: str | None, debug: bool) -> None:
    """Run executions for a coordinator (dials out; no inbound port needed).

    \b
    AURA_TOKEN=… aura worker --coordinator wss://coord:8765 --name gpu1 --labels gpu,linux
    """
    import asyncio
    import socket

    from aura import config as config_module
    from aura.errors import WorkerRefused
    from aura.paths import data_dir
    from aura.remote.client import ca_setting, coordinator_url, read_token
    from aura.remote.worker.daemon import Worker
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

    def make() -> Worker:
        return Worker(address, name, token, home=home, labels=label_list, capacity=capacity,
                      allow_command=allow, workdir=str(Path(workdir or os.getcwd()).resolve()),
                      cafile=chosen_cafile, executors=executors)

    try:
        asyncio.run(_serve_worker(make))
    except WorkerRefused as exc:
        raise AuraError(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def _serve_worker(make: Callable[[], Any]) -> None:
    """Run the worker ``make`` builds (inside the loop) until a signal: the first one
    stops the agents (recorded as cancelled) and lets the relay deliver that, then leaves;
    a second one leaves at once."""
    import asyncio
    import signal

    worker = make()
    runner = asyncio.create_task(worker.run())
    stopping: list[asyncio.Task[None]] = []

    async def graceful() -> None:
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


# aura workers ---------------------------------------------------------------------------------

_COORDINATOR_HELP = "Coordinator address (AURA_COORDINATOR)."
_TOKEN_HELP = "File holding the shared token (default: AURA_TOKEN)."


@click.group("workers", cls=AuraGroup, context_settings=CONTEXT_SETTINGS,
             invoke_without_command=True)
@click.option("--coordinator", metavar="URL", help=_COORDINATOR_HELP)
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help=_TOKEN_HELP)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of workers.")
@click.pass_context
def workers_command(ctx: click.Context, coordinator: str | None, token_file: str | None,
                    as_json: bool) -> None:
    """Workers known to the coordinator: identity, labels, state, load, last heartbeat,
    version. `aura workers revoke NAME` cuts one off."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from aura.remote.client import coordinator_url, list_workers, read_token

    coordinator_url(coordinator)  # a missing address is named before the token
    workers = list_workers(coordinator, read_token(token_file))
    remember_workers(workers)  # what a TAB after --on offers
    if as_json:
        click.echo(json.dumps(workers, ensure_ascii=False, indent=2))
        return
    if not workers:
        click.echo("no workers yet; start one with `aura worker --coordinator URL --name NAME`",
                   err=True)
        return
    from aura.cli.render import table, terminal_width
    from aura.cli.wording import ago

    rows = [("NAME", "IDENTITY", "STATE", "RUNNING", "LABELS", "LAST HEARTBEAT", "VERSION",
             "MODEL SERVERS", "EXECUTORS")]
    for w in workers:
        rows.append((w["name"], w.get("identity") or "-", w["state"],
                     f"{w['running']}/{w['capacity']}",
                     ",".join(w["labels"]) or "-", ago(w["last_heartbeat"]),
                     w["version"] or "-", _model_servers(w.get("model_servers") or {}),
                     ",".join(sorted(w["executors"])) or "-"))
    for line in table(rows, terminal_width(), flexible=8, drop=(7, 6, 1)):
        click.echo(line)


def _model_servers(servers: dict[str, Any]) -> str:
    """The model servers a worker reached at its last probe, with their model counts."""
    reached = [f"{name}({info.get('models', 0)})" for name, info in sorted(servers.items())
               if isinstance(info, dict) and info.get("reachable")]
    return ",".join(reached) or "-"


@workers_command.command("revoke", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--re-enroll", is_flag=True,
              help="Let the next hello of NAME enroll afresh (a reinstalled host); without "
                   "it NAME is refused for good.")
@click.option("--coordinator", metavar="URL", help=_COORDINATOR_HELP)
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help=_TOKEN_HELP)
def revoke_command(name: str, re_enroll: bool, coordinator: str | None,
                   token_file: str | None) -> None:
    """Cut worker NAME off: its key is refused and its live connection closed."""
    import asyncio

    from aura.remote.client import ca_setting, connect_client, coordinator_url, read_token

    url = coordinator_url(coordinator)
    token = read_token(token_file)

    async def main() -> Any:
        peer = await connect_client(url, token, ca_setting(None))
        try:
            return await peer.request("workers.revoke", {"name": name,
                                                         "re_enroll": re_enroll})
        finally:
            await peer.close()

    done = asyncio.run(main())
    if re_enroll:
        click.echo(f"worker {name} revoked; its next `aura worker` hello enrolls it afresh")
    else:
        click.echo(f"worker {name} revoked for good at {done['revoked_at']}")


def run_remote(kw: dict[str, Any], prompt: str) -> int:
    """`aura run --on WORKER|label:X`: start on a worker via the coordinator, stream the
    entries as they are stored, Ctrl-C interrupts the remote agent. Returns the exit code."""
    import asyncio

    from aura.cli.render import JsonPrinter, StreamPrinter
    from aura.remote.client import RemoteRun, ca_setting, coordinator_url, read_token
    from aura.service.run_options import RunOptions

    if not prompt:
        raise UsageError("--prompt is required with --on (the TUI drives local runs only)")
    url = coordinator_url(kw.get("coordinator"))
    token = read_token(None)
    ca = ca_setting(None)
    options = RunOptions.from_cli(kw, prompt=prompt).to_wire()
    as_json = bool(kw.get("as_json"))
    printer = JsonPrinter() if as_json else StreamPrinter(verbose=bool(kw.get("verbose")))
    remote = RemoteRun(url, token, ca, on_records=printer,
                       on_notice=lambda line: click.echo(line, err=True), decode=not as_json)
    try:
        summary = asyncio.run(remote.run(kw["on"], options))
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("[aura] stopped waiting; the run goes on on the worker" if
                   remote.execution else "[aura] interrupted", err=True)
        return 130
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text(summary.to_json(), compact=True))
    else:
        from aura.cli.output import print_outcome

        print_outcome(summary, verdict=printer.story.verdict
                      if isinstance(printer, StreamPrinter) else None,
                      follow_up=remote_follow_up(
                          remote.worker or str(kw["on"]), summary.session or remote.session or "",
                          kw.get("coordinator")))
        if summary.error and summary.exit_code == 1:
            click.echo(f"aura: error: {summary.error}", err=True)
    return summary.exit_code if summary.exit_code is not None else 1


def remote_follow_up(worker: str, session: str, coordinator: str | None) -> str:
    """The command that goes on with a session run on a worker: the session lives on the
    coordinator (not in this machine's store), so the follow-up goes through it again."""
    import shlex

    via = f" --coordinator {shlex.quote(coordinator)}" if coordinator else ""
    return f"aura run --on {shlex.quote(worker)}{via} --session {session[:8]}"
