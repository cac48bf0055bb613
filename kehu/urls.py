from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from kehu.core import views as core_views

handler403 = "kehu.core.views.error_403"
handler404 = "kehu.core.views.error_404"
handler500 = "kehu.core.views.error_500"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("search/", core_views.global_search, name="search"),
    path("i18n/setlang/", core_views.set_language, name="set_language"),
    path("accounts/login/", core_views.KehuLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("system/", include("kehu.system.urls")),
    path("hr/", include("kehu.hr.urls")),
    path("customers/", include("kehu.customers.urls")),
    path("products/", include("kehu.products.urls")),
    path("sales/", include("kehu.sales.urls")),
    path("finance/", include("kehu.finance.urls")),
    path("approvals/", include("kehu.approvals.urls")),
    path("analytics/", include("kehu.analytics.urls")),
    path("imports/", include("kehu.core.import_urls")),
    path("files/", include("kehu.core.files")),
    path("api/v1/", include("kehu.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api_docs"),
]
