"""Grid codes: a child's code is its parent's code plus a fixed-width sequence number.

``130102001`` -> ``130102001003``. New grids (split pieces, merges, generated cells)
take the next free numbers under their parent, counting every code ever used there,
retired ones included, so a code never names different ground; several new grids are
numbered west to east, north to south (:func:`reading_order`).

A center may follow a standard scheme (``GEOGRID_CODE_SCHEME``): the codes are digits,
the top level's is the 6-digit administrative division code and the street/township's
3 digits, and each level below adds its segment:

- ``beijing`` (DB11 unit grids, 15 digits): 6 + 3 street/township + 3 community/village
  + 3 unit-grid sequence;
- ``cjt213`` (CJ/T 213, 14 digits): 6 + 3 + 3 + 2.

``plain`` (the default) adds ``GEOGRID_CODE_WIDTH`` digits at every level to any code.
"""

from __future__ import annotations

import re
import statistics

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from geogrid import inputs
from geogrid.config import CODE_SCHEMES, DIVISION_DIGITS, Settings
from geogrid.errors import Conflict, InvalidInput

#: A well-formed code (the one check, shared with the CLI and the API).
check_code = inputs.code


def scheme_lengths(settings: Settings) -> list[int] | None:
    """The code length of each level under the configured scheme, top down (None: plain codes)."""
    segments = CODE_SCHEMES[settings.code_scheme]
    if segments is None:
        return None
    return [DIVISION_DIGITS + sum(segments[: n + 1]) for n in range(len(segments))]


def child_width(settings: Settings, parent_code: str) -> int:
    """How many digits a child of *parent_code* adds (its scheme's segment, or ``GEOGRID_CODE_WIDTH``)."""
    lengths = scheme_lengths(settings)
    if lengths is None:
        return settings.code_width
    if not parent_code.isdigit() or len(parent_code) not in lengths[:-1]:
        raise InvalidInput(
            "grid {parent_code} cannot have children under the {scheme} code scheme: a parent's code is "
            "{lengths} digits",
            parent_code=parent_code, scheme=settings.code_scheme, lengths=" or ".join(map(str, lengths[:-1])),
        )  # fmt: skip
    return CODE_SCHEMES[settings.code_scheme][lengths.index(len(parent_code)) + 1]


def check_scheme(settings: Settings, code: str, level: str, parent_code: str | None) -> str:
    """*code* if it fits the scheme at *level* under *parent_code*; InvalidInput saying what fits otherwise."""
    lengths = scheme_lengths(settings)
    if lengths is None:
        return code
    depth = settings.levels.index(level)
    if not code.isdigit() or len(code) != lengths[depth] or (parent_code and not code.startswith(parent_code)):
        fields = {"code": code, "scheme": settings.code_scheme, "level": level, "length": lengths[depth]}
        if parent_code:
            raise InvalidInput(
                "code {code} does not fit the {scheme} scheme: a {level} code is {length} digits, "
                "starting with its parent's {parent_code}", parent_code=parent_code, **fields,
            )  # fmt: skip
        raise InvalidInput("code {code} does not fit the {scheme} scheme: a {level} code is {length} digits", **fields)
    return code


def reading_order(geoms: list[BaseGeometry]) -> list[int]:
    """The indexes of *geoms* west to east, north to south: rows of centroids a typical height apart."""
    if len(geoms) < 2:
        return list(range(len(geoms)))
    points = [g.centroid for g in geoms]
    band = statistics.median(g.bounds[3] - g.bounds[1] for g in geoms) / 2
    rows: list[list[int]] = []
    top = None
    for i in sorted(range(len(geoms)), key=lambda i: (-points[i].y, points[i].x)):
        if top is None or points[i].y < top - band:
            rows.append([])
            top = points[i].y
        rows[-1].append(i)
    return [i for row in rows for i in sorted(row, key=lambda i: points[i].x)]


def next_codes(conn: Connection, settings: Settings, parent_code: str, count: int) -> list[str]:
    """The next *count* free codes under *parent_code* (never reusing a retired one)."""
    width = child_width(settings, parent_code)
    pattern = f"^{re.escape(parent_code)}[0-9]{{{width}}}$"
    used = conn.execute(
        sa.text("SELECT max(right(code, :width)::integer) FROM grids WHERE code ~ :pattern"),
        {"width": width, "pattern": pattern},
    ).scalar()
    start = (used or 0) + 1
    if start + count - 1 >= 10**width:
        raise Conflict(
            "grid {parent_code} has no free {width}-digit child codes left (needs {count}, next is {start})",
            parent_code=parent_code,
            width=width,
            count=count,
            start=start,
        )
    return [check_code(f"{parent_code}{n:0{width}d}") for n in range(start, start + count)]
