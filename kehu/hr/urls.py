from django.urls import path

from kehu.system import views

app_name = "hr"
urlpatterns = [
    path("departments/", views.placeholder, name="department_list"),
]
