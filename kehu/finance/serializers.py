"""API shapes of the finance module. Shape only: the rules live in kehu.finance.services.

Every field the server decides (numbers, statuses, owners, departments, the kind of a payment
entry, what it reverses, who confirmed it, received and invoiced figures, versions) is
read-only: a client sending it changes nothing. Related records a client names (contract,
instalment, payment, customer) are looked up within the caller's data scope, so an id outside
it reads like one that does not exist.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kehu.core.api import VersionField
from kehu.core.scope import visible_to
from kehu.customers.models import Customer
from kehu.customers.serializers import AttachmentSerializer
from kehu.finance.models import (
    ExpenseClaim,
    InstalmentStatus,
    Invoice,
    Payment,
    ReceivableInstalment,
    Refund,
)
from kehu.sales.models import Contract
from kehu.system.models import DictionaryItem

ZERO = Decimal("0.00")


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=2, **kwargs)


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key looked up among the records the requesting user may see."""

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return queryset.none()
        return visible_to(queryset, user)


def _dictionary_labels(serializer, code: str) -> dict[str, str]:
    """``value → label`` of a dictionary, read once per response (cached in the context)."""
    context = serializer.context
    key = f"_dictionary_{code}"
    if key not in context:
        context[key] = {
            item.value: item.display_label
            for item in DictionaryItem.objects.filter(dictionary__code=code)
        }
    return context[key]


# --- receivable plans -----------------------------------------------------------------------


