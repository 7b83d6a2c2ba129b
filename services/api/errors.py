"""The typed errors of the service layer.

Every error carries a message an operator can act on and, where there is one,
the fix. Errors cross the wire (daemon -> client) as ``{"error": {...}}`` and
come back as the same type through :func:`error_from_dict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class ModeldeckError(Exception):
    """Base of every error the service layer raises on purpose."""

    code: ClassVar[str] = "BackendError"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, fix: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.details:
            out["details"] = self.details
        return out


class NotFound(ModeldeckError):
    code = "NotFound"
    http_status = 404
    exit_code = 3

    def __init__(
        self, kind: str, name: str, *, fix: str | None = None, message: str | None = None
    ) -> None:
        super().__init__(
            message or f"{kind} '{name}' not found",
            fix=fix or list_fix(kind),
            kind=kind,
            name=name,
        )
        self.kind = kind
        self.name = name

    @classmethod
    def deployment(cls, name: str, endpoint: str, *, fix: str | None = None) -> NotFound:
        """``deployment NAME not found on endpoint ENDPOINT`` (by default the fix lists them)."""
        return cls(
            "deployment",
            name,
            fix=fix or f"list them with: modeldeck online-deployment list -e {endpoint}",
            message=f"deployment '{name}' not found on endpoint '{endpoint}'",
        )


class Conflict(ModeldeckError):
    code = "Conflict"
    http_status = 409
    exit_code = 4

    @classmethod
    def deployment_exists(cls, name: str, endpoint: str, *, fix: str | None = None) -> Conflict:
        """``deployment NAME already exists on endpoint ENDPOINT`` (by default the fix
        names ``online-deployment update``)."""
        return cls(
            f"deployment '{name}' already exists on endpoint '{endpoint}'",
            fix=fix or "change it with: modeldeck online-deployment update",
        )


class InvalidInput(ModeldeckError):
    """Bad input: names the field, the value, the rule and the fix."""

    code = "InvalidInput"
    http_status = 400
    exit_code = 2

    def __init__(
        self,
        field: str,
        value: Any,
        rule: str,
        fix: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        shown = _short(value)
        super().__init__(
            # no value ("is required", "nothing to change"): no "None" in the sentence
            message
            or (
                f"invalid {field}: {rule}" if value is None else f"invalid {field} {shown}: {rule}"
            ),
            fix=fix,
            field=field,
            value=shown,
            rule=rule,
        )
        self.field = field
        self.value = value
        self.rule = rule

    @classmethod
    def no_deployment(cls, field: str, value: Any, name: str, known: Iterable[str]) -> InvalidInput:
        """``there is no deployment NAME on this endpoint``, the fix listing ``known`` (sorted)."""
        return cls(
            field,
            value,
            f"there is no deployment '{name}' on this endpoint",
            "existing deployments: " + (", ".join(sorted(known)) or "none yet"),
        )


class Unauthorized(ModeldeckError):
    code = "Unauthorized"
    http_status = 401
    exit_code = 5


class Unreachable(ModeldeckError):
    code = "Unreachable"
    http_status = 503
    exit_code = 6


class CapacityExceeded(ModeldeckError):
    code = "CapacityExceeded"
    http_status = 409
    exit_code = 7


class BackendError(ModeldeckError):
    code = "BackendError"
    http_status = 502
    exit_code = 1


_BY_CODE: dict[str, type[ModeldeckError]] = {
    cls.code: cls
    for cls in (NotFound, Conflict, InvalidInput, Unauthorized, Unreachable, CapacityExceeded)
}
_BY_CODE["BackendError"] = BackendError


def error_from_dict(data: dict[str, Any]) -> ModeldeckError:
    """Rebuild a typed error sent by :meth:`ModeldeckError.to_dict`."""
    cls = _BY_CODE.get(str(data.get("code")), BackendError)
    err = cls.__new__(cls)
    ModeldeckError.__init__(
        err,
        str(data.get("message", "unknown error")),
        fix=data.get("fix"),
        **(data.get("details") or {}),
    )
    details = err.details
    if isinstance(err, NotFound):
        err.kind = details.get("kind", "")
        err.name = details.get("name", "")
    if isinstance(err, InvalidInput):
        err.field = details.get("field", "")
        err.value = details.get("value")
        err.rule = details.get("rule", "")
    return err


def kind_to_group(kind: str) -> str | None:
    """The command group that lists resources of ``kind``; None when no command does."""
    return {
        "cluster": "cluster",
        "model": "model",
        "environment": "environment",
        "endpoint": "online-endpoint",
        "deployment": "online-deployment",
    }.get(kind)


def list_fix(kind: str) -> str | None:
    """``list what exists with: modeldeck GROUP list``, when a command lists ``kind``."""
    group = kind_to_group(kind)
    return f"list what exists with: modeldeck {group} list" if group else None


def _short(value: Any, limit: int = 80) -> str:
    """The value as an error shows it: cut past ``limit``, except a path, shown whole (up to
    PATH_MAX) because the operator has to find the file it names."""
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    if _looks_like_path(value):
        limit = 4096
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and "/" in value
        and "\n" not in value
        and len(value) <= 4096
        and not value.startswith(("http://", "https://"))
    )
