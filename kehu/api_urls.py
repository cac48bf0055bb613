"""/api/v1/: every module's API endpoints."""


urlpatterns: list = []
