from django.urls import path

from kehu.system import views, views_customfields

app_name = "system"
urlpatterns = [
    path("users/", views.UserListView.as_view(), name="user_list"),
    path("users/new/", views.UserCreateView.as_view(), name="user_create"),
    path("users/<int:pk>/", views.UserEditView.as_view(), name="user_edit"),
    path("users/<int:pk>/password/", views.UserSetPasswordView.as_view(), name="user_password"),
    path("users/<int:pk>/send-reset/", views.UserSendResetView.as_view(), name="user_send_reset"),
    path("roles/", views.RoleListView.as_view(), name="role_list"),
    path("roles/new/", views.RoleFormView.as_view(), name="role_create"),
    path("roles/<int:pk>/", views.RoleFormView.as_view(), name="role_edit"),
    path("roles/<int:pk>/delete/", views.RoleDeleteView.as_view(), name="role_delete"),
    path("dictionaries/", views.DictionaryListView.as_view(), name="dictionary_list"),
    path("dictionaries/<int:pk>/", views.DictionaryDetailView.as_view(), name="dictionary_detail"),
    path(
        "dictionaries/<int:pk>/items/",
        views.DictionaryItemCreateView.as_view(),
        name="dictionary_item_create",
    ),
    path(
        "dictionary-items/<int:pk>/", views.DictionaryItemRowView.as_view(), name="dictionary_item"
    ),
    path(
        "dictionary-items/<int:pk>/edit/",
        views.DictionaryItemEditView.as_view(),
        name="dictionary_item_edit",
    ),
    path("settings/", views.SettingsView.as_view(), name="settings"),
    path(
        "custom-fields/",
        views_customfields.CustomFieldListView.as_view(),
        name="customfield_list",
    ),
    path(
        "custom-fields/new/",
        views_customfields.CustomFieldFormView.as_view(),
        name="customfield_create",
    ),
    path(
        "custom-fields/<int:pk>/",
        views_customfields.CustomFieldFormView.as_view(),
        name="customfield_edit",
    ),
    path("audit-log/", views.AuditListView.as_view(), name="audit_list"),
    path("notifications/", views.NotificationListView.as_view(), name="notification_list"),
    path(
        "notifications/read-all/",
        views.NotificationReadAllView.as_view(),
        name="notification_read_all",
    ),
    path(
        "notifications/<int:pk>/read/",
        views.NotificationReadView.as_view(),
        name="notification_read",
    ),
    path(
        "notifications/<int:pk>/open/",
        views.NotificationOpenView.as_view(),
        name="notification_open",
    ),
]
