"""The audit trail, for admins: who changed which records when."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid import inputs
from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db, state
from geogrid.api.params import query_int
from geogrid.audit import AUDITED_TABLES, audit_entries

bp = Blueprint("audit", __name__, url_prefix="/api")

_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "table": {"type": "string", "enum": list(AUDITED_TABLES)},
        "operation": {"type": "string", "enum": ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]},
        "row_count": {"type": ["integer", "null"]},
        "keys": {"type": "array", "items": {"type": "string"}},
    },
}


@bp.get("/audit")
@access("admin")
@openapi.doc(
    query={
        "from": {"type": "string", "description": "ISO date or date-time"},
        "to": {"type": "string", "description": "ISO date or date-time (exclusive)"},
        "actor": {"type": "string", "description": "a user name, cli:<os user> or db:<role>"},
        "table": {"type": "string", "enum": list(AUDITED_TABLES)},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        "offset": {"type": "integer", "minimum": 0},
    },
    response={"type": "array", "items": _ENTRY},
)
def index():
    """The audit trail, newest first: one entry per statement and table (admin only)."""
    args = request.args
    zone = state().settings.timezone
    with db() as conn:
        return jsonify(
            audit_entries(
                conn, since=inputs.since(args.get("from"), zone), until=inputs.until(args.get("to"), zone),
                actor=args.get("actor") or None, table=args.get("table") or None,
                limit=query_int(args, "limit", 100), offset=query_int(args, "offset", 0),
            )
        )  # fmt: skip
