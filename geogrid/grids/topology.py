"""Check that every level tiles its parent: gaps, sibling overlaps, children outside.

Computed in PostGIS in one statement (``topology.sql``); areas in m² in a projected
CRS, with edges densified first so slivers from shared vertices measure ~0. A tolerance
is a distance (``GEOGRID_TOLERANCE_M``): a gap or overlap narrower than it everywhere
is a sliver however long it is (boundaries drawn in a projected CRS and reprojected to
lon/lat bend kilometre-long edges by centimetres); each problem says how wide it is.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
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
    #: Its width: the diameter of the largest circle that fits in it (m).
    width_m: float = 0.0

    def describe(self) -> str:
        """One readable line."""
        what = {
            "gap": f"gap in {self.parent_code} not covered by any child",
            "overlap": f"overlap between {' and '.join(self.codes)}",
            "outside": f"part of {', '.join(self.codes)} outside its parent {self.parent_code}",
        }[self.kind]
        return f"{what}: {self.area_m2:,.1f} m², {_distance(self.width_m)} wide"

    def to_json(self) -> dict:
        """GeoJSON Feature."""
        return {
            "type": "Feature",
            "geometry": self.geometry,
            "properties": {
                "kind": self.kind, "parent_code": self.parent_code,
                "codes": list(self.codes), "area_m2": round(self.area_m2, 2), "width_m": round(self.width_m, 3),
            },
        }  # fmt: skip


def check_topology(
    conn: Connection,
    settings: Settings,
    code: str | None = None,
    *,
    deep: bool = True,
    tolerance_m: float | None = None,
) -> list[TopologyProblem]:
    """Tiling problems under *code* (and, when *deep*, every grid below it), or everywhere.

    Problems narrower everywhere than *tolerance_m* metres (default: the ``tolerance_m``
    setting) are slivers and left out, however long; the others carry their width.
    """
    if code is not None:
        hierarchy.require(conn, code)
    rows = conn.execute(
        sa.text(_SQL),
        {
            "code": code, "deep": deep, "srid": settings.metric_srid,
            "tolerance_m": settings.tolerance_m if tolerance_m is None else tolerance_m,
        },
    )  # fmt: skip
    return [TopologyProblem(r.kind, r.parent_code, tuple(r.codes), r.area_m2, json.loads(r.geometry),
                            width_m(shapely.from_wkb(r.metric))) for r in rows]  # fmt: skip


def width_m(metric: BaseGeometry) -> float:
    """The diameter (m) of the largest circle inside *metric* (a polygon in a projected CRS), to 1 cm."""
    if metric.is_empty:
        return 0.0
    return 2 * shapely.maximum_inscribed_circle(metric, tolerance=0.005).length


def _distance(metres: float) -> str:
    return f"{metres * 100:.0f} cm" if metres < 1 else f"{metres:,.1f} m"
