from datetime import timedelta

from django.utils import timezone

from kehu.system.models import Notification
from kehu.system.tasks import notifications_prune_read, task_results_prune


def test_prune_deletes_only_old_read_notifications(org):
    now = timezone.now()
    old = now - timedelta(days=91)
    recent = now - timedelta(days=10)
    keep_unread = Notification.objects.create(recipient=org.sales1, title="unread")
    keep_recent = Notification.objects.create(recipient=org.sales1, title="recent", read_at=recent)
    gone = Notification.objects.create(recipient=org.sales1, title="old", read_at=old)
    Notification.objects.filter(pk=keep_unread.pk).update(created_at=old)

    notifications_prune_read.call()

    remaining = set(Notification.objects.values_list("pk", flat=True))
    assert remaining == {keep_unread.pk, keep_recent.pk}
    assert gone.pk not in remaining


def test_task_results_prune_is_harmless_without_database_backend(db):
    # The test settings use the immediate backend, which keeps no results to prune.
    assert task_results_prune.call() is False
