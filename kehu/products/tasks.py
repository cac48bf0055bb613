"""Daily low-stock notice to the people who restock (holders of products.change)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from kehu.core.periodic import register_periodic
from kehu.products.models import Product, StockMovement
from kehu.products.selectors import LOW_STOCK_Q

EVERY = timedelta(days=1)
LISTED = 10


def _restockers():
    from django.db.models import Q

    from kehu.system.models import Role, User

    # Permissions are a JSON list; the role table is small, so it is read whole (JSON
    # "contains" lookups do not exist on SQLite).
    role_ids = [r.pk for r in Role.objects.all() if "products.change" in (r.permissions or [])]
    return User.objects.filter(Q(roles__in=role_ids) | Q(is_superuser=True), is_active=True)


def low_stock_notify(*, since) -> int:
    """Notify about products that are low now and had a movement since ``since``.

    "Had a movement" is what makes a product newly low: one that stays low with no
    movement is not announced again every day (the home-page to-do keeps showing it).
    """
    from kehu.system.services import notification_send

    recent = StockMovement.objects.filter(product=OuterRef("pk"), at__gte=since)
    products = list(
        Product.objects.filter(LOW_STOCK_Q).filter(Exists(recent)).order_by("code")[: LISTED + 1]
    )
    if not products:
        return 0
    recipients = list(_restockers().distinct())
    from django.conf import settings

    with translation.override(settings.LANGUAGE_CODE):
        names = "、".join(f"{p.code} {p.name}" for p in products[:LISTED])
        more = len(products) > LISTED
        notification_send(
            recipients=recipients,
            title=_("Products at or below their low-stock threshold"),
            body=names + (" …" if more else ""),
            url="/products/low-stock/",
            level="todo",
        )
    return len(recipients)


@task()
def products_low_stock_notify() -> int:
    return low_stock_notify(since=timezone.now() - EVERY)


register_periodic("products.low_stock_notify", every=EVERY, task=products_low_stock_notify)
