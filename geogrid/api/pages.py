"""The HTML side: the login form, logout, and the start page for signed-in users."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session

from geogrid import accounts
from geogrid.api.auth import ANY_ROLE, PUBLIC, access, csrf_ok, csrf_token, login
from geogrid.api.context import db, principal

bp = Blueprint("pages", __name__)


@bp.get("/")
@access(*ANY_ROLE)
def index():
    """Start page: who is signed in and where to go."""
    return render_template("index.html", user=principal(), csrf=csrf_token())


@bp.route("/login", methods=["GET", "POST"])
@access(PUBLIC)
def login_page():
    """Sign in with a user name and password; starts a session for the map pages."""
    next_url = _safe_next(request.values.get("next", "/"))
    error = None
    if request.method == "POST":
        if not csrf_ok(request.form.get("csrf")):
            error = "The form expired; please sign in again."
        else:
            with db() as conn:
                who = accounts.check_password(conn, request.form.get("name", ""), request.form.get("password", ""))
            if who is not None:
                login(who)
                return redirect(next_url)
            error = "Wrong user name or password."
    status = 401 if error else 200
    return render_template("login.html", error=error, next=next_url, csrf=csrf_token()), status


@bp.post("/logout")
@access(*ANY_ROLE)
def logout():
    """End the page session."""
    if csrf_ok(request.form.get("csrf")):
        session.clear()
    return redirect("/login")


def _safe_next(url: str) -> str:
    """Only same-site paths: ``next`` must not send a user to another host."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url
