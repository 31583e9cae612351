"""The running side of controls (aura.store_controls): while a run goes, its aura process
polls the store for what other terminals asked of its session and does it.

- steer: into the running turn when its executor takes text mid-turn
  (``Executor.live_controls`` has "steer": claude's control protocol, codex app-server);
  otherwise queued: once the turn ends, the run continues the same agent session with
  the text, as `aura run --session ID TEXT` would;
- interrupt: the agent ends the running turn its own way (claude's interrupt request,
  codex turn/interrupt, ACP session/cancel); the run ends cancelled, its agent session
  kept, and a text sent along with it is queued as the next follow-up;
- follow_up: always queued.

Each pick-up leaves an entry in the session (``data.type == "control"``), so
`aura session show` tells what was delivered, queued or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from typing import Any, Protocol

from aura.contracts import EntryKind
from aura.errors import AuraError, TurnInterrupted
from aura.executors.base import Executor, Output, RunRequest
from aura.recorder import utc_now
from aura.service.pipeline import EXIT_TIMED_OUT
from aura.service.run_options import RunOptions
from aura.store import Store
from aura.store_controls import Control

POLL_INTERVAL = 0.2  # seconds between reads of the session's pending controls
DELIVERY_TIMEOUT = 10.0  # seconds an agent may take to accept a steer or an interrupt


class Steering:
    """The controls of one session while one turn of it runs."""

    def __init__(self, store: Store, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.live: tuple[Executor, RunRequest, Output] | None = None
        self.interrupted: dict[str, str] = {}  # execution id → who interrupted it

    async def watch(self) -> None:
        """Handle pending controls until cancelled (the run's turn ended)."""
        while True:
            with contextlib.suppress(AuraError):  # a busy or damaged store: try again
                for control in self.store.list_controls(self.session_id, "pending"):
                    await self.handle(control)
            await asyncio.sleep(POLL_INTERVAL)

    async def handle(self, control: Control) -> None:
        live = self.live
        can = live[0].live_controls() if live is not None and not live[1].read_only \
            else frozenset()
        if control.kind == "interrupt":
            await self._interrupt(control, live, can)
        elif control.kind == "steer" and live is not None and "steer" in can:
            await self._steer(control, live)
        else:
            self._queue(control, "pending", None)

    async def _steer(self, control: Control, live: tuple[Executor, RunRequest, Output]
                     ) -> None:
        executor, request, _ = live
        if not self._move(control, "pending", "delivered", "into the running turn",
                          request.execution_id):
            return
        try:
            await asyncio.wait_for(executor.steer_turn(control.text), DELIVERY_TIMEOUT)
        except (AuraError, TimeoutError) as exc:
            self._queue(control, "delivered", "the running turn did not take it "
                        f"({exc or 'no answer in time'})")
            return
        self._say(f"steer from {control.by} went into the running turn", control,
                  "delivered")

    def _queue(self, control: Control, from_state: str, why: str | None) -> None:
        live = self.live
        if why is None:
            why = f"{live[0].name} takes no text mid-turn in the mode it runs in" \
                if live is not None else "no agent turn is running now"
        if self._move(control, from_state, "queued", why,
                      live[1].execution_id if live is not None else None):
            self._say(f"queued by {control.by} as the next follow-up ({why}): "
                      f"{control.text}", control, "queued")

    async def _interrupt(self, control: Control,
                         live: tuple[Executor, RunRequest, Output] | None,
                         can: frozenset[str]) -> None:
        if live is None or "interrupt" not in can:
            why = "no agent turn is running" if live is None else \
                f"{live[0].name} cannot interrupt a turn in the mode it runs in"
            if self._move(control, "pending", "refused", why, None):
                self._say(f"interrupt from {control.by} refused: {why}", control, "refused")
            return
        executor, request, _ = live
        if not self._move(control, "pending", "delivered", "the turn was interrupted",
                          request.execution_id):
            return
        self.interrupted[request.execution_id] = control.by
        try:
            await asyncio.wait_for(executor.interrupt_turn(), DELIVERY_TIMEOUT)
        except (AuraError, TimeoutError) as exc:
            self.interrupted.pop(request.execution_id, None)
            self._move(control, "delivered", "refused",
                       str(exc) or f"{executor.name} did not take it in time", None)
            return
        self._say(f"interrupted by {control.by}", control, "delivered")
        if control.text:
            follow = Control(str(uuid.uuid4()), self.session_id, "follow_up", utc_now(),
                             control.by, control.text, request.execution_id)
            self.store.create_control(follow)
            self._queue(follow, "pending", "sent with the interrupt")

    def _move(self, control: Control, from_state: str, state: str, note: str,
              execution: str | None) -> bool:
        return self.store.move_control(control.id, from_state, state, at=utc_now(),
                                       note=note, execution=execution)

    def _say(self, text: str, control: Control, state: str) -> None:
        if self.live is None:
            return  # between stages: the follow-up's own entries will say it
        output = self.live[2]
        output.emit([{"kind": EntryKind.SYSTEM.value, "text": text,
                      "data": {"type": "control", "id": control.id, "kind": control.kind,
                               "state": state, "by": control.by}}])
        hand_off = getattr(output, "hand_off", None)
        if hand_off is not None:  # the recorder: store it now, other terminals read it
            hand_off()


class SteeringHost:
    """A host whose agent runs can be steered and interrupted through ``steering``."""

    def __init__(self, host: Any, steering: Steering) -> None:
        self._host = host
        self._steering = steering

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    async def run_agent(self, executor: Executor, request: RunRequest, output: Output
                        ) -> Any:
        self._steering.live = (executor, request, output)
        try:
            outcome = await self._host.run_agent(executor, request, output)
        finally:
            self._steering.live = None
        by = self._steering.interrupted.get(request.execution_id)
        if by is not None:
            raise TurnInterrupted(f"interrupted by {by}")
        return outcome


# between turns ------------------------------------------------------------------------------

class Ended(Protocol):
    """How a turn ended (``runner.RunResult``)."""

    @property
    def state(self) -> str: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def interrupted(self) -> bool: ...


def goes_on(result: Ended) -> bool:
    """Whether queued follow-ups run after this turn: not after a
    cancel (Ctrl-C, `aura session cancel`, --max-cost) or a --timeout, but after an
    `aura session interrupt`, and after a turn that was done, failed or rests in review."""
    if result.interrupted:
        return True
    return result.state != "cancelled" and result.exit_code != EXIT_TIMED_OUT


def take_follow_up(store: Store, session_id: str) -> Control | None:
    """The oldest queued follow-up of the session, now marked as started."""
    for control in store.list_controls(session_id, "queued"):
        if store.move_control(control.id, "queued", "delivered", at=utc_now(),
                              note="started as a follow-up"):
            return control
    return None


def follow_up_options(options: RunOptions, session_id: str, text: str) -> RunOptions:
    """The options of `aura run --session ID TEXT` after a turn of ``options``: the same
    agent settings, nothing that would make a new workspace."""
    return replace(options, prompt=text, append_prompt="", session=session_id,
                   resume_latest=False, executor=None, cwd=None, repos=(), base=None,
                   in_place=False, allow_dirty=False, setup=(), wait=True)


def close_controls(store: Store, session_id: str, why: str) -> None:
    """The run is over: whatever is still pending or queued is refused, saying ``why``."""
    for state in ("pending", "queued"):
        for control in store.list_controls(session_id, state):
            store.move_control(control.id, state, "refused", at=utc_now(), note=why)
