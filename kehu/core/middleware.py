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
