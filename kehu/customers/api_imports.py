"""/api/v1/customers/import/, /api/v1/customers/export/ and /api/v1/imports/{id}/."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from kehu.core.exceptions import ServiceError
from kehu.core.exports import export_response
from kehu.core.filters import is_id
from kehu.core.imports import (
    ImportFileError,
    ImportResult,
    import_job_create,
    import_job_get_for,
    import_job_preview,
    import_job_start,
)
from kehu.core.models import ImportJob, ImportStatus
from kehu.core.permissions import require_perm
from kehu.customers.imports import EXPORT_FILENAME, CustomerImporter, customer_export_columns
from kehu.customers.models import Customer

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RESULT_SCHEMA = inline_serializer(
    "ImportResult",
    {
        "status": serializers.CharField(),
        "total_rows": serializers.IntegerField(),
        "processed_rows": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "skipped": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        "message": serializers.CharField(),
        "job": serializers.IntegerField(allow_null=True),
    },
)
# A refused upload answers either the failed result (a file that cannot be read) or, for a
# request without a valid file or option, the usual messages per field.
IMPORT_REFUSED = OpenApiResponse(
    response={
        "anyOf": [
            {"$ref": "#/components/schemas/ImportResult"},
            {"$ref": "#/components/schemas/ValidationError"},
        ]
    },
    description=gettext_lazy("The failed result, or messages per field for an invalid request."),
)


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    mode = serializers.ChoiceField(
        choices=ImportJob.Mode.choices, default=ImportJob.Mode.ALL_OR_NOTHING
    )
    duplicate_policy = serializers.ChoiceField(
        choices=ImportJob.DuplicatePolicy.choices, default=ImportJob.DuplicatePolicy.SKIP
    )
    dry_run = serializers.BooleanField(default=False)


def job_payload(job: ImportJob) -> dict:
    return {
        "status": job.status,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "errors": job.errors,
        "message": job.message,
        "job": job.pk,
    }


class CustomerImportView(APIView):
    """Upload a CSV or XLSX of customers. Large files answer 202 with the job to poll."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: RESULT_SCHEMA, 202: RESULT_SCHEMA, 400: IMPORT_REFUSED},
    )
    def post(self, request):
        # Refuse a caller who may not import before looking at the upload (403, not 400).
        require_perm(request.user, "customers.add")
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = import_job_create(
                user=request.user,
                importer=CustomerImporter.name,
                file=data["file"],
                mode=data["mode"],
                duplicate_policy=data["duplicate_policy"],
            )
        except ImportFileError as exc:
            failed = ImportResult(status=ImportStatus.FAILED, message=str(exc.message))
            payload = {**failed.as_dict(), "processed_rows": 0, "job": None}
            return Response(payload, status=status.HTTP_400_BAD_REQUEST)
        if data["dry_run"]:
            result = import_job_preview(job=job)
            payload = {**result.as_dict(), "processed_rows": 0, "job": job.pk}
            code = status.HTTP_400_BAD_REQUEST if result.status == "failed" else 200
            return Response(payload, status=code)
        job = import_job_start(job=job)
        if job.status in (ImportStatus.PENDING, ImportStatus.RUNNING):
            return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)
        code = status.HTTP_400_BAD_REQUEST if job.status == ImportStatus.FAILED else 200
        return Response(job_payload(job), status=code)


class ImportJobDetailView(APIView):
    """One of the caller's imports: progress while it runs, counts and errors after."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RESULT_SCHEMA})
    def get(self, request, pk: int):
        return Response(job_payload(import_job_get_for(user=request.user, pk=pk)))


class CustomerExportView(APIView):
    """The caller's customers (their data scope) as CSV or XLSX, with the list's filters."""

    permission_classes = [IsAuthenticated]

    def perform_content_negotiation(self, request, force=False):
        # ``?format=csv|xlsx`` names the file format, not a DRF renderer; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["csv", "xlsx"]),
            OpenApiParameter("search", str),
            OpenApiParameter("owner", int),
            OpenApiParameter("stage", str),
            OpenApiParameter("in_pool", bool),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSX_TYPE): OpenApiTypes.BINARY,
        },
    )
    def get(self, request):
        from kehu.customers.selectors import (
            customer_list_visible_to,
            customer_search_q,
            pool_list,
        )

        params = request.query_params
        in_pool = params.get("in_pool", "").lower()
        if in_pool in ("true", "1", "yes"):
            queryset = pool_list(user=request.user)
        else:
            queryset = customer_list_visible_to(user=request.user)
        if params.get("search"):
            queryset = queryset.filter(
                customer_search_q(user=request.user, query=params["search"][:100])
            )
        owner = params.get("owner", "")
        if owner:
            if not is_id(owner):
                raise ServiceError(_("Enter a valid user id."), field="owner")
            queryset = queryset.filter(owner_id=int(owner))
        if params.get("stage"):
            queryset = queryset.filter(stage=params["stage"])
        return export_response(
            user=request.user,
            module="customers",
            model=Customer,
            queryset=queryset.order_by("-id"),
            columns=customer_export_columns(),
            fmt=params.get("format", "csv"),
            filename=str(EXPORT_FILENAME),
        )


def urls() -> list:
    """Added before the router's customers/<pk>/ routes by kehu.customers.api.extra_urls."""
    return [
        path("customers/import/", CustomerImportView.as_view(), name="customer_import"),
        path("customers/export/", CustomerExportView.as_view(), name="customer_export"),
        path("imports/<int:pk>/", ImportJobDetailView.as_view(), name="import_job_detail"),
    ]
