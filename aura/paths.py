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


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Make ``path`` (and its missing parents) readable by its owner only, whatever the
    umask: aura's data holds prompts, agent output and tokens. A directory that already
    exists keeps its mode (it may be a shared one the user pointed aura at)."""
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another aura made it meanwhile
        os.chmod(directory, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, and take group and other
    access away from it if it does (files aura made before it did this). A file of another
    user is left as it is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return
    except FileExistsError:
        pass
    info = os.stat(path)
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(path, info.st_mode & 0o700)


def atomic_write(path: Path, data: str | bytes, mode: int = PRIVATE_FILE) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) so that a reader, or what
    is left after a crash, sees the old file or the new one, never a part: the data goes
    to a temp file beside it, which is renamed over it. The file gets ``mode``; missing
    parent directories are made. OSError when it cannot be written (nothing is left
    behind then)."""
    import contextlib
    import tempfile

    private_dir(path.parent)
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
