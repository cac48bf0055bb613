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
    path("org-chart/", views.OrgChartView.as_view(), name="org_chart"),
    path("positions/", views.PositionListView.as_view(), name="position_list"),
    path("positions/new/", views.PositionFormView.as_view(), name="position_create"),
    path("positions/<int:pk>/", views.PositionFormView.as_view(), name="position_edit"),
    path("employees/", views.EmployeeListView.as_view(), name="employee_list"),
    path("employees/new/", views.EmployeeFormView.as_view(), name="employee_create"),
    path("employees/<int:pk>/", views.EmployeeDetailView.as_view(), name="employee_detail"),
    path("employees/<int:pk>/edit/", views.EmployeeFormView.as_view(), name="employee_edit"),
    path(
        "employees/<int:pk>/transfer/",
        views.EmployeeActionView.as_view(action="transfer"),
        name="employee_transfer",
    ),
    path(
        "employees/<int:pk>/promote/",
        views.EmployeeActionView.as_view(action="promote"),
        name="employee_promote",
    ),
    path(
        "employees/<int:pk>/status/",
        views.EmployeeActionView.as_view(action="status"),
        name="employee_status",
    ),
    path("handover/", views.HandoverWizardView.as_view(), name="handover"),
    path("handovers/<int:pk>/", views.HandoverDetailView.as_view(), name="handover_detail"),
    path("targets/", views.SalesTargetView.as_view(), name="target_list"),
    path("targets/cell/", views.SalesTargetCellView.as_view(), name="target_cell"),
]
