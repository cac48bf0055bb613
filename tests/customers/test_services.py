"""Customer services: create, duplicates, update, delete, contacts, follow-ups, merge, handover."""

import datetime
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.utils import timezone
from PIL import Image

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.models import Attachment, CustomFieldDefinition
from kehu.customers import services
from kehu.customers.models import (
    Contact,
    Customer,
    CustomerEvent,
    CustomerEventKind,
    CustomerMerge,
    FollowUp,
    Opportunity,
    PipelineStage,
)
from kehu.customers.services_opportunities import opportunity_update
from kehu.system.models import AuditLog, DictionaryItem, Notification
from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory


def item(code: str, value: str) -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code=code, value=value)


def png_file(name="photo.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


# --- create ---------------------------------------------------------------------------------


def test_create_numbers_derives_and_logs(org):
    customer = services.customer_create(
        actor=org.sales1,
        data={
            "name": " 华为技术有限公司 ",
            "mobile": "+86 138-0000-1111",
            "email": "Info@Huawei.COM",
            "level": item("customer_level", "a"),
            "owner": org.sales3,  # ignored: the server decides the owner
            "code": "HACK",
        },
        tags=["VIP", "华南"],
    )
    assert customer.code.startswith("KH-") and customer.code != "HACK"
    assert customer.name == "华为技术有限公司"
    assert customer.name_normalized == "华为技术"
    assert customer.name_initials == "hwjsyxgs"
    assert customer.mobile_digits == "13800001111"
    assert customer.email == "info@huawei.com"
    assert customer.owner == org.sales1 and customer.department == org.sales1_dept
    assert not customer.in_pool and customer.assigned_at is not None
    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "华南"]
    event = CustomerEvent.objects.get(customer=customer)
    assert event.kind == CustomerEventKind.CREATED and event.to_owner == org.sales1
    assert AuditLog.objects.filter(
        model="customers.customer", object_id=str(customer.pk), action="create"
    ).exists()


def test_create_codes_are_sequential(org):
    first = services.customer_create(actor=org.sales1, data={"name": "甲公司"})
    second = services.customer_create(actor=org.sales1, data={"name": "乙公司"})
    assert int(second.code[-6:]) == int(first.code[-6:]) + 1


def test_create_requires_add_permission(org):
    with pytest.raises(PermissionRefused):
        services.customer_create(actor=org.finance, data={"name": "某公司"})
    assert not Customer.objects.exists()


def test_salesperson_cannot_create_for_someone_else(org):
    with pytest.raises(PermissionRefused):
        services.customer_create(actor=org.sales1, data={"name": "某公司"}, owner=org.sales2)
    assert not Customer.objects.exists()


def test_manager_assigns_within_scope_only(org):
    customer = services.customer_create(
        actor=org.salesmgr1, data={"name": "某公司"}, owner=org.sales2
    )
    assert customer.owner == org.sales2
    assert Notification.objects.filter(recipient=org.sales2).exists()
    with pytest.raises(ServiceError) as info:
        services.customer_create(actor=org.salesmgr1, data={"name": "另一公司"}, owner=org.sales3)
    assert info.value.field == "owner"


def test_create_refuses_item_from_the_wrong_dictionary(org):
    with pytest.raises(ServiceError) as info:
        services.customer_create(
            actor=org.sales1, data={"name": "某公司", "level": item("industry", "it")}
        )
    assert info.value.field == "level"
    assert not Customer.objects.exists()


def test_create_validates_custom_fields(org):
    CustomFieldDefinition.objects.create(
        model="customers.customer",
        key="region",
        label="区域",
        field_type="choice",
        choices=["华东", "华南"],
        required=True,
    )
    CustomFieldDefinition.objects.create(
        model="customers.customer", key="staff", label="人数", field_type="number"
    )
    with pytest.raises(ServiceError) as info:
        services.customer_create(actor=org.sales1, data={"name": "某公司"})
    assert info.value.field == "region"
    with pytest.raises(ServiceError) as info:
        services.customer_create(
            actor=org.sales1, data={"name": "某公司"}, custom_fields={"region": "西北"}
        )
    assert info.value.field == "region"
    with pytest.raises(ServiceError) as info:
        services.customer_create(
            actor=org.sales1,
            data={"name": "某公司"},
            custom_fields={"region": "华东", "staff": "many"},
        )
    assert info.value.field == "staff"
    customer = services.customer_create(
        actor=org.sales1, data={"name": "某公司"}, custom_fields={"region": "华东", "staff": "12"}
    )
    assert customer.custom_fields == {"region": "华东", "staff": "12"}


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_name_is_refused_with_hits(org):
    services.customer_create(actor=org.sales1, data={"name": "华为技术有限公司"})
    with pytest.raises(services.DuplicateCustomerError) as info:
        services.customer_create(actor=org.sales1, data={"name": "华为技术（有限公司）"})
    hit = info.value.hits[0]
    assert hit.visible and hit.name == "华为技术有限公司" and hit.matched_on == "name"
    assert info.value.as_dict()["duplicates"][0]["id"] == hit.customer_id
    assert Customer.objects.count() == 1
    services.customer_create(
        actor=org.sales1, data={"name": "华为技术（有限公司）"}, allow_duplicate=True
    )
    assert Customer.objects.count() == 2


