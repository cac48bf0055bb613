"""Pages of the finance app (placeholder routes until the views land)."""

from django.http import HttpResponse
from django.urls import path

app_name = "finance"


def _todo(request, pk=None):  # replaced by the real views
    return HttpResponse(status=501)


urlpatterns = [
    path("payments/<int:pk>/", _todo, name="payment_detail"),
    path("invoices/<int:pk>/", _todo, name="invoice_detail"),
    path("refunds/<int:pk>/", _todo, name="refund_detail"),
    path("expenses/<int:pk>/", _todo, name="expense_detail"),
    path("plans/<int:pk>/", _todo, name="plan_detail"),
]
