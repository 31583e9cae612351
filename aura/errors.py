"""aura's error tree: every exception aura raises on purpose is one of these.

The CLI turns an AuraError into one line on stderr and its ``exit_code`` (1, UsageError 2,
an RpcError may carry the remote side's); anything else is a bug and shows its trace
(with --debug, an AuraError shows its trace too).

    AuraError                      an expected failure; the message says what to do
    ├── UsageError                 bad command-line input (exit 2)
    │   ├── TemplateError          a prompt template names a placeholder with no value
    │   └── WireError              run options from the wire that are malformed
    ├── InvalidTransition          the engine refused a state change
    ├── MoveRefused                a board rule refused a move (``rule`` names it)
    ├── StoreError                 the database cannot be opened, read or written
    ├── NotFound                   no such session, execution, worker, workspace, column
    ├── ApprovalClosed             an approval that was already answered, expired or lost (exit 3)
    ├── ConfigError                the config file cannot be read
    ├── GitError                   a git command failed (git's own stderr)
    ├── StageFailed                a pipeline stage failed (a script, the agent, the review)
    ├── ExecutorNotFound           an agent binary that is not installed or not executable
    ├── ExecutorError              an executor failed where the agent itself did not say
    │   └── AcpError               an ACP agent answered with an error, or went away
    │       └── AgentExited        …because its process ended mid-request
    ├── RpcError                   a JSON-RPC error object (code, message, data)
    ├── ConnectionLost             a JSON-RPC connection closed before the answer came
    ├── Unauthorized               the coordinator refused our token or certificate
    └── WorkerRefused              the coordinator refused this worker (retrying won't help)

Not in the tree, on purpose: ``aura.service.hosts.PreparedThenCancelled`` is an
``asyncio.CancelledError`` (a cancellation that carries the workspace made before it), so
that everything that handles cancellation handles it.
"""

from __future__ import annotations

from typing import Any


class AuraError(Exception):
    """An expected failure with a message that tells the user what to do."""

    exit_code = 1


class UsageError(AuraError):
    """Bad command-line input."""

    exit_code = 2


class TemplateError(UsageError):
    """A template names a placeholder that has no value."""


class WireError(UsageError):
    """Run options from the wire that are malformed (a worker answers INVALID_PARAMS)."""


class InvalidTransition(AuraError):
    """The engine refused a state change."""


class MoveRefused(AuraError):
    """A board move that a rule refused; ``rule`` names it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"move refused ({rule}): {message}")
        self.rule = rule


class StoreError(AuraError):
    """The database cannot be opened, read or written."""


class NotFound(AuraError):
    """A session, execution, worker or workspace that does not exist."""


class ApprovalClosed(AuraError):
    """An answer to an approval request that is no longer pending (the first answer won,
    it expired, or the run that asked went away)."""

    exit_code = 3


class ConfigError(AuraError):
    """The config file cannot be read."""


class GitError(AuraError):
    """A git command failed; the message carries git's own stderr."""


class TurnInterrupted(AuraError):
    """The agent's turn was ended by `aura session interrupt` (the message says by whom);
    the run ends cancelled, the agent's session kept for a follow-up."""


class StageFailed(AuraError):
    """A stage of the pipeline failed with the exit code it should end the run with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ExecutorNotFound(AuraError):
    """An agent binary that is not installed or not executable."""


class ExecutorError(AuraError):
    """An executor failed in a way the agent itself did not report."""


class AcpError(ExecutorError):
    """The agent answered a request with a JSON-RPC error, or went away."""

    def __init__(self, method: str, message: str, code: int | None = None,
                 data: Any = None) -> None:
        detail = ""
        if isinstance(data, dict) and data.get("details"):
            detail = f": {data['details']}"
        elif isinstance(data, str) and data:
            detail = f": {data}"
        super().__init__(f"{method} failed: {message}{detail}")
        self.method = method
        self.code = code
        self.data = data


class AgentExited(AcpError):
    """The agent process ended while a request was waiting for its answer."""


class RpcError(AuraError):
    """A JSON-RPC error object, raised by handlers and by ``Peer.request``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        if isinstance(data, dict) and isinstance(data.get("exit_code"), int):
            self.exit_code = data["exit_code"]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class ConnectionLost(AuraError):
    """The connection closed before the answer came."""


class Unauthorized(AuraError):
    """The coordinator refused our token, or its certificate is not trusted: retrying
    will not help."""


class WorkerRefused(AuraError):
    """The coordinator refused this worker for a reason retrying will not fix."""