def test_duplicate_out_of_scope_reveals_only_the_owner(org):
    CustomerFactory(name="深圳腾讯科技有限公司", owner=org.sales3, mobile="13900001234")
    hits = services.customer_find_duplicates(actor=org.sales1, mobile="+86 139 0000 1234")
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.visible, hit.customer_id, hit.name) == (False, None, None)
    assert hit.owner == "sales3" and hit.matched_on == "phone"
    assert "腾讯" not in hit.message()
    # The phone of one matches the mobile of the other: either field counts.
    assert services.customer_find_duplicates(actor=org.sales1, phone="13900001234")


def test_duplicate_in_the_pool_says_so(org):
    CustomerFactory(name="某某公司", owner=None, in_pool=True, email="a@b.cn")
    hit = services.customer_find_duplicates(actor=org.sales3, email="A@B.cn")[0]
    assert hit.owner == "the public pool" and hit.visible


def test_manager_sees_duplicates_in_full(org):
    customer = CustomerFactory(name="某某公司", owner=org.sales3)
    hit = services.customer_find_duplicates(actor=org.manager, name="某某有限公司")[0]
    assert hit.visible and hit.customer_id == customer.pk


# --- update and delete ----------------------------------------------------------------------


def test_update_keeps_server_fields_and_logs_stage_event(org):
    customer = services.customer_create(actor=org.sales1, data={"name": "甲公司"})
    updated = services.customer_update(
        actor=org.sales1,
        customer=customer,
        expected_version=customer.version,
        data={"name": "甲乙公司", "stage": "intent", "owner": org.sales3, "in_pool": True},
        tags=["重点"],
    )
    assert updated.version == customer.version + 1
    assert updated.owner == org.sales1 and not updated.in_pool
    assert updated.name_initials == "jygs"
    assert list(updated.tags.values_list("name", flat=True)) == ["重点"]
    event = CustomerEvent.objects.get(customer=customer, kind=CustomerEventKind.STAGE)
    assert event.data == {"from": "potential", "to": "intent"}


def test_stale_update_conflicts_and_changes_nothing(org):
    customer = services.customer_create(actor=org.sales1, data={"name": "甲公司"})
    services.customer_update(
        actor=org.sales1, customer=customer, expected_version=1, data={"notes": "first"}
    )
    with pytest.raises(ConflictError):
        services.customer_update(
            actor=org.sales1, customer=customer, expected_version=1, data={"notes": "second"}
        )
    assert Customer.objects.get(pk=customer.pk).notes == "first"


def test_update_out_of_scope_is_not_found(org):
    customer = CustomerFactory(owner=org.sales3)
    with pytest.raises(Http404):
        services.customer_update(
            actor=org.sales1, customer=customer, expected_version=1, data={"notes": "x"}
        )


def test_update_to_a_duplicate_number_is_refused(org):
    CustomerFactory(owner=org.sales3, mobile="13911112222")
    customer = services.customer_create(actor=org.sales1, data={"name": "甲公司"})
    with pytest.raises(services.DuplicateCustomerError):
        services.customer_update(
            actor=org.sales1, customer=customer, expected_version=1, data={"mobile": "13911112222"}
        )
    # Saving unchanged values never trips over existing duplicates.
    services.customer_update(
        actor=org.sales1, customer=customer, expected_version=1, data={"name": "甲公司"}
    )


def test_delete_and_restore(org):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises(PermissionRefused):
        services.customer_delete(actor=org.sales1, customer=customer)
    services.customer_delete(actor=org.salesmgr1, customer=customer)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    services.customer_restore(actor=org.admin, customer=customer)
    assert Customer.objects.filter(pk=customer.pk).exists()


