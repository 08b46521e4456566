"""unspin's HTTP service: ``POST /v1/restore``, health checks and a review page at ``/``.

    from service import Settings, create_app
    app = create_app(Settings(max_text_chars=5000))    # or: unspin serve --port 8000
"""

from service.main import create_app
from service.settings import Settings

__all__ = ["Settings", "create_app"]
