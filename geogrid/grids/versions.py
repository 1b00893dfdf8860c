"""The one way a grid changes: lock its current version, retire it, insert the next one.

A grid's code is stable; each change of its ground, name or parent is a new row (the
next ``version``) valid from the change, and the old row gets ``valid_to``. Edits
(split, merge, reshape), generation, file imports and the demo all go through here, so
history is kept the same way everywhere and ``at=`` queries see the old ground. What
hangs on grids (duties, open incidents) is carried by the edits themselves
(:mod:`geogrid.grids.edit`), in the same transaction.

*at* backdates a change (building a township whose history starts in the past, an
import of boundaries valid since an earlier date); by default a change happens at the
transaction's ``now()``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from geogrid.errors import NotFound


@dataclasses.dataclass(frozen=True)
class GridRow:
    """The current version of a grid, locked for the edit."""

    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    version: int
    attributes: dict
    geom: BaseGeometry


_SELECT = (
    "SELECT id, code, name, level, parent_code, version, attributes, ST_AsBinary(geom) AS wkb "
    "FROM grids WHERE valid_to IS NULL"
)


def lock_current(conn: Connection, code: str) -> GridRow:
    """The current version of *code*, locked until the transaction ends; NotFound when there is none."""
    for _ in range(3):
        row = conn.execute(sa.text(f"{_SELECT} AND code = :code FOR UPDATE"), {"code": code}).first()
        if row is not None:
            return _row(row)
        # Under READ COMMITTED, a row retired by a transaction we waited for is skipped;
        # a fresh statement sees the version that replaced it.
        if not conn.execute(
            sa.text("SELECT 1 FROM grids WHERE code = :code AND valid_to IS NULL"), {"code": code}
        ).first():
            break
    raise NotFound("no grid {code}", code=code)


def children(conn: Connection, code: str) -> list[GridRow]:
    """The current children of *code*, locked, by code."""
    rows = conn.execute(sa.text(f"{_SELECT} AND parent_code = :code ORDER BY code FOR UPDATE"), {"code": code})
    return [_row(r) for r in rows]


def _row(row) -> GridRow:
    return GridRow(row.id, row.code, row.name, row.level, row.parent_code, row.version,
                   row.attributes, shapely.from_wkb(row.wkb))  # fmt: skip


def retire(conn: Connection, ids: list[int], *, at: dt.datetime | None = None) -> None:
    """End the versions *ids* (at *at*, default now)."""
    conn.execute(
        sa.text("UPDATE grids SET valid_to = coalesce(CAST(:at AS timestamptz), now()) WHERE id = ANY(:ids)"),
        {"ids": ids, "at": at},
    )


def insert(conn: Connection, code: str, name: str, level: str, parent: str | None, geom: BaseGeometry,
           attributes: dict, *, version: int = 1, at: dt.datetime | None = None) -> int:  # fmt: skip
    """Write a version of grid *code* (EPSG:4326 polygon or multipolygon) valid from *at* (default now); its id."""
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return conn.execute(
        sa.text(
            "INSERT INTO grids (code, name, level, parent_code, geom, attributes, version, valid_from) "
            "VALUES (:code, :name, :level, :parent, ST_GeomFromWKB(:wkb, 4326), "
            "CAST(:attributes AS jsonb), :version, coalesce(CAST(:at AS timestamptz), now())) RETURNING id"
        ),
        {"code": code, "name": name, "level": level, "parent": parent,
         "wkb": shapely.to_wkb(geom), "attributes": json.dumps(attributes, ensure_ascii=False),
         "version": version, "at": at},
    ).scalar_one()  # fmt: skip


def insert_from(conn: Connection, table: str, codes: list[str], level: str) -> None:
    """Write the next version of each grid of *codes* from rows of *table* (code, name, parent_code,
    geom, attributes: a staging table of ours, not user input), set-based."""
    conn.execute(
        sa.text(
            f"""
            INSERT INTO grids (code, name, level, parent_code, geom, version, attributes)
            SELECT s.code, s.name, :level, s.parent_code, s.geom,
                   coalesce((SELECT max(version) FROM grids v WHERE v.code = s.code), 0) + 1, s.attributes
              FROM {table} s
             WHERE s.code = ANY(:codes)
            """
        ),
        {"level": level, "codes": codes},
    )


def reparent(conn: Connection, child: GridRow, parent: str) -> None:
    """A new version of *child* with the same ground under a new parent."""
    _next_version(conn, child, parent=parent)


def rename(conn: Connection, code: str, name: str, *, at: dt.datetime | None = None) -> int:
    """A new version of grid *code* with a new name (same ground, same parent); the new version number."""
    grid = lock_current(conn, code)
    if name == grid.name:
        return grid.version
    _next_version(conn, grid, name=name, at=at)
    return grid.version + 1


def _next_version(conn: Connection, grid: GridRow, *, at: dt.datetime | None = None, **changes) -> None:
    retire(conn, [grid.id], at=at)
    conn.execute(
        sa.text(
            "INSERT INTO grids (code, name, level, parent_code, geom, attributes, version, valid_from) "
            "SELECT code, coalesce(:name, name), level, CASE WHEN :reparent THEN :parent ELSE parent_code END, "
            "geom, attributes, version + 1, coalesce(CAST(:at AS timestamptz), now()) FROM grids WHERE id = :id"
        ),
        {"id": grid.id, "name": changes.get("name"), "reparent": "parent" in changes,
         "parent": changes.get("parent"), "at": at},
    )  # fmt: skip
