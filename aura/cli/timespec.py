"""`--since 10m|2h|7d|ISO` and `--older-than 30d`: a moment as the store writes it (ISO
8601 UTC with milliseconds and a Z), so it compares with stored timestamps as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aura.errors import UsageError

_SPAN = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str, option: str = "--since") -> str:
    """``text`` (an age such as 10m, 2h, 7d, 1w, or an ISO date or time; local time when
    it names no zone) as a stored-timestamp string."""
    spec = text.strip()
    found = _SPAN.fullmatch(spec)
    if found:
        try:
            when = datetime.now(UTC) - timedelta(**{_UNITS[found[2]]: int(found[1])})
        except OverflowError:
            raise UsageError(f"{option} {text!r} is too far back") from None
    else:
        try:
            when = datetime.fromisoformat(spec.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{option} takes an age (10m, 2h, 7d, 1w) or an ISO date/time "
                             f"(2026-01-31, 2026-01-31T14:00), not {text!r}") from None
        if when.tzinfo is None:
            when = when.astimezone()  # a naive time is the user's local time
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
