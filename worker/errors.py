"""The error a job can end with: a SPEC 2.3 code plus a message that names the field."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

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


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Pydantic's errors as one line that names each field: ``options.conf: Input should be ...``."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(p) for p in problem["loc"] if not str(p).startswith("function-"))
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        field = ".".join(part for part in (prefix, location) if part)
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


# user text quoted in a message is cut to this many characters
QUOTE_CHARS = 60


def quoted(text: str) -> str:
    """User text as a message quotes it, cut short so payloads never land in messages or logs."""
    shown = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."
    return "'" + shown.replace("\0", "\\0") + "'"
