"""API shapes of the sales module. Shape only: rules live in kehu.sales.services.

Numbers, statuses, owners' departments, every amount and the shipped quantities are the
server's: they are read-only here, so a client sending them changes nothing. Lines carry
product, quantity and, optionally, unit price (default: the list price), discount and tax
rate (default: the product's); the services compute and round the amounts.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from kehu.core.api import VersionField
from kehu.customers.models import Contact, Customer, Opportunity
from kehu.products.models import Product, Warehouse
from kehu.sales.models import (
    Contract,
    ContractAmendment,
    ContractLine,
    Order,
    OrderLine,
    Quote,
    QuoteLine,
    Shipment,
    ShipmentLine,
)
from kehu.sales.services import AMENDABLE_FIELDS
from kehu.system.models import User

MIN_QUANTITY = Decimal("0.001")

LINE_FIELDS = [
    "id",
    "product",
    "product_code",
    "product_name",
    "description",
    "unit",
    "quantity",
    "unit_price",
    "discount_rate",
    "tax_rate",
    "subtotal",
    "tax_amount",
    "total_amount",
    "sort_order",
]
LINE_READ_ONLY = ["subtotal", "tax_amount", "total_amount", "sort_order"]
LINE_EXTRA_KWARGS: dict[str, dict] = {
    "quantity": {"min_value": MIN_QUANTITY},
    "unit_price": {
        "min_value": Decimal("0"),
        "required": False,
        "allow_null": True,
        "help_text": _("Leave out for the product's list price."),
    },
    "tax_rate": {
        "required": False,
        "allow_null": True,
        "help_text": _("Leave out for the product's tax rate."),
    },
}


class _LineSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    product_code = serializers.CharField(source="product.code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)


class QuoteLineSerializer(_LineSerializer):
    class Meta:
        model = QuoteLine
        fields = LINE_FIELDS
        read_only_fields = LINE_READ_ONLY
        extra_kwargs = LINE_EXTRA_KWARGS


class ContractLineSerializer(_LineSerializer):
    class Meta:
        model = ContractLine
        fields = LINE_FIELDS
        read_only_fields = LINE_READ_ONLY
        extra_kwargs = LINE_EXTRA_KWARGS


class AmendmentLineSerializer(_LineSerializer):
    """A line as the amended contract will have it; ``id`` names the contract line it
    replaces (leave it out for a new line; lines not listed are removed)."""

    id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text=_("The contract line this line changes; leave out for a new line."),
    )

    class Meta:
        model = ContractLine
        fields = LINE_FIELDS
        read_only_fields = LINE_READ_ONLY
        extra_kwargs = LINE_EXTRA_KWARGS


class OrderLineSerializer(_LineSerializer):
    """Standalone orders: ``product`` and ``quantity`` (price, discount, tax optional).
    Orders from a contract: ``contract_line`` and ``quantity``; the price is the contract's."""

    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all(), required=False)
    contract_line = serializers.PrimaryKeyRelatedField(
        queryset=ContractLine.objects.all(), required=False, allow_null=True
    )
    outstanding_quantity = serializers.DecimalField(
        max_digits=14,
        decimal_places=3,
        read_only=True,
        help_text=_("Still to ship: quantity − shipped + returned."),
    )

    class Meta:
        model = OrderLine
        fields = [
            *LINE_FIELDS,
            "contract_line",
            "shipped_quantity",
            "returned_quantity",
            "outstanding_quantity",
        ]
        read_only_fields = [*LINE_READ_ONLY, "shipped_quantity", "returned_quantity"]
        extra_kwargs = LINE_EXTRA_KWARGS


HEADER_READ_ONLY = [
    "number",
    "status",
    "status_display",
    "subtotal_amount",
    "tax_amount",
    "total_amount",
    "department",
    "department_name",
    "customer_name",
    "owner_name",
    "created_at",
    "updated_at",
]


