from django.urls import path

from kehu.analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("customer-value/", views.CustomerValueView.as_view(), name="customer_value"),
    path("rfm/", views.RfmView.as_view(), name="rfm"),
    path("predictions/", views.PredictionsView.as_view(), name="predictions"),
    path("forecast/", views.ForecastView.as_view(), name="forecast"),
]
