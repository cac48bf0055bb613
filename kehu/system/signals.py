"""Login, failed login and logout go to the operation log."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver


def _ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR")


@receiver(user_logged_in)
def _on_login(sender, request, user, **kwargs):
    from kehu.system.services import audit_log_record

    audit_log_record(user=user, action="login", ip_address=_ip(request))


@receiver(user_logged_out)
def _on_logout(sender, request, user, **kwargs):
    from kehu.system.services import audit_log_record

    if user is not None:
        audit_log_record(user=user, action="logout", ip_address=_ip(request))


@receiver(user_login_failed)
def _on_login_failed(sender, credentials, request=None, **kwargs):
    from kehu.system.services import audit_log_record

    audit_log_record(
        user=None,
        action="login_failed",
        username=str(credentials.get("username", ""))[:150],
        ip_address=_ip(request),
    )
