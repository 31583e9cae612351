"""Where aura keeps its data, config and cache, and how it replaces a file there.

``AURA_HOME`` overrides all three (tests always set it, so they never touch the user's
home): data in ``$AURA_HOME``, config in ``$AURA_HOME/config.toml``, cache in
``$AURA_HOME/cache``. Without it, platformdirs' per-user locations are used.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "aura"


def _home() -> Path | None:
    value = os.environ.get("AURA_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return platformdirs.user_data_path(APP)


def config_dir() -> Path:
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return platformdirs.user_config_path(APP)


def cache_dir() -> Path:
    home = _home()
    if home is not None:
        return home / "cache"
    import platformdirs

    return platformdirs.user_cache_path(APP)


def db_path() -> Path:
    override = os.environ.get("AURA_DB")
    return Path(override) if override else data_dir() / "aura.db"


def config_path() -> Path:
    override = os.environ.get("AURA_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) so that a reader, or what
    is left after a crash, sees the old file or the new one, never a part: the data goes
    to a temp file beside it, which is renamed over it. The file gets ``mode``; missing
    parent directories are made. OSError when it cannot be written (nothing is left
    behind then)."""
    import contextlib
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        # Cleanup only: the error that stopped the write is the one raised.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