class InstalmentSerializer(serializers.ModelSerializer):
    """One instalment with what is settled on it: received money settles instalments in
    due-date order, so ``received``, ``outstanding`` and ``status`` are derived, never stored."""

    contract_number = serializers.CharField(source="contract.number", read_only=True)
    customer_name = serializers.CharField(source="contract.customer.name", read_only=True)
    received = _money(read_only=True)
    outstanding = _money(read_only=True)
    status = serializers.ChoiceField(choices=InstalmentStatus.choices, read_only=True)
    days_overdue = serializers.IntegerField(
        read_only=True, help_text="Days past the due date (0 when not yet due)."
    )

    class Meta:
        model = ReceivableInstalment
        fields = [
            "id",
            "contract",
            "contract_number",
            "customer_name",
            "sequence",
            "due_date",
            "amount",
            "note",
            "received",
            "outstanding",
            "status",
            "days_overdue",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        # Rows come from ``api_filters.instalment_list_visible_to`` (annotated).
        from django.utils import timezone

        from kehu.finance.api_filters import instalment_state

        today = self.context.get("today") or timezone.localdate()
        for name, value in instalment_state(instance, today).items():
            setattr(instance, name, value)
        return super().to_representation(instance)


class InstalmentStateSerializer(serializers.Serializer):
    """An instalment of ``kehu.finance.selectors.contract_money`` (an ``InstalmentState``)."""

    id = serializers.IntegerField(source="instalment.id")
    sequence = serializers.IntegerField(source="instalment.sequence")
    due_date = serializers.DateField(source="instalment.due_date")
    amount = _money(source="instalment.amount")
    note = serializers.CharField(source="instalment.note")
    received = _money()
    outstanding = _money()
    status = serializers.ChoiceField(choices=InstalmentStatus.choices)
    days_overdue = serializers.IntegerField()


class ContractPlanSerializer(serializers.Serializer):
    """A contract's money (``ContractMoney``) and its whole receivable plan."""

    contract = serializers.IntegerField()
    contract_number = serializers.CharField()
    customer_name = serializers.CharField()
    currency = serializers.CharField()
    total = _money(help_text="The contract amount.")
    received = _money(help_text="Confirmed payments less approved refunds.")
    invoiced = _money()
    outstanding = _money()
    overdue = _money()
    pending_payments = _money(help_text="Registered payments awaiting confirmation.")
    planned = _money(help_text="The instalments' total; equals the contract amount.")
    instalments = InstalmentStateSerializer(many=True)


class InstalmentWriteSerializer(serializers.Serializer):
    due_date = serializers.DateField()
    amount = _money()
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ContractPlanWriteSerializer(serializers.Serializer):
    instalments = InstalmentWriteSerializer(
        many=True,
        allow_empty=True,
        help_text="The whole plan; the amounts must add up to the contract amount.",
    )


# --- payments -------------------------------------------------------------------------------


class PaymentSerializer(serializers.ModelSerializer):
    contract = ScopedPrimaryKeyRelatedField(queryset=Contract.objects.all())
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    customer_name = serializers.CharField(source="contract.customer.name", read_only=True)
    instalment = ScopedPrimaryKeyRelatedField(
        queryset=ReceivableInstalment.objects.all(), required=False, allow_null=True
    )
    method = serializers.CharField(
        max_length=50, help_text="A value of the payment_method dictionary."
    )
    method_label = serializers.SerializerMethodField()
    reversed_by = serializers.SerializerMethodField()
    owner_name = serializers.CharField(source="owner.name", read_only=True)
    confirmed_by_name = serializers.CharField(
        source="confirmed_by.name", read_only=True, default=""
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "number",
            "contract",
            "contract_number",
            "customer_name",
            "instalment",
            "kind",
            "reverses",
            "reversed_by",
            "amount",
            "currency",
            "received_on",
            "method",
            "method_label",
            "account",
            "reference",
            "note",
            "status",
            "decision_note",
            "owner",
            "owner_name",
            "department",
            "confirmed_by",
            "confirmed_by_name",
            "confirmed_at",
            "created_at",
            "version",
        ]
        read_only_fields = [
            "number",
            "kind",
            "reverses",
            "currency",
            "status",
            "decision_note",
            "owner",
            "department",
            "confirmed_by",
            "confirmed_at",
            "created_at",
            "version",
        ]

    def get_method_label(self, obj) -> str:
        return _dictionary_labels(self, "payment_method").get(obj.method, obj.method)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_reversed_by(self, obj) -> int | None:
        """The reversal entry correcting this payment, if any."""
        try:
            reversal = obj.reversal
        except ObjectDoesNotExist:
            return None
        return reversal.pk if reversal is not None else None


class DocumentReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    version = VersionField(help_text="Optional: the version you read (409 when stale).")


class ExpectedVersionSerializer(serializers.Serializer):
    version = VersionField(help_text="Optional: the version you read (409 when stale).")


# --- invoices -------------------------------------------------------------------------------


class InvoiceSerializer(serializers.ModelSerializer):
    contract = ScopedPrimaryKeyRelatedField(queryset=Contract.objects.all())
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    customer_name = serializers.CharField(source="contract.customer.name", read_only=True)
    owner_name = serializers.CharField(source="owner.name", read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "contract",
            "contract_number",
            "customer_name",
            "invoice_type",
            "title",
            "tax_number",
            "address_phone",
            "bank_account",
            "amount",
            "currency",
            "note",
            "status",
            "invoice_number",
            "issued_on",
            "issued_by",
            "void_reason",
            "owner",
            "owner_name",
            "department",
            "created_at",
            "version",
        ]
        read_only_fields = [
            "number",
            "currency",
            "status",
            "invoice_number",
            "issued_on",
            "issued_by",
            "void_reason",
            "owner",
            "department",
            "created_at",
            "version",
        ]
        extra_kwargs = {
            # Checked by the service, with its own messages.
            "title": {"allow_blank": True},
            "tax_number": {"allow_blank": True},
        }


class InvoiceIssueSerializer(serializers.Serializer):
    invoice_number = serializers.CharField(max_length=50)
    issued_on = serializers.DateField(required=False, help_text="Today when omitted.")
    version = VersionField(help_text="Optional: the version you read (409 when stale).")


# --- refunds --------------------------------------------------------------------------------


class RefundSerializer(serializers.ModelSerializer):
    payment = ScopedPrimaryKeyRelatedField(queryset=Payment.objects.all())
    payment_number = serializers.CharField(source="payment.number", read_only=True)
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    customer_name = serializers.CharField(source="contract.customer.name", read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "number",
            "contract",
            "contract_number",
            "customer_name",
            "payment",
            "payment_number",
            "amount",
            "currency",
            "reason",
            "refunded_on",
            "status",
            "owner",
            "department",
            "created_at",
            "version",
        ]
        read_only_fields = [
            "number",
            "contract",
            "currency",
            "refunded_on",
            "status",
            "owner",
            "department",
            "created_at",
            "version",
        ]


# --- expense claims -------------------------------------------------------------------------


class ExpenseSerializer(serializers.ModelSerializer):
    category = serializers.PrimaryKeyRelatedField(
        queryset=DictionaryItem.objects.filter(dictionary__code="expense_category", is_active=True)
    )
    category_label = serializers.CharField(source="category.display_label", read_only=True)
    customer = ScopedPrimaryKeyRelatedField(
        queryset=Customer.objects.all(), required=False, allow_null=True
    )
    customer_name = serializers.CharField(source="customer.name", read_only=True, default="")
    contract = ScopedPrimaryKeyRelatedField(
        queryset=Contract.objects.all(), required=False, allow_null=True
    )
    contract_number = serializers.CharField(source="contract.number", read_only=True, default="")
    owner_name = serializers.CharField(source="owner.name", read_only=True)
    department_name = serializers.CharField(source="department.name", read_only=True, default="")
    description = serializers.CharField(allow_blank=True)  # the service says what is missing
    attachments = serializers.SerializerMethodField(help_text="Receipts.")
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        write_only=True,
        help_text="Receipts to attach (multipart): images, PDF or Office files, 10 MB each.",
    )
    version = VersionField()

    class Meta:
        model = ExpenseClaim
        fields = [
            "id",
            "number",
            "owner",
            "owner_name",
            "department",
            "department_name",
            "category",
            "category_label",
            "amount",
            "currency",
            "spent_on",
            "description",
            "customer",
            "customer_name",
            "contract",
            "contract_number",
            "status",
            "paid_on",
            "paid_by",
            "attachments",
            "files",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = [
            "number",
            "owner",
            "department",
            "currency",
            "status",
            "paid_on",
            "paid_by",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, obj):
        files = self.context.get("attachments")
        if files is None:
            from kehu.core.attachments import attachments_for

            files = attachments_for([obj])
        return AttachmentSerializer(files.get(str(obj.pk), []), many=True).data


class ExpensePaySerializer(serializers.Serializer):
    paid_on = serializers.DateField(required=False, help_text="Today when omitted.")
    version = VersionField(help_text="Optional: the version you read (409 when stale).")


# --- reports --------------------------------------------------------------------------------


class AgingRowSerializer(serializers.Serializer):
    key = serializers.IntegerField(
        allow_null=True, help_text="The customer, owner or department id (null: none)."
    )
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    not_due = _money()
    d0_30 = _money(help_text="0–30 days past due.")
    d31_60 = _money(help_text="31–60 days past due.")
    d61_90 = _money(help_text="61–90 days past due.")
    d90_plus = _money(help_text="Over 90 days past due.")
    total = _money()


class AgingTotalsSerializer(serializers.Serializer):
    not_due = _money()
    d0_30 = _money()
    d31_60 = _money()
    d61_90 = _money()
    d90_plus = _money()
    total = _money()


class _ReportPageSerializer(serializers.Serializer):
    """What every paged report's body has besides its count, rows and totals."""

    as_of = serializers.DateField()
    page = serializers.IntegerField(help_text="This page's number (from 1).")
    page_size = serializers.IntegerField(help_text="Rows a page.")
    next = serializers.URLField(allow_null=True, help_text="The next page (null: the last).")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page (null: the first)."
    )


