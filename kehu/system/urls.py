from django.urls import path

from kehu.system import views

app_name = "system"
urlpatterns = [
    path("users/", views.placeholder, name="user_list"),
    path("roles/", views.placeholder, name="role_list"),
    path("dictionaries/", views.placeholder, name="dictionary_list"),
    path("settings/", views.placeholder, name="settings"),
    path("audit-log/", views.placeholder, name="audit_list"),
    path("notifications/", views.placeholder, name="notification_list"),
]
