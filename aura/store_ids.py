"""Id prefixes, the git way: a whole id always resolves; a prefix must be at least
``MIN_PREFIX`` characters and match one id only. Sessions, workspaces (a session's id) and
approval requests resolve through ``check_prefix`` in every store."""

from __future__ import annotations

from aura.errors import NotFound

MIN_PREFIX = 4


def check_prefix(prefix: str, what: str) -> None:
    """Refuse a prefix too short to be read as one (a whole id was looked up already)."""
    if len(prefix) < MIN_PREFIX:
        shown = f"{prefix!r} is" if prefix else "an empty id is"
        raise NotFound(f"{shown} too short for {_article(what)} {what} id prefix: type at least "
                       f"{MIN_PREFIX} characters of the id (or all of it)")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
