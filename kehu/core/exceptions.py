"""The one error type services raise. Views turn it into form errors, the API into HTTP."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    """A business rule refused the operation; nothing was written.

    ``field`` names the input that is wrong (None for the whole request).
    """

    status_code = 400
    default_message = _("The request could not be completed.")

    def __init__(self, message=None, *, field: str | None = None, code: str = "invalid"):
        self.message = message if message is not None else self.default_message
        self.field = field
        self.code = code
        super().__init__(str(self.message))

    def as_dict(self) -> dict[str, list[str]]:
        return {self.field or "non_field_errors": [str(self.message)]}


class ConflictError(ServiceError):
    """Someone else changed the record since it was read (stale version)."""

    status_code = 409
    default_message = _(
        "This record was changed by someone else after you opened it. "
        "Reload it to see the latest version, then apply your change again."
    )

    def __init__(self, message=None, *, field: str | None = None, code: str = "conflict"):
        super().__init__(message, field=field, code=code)


class PermissionRefused(ServiceError):
    """The user lacks the permission for this action."""

    status_code = 403
    default_message = _("You do not have permission to perform this action.")

    def __init__(self, message=None, *, field: str | None = None, code: str = "permission_denied"):
        super().__init__(message, field=field, code=code)
