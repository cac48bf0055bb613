"""Pages of the sales app: quotes, contracts, amendments, orders, shipments."""

from django.urls import path

from kehu.sales import views

app_name = "sales"

urlpatterns = [
    # quotes
    path("quotes/", views.QuoteListView.as_view(), name="quote_list"),
    path("quotes/new/", views.QuoteFormView.as_view(), name="quote_create"),
    path("quotes/<int:pk>/", views.QuoteDetailView.as_view(), name="quote_detail"),
    path("quotes/<int:pk>/edit/", views.QuoteFormView.as_view(), name="quote_edit"),
    path("quotes/<int:pk>/pdf/", views.QuotePdfView.as_view(), name="quote_pdf"),
    path("quotes/<int:pk>/<slug:action>/", views.QuoteActionView.as_view(), name="quote_action"),
    # contracts
    path("contracts/", views.ContractListView.as_view(), name="contract_list"),
    path("contracts/new/", views.ContractFormView.as_view(), name="contract_create"),
    path("contracts/<int:pk>/", views.ContractDetailView.as_view(), name="contract_detail"),
    path("contracts/<int:pk>/edit/", views.ContractFormView.as_view(), name="contract_edit"),
    path("contracts/<int:pk>/amend/", views.ContractAmendView.as_view(), name="contract_amend"),
    path(
        "contracts/<int:pk>/order/",
        views.ContractOrderCreateView.as_view(),
        name="contract_order_create",
    ),
    path(
        "contracts/<int:pk>/attachments/",
        views.ContractAttachmentView.as_view(),
        name="contract_attach",
    ),
    path("contracts/<int:pk>/pdf/", views.ContractPdfView.as_view(), name="contract_pdf"),
    path(
        "contracts/<int:pk>/<slug:action>/",
        views.ContractActionView.as_view(),
        name="contract_action",
    ),
    path("amendments/<int:pk>/", views.AmendmentDetailView.as_view(), name="amendment_detail"),
    # orders and shipments
    path("orders/", views.OrderListView.as_view(), name="order_list"),
    path("orders/new/", views.OrderFormView.as_view(), name="order_create"),
    path("orders/<int:pk>/", views.OrderDetailView.as_view(), name="order_detail"),
    path("orders/<int:pk>/edit/", views.OrderFormView.as_view(), name="order_edit"),
    path("orders/<int:pk>/ship/", views.OrderShipView.as_view(), name="order_ship"),
    path("orders/<int:pk>/return/", views.OrderReturnView.as_view(), name="order_return"),
    path("orders/<int:pk>/<slug:action>/", views.OrderActionView.as_view(), name="order_action"),
    path("shipments/", views.ShipmentListView.as_view(), name="shipment_list"),
    # the editor's look-ups
    path("lookup/customers/", views.CustomerOptionsView.as_view(), name="customer_options"),
    path("lookup/products/", views.ProductOptionsView.as_view(), name="product_options"),
    path("lookup/customer-fields/", views.CustomerFieldsView.as_view(), name="customer_fields"),
    path("lines/preview/", views.LinesPreviewView.as_view(), name="lines_preview"),
]
