"""The roster over HTTP: people and their duties on grids (admins and supervisors keep it)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid import people
from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db
from geogrid.api.params import json_body, optional, required
from geogrid.store.models import DUTIES

bp = Blueprint("people", __name__, url_prefix="/api")

#: Who reads the roster (dispatchers too), and who changes it.
READERS = ("admin", "supervisor", "operator")
KEEPERS = ("admin", "supervisor")

_DUTY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "grid_code": {"type": "string"},
        "duty": {"type": "string", "enum": list(DUTIES)},
        "department": {"type": ["string", "null"]},
        "since": {"type": "string", "format": "date-time"},
    },
}
_PERSON = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "phone": {"type": ["string", "null"]},
        "staff_no": {"type": ["string", "null"]},
        "duties": {"type": "array", "items": _DUTY},
    },
}


@bp.get("/people")
@access(*READERS)
@openapi.doc(
    query={"grid": {"type": "string", "description": "only people with a duty on this grid or below it"}},
    response={"type": "array", "items": _PERSON},
)
def index():
    """Everyone, or the people of a grid, with their current duties."""
    with db() as conn:
        return jsonify(people.list_people(conn, grid=request.args.get("grid") or None))


@bp.post("/people")
@access(*KEEPERS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "phone": {"type": "string"}, "staff_no": {"type": "string"}},
    },
    response=_PERSON,
    status=201,
)
def create():
    """Register a person."""
    body = json_body()
    with db() as conn:
        made = people.add_person(conn, required(body, "name", str), phone=optional(body, "phone", str),
                                 staff_no=optional(body, "staff_no", str))  # fmt: skip
    return jsonify(made), 201


@bp.get("/people/<int:person_id>")
@access(*READERS)
@openapi.doc(response=_PERSON)
def show(person_id: int):
    """One person with their current duties."""
    with db() as conn:
        return jsonify(people.person(conn, person_id))


@bp.post("/people/<int:person_id>/duties")
@access(*KEEPERS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["grid_code", "duty"],
        "properties": {
            "grid_code": {"type": "string"},
            "duty": {"type": "string", "enum": list(DUTIES)},
            "department": {"type": "string"},
        },
    },
    response=_DUTY,
    status=201,
)
def add_duty(person_id: int):
    """Give the person a duty on a current grid (201), or the same one they hold already (200)."""
    body = json_body()
    with db() as conn:
        duty, new = people.assign_duty(conn, person_id, required(body, "grid_code", str), required(body, "duty", str),
                                       department=optional(body, "department", str))  # fmt: skip
    return jsonify(duty), 201 if new else 200


@bp.post("/people/<int:person_id>/duties/<int:duty_id>/end")
@access(*KEEPERS)
@openapi.doc(response=_DUTY)
def end_duty(person_id: int, duty_id: int):
    """End one of the person's duties (it stays in the history)."""
    with db() as conn:
        return jsonify(people.end_duty_by_id(conn, person_id, duty_id))
