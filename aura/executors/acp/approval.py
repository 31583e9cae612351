"""ACP's ``session/request_permission`` mapped onto aura's approvals contract.

The request (agent → client) carries the tool call (``kind`` edit/execute/…, ``title``,
``content`` with diffs, ``locations``, ``rawInput``) and the options the agent offers,
each with its own id, ACP kind and label. ``to_request`` makes an ``ApprovalRequest`` of
it; ``outcome`` turns a ``Decision`` back into the ACP answer, choosing the offered option
by how aura classifies it (``aura.approvals.classify``/``pick``), never an "always" option
by its ACP kind alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aura.approvals import (
    ApprovalKind,
    ApprovalOption,
    ApprovalRequest,
    Choice,
    Decision,
    OptionKind,
    classify,
    pick,
)

CANCELLED: dict[str, Any] = {"outcome": {"outcome": "cancelled"}}
# ACP tool kinds → what a person is asked about.
_KINDS = {"edit": ApprovalKind.FILE_CHANGE, "delete": ApprovalKind.FILE_CHANGE,
          "move": ApprovalKind.FILE_CHANGE, "execute": ApprovalKind.COMMAND,
          "switch_mode": ApprovalKind.PERMISSION}
_COMMAND_KEYS = ("command", "cmd")


def options_of(raw: Any) -> tuple[ApprovalOption, ...]:
    """The offered options aura can answer with (an option without an id cannot be)."""
    out: list[ApprovalOption] = []
    for option in raw if isinstance(raw, list) else ():
        if not isinstance(option, dict) or option.get("optionId") is None:
            continue
        label = str(option.get("name") or option["optionId"])
        kind = option.get("kind")
        out.append(ApprovalOption(str(option["optionId"]), label,
                                  classify(kind if isinstance(kind, str) else None, label)))
    return tuple(out)


def _command(call: dict[str, Any]) -> str | None:
    raw = call.get("rawInput")
    if isinstance(raw, dict):
        for key in _COMMAND_KEYS:
            value = raw.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return " ".join(value)
    return None


def _diffs(call: dict[str, Any]) -> list[dict[str, Any]]:
    content = call.get("content")
    out = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "diff":
            out.append({"path": block.get("path"), "old_text": block.get("oldText"),
                        "new_text": block.get("newText")})
    return out


def _paths(call: dict[str, Any], diffs: list[dict[str, Any]]) -> list[str]:
    locations = call.get("locations")
    paths = [str(loc["path"]) for loc in (locations if isinstance(locations, list) else ())
             if isinstance(loc, dict) and loc.get("path")]
    paths += [str(d["path"]) for d in diffs if d.get("path")]
    return list(dict.fromkeys(paths))


def to_request(params: dict[str, Any], cwd: str, fallback_id: str) -> ApprovalRequest:
    """An ``ApprovalRequest`` of one ``session/request_permission``'s params; its native id
    is the tool call's id (the JSON-RPC id is the transport's business)."""
    raw_call = params.get("toolCall")
    call: dict[str, Any] = raw_call if isinstance(raw_call, dict) else {}
    tool_kind = str(call.get("kind") or "other")
    kind = _KINDS.get(tool_kind, ApprovalKind.TOOL)
    title = str(call.get("title") or tool_kind)
    detail: dict[str, Any] = {"tool_kind": tool_kind, "cwd": cwd}
    command = _command(call)
    diffs = _diffs(call)
    paths = _paths(call, diffs)
    if kind is ApprovalKind.COMMAND:
        command = command or title
        detail["command"] = command
        title = f"Run `{command}`"
    elif kind is ApprovalKind.FILE_CHANGE and paths and not any(p in title for p in paths):
        title = f"{title}: {', '.join(paths)}"
    if paths:
        detail["paths"] = paths
    if diffs:
        detail["diff"] = diffs
    if "rawInput" in call:
        detail["input"] = call["rawInput"]
    native = call.get("toolCallId")
    return ApprovalRequest(str(native) if native else fallback_id, kind, title[:500],
                           detail, options_of(params.get("options")))


def without_session_option(request: ApprovalRequest) -> ApprovalRequest:
    """``request`` with its session-wide options read as beyond the session: never chosen
    for "allow for this session", which is then allowed once and remembered by aura."""
    return dataclasses.replace(request, options=tuple(
        dataclasses.replace(option, kind=OptionKind.ALLOW_ALWAYS)
        if option.kind is OptionKind.ALLOW_SESSION else option for option in request.options))


def chosen(request: ApprovalRequest, decision: Decision) -> tuple[ApprovalOption | None, str]:
    """The offered option that carries out ``decision`` and a note when it is not exactly
    what was asked (no session-wide option: allowed once), or (None, why) when no offered
    option does."""
    offered = {option.id: option for option in request.options}
    if decision.option is not None and decision.option.id in offered:
        return offered[decision.option.id], ""
    option = pick(request.options, decision.choice)
    if option is not None:
        return option, ""
    if decision.choice is Choice.ALLOW_SESSION:
        once = pick(request.options, Choice.ALLOW)
        if once is not None:
            return once, ("the agent offers no option for this session only; allowed "
                          "once (aura remembers the session-wide answer itself)")
    return None, f"the agent offers no option for {decision.choice.value}"


def outcome(option: ApprovalOption | None) -> dict[str, Any]:
    if option is None:
        return CANCELLED
    return {"outcome": {"outcome": "selected", "optionId": option.id}}
