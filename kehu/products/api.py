"""API viewsets of this module, registered on the /api/v1/ router in ``register``."""


def register(router) -> None:
    """Add this module's viewsets to the API router."""
