"""Pages of the sales app (placeholder routes until the views land)."""

from django.http import HttpResponse
from django.urls import path

app_name = "sales"


def _todo(request, pk=None):  # replaced by the real views
    return HttpResponse(status=501)


urlpatterns = [
    path("quotes/<int:pk>/", _todo, name="quote_detail"),
    path("contracts/<int:pk>/", _todo, name="contract_detail"),
    path("orders/<int:pk>/", _todo, name="order_detail"),
    path("amendments/<int:pk>/", _todo, name="amendment_detail"),
]
