"""Sensitive fields may declare their default access; plain masker names still mean masked."""

from kehu.core.fields import (
    FieldAccess,
    apply_field_policy,
    field_policy_for,
    sensitive_default_access,
)
from kehu.hr.models import Employee
from kehu.system.models import User


def test_declared_defaults():
    assert sensitive_default_access(Employee, "base_salary") == FieldAccess.HIDDEN
    assert sensitive_default_access(Employee, "id_number") == FieldAccess.MASKED
    assert sensitive_default_access(Employee, "name") == FieldAccess.EDIT
    # Backward compatible: a bare masker name is masked by default.
    assert sensitive_default_access(User, "phone") == FieldAccess.MASKED


def test_policies_by_role(org):
    assert field_policy_for(org.salesmgr1, Employee) == {
        "id_number": FieldAccess.MASKED,
        "base_salary": FieldAccess.HIDDEN,
    }
    assert field_policy_for(org.hr, Employee) == {"id_number": "edit", "base_salary": "edit"}
    assert field_policy_for(org.admin, Employee) == {"id_number": "edit", "base_salary": "edit"}
    policy = field_policy_for(org.manager, Employee)
    assert apply_field_policy(Employee, policy, "base_salary", 100) is None
    assert apply_field_policy(Employee, policy, "id_number", "110105199001011234") == (
        "1101**********1234"
    )


def test_role_editor_offers_employee_fields(org, client_for):
    from django.urls import reverse

    from kehu.system.models import Role

    role = Role.objects.get(code="sales_manager")
    response = client_for(org.admin).get(reverse("system:role_edit", args=[role.pk]))
    form = response.context["form"]
    assert form["field__hr.employee__base_salary"].initial == FieldAccess.HIDDEN
    assert form["field__hr.employee__id_number"].initial == FieldAccess.MASKED
