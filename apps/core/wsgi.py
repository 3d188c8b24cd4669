"""Two middleware stacks behind one WSGI application: the browser's, and a short one for the
paths that only programs call.

The REST API (``/api/v1/``), the Meta-compatible endpoint (``/graph/``) and the providers'
webhooks (``/webhooks/``) authenticate every request by an API key or a signature and answer
JSON or plain text. The browser's stack has nothing to do for them -- no session, no CSRF
(their views are exempt), no user, no flash messages, no static files, no htmx -- yet each of
its layers costs every request a call and a lookup: together 0.1-0.15 ms of CPU, a quarter of
what a bare DRF view costs in process.
Such requests go through ``settings.MACHINE_MIDDLEWARE`` instead (security headers and
``CommonMiddleware``'s rules), picked by the path's prefix (``settings.MACHINE_PATH_PREFIXES``)
before Django builds the request. Everything else, the inbox and the admin included, keeps
``settings.MIDDLEWARE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler


class MachineHandler(WSGIHandler):
    """Django's WSGI handler with ``settings.MACHINE_MIDDLEWARE`` for its middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; this runs once, at start-up, before
        # any request is served.
        browser = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.MACHINE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = browser


class PathDispatcher:
    """Sends a request to ``machine`` when its path starts with one of ``prefixes``, otherwise
    to ``browser``."""

    def __init__(self, *, browser: Callable[..., Iterable[bytes]], machine: Callable[..., Iterable[bytes]],
                 prefixes: tuple[str, ...]) -> None:
        self.browser, self.machine, self.prefixes = browser, machine, prefixes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.prefixes):
            return self.machine(environ, start_response)
        return self.browser(environ, start_response)


def application(browser: WSGIHandler) -> PathDispatcher:
    """The served application: ``browser`` (Django's own handler, already set up) for pages,
    a :class:`MachineHandler` for the machine paths."""
    return PathDispatcher(browser=browser, machine=MachineHandler(),
                          prefixes=tuple(settings.MACHINE_PATH_PREFIXES))
