"""The error a job can end with: a SPEC 2.3 code plus a message that names the field."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "invalid_input",
    "invalid_image",
    "image_too_large",
    "fetch_failed",
    "url_not_allowed",
    "not_found",
    "rule_parse_error",
    "model_unavailable",
    "internal_error",
]


class JobError(Exception):
    """A failure the client caused or must know about; rendered as ``{"error": "<code>: <message>"}``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message

    def as_output(self) -> dict[str, str]:
        return {"error": f"{self.code}: {self.message}"}
