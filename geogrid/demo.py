"""A tiny sample township for tests and examples: 7 grids that tile their parents, and an admin.

The full demo (`geogrid demo`, `make demo`) is :mod:`geogrid.demo_township`.

Deterministic and idempotent. The demo is served on 127.0.0.1 only, so its admin
password is fixed and printed; never use it on a shared server.
"""

from __future__ import annotations

import datetime as dt

import shapely
import sqlalchemy as sa
from shapely import MultiPolygon, Polygon, affinity
from shapely.geometry import LineString
from shapely.ops import split
from sqlalchemy.engine import Connection

from geogrid import accounts
from geogrid.grids import versions
from geogrid.store.models import Grid, User

ADMIN_NAME = "demo"
ADMIN_PASSWORD = "geogrid-demo"
#: Near 37.75N 115.25E on the North China Plain (an invented township).
_ORIGIN = (115.25, 37.75)


def township_grids() -> list[dict]:
    """The demo hierarchy: 1 township, 2 villages, 4 grids, each level tiling its parent."""
    x0, y0 = _ORIGIN
    township = Polygon([(0, 0), (0.031, -0.002), (0.036, 0.017), (0.029, 0.028), (0.004, 0.026), (-0.003, 0.012)])
    township = affinity.translate(township, x0, y0)
    # A crooked village border, like a canal, and two lanes that cut each village in two.
    villages = split(
        township,
        LineString([(x0 + 0.017, y0 - 0.01), (x0 + 0.015, y0 + 0.013), (x0 + 0.019, y0 + 0.04)]),
    ).geoms
    villages = sorted(villages, key=lambda g: g.centroid.x)
    rows = [_row("XWZ", "西王庄乡（示范）", "township", None, township)]
    for v, village in enumerate(villages, start=1):
        vcode = f"XWZ{v:03d}"
        rows.append(_row(vcode, f"第{v}村", "village", "XWZ", village))
        lane = LineString([(x0 - 0.01, y0 + 0.011 + 0.003 * v), (x0 + 0.05, y0 + 0.012)])
        cells = sorted(split(village, lane).geoms, key=lambda g: g.centroid.y)
        for c, cell in enumerate(cells, start=1):
            rows.append(_row(f"{vcode}{c:03d}", f"第{v}村 网格{c}", "grid", vcode, cell))
    return rows


#: Since when the sample's boundaries stand (so past days in tests and examples have them).
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def load(conn: Connection, *, since: dt.datetime = SINCE) -> str:
    """Insert the demo grids (valid from *since*) and admin user unless they are already there."""
    grids = township_grids()
    have = set(conn.execute(sa.select(Grid.code).where(Grid.valid_to.is_(None))).scalars())
    new = [g for g in grids if g["code"] not in have]
    for row in new:
        versions.insert(conn, row["code"], row["name"], row["level"], row["parent_code"],
                        shapely.from_wkt(row["wkt"]), {}, at=since)  # fmt: skip
    if conn.execute(sa.select(User.id).where(User.name == ADMIN_NAME)).first() is None:
        accounts.create_user(conn, ADMIN_NAME, "admin", password=ADMIN_PASSWORD)
    return f"{len(grids)} grids ({len(new)} new), admin user {ADMIN_NAME!r}"


def _row(code: str, name: str, level: str, parent: str | None, geom: Polygon) -> dict:
    multi = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
    return {"code": code, "name": name, "level": level, "parent_code": parent, "wkt": multi.wkt}