class AgingReportSerializer(_ReportPageSerializer):
    group_by = serializers.ChoiceField(choices=["customer", "owner", "department"])
    count = serializers.IntegerField(
        help_text="How many rows in all: customers owing money in your scope, or owners "
        "or departments."
    )
    rows = AgingRowSerializer(many=True, help_text="This page's rows.")
    totals = AgingTotalsSerializer(help_text="All outstanding money in your scope, every page.")


class ReconciliationRowSerializer(serializers.Serializer):
    contract = serializers.IntegerField(source="contract.pk")
    contract_number = serializers.CharField(source="contract.number")
    title = serializers.CharField(source="contract.title")
    customer = serializers.IntegerField(source="contract.customer_id")
    customer_name = serializers.CharField(source="contract.customer.name")
    owner = serializers.IntegerField(source="contract.owner_id")
    owner_name = serializers.CharField(source="contract.owner.name")
    currency = serializers.CharField(source="contract.currency")
    total = _money()
    received = _money()
    invoiced = _money()
    outstanding = _money()
    overdue = _money()


class ReconciliationTotalsSerializer(serializers.Serializer):
    total = _money()
    received = _money()
    invoiced = _money()
    outstanding = _money()
    overdue = _money()


class ReconciliationReportSerializer(_ReportPageSerializer):
    count = serializers.IntegerField(
        help_text="How many contracts: exact up to the list cap; with count_capped, a floor."
    )
    count_capped = serializers.BooleanField(
        help_text="True when there are more contracts than the count says."
    )
    rows = ReconciliationRowSerializer(many=True, help_text="This page's contracts.")
    totals = ReconciliationTotalsSerializer(
        allow_null=True,
        help_text="Sums over every page; null when the count is capped (narrow the filters).",
    )


class PeriodSerializer(serializers.Serializer):
    """``?start=&end=`` of a report: this year so far when omitted."""

    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start and end and start > end:
            raise serializers.ValidationError({"end": [_("The end is before the start.")]})
        if start and end and (end - start).days > 366 * 10:
            raise serializers.ValidationError({"end": [_("Choose at most ten years.")]})
        return attrs


class CollectionRowSerializer(serializers.Serializer):
    month = serializers.DateField(help_text="The first day of the month.")
    received = _money(help_text="Confirmed payments (reversals count negative).")
    refunded = _money(help_text="Approved refunds.")
    net = _money()


class CollectionTotalsSerializer(serializers.Serializer):
    received = _money()
    refunded = _money()
    net = _money()


class CollectionReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    rows = CollectionRowSerializer(many=True)
    totals = CollectionTotalsSerializer()


class ExpenseReportRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    department = serializers.CharField()
    amount = _money()


class ExpenseReportTotalsSerializer(serializers.Serializer):
    amount = _money()


class ExpenseReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    rows = ExpenseReportRowSerializer(many=True)
    totals = ExpenseReportTotalsSerializer()
