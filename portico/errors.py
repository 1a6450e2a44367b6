"""Portico's errors: one root, one shape on every surface.

    PorticoError                      500 server_error
    ├── InvalidRequest                400 invalid_request_error   (names the field in `param`)
    │   └── PayloadTooLarge           413 invalid_request_error
    ├── AuthenticationFailed          401 authentication_error
    ├── PermissionDenied              403 permission_error
    ├── NotFound                      404 not_found_error
    ├── Conflict                      409 conflict_error
    ├── ServiceUnavailable            503 service_unavailable
    └── UpstreamError                 the provider's status, passed through (502 unreachable, 504 timed out)

REST renders `to_body()` with `http_status`; MCP returns the message as a tool error; workers record it on the job.
Messages are written for the caller to act on: what was wrong, which field, which rule.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PorticoError(Exception):
    http_status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    @property
    def status(self) -> int:
        """The HTTP status to answer with; fixed per class, except for upstream errors (passed through)."""
        return self.http_status

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(PorticoError):
    http_status = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    http_status = 413


class AuthenticationFailed(PorticoError):
    http_status = 401
    error_type = "authentication_error"


class PermissionDenied(PorticoError):
    http_status = 403
    error_type = "permission_error"


class NotFound(PorticoError):
    http_status = 404
    error_type = "not_found_error"

    @classmethod
    def object(cls, kind: str, object_id: str, param: str) -> NotFound:
        return cls(f"No {kind} with id '{object_id}' exists in this workspace.", param=param, code="not_found")


class Conflict(PorticoError):
    http_status = 409
    error_type = "conflict_error"


class ServiceUnavailable(PorticoError):
    http_status = 503
    error_type = "service_unavailable"


class UpstreamError(PorticoError):
    """A provider answered with an error, or could not be reached. Its status is the provider's own, so an SDK
    sees a provider 429 as a 429 (and retries it) while the message says which provider answered."""

    http_status = 502
    error_type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        provider: str,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self._status = status
        self.provider = provider
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return self._status
