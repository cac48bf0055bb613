from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.fields import FieldAccess
from kehu.core.models import TimeStampedModel, VersionedModel
from kehu.core.money import Currency
from kehu.core.reference import ReferenceManager
from kehu.core.scope import DataScope


def new_access_stamp() -> str:
    return secrets.token_hex(8)


class Role(TimeStampedModel, VersionedModel):
    """A named set of ``module.action`` permissions plus a data scope."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    data_scope = models.CharField(
        _("data scope"), max_length=20, choices=DataScope.choices, default=DataScope.OWN
    )
    permissions = models.JSONField(_("permissions"), default=list, blank=True)
    is_system = models.BooleanField(
        _("built-in"), default=False, help_text=_("Built-in roles can be edited but not deleted.")
    )

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("system:role_edit", args=[self.pk])


class User(AbstractUser):
    """A person who logs in. HR links an employee record to it."""

    scope_owner_field = "id"
    scope_department_field = "department"
    sensitive_fields = {"phone": "phone", "email": "email"}

    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=30, blank=True)
    department = models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
    )
    roles = models.ManyToManyField(Role, verbose_name=_("roles"), blank=True, related_name="users")
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    # Names the user's cached permissions, scope and field rules (kehu/system/access.py):
    # replaced by every change to their roles, the roles' grants or field rules, so the next
    # request of the user, in any process, reads them afresh. Random, so a new user can
    # never meet the cache of a deleted one with the same id.
    access_stamp = models.CharField(
        _("access stamp"), max_length=32, default=new_access_stamp, editable=False
    )

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def get_absolute_url(self) -> str:
        return reverse("system:user_edit", args=[self.pk])

    @property
    def name(self) -> str:
        return str(self)


class FieldPermission(models.Model):
    """How one role sees one field of one model: hidden, masked, read only or editable."""

    role = models.ForeignKey(
        Role, verbose_name=_("role"), on_delete=models.CASCADE, related_name="field_permissions"
    )
    model = models.CharField(_("model"), max_length=100)
    field = models.CharField(_("field"), max_length=100)
    access = models.CharField(_("access"), max_length=10, choices=FieldAccess.choices)

    class Meta:
        verbose_name = _("field permission")
        verbose_name_plural = _("field permissions")
        constraints = [
            models.UniqueConstraint(fields=["role", "model", "field"], name="system_fieldperm_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.model}.{self.field} = {self.access}"


class AuditAction(models.TextChoices):
    CREATE = "create", _("Create")
    CHANGE = "change", _("Change")
    DELETE = "delete", _("Delete")
    RESTORE = "restore", _("Restore")
    STATUS = "status", _("Status change")
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")
    EXPORT = "export", _("Export")
    # A signed contract's amendment, and approval requests' decisions, have their own names.
    AMEND = "amend", _("Amend")
    SUBMIT = "submit", _("Submit for approval")
    APPROVE = "approve", _("Approve")
    REJECT = "reject", _("Reject")
    WITHDRAW = "withdraw", _("Withdraw")
    BACKUP = "backup", _("Backup")


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The operation log is append-only.")

    def delete(self):
        raise TypeError("The operation log is append-only.")


class AuditLog(models.Model):
    """Append-only: who did what, when, to which record, and what changed."""

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(_("user name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction.choices)
    model = models.CharField(_("model"), max_length=100, blank=True, db_index=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("operation log entry")
        verbose_name_plural = _("operation log")
        ordering = ["-at", "-id"]
        # Even Django's internal manager refuses bulk update and delete.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["model", "object_id"], name="system_audit_object_idx"),
            models.Index(fields=["user", "at"], name="system_audit_user_at_idx"),
            models.Index(fields=["action", "at"], name="system_audit_action_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The operation log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The operation log is append-only.")


class SystemSettings(VersionedModel):
    """Company-wide settings; a single row (pk=1)."""

    company_name = models.CharField(_("company name"), max_length=200, default="Kehu")
    logo = models.ImageField(_("logo"), upload_to="settings/", blank=True)
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, default=Currency.CNY
    )
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        _("fiscal year starts in month"), default=1
    )
    pool_no_followup_days = models.PositiveIntegerField(
        _("return to pool after days without follow-up"), default=30
    )
    pool_no_deal_days = models.PositiveIntegerField(
        _("return to pool after days without a deal"), default=90
    )
    pool_reclaim_block_days = models.PositiveIntegerField(
        _("days before a previous owner may reclaim"), default=15
    )
    pool_daily_claim_limit = models.PositiveIntegerField(_("claims per user per day"), default=20)
    pool_max_owned_customers = models.PositiveIntegerField(
        _("maximum customers owned per user"), default=500
    )
    allow_negative_stock = models.BooleanField(
        _("allow negative stock"),
        default=False,
        help_text=_("Let stock issues and shipments go below zero (goods sold before received)."),
    )
    company_address = models.CharField(_("company address"), max_length=300, blank=True)
    company_phone = models.CharField(_("company phone"), max_length=50, blank=True)
    company_tax_number = models.CharField(
        _("taxpayer identification number"), max_length=30, blank=True
    )
    company_bank = models.CharField(
        _("bank and account"), max_length=200, blank=True, help_text=_("Printed on contracts.")
    )
    contract_expiry_reminder_days = models.PositiveIntegerField(
        _("remind of contracts ending within days"), default=30
    )
    quote_validity_days = models.PositiveIntegerField(_("quotes valid for days"), default=30)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ReferenceManager()

    class Meta:
        verbose_name = _("system settings")
        verbose_name_plural = _("system settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fiscal_year_start_month__gte=1)
                & models.Q(fiscal_year_start_month__lte=12),
                name="system_settings_fiscal_month_range",
            )
        ]

    def __str__(self) -> str:
        return self.company_name


class Dictionary(TimeStampedModel):
    """A typed option list (customer source, industry, level …) that modules read by code."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    is_system = models.BooleanField(_("built-in"), default=False)

    objects = ReferenceManager()

    class Meta:
        verbose_name = _("dictionary")
        verbose_name_plural = _("dictionaries")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("system:dictionary_detail", args=[self.pk])


class DictionaryItem(TimeStampedModel, VersionedModel):
    dictionary = models.ForeignKey(
        Dictionary, verbose_name=_("dictionary"), on_delete=models.CASCADE, related_name="items"
    )
    value = models.SlugField(_("value"), max_length=50)
    label = models.CharField(_("label"), max_length=100)
    label_en = models.CharField(_("English label"), max_length=100, blank=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ReferenceManager()

    class Meta:
        verbose_name = _("dictionary item")
        verbose_name_plural = _("dictionary items")
        ordering = ["dictionary", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dictionary", "value"], name="system_dictitem_value_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.display_label

    @property
    def display_label(self) -> str:
        from django.utils.translation import get_language

        if self.label_en and (get_language() or "").startswith("en"):
            return self.label_en
        return self.label


class NotificationLevel(models.TextChoices):
    INFO = "info", _("Information")
    WARNING = "warning", _("Warning")
    TODO = "todo", _("To do")


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"), blank=True)
    url = models.CharField(_("link"), max_length=300, blank=True)
    level = models.CharField(
        _("level"), max_length=10, choices=NotificationLevel.choices, default=NotificationLevel.INFO
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="system_notif_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.title
