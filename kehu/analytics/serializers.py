"""Shapes of the analytics API: read-only views of the stored results."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kehu.analytics import selectors
from kehu.analytics.forms import PRESETS, PeriodForm
from kehu.analytics.models import CustomerScore, Segment


def money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=2, **kwargs)


class RunInfoMixin(serializers.Serializer):
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text=_("When the job that produced these figures finished.")
    )
    as_of = serializers.DateField(allow_null=True, help_text=_("The data they are based on."))


def run_info(run) -> dict:
    return {
        "computed_at": run.finished_at if run else None,
        "as_of": run.as_of if run else None,
    }


# --- dashboard ----------------------------------------------------------------------------


class DashboardQuerySerializer(serializers.Serializer):
    preset = serializers.ChoiceField(
        choices=PRESETS,
        required=False,
        help_text=_("A named period; ignored when start and end are given."),
    )
    start = serializers.DateField(required=False, help_text=_("First day (its month counts)."))
    end = serializers.DateField(required=False, help_text=_("Last day (its month counts)."))

    def validate(self, attrs):
        data = {key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in attrs.items()}  # fmt: skip
        if ("start" in data or "end" in data) and "preset" not in data:
            data["preset"] = "custom"
        form = PeriodForm(data)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors.get_json_data(escape_html=False))
        attrs["period"] = form.period()
        return attrs


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    preset = serializers.CharField()
    months = serializers.ListField(child=serializers.DateField())


class FigureSerializer(serializers.Serializer):
    values = serializers.ListField(child=money(), help_text=_("One per month of the period."))
    last_year = serializers.ListField(child=money(), help_text=_("The same months a year earlier."))
    total = money()
    total_last_year = money()


class FunnelStepSerializer(serializers.Serializer):
    stage_id = serializers.IntegerField(source="stage.pk")
    stage = serializers.CharField()
    count = serializers.IntegerField(help_text=_("Opportunities at this stage now."))
    amount = money()
    reached = serializers.IntegerField(help_text=_("At this stage or beyond (won included)."))
    conversion = serializers.FloatField(
        allow_null=True, help_text=_("Share of the previous stage that got this far.")
    )


class FunnelSerializer(serializers.Serializer):
    steps = FunnelStepSerializer(many=True)
    won = serializers.IntegerField()
    lost = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)
    open_amount = money()


class AchievementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    contract_target = money()
    contract_achieved = money()
    contract_rate = serializers.FloatField(allow_null=True)
    payment_target = money()
    payment_achieved = money()
    payment_rate = serializers.FloatField(allow_null=True)


class TargetsSerializer(serializers.Serializer):
    people = AchievementSerializer(many=True)
    departments = AchievementSerializer(many=True)
    source_available = serializers.BooleanField()


class TopCustomerSerializer(serializers.Serializer):
    customer = serializers.IntegerField(source="customer_id")
    name = serializers.CharField(source="customer.name")
    segment = serializers.CharField()
    revenue = money()
    gross_profit = money()
    clv = money()


class TopProductSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product_id")
    code = serializers.CharField()
    name = serializers.CharField()
    orders = serializers.IntegerField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=3)
    amount = money()


class AgingBucketSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    amount = money()


class AgingSerializer(serializers.Serializer):
    buckets = AgingBucketSerializer(many=True)
    total = money()
    overdue = money()


class ExpenseCategorySerializer(serializers.Serializer):
    category = serializers.IntegerField(source="category_id")
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    amount = money()
    claims = serializers.IntegerField()


class DashboardSerializer(RunInfoMixin):
    period = PeriodSerializer()
    figures = serializers.DictField(
        child=FigureSerializer(),
        help_text=_(
            "Per metric (contract_amount, contracts, collected, order_amount, new_customers, "
            "followups, expenses) from the stored monthly figures."
        ),
    )
    funnel = FunnelSerializer(allow_null=True, help_text=_("Live; null without customers.view."))
    targets = TargetsSerializer()
    top_customers = TopCustomerSerializer(many=True)
    top_products = TopProductSerializer(
        many=True, allow_null=True, help_text=_("Null without sales.view.")
    )
    aging = AgingSerializer(allow_null=True, help_text=_("Live; null without finance.view."))
    expenses = ExpenseCategorySerializer(
        many=True, allow_null=True, help_text=_("Null without finance.view.")
    )


# --- segments, customers, predictions -------------------------------------------------------


class SegmentRowSerializer(serializers.Serializer):
    segment = serializers.ChoiceField(choices=Segment.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    customers = serializers.IntegerField()
    revenue = money()
    cost = money()
    gross_profit = money()
    clv = money()
    avg_r = serializers.FloatField(allow_null=True)
    avg_f = serializers.FloatField(allow_null=True)
    avg_m = serializers.FloatField(allow_null=True)
    avg_recency = serializers.FloatField(allow_null=True)
    avg_orders = serializers.FloatField(allow_null=True)


class RfmSerializer(RunInfoMixin):
    segments = SegmentRowSerializer(many=True)


class CustomerValueSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    owner = serializers.IntegerField(source="customer.owner_id", read_only=True, allow_null=True)
    segment_label = serializers.CharField(source="get_segment_display", read_only=True)

    class Meta:
        model = CustomerScore
        fields = [
            "customer",
            "customer_name",
            "owner",
            "segment",
            "segment_label",
            "r_score",
            "f_score",
            "m_score",
            "orders",
            "first_order_on",
            "last_order_on",
            "recency_days",
            "revenue",
            "cost",
            "gross_profit",
            "clv",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "churn_risk",
            "computed_at",
        ]
        read_only_fields = fields


class ChurnFactorSerializer(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField(help_text=_("The feature in plain words."))  # type: ignore[assignment]
    weight = serializers.FloatField(help_text=_("Contribution to the log-odds of churning."))
    phrase = serializers.CharField(help_text=_("What about this customer raises the risk."))


class PredictionSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    churn_factors = serializers.SerializerMethodField()

    class Meta:
        model = CustomerScore
        fields = [
            "customer",
            "customer_name",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "clv",
            "churn_risk",
            "churn_factors",
            "computed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ChurnFactorSerializer(many=True))
    def get_churn_factors(self, score) -> list[dict]:
        coefficients = self.context.get("coefficients") or {}
        phrases = selectors.factor_phrases(score.churn_factors, coefficients)
        return [
            {
                "feature": factor.get("feature", ""),
                "label": selectors.feature_label(factor.get("feature", "")),
                "weight": factor.get("weight", 0.0),
                "phrase": phrase,
            }
            for factor, phrase in zip(score.churn_factors or [], phrases, strict=True)
        ]


class RecommendationQuerySerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, help_text=_("The customer's id."))
    limit = serializers.IntegerField(min_value=1, max_value=20, required=False, default=5)


class RecommendationSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product.pk")
    code = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    score = serializers.FloatField(help_text=_("Lift × confidence of the best rule."))
    because = serializers.IntegerField(source="because.pk", help_text=_("A product they bought."))
    because_name = serializers.CharField(source="because.name")


class RecommendationsSerializer(RunInfoMixin):
    customer = serializers.IntegerField()
    items = RecommendationSerializer(many=True)


# --- forecast -----------------------------------------------------------------------------


class ForecastSeriesSerializer(serializers.Serializer):
    history = serializers.ListField(child=serializers.FloatField())
    mean = serializers.ListField(child=serializers.FloatField())
    # xgettext:no-python-format
    lower = serializers.ListField(child=serializers.FloatField(), help_text=_("80% interval."))
    # xgettext:no-python-format
    upper = serializers.ListField(child=serializers.FloatField(), help_text=_("80% interval."))
    method = serializers.CharField()
    targets = serializers.ListField(child=serializers.FloatField(allow_null=True))
    forecast_total = serializers.FloatField()
    target_total = serializers.FloatField(allow_null=True)


class ForecastSerializer(RunInfoMixin):
    key = serializers.CharField(
        help_text=_('The scope forecast: "all", "department:<id>" or "user:<id>".')
    )
    months = serializers.ListField(child=serializers.DateField(), help_text=_("History months."))
    future = serializers.ListField(child=serializers.DateField(), help_text=_("Forecast months."))
    series = serializers.DictField(
        child=ForecastSeriesSerializer(), help_text=_("contract_amount and collected.")
    )
