"""Users and their tokens: who am I, and (for admins) who else is there."""

from __future__ import annotations

from flask import Blueprint, jsonify

from geogrid import accounts
from geogrid.api import openapi
from geogrid.api.auth import ANY_ROLE, access
from geogrid.api.context import db, principal
from geogrid.api.params import json_body, optional, required
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
