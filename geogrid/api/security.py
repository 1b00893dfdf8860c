"""Browser security for every response: framing refused, a Content-Security-Policy, no sniffing, no caching.

Every page and API answer says ``frame-ancestors 'none'`` (and ``X-Frame-Options:
DENY``), so no other site can frame a signed-in planner's map and lead their clicks
(clickjacking). Scripts come from the app only: its files, or inline elements carrying
this response's nonce (the page templates and the Folium map put it on theirs), no
``eval``; styles from the app (its files and its own markup); images also from the
configured basemap's tile server. Answers for a
signed-in user are ``no-store``; the app's own static files stay cacheable.

Behind a TLS proxy (``GEOGRID_PROXY_HOPS``), the forwarded client address, scheme and
host are trusted from that many proxies (Werkzeug's ProxyFix); with ``GEOGRID_TLS`` the
session cookie is ``Secure`` and browsers are told to keep to HTTPS.
"""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from geogrid import basemaps
from geogrid.config import Settings

#: Endpoints serving the app's own public files (Leaflet, its plugins, page scripts): cacheable.
_PUBLIC_FILES = {"static", "maps.vendor", "maps.basemap"}


def install(app: Flask, settings: Settings) -> None:
    """Trust the configured proxies, and set the security headers on every response."""
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                                x_host=settings.proxy_hops, x_port=settings.proxy_hops)  # fmt: skip
    app.config.update(SESSION_COOKIE_SECURE=settings.tls)

    @app.before_request
    def _nonce():
        g.csp_nonce = secrets.token_urlsafe(18)

    @app.context_processor
    def _nonce_in_templates():
        return {"csp_nonce": g.get("csp_nonce", "")}

    @app.after_request
    def _headers(response):
        nonce = g.get("csp_nonce", "")
        # Per response: the basemaps (and so the image hosts) can change while the app runs.
        response.headers["Content-Security-Policy"] = content_security_policy(settings).replace("{nonce}", nonce)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if settings.tls:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if request.endpoint not in _PUBLIC_FILES:
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response


def content_security_policy(settings: Settings) -> str:
    """The policy, with ``{nonce}`` where each response puts its own."""
    images = ["'self'", "data:", "blob:", *basemaps.origins(settings)]
    return "; ".join([
        "default-src 'none'",
        "script-src 'self' 'nonce-{nonce}'",
        # Leaflet's plugins write style attributes in the markup they make; styles cannot run code.
        "style-src 'self' 'unsafe-inline'",
        f"img-src {' '.join(images)}",
        "connect-src 'self'",
        "font-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ])  # fmt: skip
