"""Errors the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class TunerError(Exception):
    """A problem with the user's input or configuration: exit code 2, no traceback.

    The message says what is wrong and how to fix it, on one line.
    """

    exit_code = 2


class StorageError(TunerError):
    """The storage cannot be opened or does not hold what was asked for."""
