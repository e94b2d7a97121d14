"""The error frames the demo's sockets send for bad input, one shape for every consumer:
``{"type": "error", "code": ..., "message": ...}``. The socket stays open."""

from __future__ import annotations

from typing import Any

from django import forms


def error_frame(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def form_error_frame(form: forms.Form) -> dict[str, Any]:
    """The first error of an invalid ``form`` (``required``, ``max_length``...)."""
    for errors in form.errors.as_data().values():
        error = errors[0]
        return error_frame(error.code or "invalid", " ".join(error.messages))
    return error_frame("invalid", "Invalid input.")
