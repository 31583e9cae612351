"""Health checks behind `aura doctor`: Python, where aura keeps things, the database, each
executor's binary, the coordinator. No click, no printing: each check is a ``Check`` value,
and every problem carries the command that fixes it.

Statuses: ``ok``; ``warn`` (works, but something is missing or degraded: an agent that is not
installed); ``error`` (aura cannot work as configured). `aura doctor` exits 1 on any error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, WARN, ERROR = "ok", "warn", "error"
CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    group: str  # python | paths | config | database | executor | coordinator
    name: str
    status: str
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(find_coordinator: Callable[[dict[str, Any]], str | None]) -> list[Check]:
    """Every check, in display order. ``find_coordinator``: the configured coordinator
    address given the config (the client's own lookup, which lives above this layer)."""
    checks = [check_python(), *check_paths()]
    config, config_check = check_config()
    checks.append(config_check)
    checks.append(check_database())
    checks.extend(check_executors(config))
    checks.append(check_coordinator(find_coordinator(config)))
    return checks


def check_python() -> Check:
    version = ".".join(str(v) for v in sys.version_info[:3])
    ok = sys.version_info >= (3, 11)
    return Check("python", "python", OK if ok else ERROR, f"{version} ({sys.executable})",
                 None if ok else "install Python 3.11 or newer and run aura with it",
                 {"version": version, "executable": sys.executable})


def check_paths() -> Iterator[Check]:
    from aura import paths

    for name, path in (("data", paths.data_dir()), ("config", paths.config_path()),
                       ("cache", paths.cache_dir())):
        where = path.parent if name == "config" else path
        writable = _writable(where)
        detail = str(path) + ("" if writable else "  (not writable)")
        yield Check("paths", name, OK if writable else ERROR, detail,
                    None if writable else f"mkdir -p {where} && chmod u+rwx {where}",
                    {"path": str(path), "writable": writable})


def _writable(path: Path) -> bool:
    # A directory that does not exist yet is fine if aura could create it.
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_config() -> tuple[dict[str, Any], Check]:
    from aura import config as config_module
    from aura.errors import ConfigError
    from aura.paths import config_path

    path = config_path()
    try:
        data = config_module.load(path)
    except ConfigError as exc:
        return {}, Check("config", "config file", ERROR, str(exc),
                         f"fix the TOML in {path}, or move it aside: mv {path} {path}.bak",
                         {"path": str(path)})
    detail = f"{path}" if path.exists() else f"{path} (none yet; defaults apply)"
    return data, Check("config", "config file", OK, detail, None,
                       {"path": str(path), "exists": path.exists()})


def check_database() -> Check:
    import sqlite3

    from aura.paths import db_path
    from aura.store_schema import MIGRATIONS

    path = db_path()
    if not path.exists():
        return Check("database", "database", OK,
                     f"{path} (not created yet; the first `aura run` creates it)", None,
                     {"path": str(path), "exists": False})
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    data: dict[str, Any] = {"path": str(path), "exists": True, "size_bytes": size}
    moved = f"mv {path} {path}.broken  (aura starts a new database; the old one is kept)"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            integrity = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            sessions = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] \
                if version >= 1 else 0
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Check("database", "database", ERROR, f"{path}: cannot read: {exc}", moved, data)
    data.update(integrity=integrity[:20], schema=version, sessions=sessions)
    if integrity != ["ok"]:
        return Check("database", "database", ERROR,
                     f"{path}: integrity check failed: {'; '.join(integrity[:3])}",
                     f"sqlite3 {path} .recover | sqlite3 {path}.recovered  then  {moved}", data)
    if version > len(MIGRATIONS):
        return Check("database", "database", ERROR,
                     f"{path}: schema {version} is newer than this aura ({len(MIGRATIONS)})",
                     "upgrade aura (pipx upgrade aura, or download the newest aura.pyz)", data)
    return Check("database", "database", OK,
                 f"{path}  {_size(size)}, {sessions} session{'' if sessions == 1 else 's'}, "
                 f"schema {version}, integrity ok",
                 None, data)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def check_executors(config: dict[str, Any]) -> list[Check]:
    """Each registered executor, found the way `aura run` finds it (the same probe as
    `aura executors`: configured path, PATH, npx fallback; versions asked in parallel)."""
    from aura.service.inventory import describe_all

    configured = config.get("executor_paths", {}) if isinstance(config, dict) else {}
    checks = [executor_check(row) for row in describe_all(dict(configured))]
    servers = [i for i, c in enumerate(checks)
               if c.name in MODEL_SERVERS and c.data.get("via") == "built-in"]
    if servers:
        # The model servers are asked at once: a host that drops packets costs one timeout.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            probed = list(pool.map(lambda i: server_check(checks[i], config), servers))
        for index, check in zip(servers, probed, strict=True):
            checks[index] = check
    return checks


