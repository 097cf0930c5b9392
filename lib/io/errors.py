"""Turning reader exceptions into one-line messages a user can act on."""

from __future__ import annotations


def root_cause(error: BaseException) -> str:
    """One-line message of the innermost cause (MONAI wraps reader errors in transform errors)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