# --- contacts -------------------------------------------------------------------------------


def test_one_primary_contact(org):
    customer = CustomerFactory(owner=org.sales1)
    first = services.contact_create(actor=org.sales1, customer=customer, data={"name": "张三"})
    assert first.is_primary
    second = services.contact_create(
        actor=org.sales1, customer=customer, data={"name": "李四", "is_primary": True}
    )
    first.refresh_from_db()
    assert second.is_primary and not first.is_primary
    services.contact_delete(actor=org.sales1, contact=second)
    first.refresh_from_db()
    assert first.is_primary
    assert Contact.objects.filter(customer=customer, is_primary=True).count() == 1


def test_contact_of_out_of_scope_customer_is_refused(org):
    customer = CustomerFactory(owner=org.sales3)
    with pytest.raises(Http404):
        services.contact_create(actor=org.sales1, customer=customer, data={"name": "张三"})
    assert not Contact.objects.exists()


# --- follow-ups -----------------------------------------------------------------------------


def test_followup_moves_customer_dates_forward_only(org):
    customer = CustomerFactory(owner=org.sales1)
    now = timezone.now()
    services.followup_create(
        actor=org.sales1,
        customer=customer,
        data={
            "content": "电话",
            "happened_at": now,
            "next_followup_at": now + datetime.timedelta(days=3),
        },
    )
    customer.refresh_from_db()
    assert customer.last_followup_at == now
    assert customer.next_followup_at == now + datetime.timedelta(days=3)
    # A back-dated entry does not move the dates backwards.
    services.followup_create(
        actor=org.sales1,
        customer=customer,
        data={
            "content": "补记",
            "happened_at": now - datetime.timedelta(days=5),
            "next_followup_at": now - datetime.timedelta(days=4),
        },
    )
    customer.refresh_from_db()
    assert customer.last_followup_at == now
    assert customer.next_followup_at == now + datetime.timedelta(days=3)


def test_followup_delete_recomputes_dates(org):
    customer = CustomerFactory(owner=org.sales1)
    now = timezone.now()
    older = services.followup_create(
        actor=org.sales1,
        customer=customer,
        data={"content": "a", "happened_at": now - datetime.timedelta(days=2)},
    )
    newer = services.followup_create(
        actor=org.sales1, customer=customer, data={"content": "b", "happened_at": now}
    )
    services.followup_delete(actor=org.sales1, followup=newer)
    customer.refresh_from_db()
    assert customer.last_followup_at == older.happened_at


def test_followup_contact_must_belong_to_customer(org):
    customer = CustomerFactory(owner=org.sales1)
    other = ContactFactory(customer=CustomerFactory(owner=org.sales1))
    with pytest.raises(ServiceError) as info:
        services.followup_create(
            actor=org.sales1, customer=customer, data={"content": "x", "contact": other}
        )
    assert info.value.field == "contact"


def test_followup_stores_valid_attachments(org):
    customer = CustomerFactory(owner=org.sales1)
    pdf = SimpleUploadedFile("offer.pdf", b"%PDF-1.4\n%...", content_type="application/pdf")
    followup = services.followup_create(
        actor=org.sales1, customer=customer, data={"content": "x"}, files=[png_file(), pdf]
    )
    names = sorted(
        Attachment.objects.filter(object_id=str(followup.pk)).values_list(
            "original_name", flat=True
        )
    )
    assert names == ["offer.pdf", "photo.png"]


@pytest.mark.parametrize(
    "name, content",
    [
        ("photo.png", b"just some text pretending to be an image"),
        ("offer.pdf", b"not a pdf"),
        ("sheet.xlsx", b"PK\x03\x04 broken zip"),
        ("run.exe", b"MZ\x90\x00"),
        ("empty.png", b""),
    ],
)
def test_followup_refuses_bad_attachments_and_writes_nothing(org, name, content):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises(ServiceError) as info:
        services.followup_create(
            actor=org.sales1,
            customer=customer,
            data={"content": "x"},
            files=[SimpleUploadedFile(name, content)],
        )
    assert info.value.field == "attachments"
    assert not FollowUp.objects.exists() and not Attachment.objects.exists()


def test_attachment_size_limit(org, monkeypatch):
    from kehu.core import attachments

    monkeypatch.setattr(attachments, "MAX_ATTACHMENT_SIZE", 10)
    with pytest.raises(ServiceError):
        attachments.attachment_validate(png_file())


# --- merge ----------------------------------------------------------------------------------


