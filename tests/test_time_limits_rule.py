"""The watchdog's rule, without processes."""

from __future__ import annotations

from aura.service.time_limits import TimeLimits


def test_the_overall_limit_wins_and_idleness_waits_for_nobody_asked() -> None:
    limits = TimeLimits(timeout=10, idle_timeout=3)
    assert limits.overrun(9.9, 2.9, waiting=False) is None
    assert limits.overrun(10, 0.0, waiting=False) == "timed out after 10 s"
    assert limits.overrun(5, 3.5, waiting=False) == "no output for 3 s"
    assert limits.overrun(5, 3.5, waiting=True) is None  # a person is being asked
    assert TimeLimits().overrun(1e9, 1e9, waiting=False) is None
