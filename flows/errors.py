"""A request the business refuses: a Chinese message, with the HTTP status and code the API
answers it with (the CLI prints the message and exits non-zero)."""
from __future__ import annotations


class Refusal(Exception):
    status = 422
    code = "refused"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.code = code or self.code
        self.field = field
        # the API's machine-readable details, when more than the field is to say (which value)
        self.details = details
