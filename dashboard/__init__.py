"""The asnmon dashboard: a Dash app over the store, served by waitress.

``create_app(store, assay)`` builds it; ``serve(app, host=..., port=...)`` runs it.
"""

from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> object:
    # Lazy: importing Dash costs ~1 s, which ``asnmon --help`` should not pay.
    if name == "create_app":
        from dashboard.app import create_app

        return create_app
    if name == "serve":
        from dashboard.server import serve

        return serve
    raise AttributeError(name)