def test_merge_moves_everything_and_revert_restores(org):
    survivor = CustomerFactory(owner=org.sales1, name="甲公司")
    merged = CustomerFactory(owner=org.sales1, name="甲公司(重复)")
    keep_contact = ContactFactory(customer=survivor, is_primary=True)
    moved_contact = ContactFactory(customer=merged, is_primary=True)
    followup = FollowUpFactory(customer=merged, author=org.sales1)
    stage = PipelineStage.objects.first()
    opportunity = Opportunity.objects.create(
        customer=merged, title="单", stage=stage, owner=org.sales1
    )
    with pytest.raises(PermissionRefused):
        services.customer_merge(actor=org.sales1, survivor=survivor, merged=merged)

    merge = services.customer_merge(actor=org.salesmgr1, survivor=survivor, merged=merged)
    assert not Customer.objects.filter(pk=merged.pk).exists()
    moved_contact.refresh_from_db()
    assert moved_contact.customer_id == survivor.pk and not moved_contact.is_primary
    assert FollowUp.objects.get(pk=followup.pk).customer_id == survivor.pk
    assert Opportunity.objects.get(pk=opportunity.pk).customer_id == survivor.pk
    assert CustomerEvent.objects.filter(customer=survivor, kind="merged").exists()
    assert merge.merged_snapshot["name"] == "甲公司(重复)"

    services.customer_merge_revert(actor=org.salesmgr1, merge=merge)
    assert Customer.objects.filter(pk=merged.pk).exists()
    moved_contact.refresh_from_db()
    keep_contact.refresh_from_db()
    assert moved_contact.customer_id == merged.pk and moved_contact.is_primary
    assert keep_contact.is_primary
    assert FollowUp.objects.get(pk=followup.pk).customer_id == merged.pk
    assert Opportunity.objects.get(pk=opportunity.pk).customer_id == merged.pk
    assert CustomerMerge.objects.get(pk=merge.pk).reverted_at is not None
    with pytest.raises(ServiceError):
        services.customer_merge_revert(actor=org.salesmgr1, merge=merge)


def test_merge_out_of_scope_is_not_found(org):
    survivor = CustomerFactory(owner=org.sales1)
    merged = CustomerFactory(owner=org.sales3)
    with pytest.raises(Http404):
        services.customer_merge(actor=org.salesmgr1, survivor=survivor, merged=merged)
    assert Customer.objects.filter(pk=merged.pk).exists()


# --- handover -------------------------------------------------------------------------------


def test_handover_moves_customers_and_open_opportunities(org):
    customers = [CustomerFactory(owner=org.sales1) for _ in range(3)]
    CustomerFactory(owner=org.sales2)
    open_stage = PipelineStage.objects.filter(kind="open").first()
    won_stage = PipelineStage.objects.filter(kind="won").first()
    open_opp = Opportunity.objects.create(
        customer=customers[0], title="开", stage=open_stage, owner=org.sales1
    )
    won_opp = Opportunity.objects.create(
        customer=customers[0], title="赢", stage=won_stage, owner=org.sales1
    )
    with pytest.raises(PermissionRefused):
        services.customer_handover(
            actor=org.sales2, from_user=org.sales1, to_user=org.sales2, reason="离职"
        )
    moved = services.customer_handover(
        actor=org.salesmgr1, from_user=org.sales1, to_user=org.sales2, reason="离职"
    )
    assert moved == 3
    assert not Customer.objects.filter(owner=org.sales1).exists()
    assert Opportunity.objects.get(pk=open_opp.pk).owner == org.sales2
    assert Opportunity.objects.get(pk=won_opp.pk).owner == org.sales1
    # A form opened before the handover is stale now: it cannot write the old owner back.
    with pytest.raises(ConflictError):
        opportunity_update(
            actor=org.salesmgr1,
            opportunity=open_opp,
            expected_version=open_opp.version,
            data={"owner": org.sales1, "title": "开（旧表单）"},
        )
    assert Opportunity.objects.get(pk=open_opp.pk).owner == org.sales2
    assert CustomerEvent.objects.filter(kind="transferred", to_owner=org.sales2).count() == 3
    assert AuditLog.objects.filter(model="customers.customer", action="status").count() == 3
    assert Notification.objects.filter(recipient=org.sales2).count() == 1


def test_handover_by_hr(org):
    CustomerFactory(owner=org.sales1)
    assert (
        services.customer_handover(
            actor=org.hr, from_user=org.sales1, to_user=org.sales2, reason="离职"
        )
        == 1
    )
