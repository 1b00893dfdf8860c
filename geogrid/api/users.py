"""Users and their tokens: who am I, and (for admins) who else is there."""

from __future__ import annotations

from flask import Blueprint, jsonify, session

from geogrid import accounts
from geogrid.api import openapi
from geogrid.api.auth import ANY_ROLE, access
from geogrid.api.context import db, principal
from geogrid.api.params import json_body, optional, required
from geogrid.errors import Forbidden, InvalidInput
from geogrid.store.models import ROLES

bp = Blueprint("users", __name__, url_prefix="/api")

_USER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": list(ROLES)},
        "person_id": {"type": ["integer", "null"]},
    },
}
_NEW_USER = {
    "type": "object",
    "required": ["name", "role"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"},
        "role": {"type": "string", "enum": list(ROLES)},
        "password": {"type": "string", "minLength": 8},
        "person_id": {"type": "integer"},
    },
}


@bp.get("/me")
@access(*ANY_ROLE)
@openapi.doc(response=_USER)
def me():
    """The signed-in user."""
    return jsonify(principal().to_json())


@bp.get("/users")
@access("admin")
@openapi.doc(response={"type": "array", "items": _USER})
def list_users():
    """Every user (admin only)."""
    with db() as conn:
        return jsonify(accounts.list_users(conn))


@bp.post("/users")
@access("admin")
@openapi.doc(body=_NEW_USER, response=_USER, status=201)
def create_user():
    """Create a user; the answer holds their API token, shown this once."""
    body = json_body()
    with db() as conn:
        user, token = accounts.create_user(
            conn,
            required(body, "name", str),
            required(body, "role", str),
            password=optional(body, "password", str),
            person_id=optional(body, "person_id", int),
        )
    return jsonify({**user.to_json(), "token": token}), 201


_ACCOUNT = {
    "type": "object",
    "properties": {**_USER["properties"], "active": {"type": "boolean"}, "sessions": {"type": "integer"}},
}


@bp.post("/users/<name>/disable")
@access("admin")
@openapi.doc(response=_ACCOUNT)
def disable(name: str):
    """Disable a user: their sessions end at once and their tokens stop working (audited)."""
    return _set_active(name, False)


@bp.post("/users/<name>/enable")
@access("admin")
@openapi.doc(response=_ACCOUNT)
def enable(name: str):
    """Let a disabled user sign in again (audited)."""
    return _set_active(name, True)


def _set_active(name: str, active: bool):
    if name == principal().name and not active:
        raise InvalidInput("you cannot disable yourself; another admin can")
    with db() as conn:
        return jsonify(accounts.set_active(conn, name, active))


@bp.post("/users/<name>/password")
@access("admin")
@openapi.doc(
    body={"type": "object", "required": ["password"], "properties": {"password": {"type": "string", "minLength": 8}}},
    response={"type": "object", "properties": {"sessions_ended": {"type": "integer"}}},
)
def set_password(name: str):
    """Give a user a new password (audited); every session of theirs ends."""
    body = json_body()
    with db() as conn:
        ended = accounts.set_password(conn, name, required(body, "password", str))
    return jsonify({"sessions_ended": ended})


@bp.post("/me/password")
@access(*ANY_ROLE)
@openapi.doc(
    body={"type": "object", "required": ["current", "new"],
          "properties": {"current": {"type": "string"}, "new": {"type": "string", "minLength": 8}}},
    response={"type": "object", "properties": {"sessions_ended": {"type": "integer"}}},
)  # fmt: skip
def own_password():
    """Change one's own password; one's other sessions end (this one goes on)."""
    body = json_body()
    who = principal()
    with db() as conn:
        if accounts.check_password(conn, who.name, required(body, "current", str)) is None:
            raise Forbidden("the current password is wrong")
        ended = accounts.set_password(conn, who.name, required(body, "new", str), keep_session=session.get("sid"))
    return jsonify({"sessions_ended": ended})
