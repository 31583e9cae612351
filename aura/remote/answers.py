"""The params of an approval answer as the coordinator and the worker receive it
(`approvals.answer` from a client, `approval.answer` to the worker): one reading of them,
so both refuse the same malformed answer with the same error."""

from __future__ import annotations

from typing import Any

from aura.approvals import Choice
from aura.errors import RpcError
from aura.rpc import INVALID_PARAMS

MALFORMED_TEXTS = "invalid params: message and by are strings"


def answer_params(params: dict[str, Any]) -> tuple[Choice, str | None, str | None]:
    """(choice, message, by) of an answer; RpcError for a choice aura does not know or a
    message or ``by`` that is not a string (either may be absent)."""
    try:
        choice = Choice(str(params.get("choice")))
    except ValueError:
        raise RpcError(INVALID_PARAMS, "invalid params: choice is allow, allow_session "
                       "or deny") from None
    message, by = params.get("message"), params.get("by")
    if (message is not None and not isinstance(message, str)) or \
            (by is not None and not isinstance(by, str)):
        raise RpcError(INVALID_PARAMS, MALFORMED_TEXTS)
    return choice, message, by
