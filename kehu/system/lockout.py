"""What a locked-out user is told, the same on the login page and in the API."""

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import ngettext


def lockout_message() -> str:
    minutes = max(int(settings.AXES_COOLOFF_TIME.total_seconds() // 60), 1)
    return ngettext(
        "Too many failed logins. Try again in %(minutes)s minute, or ask an administrator.",
        "Too many failed logins. Try again in %(minutes)s minutes, or ask an administrator.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the lockout page with the configured cool-off."""
    return render(
        request,
        "registration/locked_out.html",
        {"message": lockout_message()},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
