"""The REST API and the web page: a FastAPI app over one `Library` (`lookalike serve`)."""

from .app import DEFAULT_MAX_UPLOAD_BYTES, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]
