"""/api/v1/: every module's API endpoints."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from kehu.analytics import api as analytics_api
from kehu.approvals import api as approvals_api
from kehu.customers import api as customers_api
from kehu.customers import api_opportunities
from kehu.finance import api as finance_api
from kehu.hr import api as hr_api
from kehu.hr.api import DepartmentViewSet
from kehu.products import api as products_api
from kehu.sales import api as sales_api
from kehu.system.api import (
    AuditLogViewSet,
    AuthTokenView,
    DictionaryItemViewSet,
    DictionaryViewSet,
    MeView,
    NotificationViewSet,
    RoleViewSet,
    UserViewSet,
)

router = DefaultRouter()
router.register("users", UserViewSet, basename="user")
router.register("roles", RoleViewSet, basename="role")
router.register("departments", DepartmentViewSet, basename="department")
router.register("dictionaries", DictionaryViewSet, basename="dictionary")
router.register("dictionary-items", DictionaryItemViewSet, basename="dictionary-item")
router.register("audit-logs", AuditLogViewSet, basename="audit-log")
router.register("notifications", NotificationViewSet, basename="notification")
# Business modules register their own viewsets.
customers_api.register(router)
hr_api.register(router)
api_opportunities.register(router)
products_api.register(router)
approvals_api.register(router)
sales_api.register(router)
finance_api.register(router)
analytics_api.register(router)

app_name = "api"
urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth_token"),
    path("me/", MeView.as_view(), name="me"),
    *customers_api.extra_urls(),
    *analytics_api.urls(),
    *router.urls,
]
