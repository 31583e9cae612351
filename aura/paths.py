"""Where aura keeps its data, config and cache.

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
