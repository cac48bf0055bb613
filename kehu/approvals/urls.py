"""Pages of the approvals app (placeholder routes until the views land)."""

from django.http import HttpResponse
from django.urls import path

app_name = "approvals"


def _todo(request, pk=None):  # replaced by the real views
    return HttpResponse(status=501)


urlpatterns = [
    path("<int:pk>/", _todo, name="request_detail"),
    path("rules/<int:pk>/", _todo, name="rule_edit"),
]
