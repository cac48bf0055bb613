"""/api/v1/analytics/…: the stored analytics results, read through the caller's data scope.

Every endpoint needs analytics.view. Nothing is computed here: the figures come from the
last runs of the analytics jobs, whose finish time each answer carries (``computed_at``;
null before the first run).
"""

from __future__ import annotations

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.views import APIView

from kehu.analytics import selectors, serializers
from kehu.analytics.models import CustomerScore, RunKind, Segment
from kehu.core.api import ModulePermission, StandardPagination
from kehu.core.filters import IdFilter

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
}


def _errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


class AnalyticsViewSet(viewsets.GenericViewSet):
    module = "analytics"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    pagination_class: type[BasePagination] | None = None
    filter_backends: list = []


class AnalyticsView(APIView):
    """One answer (not a list) per request."""

    module = "analytics"
    perm_action = "view"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]


class DashboardView(AnalyticsView):
    """The dashboard's figures for a period (whole months): stored monthly figures with the
    same months last year, target achievement, top customers and products, and the live
    funnel, receivables aging and expenses when the caller may see those modules."""

    @extend_schema(
        parameters=[serializers.DashboardQuerySerializer],
        responses={200: serializers.DashboardSerializer, **_errors(400, 403)},
    )
    def get(self, request):
        query = serializers.DashboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = selectors.dashboard_data(
            user=request.user, period=query.validated_data["period"], today=timezone.localdate()
        )
        body = {
            **serializers.run_info(data["figures_run"]),
            "period": {
                "start": data["period"].start,
                "end": data["period"].end,
                "preset": data["period"].preset,
                "months": data["period"].months,
            },
            "figures": {
                metric: {k: v for k, v in figure.items() if k != "months"}
                for metric, figure in data["figures"].items()
            },
            "funnel": data["funnel"],
            "targets": data["targets"],
            "top_customers": data["top_customers"],
            "top_products": data["top_products"],
            "aging": data["aging"],
            "expenses": data["expenses"],
        }
        return Response(serializers.DashboardSerializer(body).data)


class RfmView(AnalyticsView):
    """The eight RFM segments of the customers in scope: counts, money, average scores."""

    @extend_schema(responses={200: serializers.RfmSerializer, **_errors(403)})
    def get(self, request):
        rows = selectors.segment_summary(
            queryset=selectors.score_list_visible_to(user=request.user)
        )
        body = {**serializers.run_info(selectors.latest_run(RunKind.CUSTOMERS)), "segments": rows}
        return Response(serializers.RfmSerializer(body).data)


class ScoreFilter(django_filters.FilterSet):
    segment = django_filters.ChoiceFilter(choices=Segment.choices)
    owner = IdFilter(field_name="customer__owner_id", label=_("owner"))
    churn_risk_min = django_filters.NumberFilter(
        field_name="churn_risk", lookup_expr="gte", label=_("churn risk at least (0–1)")
    )

    class Meta:
        model = CustomerScore
        fields = ["segment", "owner", "churn_risk_min"]


class _ScoreListViewSet(mixins.ListModelMixin, AnalyticsViewSet):
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ScoreFilter
    ordering_fields = [
        "revenue",
        "gross_profit",
        "clv",
        "p_alive",
        "expected_purchases",
        "churn_risk",
        "recency_days",
        "orders",
    ]
    pagination_class = StandardPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no user
            return CustomerScore.objects.none()
        return selectors.score_list_visible_to(user=self.request.user)


@extend_schema(responses={200: serializers.CustomerValueSerializer(many=True), **_errors(403)})
class CustomerValueViewSet(_ScoreListViewSet):
    """Customers in scope with revenue, cost of goods, gross profit, CLV, RFM segment and
    predictions, by gross profit (``?ordering=`` to change)."""

    serializer_class = serializers.CustomerValueSerializer
    ordering = ["-gross_profit", "customer_id"]


class PredictionViewSet(_ScoreListViewSet):
    """Per customer in scope: probability still active, expected orders in the next 90 days,
    CLV and churn risk with its main factors; highest risk first."""

    serializer_class = serializers.PredictionSerializer
    ordering = ["-churn_risk", "customer_id"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["coefficients"] = selectors.churn_coefficients(
            selectors.latest_run(RunKind.CUSTOMERS)
        )
        return context

    @extend_schema(responses={200: serializers.PredictionSerializer(many=True), **_errors(403)})
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class RecommendationView(AnalyticsView):
    """Products for a customer: bought by customers who bought what this one did, excluding
    what they already have. 404 when the customer is outside the caller's scope."""

    @extend_schema(
        parameters=[serializers.RecommendationQuerySerializer],
        responses={200: serializers.RecommendationsSerializer, **_errors(400, 403, 404)},
    )
    def get(self, request):
        query = serializers.RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = selectors.customer_for_insights(
            user=request.user, pk=query.validated_data["customer"]
        )
        from kehu.analytics import services

        items = services.recommendations_for(customer=customer, k=query.validated_data["limit"])
        body = {
            **serializers.run_info(selectors.latest_run(RunKind.ASSOCIATIONS)),
            "customer": customer.pk,
            "items": items,
        }
        return Response(serializers.RecommendationsSerializer(body).data)


class ForecastView(AnalyticsView):
    """Next quarter's contract amount and collections for the caller's scope, with the 80%
    interval, the monthly history and the targets of the forecast months."""

    @extend_schema(responses={200: serializers.ForecastSerializer, **_errors(403)})
    def get(self, request):
        forecast = selectors.forecast_for(user=request.user)
        if forecast is None:
            body = {
                **serializers.run_info(None),
                "key": selectors.forecast_series_key(request.user),
                "months": [],
                "future": [],
                "series": {},
            }
        else:
            body = {**serializers.run_info(forecast["run"]), **forecast}
        return Response(serializers.ForecastSerializer(body).data)


def register(router) -> None:
    router.register(
        "analytics/customer-value", CustomerValueViewSet, basename="analytics-customer-value"
    )
    router.register("analytics/predictions", PredictionViewSet, basename="analytics-prediction")


def urls() -> list:
    """The single-answer endpoints (the lists are registered on the router)."""
    from django.urls import path

    return [
        path("analytics/dashboard/", DashboardView.as_view(), name="analytics-dashboard"),
        path("analytics/rfm/", RfmView.as_view(), name="analytics-rfm"),
        path(
            "analytics/recommendations/",
            RecommendationView.as_view(),
            name="analytics-recommendations",
        ),
        path("analytics/forecast/", ForecastView.as_view(), name="analytics-forecast"),
    ]