MODEL_SERVERS = ("ollama", "lms")  # built in: nothing to find, but a server to reach
SERVER_TIMEOUT = 1.5  # seconds for one HTTP request to a model server


def server_check(check: Check, config: dict[str, Any]) -> Check:
    """``check`` (a built-in model-server executor) with whether its server answers now:
    one ``GET …/v1/models`` to the endpoint a run would use (the config's, else
    OLLAMA_HOST / the loopback default). Any HTTP answer is reachable; no answer is a
    warning with the command that starts the server."""
    from aura import config as config_module
    from aura.errors import AuraError
    from aura.executors import registry
    from aura.executors.base import RunRequest

    try:
        executor = registry.load(check.name)()
        request = RunRequest(prompt="", cwd=".", session_id="", execution_id="",
                             settings=config_module.executor_settings(config, check.name))
        base = executor.base_url(request)  # type: ignore[attr-defined]
    except (AuraError, ValueError) as exc:
        return Check("executor", check.name, ERROR, f"endpoint: {exc}",
                     f"fix [executors.{check.name}] endpoint in the config", check.data)
    where = executor.where(base)  # type: ignore[attr-defined]
    problem = _http_problem(base + "/models")
    data = {**check.data, "server": {"url": where, "reachable": problem is None,
                                     "error": problem}}
    if problem is None:
        return Check("executor", check.name, OK, f"built in; server at {where} reachable",
                     None, data)
    return Check("executor", check.name, WARN,
                 f"built in; server at {where} down ({problem})",
                 executor.start_hint(base), data)  # type: ignore[attr-defined]


def _http_problem(url: str) -> str | None:
    """None when ``url`` gets an HTTP answer (any status), else why not, in a few words."""
    import urllib.error
    import urllib.request

    # No proxy: a run talks to the server directly, so the check does too.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=SERVER_TIMEOUT):
            return None
    except urllib.error.HTTPError:
        return None  # it answered: the server is there
    except urllib.error.URLError as exc:
        reason = exc.reason
    except (OSError, ValueError) as exc:
        reason = exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {SERVER_TIMEOUT:g} s"
    return str(getattr(reason, "strerror", None) or reason)


def executor_check(row: dict[str, Any]) -> Check:
    """One `aura executors --json` row as a check with its fix."""
    name = row["name"]
    program = row.get("program") or name
    npx_package = row.get("npx_package")
    point = f"aura run --executor {name} --executor-path {name}=/path/to/{program} …"
    if row.get("error"):
        return Check("executor", name, ERROR, row["error"],
                     f"{point}  (or remove {name} from [executor_paths] in the config)", row)
    if not row.get("found"):
        install = f"npm install -g {npx_package}" if npx_package else f"install {program}"
        return Check("executor", name, WARN, f"{program} not found on PATH",
                     f"{install}, or: {point}", row)
    via = row.get("via")
    if via == "built-in":
        # Built in: no program of its own to find (a command you give, or a model server).
        detail = row.get("description") or "no program of its own to find"
        return Check("executor", name, OK, f"built in: {detail}", None, row)
    if via == "npx":
        return Check("executor", name, OK,
                     f"via npx -y {npx_package} (not installed; `npm install -g "
                     f"{npx_package}` starts faster)", None, row)
    version = row.get("version")
    return Check("executor", name, OK,
                 f"{row.get('path')}  {version or '(version unknown)'}", None, row)


def check_coordinator(url: str | None) -> Check:
    """``url``: the coordinator as configured (unchecked), None when none is."""
    import socket
    from urllib.parse import urlsplit

    if not url:
        return Check("coordinator", "coordinator", OK, "none configured (runs stay local)",
                     None, {"url": None})
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    default_port = 443 if parts.scheme in {"wss", "https"} else 8765
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        host, port = None, None
    if not host or parts.scheme not in {"ws", "wss", "http", "https"}:
        return Check("coordinator", "coordinator", ERROR, f"{url} is not a ws:// or wss:// URL",
                     "set it to ws://HOST:PORT (AURA_COORDINATOR or `coordinator` in "
                     "the config)", {"url": url, "reachable": False})
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        return Check("coordinator", "coordinator", ERROR,
                     f"{url} unreachable: {exc.strerror or exc}",
                     f"start it on that machine: aura serve --listen {host}:{port}  "
                     "(or fix AURA_COORDINATOR / `coordinator` in the config)",
                     {"url": url, "reachable": False})
    return Check("coordinator", "coordinator", OK, f"{url} reachable", None,
                 {"url": url, "reachable": True})
