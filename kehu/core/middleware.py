import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.views.defaults import permission_denied

from kehu.core.audit import current_ip
from kehu.core.exceptions import PermissionRefused


class AuditContextMiddleware:
    """Make the client address available to services writing the operation log, and show
    a service's permission refusal as the ordinary 403 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_ip.set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            current_ip.reset(token)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionRefused):
            return permission_denied(request, exception)
        return None


SESSION_STAMP = "_kehu_seen"  # when the session was last saved (seconds since the epoch)


class SessionActivityMiddleware:
    """The idle timeout: a signed-in session's expiry moves with activity. Saving the session
    on every request would make every page view a write transaction (a commit and its WAL
    flush on PostgreSQL, the write lock on SQLite), so it is saved once the last save is
    ``SESSION_REFRESH_SECONDS`` old; the timeout is exact to within that interval."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session:  # signed in; anonymous visitors get no session row
            now = int(time.time())
            if now - session.get(SESSION_STAMP, 0) >= settings.SESSION_REFRESH_SECONDS:
                session[SESSION_STAMP] = now  # modified: SessionMiddleware saves it, new expiry
        return self.get_response(request)


def stamp_session(sender, request, user, **kwargs):
    """On login (``user_logged_in``): the new session is saved now, so the next page needs
    no write."""
    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:  # a session login, not a token's
        session[SESSION_STAMP] = int(time.time())
