"""The HTML side: the login form (throttled), logout, the start page, one's own password, the admin's users page."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, g, redirect, render_template, request, session
from flask_babel import gettext as _

from geogrid import accounts, sessions
from geogrid.api import auth, i18n
from geogrid.api.auth import ANY_ROLE, PUBLIC, access, csrf_ok, csrf_token
from geogrid.api.context import db, principal, state
from geogrid.errors import GeogridError

bp = Blueprint("pages", __name__)


@bp.get("/")
@access(*ANY_ROLE)
def index():
    """Start page: who is signed in and where to go."""
    return render_template("index.html", user=principal(), csrf=csrf_token(), message=request.args.get("m"))


@bp.route("/login", methods=["GET", "POST"])
@access(PUBLIC)
def login_page():
    """Sign in with a user name and password; starts a session for the map pages.

    After too many failures for the name or from the address, the answer is 429 with the
    time to wait, whatever the password and whether or not the name exists.
    """
    next_url = _safe_next(request.values.get("next", "/"))
    error, status, headers, who = None, 200, {}, None
    if request.method == "POST":
        name, address = request.form.get("name", ""), request.remote_addr
        if not csrf_ok(request.form.get("csrf")):
            error, status = _("The form expired; please sign in again."), 401
        else:
            with db() as conn:
                wait = sessions.wait_seconds(conn, state().settings, name, address)
                if wait:
                    sessions.record(conn, name, address, "locked")
                else:
                    who = accounts.check_password(conn, name, request.form.get("password", ""))
                    if who is not None:
                        auth.login(conn, who)
                    else:
                        sessions.record(conn, name, address, "failed")
            if wait:
                minutes = max(1, round(wait / 60))
                error, status = _("Too many failed sign-ins: try again in %(minutes)s minute(s).", minutes=minutes), 429
                headers["Retry-After"] = str(wait)
            elif who is not None:
                # Grid workers start on their own day's page, not on the planner's map.
                return redirect("/worker" if who.role == "worker" and next_url == "/" else next_url)
            else:
                error, status = _("Wrong user name or password."), 401
    return render_template("login.html", error=error, next=next_url, csrf=csrf_token()), status, headers


@bp.post("/logout")
@access(*ANY_ROLE)
def logout():
    """End the page session (on the server too: a copy of the cookie no longer works)."""
    if csrf_ok(request.form.get("csrf")):
        with db() as conn:
            auth.logout(conn)
    return redirect("/login")


@bp.post("/password")
@access(*ANY_ROLE)
def own_password():
    """Change one's own password (the current one first); one's other sessions end."""
    if not csrf_ok(request.form.get("csrf")):
        return redirect("/?m=expired")
    who = principal()
    with db() as conn:
        if accounts.check_password(conn, who.name, request.form.get("current", "")) is None:
            return redirect("/?m=wrong-password")
        try:
            accounts.set_password(conn, who.name, request.form.get("new", ""), keep_session=session.get("sid"))
        except GeogridError:
            return redirect("/?m=too-short")
    return redirect("/?m=password-changed")


@bp.get("/admin/users")
@access("admin")
def users_page():
    """Admins: every user, disable or enable them, set a password (each change audited, sessions ended)."""
    with db() as conn:
        users = accounts.list_users(conn)
    return render_template("users.html", user=principal(), users=users, csrf=csrf_token(),
                           message=request.args.get("m"), name=request.args.get("name"),
                           detail=request.args.get("detail"))  # fmt: skip


@bp.post("/admin/users/<name>/<action>")
@access("admin")
def user_action(name: str, action: str):
    """The users page's buttons: disable, enable, or set a password (form field ``password``)."""
    if not csrf_ok(request.form.get("csrf")):
        return redirect("/admin/users?m=expired")
    with db() as conn:
        try:
            if action in ("disable", "enable"):
                accounts.set_active(conn, name, action == "enable")
            elif action == "password":
                accounts.set_password(conn, name, request.form.get("password", ""))
            else:
                return redirect("/admin/users?m=unknown-action")
        except GeogridError as err:
            detail = i18n.translate_error(err.template, err.extra)
            return redirect("/admin/users?" + urlencode({"m": "error", "detail": detail}))
    return redirect("/admin/users?" + urlencode({"m": action, "name": name}))


@bp.post("/language")
@access(PUBLIC)
def choose_language():
    """The language switch in every page's header: the signed-in user's setting, and a cookie for the sign-in page."""
    chosen = request.form.get("lang")
    response = redirect(_safe_next(request.form.get("next", "/")))
    if chosen not in i18n.LANGUAGES or not csrf_ok(request.form.get("csrf")):
        return response
    who = g.get("principal")
    if who is not None:
        with db() as conn:
            accounts.set_language(conn, who.id, chosen)
    response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=state().settings.tls)  # fmt: skip
    return response


def _safe_next(url: str) -> str:
    """Only same-site paths: ``next`` must not send a user to another host."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url
