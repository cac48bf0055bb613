from django.urls import path

from kehu.hr import views

app_name = "hr"
urlpatterns = [
    path("departments/", views.DepartmentListView.as_view(), name="department_list"),
    path("departments/new/", views.DepartmentFormView.as_view(), name="department_create"),
    path("departments/<int:pk>/", views.DepartmentFormView.as_view(), name="department_edit"),
    path(
        "departments/<int:pk>/delete/",
        views.DepartmentDeleteView.as_view(),
        name="department_delete",
    ),
]
