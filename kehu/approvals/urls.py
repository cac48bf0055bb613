from django.urls import path

from kehu.approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.ApprovalRequestListView.as_view(), name="request_list"),
    path("inbox/", views.ApprovalInboxView.as_view(), name="inbox"),
    path("mine/", views.MyApprovalRequestsView.as_view(), name="my_requests"),
    path("<int:pk>/", views.ApprovalRequestDetailView.as_view(), name="request_detail"),
    path(
        "<int:pk>/<slug:action>/",
        views.ApprovalRequestActionView.as_view(),
        name="request_action",
    ),
    path("rules/", views.ApprovalRuleListView.as_view(), name="rule_list"),
    path("rules/new/", views.ApprovalRuleFormView.as_view(), name="rule_create"),
    path("rules/step-row/", views.ApprovalRuleStepRowView.as_view(), name="rule_step_row"),
    path("rules/<int:pk>/", views.ApprovalRuleFormView.as_view(), name="rule_edit"),
    path("rules/<int:pk>/delete/", views.ApprovalRuleDeleteView.as_view(), name="rule_delete"),
]
