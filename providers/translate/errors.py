"""The one error a translation raises: the request cannot be expressed in the vendor's format."""

from __future__ import annotations


class TranslationError(ValueError):
    """A request field the vendor cannot accept; `param` names it (`messages[2].content[0].image_url`).

    Callers answer it with a 400 `invalid_request_error` carrying `param`, before anything is sent upstream.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
