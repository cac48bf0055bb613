from django.urls import path

from kehu.products import views

app_name = "products"
urlpatterns = [
    path("", views.ProductListView.as_view(), name="product_list"),
    path("new/", views.ProductFormView.as_view(), name="product_create"),
    path("<int:pk>/", views.ProductDetailView.as_view(), name="product_detail"),
    path("<int:pk>/edit/", views.ProductFormView.as_view(), name="product_edit"),
    path("<int:pk>/delete/", views.ProductDeleteView.as_view(), name="product_delete"),
    path("<int:pk>/restore/", views.ProductRestoreView.as_view(), name="product_restore"),
    path("deleted/", views.DeletedProductListView.as_view(), name="deleted_list"),
    path("low-stock/", views.LowStockListView.as_view(), name="low_stock_list"),
    path("stock/", views.StockMovementListView.as_view(), name="stock_list"),
    path("stock/new/", views.StockMovementFormView.as_view(), name="stock_movement_create"),
    path("stock/transfer/", views.StockTransferFormView.as_view(), name="stock_transfer"),
    path("warehouses/", views.WarehouseListView.as_view(), name="warehouse_list"),
    path("warehouses/new/", views.WarehouseFormView.as_view(), name="warehouse_create"),
    path("warehouses/<int:pk>/", views.WarehouseFormView.as_view(), name="warehouse_edit"),
    path(
        "warehouses/<int:pk>/<slug:action>/",
        views.WarehouseActionView.as_view(),
        name="warehouse_action",
    ),
    path("categories/", views.CategoryListView.as_view(), name="category_list"),
    path("categories/new/", views.CategoryFormView.as_view(), name="category_create"),
    path("categories/<int:pk>/", views.CategoryFormView.as_view(), name="category_edit"),
    path("categories/<int:pk>/move/", views.CategoryMoveView.as_view(), name="category_move"),
    path("categories/<int:pk>/delete/", views.CategoryDeleteView.as_view(), name="category_delete"),
]
