"""The one family of "the user asked for something wrong" errors.

A library error that a person can fix by changing what they asked for (an unknown name, a bad
argument, a malformed config or correction) also derives from `UserError`, next to its usual
base (`ValueError`, `KeyError` ...), so Python callers keep catching it as before. The CLI prints
a `UserError` as one line and exits 2; any other exception escaping a command is a bug: exit 1,
and `--debug` shows its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Raised for input the user should change; the message says what and how."""


class ConfigError(ValueError, UserError):
    """The config file or an `MMAGENT_*` environment variable is malformed."""


__all__ = ["ConfigError", "UserError"]
