"""The try-it page the ingress serves at ``GET /``: static HTML, CSS and one vanilla JS file, read from package data.

No build step and no server-side state: the page keeps the new user's clicks in the browser (``sessionStorage``)
and sends them, oldest first, with every ``POST /recommend``, as any client of the API would. The files live in
``coldstart/serving/static/`` and ship in the wheel (``[tool.setuptools.package-data]``).

Only the names in :data:`ASSETS` are served (no path from the URL ever reaches the file system). The HTML gets a
``<base href>`` of the app's route prefix, so the page's relative URLs (``static/page.js``, ``recommend``) work
under any ``route_prefix``, and a Content-Security-Policy that allows only this origin's own script and style: a
product title can never run as code, even if a bug put it into markup (the script writes titles with
``textContent`` only).
"""

from __future__ import annotations

import functools
import html
from importlib import resources

ASSETS = {  # file name in static/ -> media type
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
}

PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a redeployed app's page is seen at once
}

_BASE_MARK = "<!--base-->"


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("coldstart.serving").joinpath("static", name).read_bytes()


def index_html(root_path: str = "") -> str:
    """The page, with ``<base href="{root_path}/">`` so its relative URLs resolve under the app's route prefix
    (``root_path`` is the ASGI scope's: ``""`` at ``/``, ``"/shop"`` at ``route_prefix: /shop``)."""
    base = html.escape(root_path.rstrip("/") + "/", quote=True)
    return _read("index.html").decode("utf-8").replace(_BASE_MARK, f'<base href="{base}">', 1)


def asset(name: str) -> tuple[bytes, str] | None:
    """``(content, media type)`` of a static file the page loads, or None for any other name."""
    media_type = ASSETS.get(name)
    return (_read(name), media_type) if media_type else None
