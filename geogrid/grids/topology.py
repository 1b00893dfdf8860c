"""Check that every level tiles its parent: gaps, sibling overlaps, children outside.

Computed in PostGIS in one statement (``topology.sql``); areas in m² in a projected
CRS, with edges densified first so slivers from shared vertices measure ~0.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.grids import hierarchy

_SQL = resources.files("geogrid.grids").joinpath("topology.sql").read_text()


@dataclasses.dataclass(frozen=True)
class TopologyProblem:
    """One gap, overlap or outside part, with its area (m²) and GeoJSON geometry (EPSG:4326)."""

    kind: str
    parent_code: str
    codes: tuple[str, ...]
    area_m2: float
    geometry: dict

    def describe(self) -> str:
        """One readable line."""
        what = {
            "gap": f"gap in {self.parent_code} not covered by any child",
            "overlap": f"overlap between {' and '.join(self.codes)}",
            "outside": f"part of {', '.join(self.codes)} outside its parent {self.parent_code}",
        }[self.kind]
        return f"{what}: {self.area_m2:,.1f} m²"

    def to_json(self) -> dict:
        """GeoJSON Feature."""
        return {
            "type": "Feature",
            "geometry": self.geometry,
            "properties": {
                "kind": self.kind, "parent_code": self.parent_code,
                "codes": list(self.codes), "area_m2": round(self.area_m2, 2),
            },
        }  # fmt: skip


def check_topology(
    conn: Connection,
    settings: Settings,
    code: str | None = None,
    *,
    deep: bool = True,
    tolerance_m2: float | None = None,
) -> list[TopologyProblem]:
    """Tiling problems under *code* (and, when *deep*, every grid below it), or everywhere.

    Problems smaller than *tolerance_m2* (default: the ``sliver_m2`` setting) are slivers
    and left out.
    """
    if code is not None:
        hierarchy.require(conn, code)
    rows = conn.execute(
        sa.text(_SQL),
        {
            "code": code, "deep": deep, "srid": settings.metric_srid,
            "tolerance_m2": settings.sliver_m2 if tolerance_m2 is None else tolerance_m2,
        },
    )  # fmt: skip
    return [TopologyProblem(r.kind, r.parent_code, tuple(r.codes), r.area_m2, json.loads(r.geometry)) for r in rows]
