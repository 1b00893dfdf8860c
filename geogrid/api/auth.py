"""Authentication (bearer tokens for the API, a session for pages) and role checks.

Every view declares who may call it with :func:`access`; :func:`install` refuses to
build an app with an undeclared view, and checks the declaration before each request:
anonymous gets 401 (pages: a redirect to the login form), a wrong role 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from urllib.parse import quote

from flask import Flask, g, redirect, request, session

from geogrid import accounts, sessions
from geogrid.api.context import db, state
from geogrid.errors import Forbidden, Unauthorized
from geogrid.store.models import ROLES

#: Anyone, signed in or not.
PUBLIC = "public"
#: Every signed-in role.
ANY_ROLE = frozenset(ROLES)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def access(*roles: str) -> Callable:
    """Declare who may call a view: role names, ``*ANY_ROLE`` or ``PUBLIC``."""
    unknown = set(roles) - set(ROLES) - {PUBLIC}
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def mark(view: Callable) -> Callable:
        view.geogrid_access = frozenset(roles)
        return view

    return mark


def csrf_token() -> str:
    """The session's token that page scripts send back in ``X-CSRF-Token``."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def csrf_ok(sent: str | None) -> bool:
    """True when *sent* is this session's CSRF token (never for an empty one)."""
    expected = session.get("csrf", "")
    return bool(sent) and bool(expected) and hmac.compare_digest(sent, expected)


def login(conn, principal: accounts.Principal) -> None:
    """Start a page session for *principal*: a fresh cookie (no fixation) naming a new server-side session."""
    session.clear()
    session["sid"] = sessions.start(conn, principal, request.remote_addr)
    session.permanent = True
    csrf_token()


def logout(conn) -> None:
    """End this page session, on the server (a copy of the cookie is refused from now on) and in the cookie."""
    if session.get("sid"):
        sessions.end(conn, session["sid"], request.remote_addr)
    session.clear()


def install(app: Flask) -> None:
    """Check every view has an access declaration, and enforce it on every request."""
    undeclared = [
        name for name, view in app.view_functions.items() if name != "static" and not hasattr(view, "geogrid_access")
    ]
    if undeclared:
        raise RuntimeError(f"views without an access declaration: {undeclared}")

    @app.before_request
    def _authenticate():
        view = app.view_functions.get(request.endpoint or "")
        allowed = getattr(view, "geogrid_access", {PUBLIC}) if view else {PUBLIC}
        g.principal = _identify()
        if PUBLIC in allowed:
            return None
        is_api = request.path.startswith("/api/")
        if g.principal is None:
            if not is_api:
                return redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
            raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
        if g.principal.role not in allowed:
            raise Forbidden(
                "role {role!r} may not {method} {path}", role=g.principal.role, method=request.method, path=request.path
            )
        return None


def _identify() -> accounts.Principal | None:
    """The caller from a bearer token, else from the page session, else None."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        with db() as conn:
            who = accounts.principal_for_token(conn, token.strip())
        if who is None:
            raise Unauthorized("the token is unknown or revoked")
        return who
    token = session.get("sid")
    if not token:
        return None
    if request.method in _UNSAFE and request.path.startswith("/api/"):
        # A cookie rides along on cross-site requests; the CSRF header does not.
        if not csrf_ok(request.headers.get("X-CSRF-Token")):
            raise Forbidden("missing or wrong X-CSRF-Token header for a session request")
    with db() as conn:
        who = sessions.holder(conn, state().settings, token)
    if who is None:  # signed out, ended by a new password or a disabled user, too old or idle too long
        session.clear()
    return who
