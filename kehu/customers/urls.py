from django.urls import path

from kehu.customers import views

app_name = "customers"
urlpatterns = [
    path("", views.CustomerListView.as_view(), name="customer_list"),
    path("new/", views.CustomerCreateView.as_view(), name="customer_create"),
    path("duplicates/", views.CustomerDuplicatesView.as_view(), name="customer_duplicates"),
    path("saved-views/", views.SavedViewSaveView.as_view(), name="saved_view_save"),
    path(
        "saved-views/<int:pk>/delete/",
        views.SavedViewDeleteView.as_view(),
        name="saved_view_delete",
    ),
    path("<int:pk>/", views.CustomerDetailView.as_view(), name="customer_detail"),
    path("<int:pk>/edit/", views.CustomerEditView.as_view(), name="customer_edit"),
    path(
        "<int:pk>/transfer/",
        views.CustomerActionView.as_view(action="transfer"),
        name="customer_transfer",
    ),
    path(
        "<int:pk>/return/",
        views.CustomerActionView.as_view(action="return"),
        name="customer_return",
    ),
    path(
        "<int:pk>/claim/", views.CustomerActionView.as_view(action="claim"), name="customer_claim"
    ),
    path("<int:pk>/merge/", views.CustomerMergeView.as_view(), name="customer_merge"),
    path("<int:pk>/contacts/", views.ContactCreateView.as_view(), name="contact_create"),
    path("<int:pk>/followups/", views.FollowUpCreateView.as_view(), name="followup_create"),
    path("pool/", views.PoolListView.as_view(), name="pool_list"),
    path("options/", views.CustomerOptionsView.as_view(), name="customer_options"),
    path("contacts/", views.ContactListView.as_view(), name="contact_list"),
    path("contacts/<int:pk>/", views.ContactEditView.as_view(), name="contact_edit"),
    path("contacts/<int:pk>/delete/", views.ContactDeleteView.as_view(), name="contact_delete"),
    path("followups/", views.FollowUpListView.as_view(), name="followup_list"),
    path("followups/calendar/", views.FollowUpCalendarView.as_view(), name="followup_calendar"),
    path("opportunities/", views.OpportunityBoardView.as_view(), name="opportunity_board"),
    path("opportunities/list/", views.OpportunityListView.as_view(), name="opportunity_list"),
    path("opportunities/new/", views.OpportunityFormView.as_view(), name="opportunity_create"),
    path("opportunities/<int:pk>/", views.OpportunityFormView.as_view(), name="opportunity_edit"),
    path(
        "opportunities/<int:pk>/move/",
        views.OpportunityMoveView.as_view(),
        name="opportunity_move",
    ),
    path(
        "opportunities/<int:pk>/won/",
        views.OpportunityCloseView.as_view(outcome="won"),
        name="opportunity_won",
    ),
    path(
        "opportunities/<int:pk>/lost/",
        views.OpportunityCloseView.as_view(outcome="lost"),
        name="opportunity_lost",
    ),
    path(
        "opportunities/<int:pk>/delete/",
        views.OpportunityDeleteView.as_view(),
        name="opportunity_delete",
    ),
    path("pipeline/", views.StageListView.as_view(), name="stage_list"),
    path("pipeline/new/", views.StageFormView.as_view(), name="stage_create"),
    path("pipeline/<int:pk>/", views.StageFormView.as_view(), name="stage_edit"),
    path("pipeline/<int:pk>/move/", views.StageMoveView.as_view(), name="stage_move"),
]
