"""/imports/<importer>/…: the upload, preview and result pages every module's import shares."""

from django.urls import path

from kehu.core import import_views

app_name = "imports"
urlpatterns = [
    path("<slug:importer>/", import_views.import_upload, name="upload"),
    path("<slug:importer>/template.<str:fmt>", import_views.import_template, name="template"),
    path("<slug:importer>/<int:pk>/", import_views.import_preview, name="preview"),
    path("<slug:importer>/<int:pk>/run/", import_views.import_run, name="run"),
    path("<slug:importer>/<int:pk>/result/", import_views.import_result, name="result"),
    path("<slug:importer>/<int:pk>/progress/", import_views.import_progress, name="progress"),
]
