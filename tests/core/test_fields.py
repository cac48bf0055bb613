"""Field permissions: hidden / masked / read / edit per role, combined as the widest."""

import pytest

from kehu.core.fields import (
    FieldAccess,
    apply_field_policy,
    editable_fields,
    field_policy_for,
    mask_email,
    mask_id_number,
    mask_phone,
    mask_text,
)
from kehu.system.models import FieldPermission, Role, User
from tests.factories import UserFactory
from tests.testapp.models import Widget


def make_role(code, **rules):
    role = Role.objects.create(code=code, name=code)
    for field, access in rules.items():
        FieldPermission.objects.create(role=role, model="system.user", field=field, access=access)
    return role


def shown(viewer, field, value="13812345678", model=User):
    return apply_field_policy(model, field_policy_for(viewer, model), field, value)


def test_masked_phone_reads_138_stars_5678(org):
    viewer = UserFactory(roles=[make_role("masked", phone=FieldAccess.MASKED)])
    assert shown(viewer, "phone") == "138****5678"


def test_hidden_removes_the_value(org):
    viewer = UserFactory(roles=[make_role("hidden", phone=FieldAccess.HIDDEN)])
    assert shown(viewer, "phone") is None


def test_read_shows_in_full_but_not_editable(org):
    viewer = UserFactory(roles=[make_role("reader", phone=FieldAccess.READ)])
    policy = field_policy_for(viewer, User)
    assert shown(viewer, "phone") == "13812345678"
    assert editable_fields(policy, ["phone", "display_name"]) == ["display_name"]


def test_sensitive_fields_are_masked_by_default(org):
    # The model's sensitive_fields apply when no role says otherwise.
    assert shown(org.sales1, "phone") == "138****5678"
    assert shown(org.sales1, "email", "sales2@example.com") == "s***@example.com"
    assert shown(org.sales1, "display_name", "Li Lei") == "Li Lei"
    assert shown(org.sales1, "phone", model=Widget) == "138****5678"


def test_widest_of_two_roles_wins(org):
    viewer = UserFactory(
        roles=[make_role("a", phone=FieldAccess.HIDDEN), make_role("b", phone=FieldAccess.READ)]
    )
    assert shown(viewer, "phone") == "13812345678"


def test_a_role_without_a_rule_gives_the_default(org):
    # One role hides phone and display_name; the other says nothing, so it grants the
    # defaults (masked for the sensitive phone, editable for the rest): the widest wins.
    viewer = UserFactory(
        roles=[
            make_role("narrow", phone=FieldAccess.HIDDEN, display_name=FieldAccess.HIDDEN),
            make_role("plain"),
        ]
    )
    assert shown(viewer, "phone") == "138****5678"
    assert shown(viewer, "display_name", "Li Lei") == "Li Lei"


def test_rules_for_another_model_do_not_apply(org):
    role = Role.objects.create(code="other", name="other")
    FieldPermission.objects.create(role=role, model="testapp.widget", field="phone", access="read")
    viewer = UserFactory(roles=[role])
    assert shown(viewer, "phone") == "138****5678"
    assert shown(viewer, "phone", model=Widget) == "13812345678"


def test_superuser_sees_everything(org):
    root = UserFactory(is_superuser=True, roles=[make_role("h", phone=FieldAccess.HIDDEN)])
    assert shown(root, "phone") == "13812345678"
    assert field_policy_for(root, User) == {}


@pytest.mark.parametrize(
    ("masker", "value", "expected"),
    [
        (mask_phone, "13812345678", "138****5678"),
        (mask_phone, "138-1234-5678", "138****5678"),
        (mask_phone, "12345", "*****"),
        (mask_phone, "", ""),
        (mask_phone, None, None),
        (mask_email, "lilei@example.com", "l***@example.com"),
        (mask_email, "no-at-sign", "no-at-sign"),
        (mask_email, "", ""),
        (mask_id_number, "110101199003071234", "1101**********1234"),
        (mask_id_number, "1234567", "*******"),
        (mask_id_number, "", ""),
        (mask_text, "secret", "****"),
        (mask_text, "", ""),
    ],
)
def test_maskers(masker, value, expected):
    assert masker(value) == expected


def test_empty_values_stay_empty_when_masked(org):
    assert shown(org.sales1, "phone", "") == ""
    assert shown(org.sales1, "phone", None) is None
