"""The client side of the coordinator: where it is and how to authenticate (address,
token, CA file), a greeted connection, the reads of `aura session … --coordinator` and
`aura workers`, and one `aura run --on` followed to its end across reconnects.

No click and no printing: the CLI passes printers in as callbacks. asyncio and websockets
are imported where a connection is made, so importing this module stays cheap.

Where settings come from (first found wins):
- coordinator address: the option given, ``AURA_COORDINATOR``, config ``coordinator``;
- token: ``--token-file``, ``AURA_TOKEN``, config ``token_file``. It is read once and
  removed from the environment so no child process inherits it;
- CA file to trust a self-signed coordinator: the option given, ``AURA_CAFILE``, config
  ``cafile``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from aura.contracts import RunSummary
from aura.errors import AuraError, UsageError

if TYPE_CHECKING:
    from aura.contracts import Entry

Records = list[tuple[int, Any, str]]


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
            _refuse_shared(Path(path).expanduser(), path)
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


def _refuse_shared(file: Path, given: str) -> None:
    """Like ssh with a private key: a token others can read is no secret any more, so it is
    refused until its mode says only its owner can read it."""
    mode = file.stat().st_mode
    if mode & 0o077:
        raise UsageError(f"--token-file {given} can be read by others (mode "
                         f"{mode & 0o777:o}); run `chmod 600 {given}` and use a new token")


@overload
def coordinator_url(given: str | None, *, config: dict[str, Any] | None = None,
                    required: Literal[True] = True) -> str: ...
@overload
def coordinator_url(given: str | None, *, config: dict[str, Any] | None = None,
                    required: Literal[False]) -> str | None: ...
def coordinator_url(given: str | None, *, config: dict[str, Any] | None = None,
                    required: bool = True) -> str | None:
    """The coordinator to talk to: ``given``, else AURA_COORDINATOR, else the config's
    ``coordinator`` (``config``: already loaded). When ``required``, a usage error names how
    to set it if it is missing or not a ws:// or wss:// address; otherwise the setting comes
    back unchecked, None when there is none (`aura doctor` checks it its own way)."""
    url = given or os.environ.get("AURA_COORDINATOR") or \
        (config if config is not None else _config()).get("coordinator")
    if not required:
        return str(url) if url else None
    if not url:
        raise UsageError("no coordinator: pass --coordinator ws(s)://HOST:PORT, set "
                         "AURA_COORDINATOR, or set coordinator = \"…\" in the config")
    if not str(url).startswith(("ws://", "wss://")):
        raise UsageError(f"coordinator address {url!r} must start with ws:// or wss://")
    _check_address(str(url))
    return str(url)


def _check_address(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UsageError(f"coordinator address {url!r} is not a valid URL ({exc})") from None
    if not parts.hostname:
        raise UsageError(f"coordinator address {url!r} names no host")


def ca_setting(given: str | None) -> str | None:
    return given or os.environ.get("AURA_CAFILE") or _config().get("cafile")


# connections ----------------------------------------------------------------------------------

async def connect_client(url: str, token: str, ca: str | None, route: Any = None,
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


def _ask(given_url: str | None, method: str, params: dict[str, Any],
         ca: str | None = None) -> Any:
    """One request to the coordinator on a connection of its own."""
    import asyncio

    url = coordinator_url(given_url)
    token = read_token(None)

    async def main() -> Any:
        peer = await connect_client(url, token, ca_setting(ca))
        try:
            return await peer.request(method, params)
        finally:
            await peer.close()

    return asyncio.run(main())


def list_workers(given_url: str | None, token: str) -> list[dict[str, Any]]:
    """`aura workers`: the workers the coordinator knows."""
    import asyncio

    url = coordinator_url(given_url)

    async def main() -> Any:
        peer = await connect_client(url, token, ca_setting(None))
        try:
            return await peer.request("workers.list", {})
        finally:
            await peer.close()

    workers: list[dict[str, Any]] = asyncio.run(main())
    return workers


def models_on(given_url: str | None, worker: str, params: dict[str, Any]
              ) -> list[dict[str, Any]]:
    """`aura models --on NAME`: the models of the servers that worker can reach."""
    params = {"on": worker, **params}
    found: list[dict[str, Any]] = _ask(given_url, "models.list", params)
    return found


def fetch_session(given_url: str | None, session_id: str | None) -> dict[str, Any]:
    """`aura session show --json`'s object, read from the coordinator over the protocol
    (``session_id`` None: its newest session)."""
    import asyncio

    url = coordinator_url(given_url)
    token = read_token(None)

    async def main() -> dict[str, Any]:
        peer = await connect_client(url, token, ca_setting(None))
        try:
            wanted = session_id
            if wanted is None:
                newest = await peer.request("session.list", {"limit": 1, "executor": None})
                if not newest:
                    raise AuraError("the coordinator has no sessions yet; start one with "
                                    "`aura run --on WORKER --prompt …`")
                wanted = str(newest[0]["id"])
            data: dict[str, Any] = await peer.request("session.get", {"session": wanted})
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


def follow_remote(given_url: str | None, session_id: str, *,
                  on_records: Callable[[Records], None], on_notice: Callable[[str], None],
                  tail: int | None = None, decode: bool = True) -> str:
    """`aura session show ID -f --coordinator URL`: hand the session's entries to
    ``on_records`` as the coordinator stores them (from ``tail`` entries before the end, or
    from the start), until its running execution ends; returns the session's state then.
    A session with nothing running is handed over as stored, and its state returned."""
    import asyncio

    url = coordinator_url(given_url)
    token = read_token(None)

    async def main() -> str:
        peer = await connect_client(url, token, ca_setting(None))
        try:
            data: dict[str, Any] = await peer.request("session.get", {"session": session_id})
        finally:
            await peer.close()
        last = int(data.get("last_seq") or 0)
        after = max(0, last - tail) if tail is not None else 0
        running = [e for e in data.get("executions") or () if e.get("state") == "running"]
        if not running:
            on_notice(f"[aura] session {str(data['id'])[:8]} is not running "
                      f"({data.get('state')}); its entries as stored")
        remote = RemoteRun(url, token, ca_setting(None), on_records=on_records,
                           on_notice=on_notice, decode=decode)
        if not running:
            remote.session, remote.last = str(data["id"]), after
            remote.peer = await remote._connect()
            try:
                await remote._catch_up_stored()
            finally:
                await remote.peer.close()
            return str(data.get("state"))
        summary = await remote.attach(str(data["id"]), str(running[-1]["id"]), after)
        return summary.state

    return asyncio.run(main())


def fetch_sessions(given_url: str | None, limit: int, executor: str | None
                   ) -> list[dict[str, Any]]:
    """`aura session list --json`'s array, read from the coordinator."""
    sessions: list[dict[str, Any]] = _ask(given_url, "session.list",
                                          {"limit": limit, "executor": executor})
    return sessions