class _DocumentSerializer(serializers.ModelSerializer):
    """What quotes, contracts and orders share. The viewset narrows ``customer`` and
    ``opportunity`` to the caller's data scope; ``owner`` is kept only from callers who
    may assign (sales.assign)."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text=_("Defaults to you; only users who may assign (sales.assign) set another."),
    )
    owner_name = serializers.CharField(source="owner.name", read_only=True)
    department_name = serializers.CharField(
        source="department.name", read_only=True, default=None, allow_null=True
    )
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    version = VersionField()

    def validate_lines(self, value):
        if not value:
            raise serializers.ValidationError(_("Add at least one line."))
        return value


class _WithContactSerializer(_DocumentSerializer):
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), required=False, allow_null=True
    )
    contact_name = serializers.CharField(
        source="contact.name", read_only=True, default=None, allow_null=True
    )
    opportunity = serializers.PrimaryKeyRelatedField(
        queryset=Opportunity.objects.all(), required=False, allow_null=True
    )
    opportunity_title = serializers.CharField(
        source="opportunity.title", read_only=True, default=None, allow_null=True
    )


class QuoteSerializer(_WithContactSerializer):
    lines = QuoteLineSerializer(many=True)
    contract = serializers.IntegerField(
        source="contract.id",
        read_only=True,
        allow_null=True,
        default=None,
        help_text=_("The contract this quote became (once converted)."),
    )

    class Meta:
        model = Quote
        fields = [
            "id",
            "number",
            "customer",
            "customer_name",
            "contact",
            "contact_name",
            "opportunity",
            "opportunity_title",
            "title",
            "quote_date",
            "valid_until",
            "status",
            "status_display",
            "currency",
            "subtotal_amount",
            "tax_amount",
            "total_amount",
            "terms",
            "notes",
            "owner",
            "owner_name",
            "department",
            "department_name",
            "contract",
            "lines",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = HEADER_READ_ONLY
        extra_kwargs = {
            "quote_date": {"required": False, "help_text": _("Defaults to today.")},
            "valid_until": {
                "required": False,
                "help_text": _("Defaults to the quote date plus the quote validity setting."),
            },
        }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start = attrs.get("quote_date", getattr(self.instance, "quote_date", None))
        end = attrs.get("valid_until")
        if start and end and end < start:
            raise serializers.ValidationError(
                {"valid_until": [_("The validity ends on or after the quote date.")]}
            )
        return attrs


class ContractSerializer(_WithContactSerializer):
    lines = ContractLineSerializer(many=True)
    quote_number = serializers.CharField(
        source="quote.number", read_only=True, default=None, allow_null=True
    )
    approval_request = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        default=None,
        help_text=_("The approval request the contract is waiting for, if any."),
    )

    class Meta:
        model = Contract
        fields = [
            "id",
            "number",
            "customer",
            "customer_name",
            "contact",
            "contact_name",
            "opportunity",
            "opportunity_title",
            "quote",
            "quote_number",
            "title",
            "status",
            "status_display",
            "currency",
            "subtotal_amount",
            "tax_amount",
            "total_amount",
            "signed_on",
            "start_date",
            "end_date",
            "payment_terms",
            "notes",
            "owner",
            "owner_name",
            "department",
            "department_name",
            "approval_request",
            "approved_at",
            "completed_at",
            "terminated_at",
            "termination_reason",
            "lines",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = [
            *HEADER_READ_ONLY,
            "quote",
            "approved_at",
            "completed_at",
            "terminated_at",
            "termination_reason",
        ]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError(
                {"end_date": [_("The end date is on or after the start date.")]}
            )
        return attrs


class OrderSerializer(_DocumentSerializer):
    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all(),
        required=False,
        help_text=_("Required for a standalone order; from a contract it is the contract's."),
    )
    lines = OrderLineSerializer(
        many=True,
        required=False,
        help_text=_(
            "Required for a standalone order; from a contract, leave out to order everything "
            "not yet ordered."
        ),
    )
    contract = serializers.PrimaryKeyRelatedField(
        queryset=Contract.objects.all(),
        required=False,
        allow_null=True,
        help_text=_(
            "An active contract: the order's lines are then contract lines "
            "(contract_line, quantity). Set on creation only."
        ),
    )
    contract_number = serializers.CharField(
        source="contract.number", read_only=True, default=None, allow_null=True
    )
    warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True), required=False, allow_null=True
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "customer",
            "customer_name",
            "contract",
            "contract_number",
            "title",
            "order_date",
            "ship_by",
            "warehouse",
            "receiver_name",
            "receiver_phone",
            "shipping_address",
            "status",
            "status_display",
            "currency",
            "subtotal_amount",
            "tax_amount",
            "total_amount",
            "notes",
            "owner",
            "owner_name",
            "department",
            "department_name",
            "confirmed_at",
            "completed_at",
            "cancelled_at",
            "cancel_reason",
            "lines",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = [
            *HEADER_READ_ONLY,
            "confirmed_at",
            "completed_at",
            "cancelled_at",
            "cancel_reason",
        ]
        extra_kwargs = {
            "order_date": {"required": False, "help_text": _("Defaults to today.")},
        }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is not None:
            attrs.pop("contract", None)  # an order keeps the contract it was placed against
            contract = self.instance.contract
        else:
            contract = attrs.get("contract")
            if contract is None and attrs.get("customer") is None:
                raise serializers.ValidationError(
                    {"customer": [_("Choose a customer (or a contract).")]}
                )
        lines = attrs.get("lines")
        # A new order from a contract may leave lines out: everything not yet ordered.
        creating_from_contract = self.instance is None and contract is not None
        missing = lines is None and self.instance is None and contract is None
        if missing or (lines == [] and not creating_from_contract):
            raise serializers.ValidationError({"lines": [_("Add at least one line.")]})
        errors = {}  # by position, as DRF reports the lines' own errors
        for index, line in enumerate(lines or []):
            if contract is not None and line.get("contract_line") is None:
                errors[index] = {"contract_line": [_("Choose a line of the contract.")]}
            elif contract is None and line.get("product") is None:
                errors[index] = {"product": [_("This field is required.")]}
            elif contract is None and line.get("contract_line") is not None:
                # Would count against another contract's quantities.
                errors[index] = {
                    "contract_line": [_("Only an order from a contract has contract lines.")]
                }
        if errors:
            raise serializers.ValidationError({"lines": errors})
        return attrs

    def validate_lines(self, value):
        return value  # empty is checked with the contract in validate()


class ShipmentLineSerializer(serializers.ModelSerializer):
    product = serializers.IntegerField(source="order_line.product_id", read_only=True)
    product_code = serializers.CharField(source="order_line.product.code", read_only=True)
    description = serializers.CharField(source="order_line.description", read_only=True)
    unit = serializers.CharField(source="order_line.unit", read_only=True)

    class Meta:
        model = ShipmentLine
        fields = ["id", "order_line", "product", "product_code", "description", "unit", "quantity"]
        read_only_fields = fields


class ShipmentSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", read_only=True)
    order_status = serializers.CharField(source="order.status", read_only=True)
    customer = serializers.IntegerField(source="order.customer_id", read_only=True)
    customer_name = serializers.CharField(source="order.customer.name", read_only=True)
    warehouse_name = serializers.CharField(source="warehouse.name", read_only=True)
    created_by_name = serializers.CharField(
        source="created_by.name", read_only=True, default=None, allow_null=True
    )
    lines = ShipmentLineSerializer(many=True, read_only=True)

    class Meta:
        model = Shipment
        fields = [
            "id",
            "number",
            "kind",
            "order",
            "order_number",
            "order_status",
            "customer",
            "customer_name",
            "warehouse",
            "warehouse_name",
            "shipped_on",
            "carrier",
            "tracking_number",
            "note",
            "lines",
            "created_by_name",
            "created_at",
        ]
        read_only_fields = fields


class AmendmentSerializer(serializers.ModelSerializer):
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    created_by_name = serializers.CharField(
        source="created_by.name", read_only=True, default=None, allow_null=True
    )
    before = serializers.JSONField(
        read_only=True, help_text=_("The contract's amendable fields and lines before.")
    )
    proposed = serializers.JSONField(
        read_only=True,
        help_text=_('What changes: {"fields": {...}, "lines": [...]} (lines only if changed).'),
    )

    class Meta:
        model = ContractAmendment
        fields = [
            "id",
            "contract",
            "contract_number",
            "sequence",
            "reason",
            "status",
            "status_display",
            "before",
            "proposed",
            "total_before",
            "total_after",
            "applied_at",
            "created_by_name",
            "created_at",
        ]
        read_only_fields = fields


# --- action payloads ------------------------------------------------------------------------


class SalesVersionSerializer(serializers.Serializer):
    version = VersionField(
        help_text=_("The version you read; when given, a newer record is refused with 409.")
    )


class SalesReasonSerializer(SalesVersionSerializer):
    reason = serializers.CharField(max_length=500)


class OrderCancelSerializer(SalesVersionSerializer):
    # Required by the service, which asks for it only once the caller may cancel: a
    # refusal must not read as a missing reason.
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SalesCommentSerializer(SalesVersionSerializer):
    comment = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text=_("For approvers.")
    )


class QuoteConvertSerializer(SalesVersionSerializer):
    """Header fields of the new contract; everything else is copied from the quote."""

    title = serializers.CharField(max_length=200, required=False)
    signed_on = serializers.DateField(required=False, allow_null=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    payment_terms = serializers.CharField(required=False, allow_blank=True)

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError(
                {"end_date": [_("The end date is on or after the start date.")]}
            )
        return attrs


class AmendmentDataSerializer(serializers.Serializer):
    """The contract fields an amendment may change; others are refused."""

    title = serializers.CharField(max_length=200, required=False)
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), required=False, allow_null=True
    )
    signed_on = serializers.DateField(required=False, allow_null=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    payment_terms = serializers.CharField(required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(AMENDABLE_FIELDS))
            if unknown:
                raise serializers.ValidationError(
                    _("These cannot be changed by an amendment: %(fields)s.")
                    % {"fields": ", ".join(unknown)}
                )
        return super().to_internal_value(data)


class ContractAmendSerializer(SalesVersionSerializer):
    reason = serializers.CharField()
    data = AmendmentDataSerializer(required=False)  # type: ignore[assignment]  # a field named "data"
    lines = AmendmentLineSerializer(
        many=True,
        required=False,
        allow_empty=False,
        help_text=_("All the lines the contract will have; leave out to keep the lines."),
    )


class ContractOrderLineSerializer(serializers.Serializer):
    contract_line = serializers.PrimaryKeyRelatedField(queryset=ContractLine.objects.all())
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=MIN_QUANTITY)


class ContractOrderSerializer(serializers.Serializer):
    """An order against an active contract, priced as on the contract."""

    lines = ContractOrderLineSerializer(
        many=True,
        required=False,
        help_text=_("Leave out (or empty) to order everything not yet ordered."),
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    order_date = serializers.DateField(required=False)
    ship_by = serializers.DateField(required=False, allow_null=True)
    warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True), required=False, allow_null=True
    )
    receiver_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    receiver_phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    shipping_address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)


class OrderGoodsLineSerializer(serializers.Serializer):
    order_line = serializers.IntegerField(min_value=1)
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=Decimal("0"))


def _quantities(lines) -> dict[int, Decimal] | None:
    """Order-line id → quantity; None when no line is given."""
    if not lines:
        return None
    return {line["order_line"]: line["quantity"] for line in lines}


class _OrderGoodsSerializer(serializers.Serializer):
    warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text=_("Defaults to the order's warehouse, else the default warehouse."),
    )

    def validate_lines(self, value):
        seen = set()
        for line in value:
            if line["order_line"] in seen:
                raise serializers.ValidationError(_("List each order line once."))
            seen.add(line["order_line"])
        return value

    def quantities(self) -> dict[int, Decimal] | None:
        return _quantities(self.validated_data.get("lines"))


class OrderShipSerializer(_OrderGoodsSerializer):
    lines = OrderGoodsLineSerializer(
        many=True,
        required=False,
        help_text=_("Leave out (or empty) to ship everything outstanding."),
    )
    shipped_on = serializers.DateField(required=False, allow_null=True)
    carrier = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    tracking_number = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class OrderReturnSerializer(_OrderGoodsSerializer):
    lines = OrderGoodsLineSerializer(many=True, allow_empty=False)
    reason = serializers.CharField(max_length=500)
    returned_on = serializers.DateField(required=False, allow_null=True)
