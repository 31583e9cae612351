"""The ACP modes of agents whose usual aura mode is another one (copilot, opencode and
droid print JSON events; cursor-agent prints stream-json). Those executors switch to the
mode here only when a turn needs a person to answer approvals (``asks_person``): an
approver on the request and no flag that already allows everything. Their other modes
stay as they are.

- copilot: ``copilot --acp`` (``--allow-tool``/``--deny-tool`` and ``--model`` as usual);
  options ``allow_once``/``allow_always``/``reject_once``.
- opencode: ``opencode acp`` with ``OPENCODE_CONFIG_CONTENT`` asking for edits, shell
  commands and the other asking permissions (merged into the user's own content);
  options ``once``/``always``/``reject``.
- droid: ``droid exec --output-format acp``; ``--model`` is ignored there, so after
  ``session/new`` aura selects the model with ``session/set_config_option`` (a BYOK model
  ``custom:NAME`` is listed as ``custom:<displayName>-<index>``).
- cursor-agent: ``cursor-agent acp`` — unverified: not installable here, built on the
  shared ACP client only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aura.contracts import EntryKind
from aura.executors.acp.client import AcpExecutor, _Turn
from aura.executors.base import RunRequest


def asks_person(request: RunRequest) -> bool:
    """Whether a turn needs the agent's approval protocol."""
    approvals = request.approvals
    return request.approver is not None and not request.read_only and not (
        approvals.yolo or approvals.allow_all_tools or approvals.force)


class CopilotAcpExecutor(AcpExecutor):
    name = "copilot"
    program = "copilot"
    npx_package = "@github/copilot"
    acp_args: ClassVar[tuple[str, ...]] = ("--acp",)

    def agent_args(self, request: RunRequest) -> list[str]:
        approvals = request.approvals
        args = [f"--allow-tool={tool}" for tool in approvals.allow_tools]
        args += [f"--deny-tool={tool}" for tool in approvals.deny_tools]
        return args + (["--model", request.model] if request.model else [])


class OpencodeAcpExecutor(AcpExecutor):
    name = "opencode"
    program = "opencode"
    npx_package = "opencode-ai"
    acp_args: ClassVar[tuple[str, ...]] = ("acp",)

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env  # opencode's environment, its asking config content included

    def agent_args(self, request: RunRequest) -> list[str]:
        return []  # the model is chosen in the config content

    def acp_env(self, request: RunRequest) -> dict[str, str]:
        return dict(self.env)


class DroidAcpExecutor(AcpExecutor):
    name = "droid"
    program = "droid"
    acp_args: ClassVar[tuple[str, ...]] = ("exec", "--output-format", "acp")

    def agent_args(self, request: RunRequest) -> list[str]:
        return ["--model", request.model] if request.model else []

    async def configure_session(self, turn: _Turn) -> None:
        wanted = turn.request.model
        if not wanted or turn.session_id is None:
            return
        value = model_option(turn.new_session, wanted)
        if value is None:
            turn.output.emit([{"kind": EntryKind.SYSTEM.value,
                               "text": f"droid lists no model {wanted!r} for ACP sessions; "
                                       "it runs on its default model"}])
            return
        await turn.conn.request("session/set_config_option", {
            "sessionId": turn.session_id, "configId": "model", "value": value})
        if value != wanted:
            turn.output.emit([{"kind": EntryKind.SYSTEM.value,
                               "text": f"droid model {wanted} is {value} over ACP"}])


def model_option(session: dict[str, Any], wanted: str) -> str | None:
    """The ACP value of model ``wanted`` among the session's model options: the same
    value, or for ``custom:NAME`` the one custom model (or the one whose display name
    starts NAME)."""
    values: list[tuple[str, str]] = []
    for option in session.get("configOptions") or ():
        if isinstance(option, dict) and option.get("id") == "model":
            values += [(str(o.get("value")), str(o.get("name") or ""))
                       for o in option.get("options") or () if isinstance(o, dict)]
    if any(value == wanted for value, _ in values):
        return wanted
    if not wanted.startswith("custom:"):
        return None
    custom = [(value, name) for value, name in values if value.startswith("custom:")]
    name = wanted.removeprefix("custom:").lower()
    named = [value for value, shown in custom if shown and name.startswith(shown.lower())]
    if len(named) == 1:
        return named[0]
    return custom[0][0] if len(custom) == 1 else None


class CursorAcpExecutor(AcpExecutor):
    name = "cursor-agent"
    program = "cursor-agent"
    acp_args: ClassVar[tuple[str, ...]] = ("acp",)

    def agent_args(self, request: RunRequest) -> list[str]:
        return ["--model", request.model] if request.model else []