def remote_approvals(given_url: str | None, *, every: bool = False) -> list[dict[str, Any]]:
    """`aura approvals --coordinator`: the requests of runs on workers (pending ones, or
    all with ``every``), each with the ``worker`` that runs it."""
    found: list[dict[str, Any]] = _ask(given_url, "approvals.list", {"all": every})
    return found


def answer_remote(given_url: str | None, approval_id: str, choice: str, *, by: str,
                  message: str | None = None) -> dict[str, Any]:
    """`aura approve|deny ID --coordinator`: the answer goes to the worker running the
    request; its settled record comes back. An answer that comes too late is an error
    whose exit code is 3, as on the local path."""
    done: dict[str, Any] = _ask(given_url, "approvals.answer", {
        "approval": approval_id, "choice": choice, "message": message, "by": by})
    return done


# aura run --on --------------------------------------------------------------------------------

class RemoteRun:
    """One run on a worker, followed through the coordinator until its summary arrives.

    ``on_records`` gets every new entry once, in seq order, as ``(seq, entry, text)``
    (``entry`` is None when ``decode`` is off: JSON output prints the stored text);
    ``on_notice`` gets a line for the user. Ctrl-C once interrupts the remote agent, twice
    stops waiting (the run goes on on the worker).

    When this client reads too slowly, the coordinator drops it from the live feed with
    ``session.behind``: it then pages ``session.entries`` from its last seq and follows
    again, so it misses nothing however long it stalled."""

    def __init__(self, url: str, token: str, ca: str | None, *,
                 on_records: Callable[[Records], None], on_notice: Callable[[str], None],
                 decode: bool = True) -> None:
        self.url, self._token, self.ca = url, token, ca
        self.on_records, self.on_notice, self.decode = on_records, on_notice, decode
        self.last = 0  # highest seq handed to on_records
        self.execution: str | None = None
        self.session: str | None = None
        self.worker: str | None = None  # the worker the coordinator picked
        self.interrupts = 0
        self.summaries: dict[str, dict[str, Any]] = {}
        self.peer: Any = None
        self._wake: Any = None
        self._main: Any = None
        self._interrupting: Any = None  # keeps the interrupt request alive
        self._behind = False  # dropped from the live feed: catch up by paging

    def on_texts(self, _header: dict[str, Any], texts: list[str]) -> None:
        import json

        from aura.rpc import seq_of

        records: Records = []
        for text in texts:
            seq = seq_of(text)
            if seq > self.last:
                self.last = seq
                records.append((seq, json.loads(text) if self.decode else None, text))
        if records:
            try:
                self.on_records(records)
            except BrokenPipeError:
                pass

    def on_entries(self, params: dict[str, Any]) -> None:
        from aura.recorder import encode

        entries = params.get("entries")
        if isinstance(entries, list):
            self.on_texts(params, [encode(cast("Entry", e)) for e in entries
                                   if isinstance(e, dict)])

    def on_finished(self, params: dict[str, Any]) -> None:
        summary = params.get("summary") or {}
        self.summaries[str(params.get("execution") or summary.get("execution"))] = summary
        if self._wake is not None:
            self._wake.set()

    def on_behind(self, params: dict[str, Any]) -> None:
        # (it may come before run.start's answer names the session)
        if self.session is None or params.get("session") == self.session:
            self._behind = True
            if self._wake is not None:
                self._wake.set()

    def route(self, method: str) -> Any:
        return {"session.entries": self.on_entries,
                "session.behind": self.on_behind,
                "execution.finished": self.on_finished}.get(method)

    def on_signal(self) -> None:
        import asyncio

        self.interrupts += 1
        if self.interrupts > 1 or self.execution is None:
            self._main.cancel()
            return
        self.on_notice("[aura] interrupting the remote agent (Ctrl-C again to stop waiting)")
        self._interrupting = asyncio.ensure_future(self.peer.request(
            "execution.interrupt", {"execution": self.execution}))

    async def _connect(self) -> Any:
        return await connect_client(self.url, self._token, self.ca, self.route,
                                    {"session.entries": self.on_texts})

    async def run(self, on: str, options: dict[str, Any]) -> RunSummary:
        """Start the run ``on`` a worker (name or ``label:X``) and wait for its summary."""
        import asyncio
        import signal

        self._wake = asyncio.Event()
        self._main = asyncio.current_task()
        self.peer = await self._connect()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal)
        started = await self.peer.request("run.start", {"on": on, "options": options},
                                          timeout=150)
        self.execution, self.session = started["execution"], started["session"]
        worker = started.get("worker")
        self.worker = worker if isinstance(worker, str) else None
        return await self._until_finished()

    async def attach(self, session: str, execution: str, after: int = 0) -> RunSummary:
        """Follow a run already started (by anyone) from ``after`` until its summary."""
        import asyncio

        self._wake = asyncio.Event()
        self._main = asyncio.current_task()
        self.session, self.execution, self.last = session, execution, after
        self.peer = await self._connect()
        await self._follow()
        return await self._until_finished()

    async def _until_finished(self) -> RunSummary:
        import asyncio

        assert self.execution is not None
        # A summary that comes while behind (the run ended meanwhile) waits for the rest.
        while self.execution not in self.summaries or self._behind:
            if self.peer.closed.is_set():
                self.peer = await self._reconnect()
            elif self._behind:
                await self._catch_up()
            self._wake.clear()
            if self._behind or self.execution in self.summaries:
                continue  # (the loop's test decides)
            closed = asyncio.ensure_future(self.peer.closed.wait())
            woke = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({closed, woke}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            woke.cancel()
        await self.peer.close()
        raw = self.summaries[self.execution]
        try:
            return RunSummary.from_json(raw)
        except ValueError as exc:
            raise AuraError(f"the coordinator sent a malformed run summary ({exc})") from None

    async def _follow(self) -> None:
        self._behind = False
        await self.peer.request("session.follow", {"session": self.session,
                                                   "after_seq": self.last,
                                                   "execution": self.execution})

    async def _catch_up_stored(self) -> None:
        """Page every stored entry after ``last`` to ``on_records`` (no following)."""
        while True:
            page = await self.peer.request("session.entries", {
                "session": self.session, "after_seq": self.last, "limit": 5000},
                timeout=120)
            self.on_entries(page)
            if not page.get("entries") or not page.get("more"):
                return

    async def _catch_up(self) -> None:
        """Dropped from the live feed: page what is stored after the last seq handed on,
        then follow again (which may find this client behind once more)."""
        from aura.errors import ConnectionLost

        try:
            await self._catch_up_stored()
            await self._follow()
        except (ConnectionLost, TimeoutError):
            pass  # the loop reconnects, which follows from self.last again

    async def _reconnect(self) -> Any:
        """The line to the coordinator dropped mid-run: follow the session again from the
        last seq handed on (the coordinator may be restarting: retry for a minute)."""
        import asyncio

        delay = 0.2
        for _attempt in range(40):
            try:
                self.peer = await self._connect()
                await self._follow()
                return self.peer
            except (AuraError, OSError, TimeoutError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AuraError("lost the coordinator; the run goes on on the worker: see "
                        f"`aura session show {str(self.session)[:8]} --coordinator "
                        f"{self.url}`")
