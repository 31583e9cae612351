"""aura's error tree. The CLI turns an AuraError into one line on stderr and exit code 1
(UsageError: 2); anything else is a bug and shows its trace with --debug."""

from __future__ import annotations


class AuraError(Exception):
    """An expected failure with a message that tells the user what to do."""

    exit_code = 1


class UsageError(AuraError):
    """Bad command-line input."""

    exit_code = 2


class InvalidTransition(AuraError):
    """The engine refused a state change."""


class StoreError(AuraError):
    """The database cannot be opened, read or written."""


class NotFound(AuraError):
    """A session, execution, worker or workspace that does not exist."""


class ExecutorNotFound(AuraError):
    """An agent binary that is not installed or not executable."""


class ExecutorError(AuraError):
    """An executor failed in a way the agent itself did not report."""


class ConfigError(AuraError):
    """The config file cannot be read."""
