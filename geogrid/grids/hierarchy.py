"""The grid hierarchy, walked in one place: validity at a moment, subtrees, ancestors, leaves.

A grid's parent is named by code (``parent_code``), so a walk must say *when*: the
current grids (``at`` None) or those valid at a moment (a past day's report uses that
day's boundaries). The walks themselves are SQL functions (migration 0008) that stop at
:data:`MAX_DEPTH`; this module holds the SQL fragments the set statements use and the
Python calls, so no other module writes its own recursive walk or leaf test.
"""

from __future__ import annotations

import datetime as dt
import difflib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import inputs
from geogrid.errors import NotFound

#: How deep any walk goes (the SQL functions' cap): deeper is a cycle written by hand.
MAX_DEPTH = 32


def valid_at(alias: str = "g", param: str | None = "at") -> str:
    """SQL: grid *alias* is valid at ``:param`` (NULL: it is current). ``valid_from <= at < valid_to``.

    With *param* None: the current version, as a plain ``valid_to IS NULL`` (which the
    partial indexes on current grids serve).
    """
    if param is None:
        return f"{alias}.valid_to IS NULL"
    at = f"CAST(:{param} AS timestamptz)"
    return (
        f"(CASE WHEN {at} IS NULL THEN {alias}.valid_to IS NULL ELSE {alias}.valid_from <= {at} "
        f"AND ({alias}.valid_to IS NULL OR {alias}.valid_to > {at}) END)"
    )


def is_leaf(alias: str = "g", param: str | None = "at") -> str:
    """SQL: grid *alias* has no child valid at ``:param`` (None: no current child): a unit cell."""
    return f"NOT EXISTS (SELECT 1 FROM grids c WHERE c.parent_code = {alias}.code AND {valid_at('c', param)})"


def parents_sql(param: str | None = None) -> str:
    """SQL query: the ids of the grids that have a child valid at ``:param`` (None: a current child).

    The leaf test as a set, for statements that look at many grids at once: one join, not
    an anti-join per grid (a correlated NOT EXISTS over 100,000 grids hit the statement
    timeout in ``bench/assign_bench.py``).
    """
    return (
        f"SELECT DISTINCT p.id FROM grids p JOIN grids c ON c.parent_code = p.code "
        f"WHERE {valid_at('p', param)} AND {valid_at('c', param)}"
    )


def subtree_sql(code_param: str = "grid", at_param: str = "at") -> str:
    """SQL query: the codes at and below grid ``:code_param`` as valid at ``:at_param``."""
    return f"SELECT geogrid_subtree(ARRAY[CAST(:{code_param} AS text)], CAST(:{at_param} AS timestamptz))"


def in_scope(alias: str = "g", grid_param: str = "grid", at_param: str = "at") -> str:
    """SQL: grid *alias* is valid at ``:at_param`` and lies at or below ``:grid_param`` (NULL: anywhere)."""
    return (
        f"{valid_at(alias, at_param)} AND (CAST(:{grid_param} AS text) IS NULL "
        f"OR {alias}.code IN ({subtree_sql(grid_param, at_param)}))"
    )


def subtree(conn: Connection, codes: list[str], at: dt.datetime | None = None) -> set[str]:
    """Codes of the grids at and below *codes*, current or as valid at *at*."""
    rows = conn.execute(sa.text("SELECT geogrid_subtree(CAST(:codes AS text[]), :at)"), {"codes": codes, "at": at})
    return {code for (code,) in rows}


def ancestors(conn: Connection, grid_id: int | None, at: dt.datetime | None = None) -> list[dict]:
    """A grid version and the grids above it (as valid at *at*, else current): id, code, name, level."""
    if grid_id is None:
        return []
    rows = conn.execute(
        sa.text("SELECT id, code, name, level FROM geogrid_ancestors(:id, :at) ORDER BY depth"),
        {"id": grid_id, "at": at},
    ).mappings()
    return [dict(r) for r in rows]


def require(conn: Connection, code: str, at: dt.datetime | None = None) -> int:
    """The id of grid *code* (current, or valid at *at*); NotFound saying so, with a near code when there is one."""
    inputs.code(code)
    found = conn.execute(
        sa.text(f"SELECT g.id FROM grids g WHERE g.code = :code AND {valid_at()}"), {"code": code, "at": at}
    ).scalar()
    if found is not None:
        return found
    near = conn.execute(
        sa.text(f"SELECT g.code FROM grids g WHERE upper(g.code) = upper(:code) AND {valid_at()}"),
        {"code": code, "at": at},
    ).scalar()
    if near is None:
        codes = conn.execute(
            sa.text(f"SELECT g.code FROM grids g WHERE {valid_at()} AND g.code LIKE :prefix LIMIT 2000"),
            {"at": at, "prefix": code[:3].upper() + "%"},
        ).scalars()
        near = next(iter(difflib.get_close_matches(code.upper(), list(codes), n=1, cutoff=0.8)), None)
    day = at.date().isoformat() if at is not None else None
    if near and day:
        raise NotFound("no grid {code} on {day} (did you mean {near}?)", code=code, day=day, near=near)
    if near:
        raise NotFound("no grid {code} (did you mean {near}?)", code=code, near=near)
    if day:
        raise NotFound("no grid {code} on {day}", code=code, day=day)
    raise NotFound("no grid {code}", code=code)


def first_boundaries(conn: Connection) -> dt.datetime | None:
    """When the earliest boundaries became valid (None: there are no grids)."""
    return conn.execute(sa.text("SELECT min(valid_from) FROM grids")).scalar()
