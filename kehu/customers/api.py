"""API viewsets of this module, registered on the /api/v1/ router in ``register``."""


def register(router) -> None:
    """Add this module's viewsets to the API router."""


def extra_urls() -> list:
    """Paths that must come before the router's (e.g. customers/import/)."""
    return []
