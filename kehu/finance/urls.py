from django.urls import path

from kehu.finance import views

app_name = "finance"

urlpatterns = [
    path("payments/", views.PaymentListView.as_view(), name="payment_list"),
    path("payments/new/", views.PaymentCreateView.as_view(), name="payment_create"),
    path("payments/<int:pk>/", views.PaymentDetailView.as_view(), name="payment_detail"),
    path("payments/<int:pk>/refund/", views.RefundCreateView.as_view(), name="refund_create"),
    path(
        "payments/<int:pk>/<slug:action>/",
        views.PaymentActionView.as_view(),
        name="payment_action",
    ),
    path("invoices/", views.InvoiceListView.as_view(), name="invoice_list"),
    path("invoices/new/", views.InvoiceCreateView.as_view(), name="invoice_create"),
    path("invoices/<int:pk>/", views.InvoiceDetailView.as_view(), name="invoice_detail"),
    path(
        "invoices/<int:pk>/<slug:action>/",
        views.InvoiceActionView.as_view(),
        name="invoice_action",
    ),
    path("refunds/", views.RefundListView.as_view(), name="refund_list"),
    path("refunds/<int:pk>/", views.RefundDetailView.as_view(), name="refund_detail"),
    path("expenses/", views.ExpenseListView.as_view(), name="expense_list"),
    path("expenses/new/", views.ExpenseFormView.as_view(), name="expense_create"),
    path("expenses/<int:pk>/", views.ExpenseDetailView.as_view(), name="expense_detail"),
    path("expenses/<int:pk>/edit/", views.ExpenseFormView.as_view(), name="expense_edit"),
    path(
        "expenses/<int:pk>/<slug:action>/",
        views.ExpenseActionView.as_view(),
        name="expense_action",
    ),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan_detail"),
    path("reconciliation/", views.ReconciliationView.as_view(), name="reconciliation"),
    path("aging/", views.AgingView.as_view(), name="aging"),
    path("reports/", views.ReportsView.as_view(), name="reports"),
    path("options/contracts/", views.ContractOptionsView.as_view(), name="contract_options"),
    path("options/customers/", views.CustomerOptionsView.as_view(), name="customer_options"),
]
