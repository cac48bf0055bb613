"""Demo customers: realistic, spread over the sales users, idempotent; pages render them."""

from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from kehu.customers.models import Contact, Customer, FollowUp, Opportunity, StageKind
from kehu.system.models import User


def test_demo_customers(db, settings):
    settings.DEMO_MODE = True
    call_command("demo_data", verbosity=0)
    total = Customer.objects.count()
    assert 250 <= total <= 400
    owners = set(Customer.objects.values_list("owner__username", flat=True))
    assert {"sales1", "sales2", "sales3", "salesmgr1", None} <= owners
    assert Customer.objects.filter(in_pool=True).exists()
    assert Customer.objects.filter(name__endswith="有限公司", province__endswith="省").exists()
    assert Contact.objects.count() >= total
    now = timezone.now()
    today = timezone.localdate()
    assert Customer.objects.filter(next_followup_at__date=today).exists()
    assert Customer.objects.filter(next_followup_at__lt=now).exists()
    kinds = set(Opportunity.objects.values_list("stage__kind", flat=True))
    assert kinds == {StageKind.OPEN, StageKind.WON, StageKind.LOST}
    lost = Opportunity.objects.filter(stage__kind=StageKind.LOST)
    assert all(o.lost_reason and o.closed_at for o in lost)
    sample = Customer.objects.exclude(owner=None).first()
    assert sample.department_id == sample.owner.department_id and sample.name_initials
    counts = (Customer.objects.count(), FollowUp.objects.count(), Opportunity.objects.count())
    call_command("demo_data", verbosity=0)
    assert (Customer.objects.count(), FollowUp.objects.count(), Opportunity.objects.count()) == (
        counts
    )

    client = Client()
    client.force_login(User.objects.get(username="sales1"))
    for path in ("/customers/", "/customers/opportunities/", "/customers/followups/calendar/"):
        assert client.get(path).status_code == 200
    assert client.get(sample.get_absolute_url()).status_code in (200, 404)
