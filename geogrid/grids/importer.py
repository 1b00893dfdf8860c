"""Import grid boundaries from a file: one transaction, idempotent, versioned.

Features are staged in a temporary table and checked there by PostGIS
(``ST_IsValidDetail``), parents are found by field or by containment in one
statement, and only what changed is written: a changed feature becomes a new
version of its grid and the old version gets ``valid_to``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections import defaultdict

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import InvalidInput
from geogrid.grids import versions
from geogrid.grids.codes import check_code, check_scheme, next_codes, reading_order


@dataclasses.dataclass
class ImportReport:
    """What an import did, grid code by grid code."""

    created: list[str] = dataclasses.field(default_factory=list)
    changed: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    repaired: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    #: Features whose edges were snapped onto their parent's boundary (--snap-to-parent).
    snapped: int = 0
    #: Open incidents now in another cell.
    incidents_moved: int = 0
    #: Changed grids: how much ground changed hands (m², the old and new shapes' symmetric difference).
    moved_m2: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The tiling check of the result under the parents of what was imported (one readable line each), and as
    #: GeoJSON.
    problems: list[str] = dataclasses.field(default_factory=list)
    problem_features: list[dict] = dataclasses.field(default_factory=list)
    #: Features left out with the reason (``skip_refused``): {"feature", "code", "reason"}.
    refused: list[dict] = dataclasses.field(default_factory=list)
    #: A dry run: nothing was written; ``preview`` holds the new and changed grids' shapes (GeoJSON).
    dry_run: bool = False
    preview: dict | None = None

    def summary(self) -> str:
        """One line for the CLI."""
        snapped = f", {self.snapped} snapped to their parent's edge" if self.snapped else ""
        tiling = f"; the tiling check finds {len(self.problems)} problem(s)" if self.problems else "; still tiles"
        return (
            f"{'dry run, nothing written: would have ' if self.dry_run else ''}"
            f"{len(self.created)} created, {len(self.changed)} changed (new version), "
            f"{len(self.unchanged)} unchanged, {len(self.repaired)} repaired{snapped}"
            f"{f', {len(self.refused)} refused' if self.refused else ''}; "
            f"{self.incidents_moved} open incident(s) moved to another cell{tiling}"
        )

    def to_json(self) -> dict:
        """Plain dict for the API."""
        return dataclasses.asdict(self)


def import_grids(
    conn: Connection,
    frame: gpd.GeoDataFrame,
    *,
    level: str,
    settings: Settings,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    parent_code: str | None = None,
    make_valid: bool = False,
    snap_to_parent: bool = False,
    actor: str = "system",
    dry_run: bool = False,
    skip_refused: bool = False,
) -> ImportReport:
    """Import the (EPSG:4326) boundaries in *frame* as grids of *level*.

    Codes come from *code_field*, or else are made from the parent's code. Parents
    come from *parent_field*, else *parent_code*, else the current grid of the level
    above that holds most of the feature's area (measured in metres). Invalid
    geometries are refused with feature, reason and location unless *make_valid*.
    With *snap_to_parent*, vertices within ``tolerance_m`` of the parent's boundary are
    moved onto it (and the parent's vertices on an edge put into it), so a child's edge
    lies exactly on its parent's and a point on it has one answer. Open incidents of
    changed grids, and of grids that gained children, are assigned again.
    Runs inside the caller's transaction; raises before writing anything on bad input.
    The report says the ground each changed grid moved and what the tiling check finds
    under the grids' parents afterwards. A *dry_run* does all of it and writes nothing
    (MapIt's importers work the same way), with the new and changed shapes for a preview.
    With *skip_refused*, a feature with an invalid shape (not repaired) or no parent is
    left out with its reason (``refused``) and the others imported; else the file is
    refused whole.
    """
    if level not in settings.levels:
        raise InvalidInput(
            "unknown level {level!r}; levels are {levels}", level=level, levels=", ".join(settings.levels)
        )
    depth = settings.levels.index(level)
    above = settings.levels[depth - 1] if depth else None
    for field in (code_field, name_field, parent_field):
        if field is not None and field not in frame.columns:
            columns = ", ".join(c for c in frame.columns if c not in ("geometry", "feature"))
            raise InvalidInput(
                "the file has no field {field!r}; its fields are {columns}", field=field, columns=columns
            )
    if parent_field and parent_code:
        raise InvalidInput("give either --parent-field or --parent, not both")
    if above is None and (parent_field or parent_code):
        raise InvalidInput("{level!r} is the top level: its grids have no parent", level=level)

    report = ImportReport(dry_run=dry_run)
    with conn.begin_nested() as savepoint:
        stage = _stage(conn, frame, code_field, name_field, parent_field, parent_code)
        try:
            _check_validity(conn, stage, make_valid, report, skip_refused)
            _resolve_parents(conn, stage, above, settings, report, by_containment=not (parent_field or parent_code),
                             skip_refused=skip_refused)  # fmt: skip
            if skip_refused and not conn.execute(sa.text(f"SELECT count(*) FROM {stage}")).scalar_one():
                raise InvalidInput("every feature was refused: {reasons}",
                                   reasons="; ".join(r["reason"] for r in report.refused[:5]))  # fmt: skip
            if snap_to_parent and above is not None:
                _snap_to_parents(conn, stage, settings.tolerance_m, report)
            _check_scheme(conn, stage, level, settings)
            _assign_missing_codes(conn, stage, level, settings)
            _write(conn, stage, level, report, settings, actor)
            _look_at_result(conn, stage, report, settings)
        finally:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {stage}"))
        if dry_run:
            savepoint.rollback()
    return report


def _look_at_result(conn, stage: str, report: ImportReport, settings: Settings) -> None:
    """The ground each changed grid moved, the tiling check under the imported grids' parents, and (dry run) the
    new and changed shapes."""
    from geogrid.grids.topology import check_topology

    touched = report.created + report.changed
    if report.changed:
        rows = conn.execute(
            sa.text(
                """
                SELECT n.code, geogrid_area_m2(ST_SymDifference(o.geom, n.geom),
                                               coalesce(CAST(:srid AS integer), geogrid_utm_srid(n.geom))) AS moved
                  FROM grids n
                  JOIN LATERAL (SELECT geom FROM grids o WHERE o.code = n.code AND o.valid_to IS NOT NULL
                                 ORDER BY o.version DESC LIMIT 1) o ON true
                 WHERE n.valid_to IS NULL AND n.code = ANY(:codes)
                """
            ),
            {"codes": report.changed, "srid": settings.metric_srid},
        ).all()
        report.moved_m2 = {code: round(float(moved or 0), 1) for code, moved in rows}
    parents = conn.execute(
        sa.text("SELECT DISTINCT coalesce(parent_code, code) FROM grids WHERE valid_to IS NULL AND code = ANY(:c)"),
        {"c": touched},
    ).scalars().all()  # fmt: skip
    found = [p for parent in sorted(parents) for p in check_topology(conn, settings, parent, deep=False)]
    report.problems = [p.describe() for p in found]
    report.problem_features = [p.to_json() for p in found]
    if report.dry_run:
        rows = conn.execute(
            sa.text("SELECT code, name, ST_AsGeoJSON(geom, 7) FROM grids WHERE valid_to IS NULL AND code = ANY(:c) "
                    "ORDER BY code"),
            {"c": touched},
        ).all()  # fmt: skip
        report.preview = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": json.loads(geometry),
             "properties": {"code": code, "name": name, "status": "new" if code in report.created else "changed",
                            "moved_m2": report.moved_m2.get(code)}}
            for code, name, geometry in rows]}  # fmt: skip


def _stage(conn, frame, code_field, name_field, parent_field, parent_code) -> str:
    """Load the features into a temporary table; returns its name."""
    stage = f"grid_import_{uuid.uuid4().hex[:12]}"
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {stage} (feature integer PRIMARY KEY, code text, name text, "
            "parent_code text, attributes jsonb, geom geometry(Geometry, 4326))"
        )
    )
    extra = [c for c in frame.columns if c not in ("geometry", "feature")]
    rows, seen = [], {}
    for record, geom in zip(frame[["feature", *extra]].to_dict("records"), frame.geometry, strict=True):
        code = _text(record.get(code_field)) if code_field else None
        if code is not None:
            check_code(code)
            if code in seen:
                raise InvalidInput(
                    "features {seen} and {feature} share code {code}",
                    seen=seen[code],
                    feature=record["feature"],
                    code=code,
                )
            seen[code] = record["feature"]
        elif code_field:
            raise InvalidInput(
                "feature {feature}: field {code_field!r} is empty", feature=record["feature"], code_field=code_field
            )
        parent = _text(record.get(parent_field)) if parent_field else parent_code
        name = _text(record.get(name_field)) if name_field else None
        attributes = {k: _json_value(record[k]) for k in extra if k not in (code_field, name_field, parent_field)}
        rows.append({
            "feature": int(record["feature"]), "code": code, "name": name or code,
            "parent": parent, "attributes": json.dumps(attributes, ensure_ascii=False),
            "wkb": shapely.to_wkb(geom),
        })  # fmt: skip
    conn.execute(
        sa.text(
            f"INSERT INTO {stage} (feature, code, name, parent_code, attributes, geom) "
            "VALUES (:feature, :code, :name, :parent, CAST(:attributes AS jsonb), "
            "ST_GeomFromWKB(:wkb, 4326))"
        ),
        rows,
    )
    return stage


def _refuse(conn, stage: str, report: ImportReport, rows: list[dict]) -> None:
    """Leave out the features of *rows* ({feature, code, kind, reason, detail, location}), saying why."""
    report.refused += rows
    conn.execute(sa.text(f"DELETE FROM {stage} WHERE feature = ANY(:f)"), {"f": [r["feature"] for r in rows]})


def _check_validity(conn, stage, make_valid: bool, report: ImportReport, skip_refused: bool = False) -> None:
    invalid = conn.execute(
        sa.text(
            f"SELECT s.feature, s.code, d.reason, ST_X(d.location) AS x, ST_Y(d.location) AS y "
            f"FROM {stage} s, ST_IsValidDetail(s.geom) d WHERE NOT d.valid ORDER BY s.feature"
        )
    ).all()
    described = [
        f"feature {r.feature}{f' ({r.code})' if r.code else ''}: {r.reason}"
        + (f" at {r.x:.7f} {r.y:.7f}" if r.x is not None else "")
        for r in invalid
    ]
    if invalid and not make_valid and skip_refused:
        _refuse(conn, stage, report, [
            {"feature": r.feature, "code": r.code, "kind": "invalid", "reason": text, "detail": r.reason,
             "location": [r.x, r.y] if r.x is not None else None}
            for r, text in zip(invalid, described, strict=True)])  # fmt: skip
        invalid = []
    if invalid and not make_valid:
        raise InvalidInput(
            "{n_invalid} invalid geometries, nothing imported (--make-valid repairs them): {described}",
            invalid=[
                {"feature": r.feature, "code": r.code, "reason": r.reason, "location": [r.x, r.y]} for r in invalid
            ],
            n_invalid=len(invalid),
            described="; ".join(described[:10]),
        )
    if invalid:
        conn.execute(
            sa.text(
                f"UPDATE {stage} SET geom = ST_CollectionExtract(ST_MakeValid(geom, "
                "'method=structure'), 3) WHERE NOT ST_IsValid(geom)"
            )
        )
        empty = (
            conn.execute(sa.text(f"SELECT feature FROM {stage} WHERE ST_IsEmpty(geom) ORDER BY feature"))
            .scalars()
            .all()
        )
        if empty:
            raise InvalidInput("features {empty} have no area left once repaired; fix them by hand", empty=empty)
        report.repaired = [f"{text}: repaired with ST_MakeValid" for text in described]
    conn.execute(sa.text(f"UPDATE {stage} SET geom = ST_Multi(geom)"))
    not_polygons = (
        conn.execute(sa.text(f"SELECT feature FROM {stage} WHERE GeometryType(geom) <> 'MULTIPOLYGON'")).scalars().all()
    )
    if not_polygons:
        raise InvalidInput("features {not_polygons} are not polygons", not_polygons=not_polygons)


def _resolve_parents(conn, stage, above, settings, report, *, by_containment: bool, skip_refused: bool = False) -> None:
    if above is None:
        return
    if by_containment:
        has_above = conn.execute(
            sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL AND level = :above"),
            {"above": above},
        ).scalar_one()
        if not has_above:
            report.warnings.append(f"no current {above} grids: imported without parents")
            return
        # The parent is the grid of the level above holding most of the feature's area.
        conn.execute(
            sa.text(
                f"""
                UPDATE {stage} s SET parent_code = (
                    SELECT g.code FROM grids g
                     WHERE g.valid_to IS NULL AND g.level = :above AND g.geom && s.geom
                       AND ST_Intersects(g.geom, s.geom)
                     ORDER BY geogrid_area_m2(ST_Intersection(g.geom, s.geom),
                                              coalesce(CAST(:srid AS integer), geogrid_utm_srid(s.geom))) DESC,
                              g.code
                     LIMIT 1)
                """
            ),
            {"above": above, "srid": settings.metric_srid},
        )
        orphans = (
            conn.execute(sa.text(f"SELECT feature FROM {stage} WHERE parent_code IS NULL ORDER BY feature"))
            .scalars()
            .all()
        )
        if orphans and skip_refused:
            codes = dict(conn.execute(sa.text(f"SELECT feature, code FROM {stage} WHERE feature = ANY(:f)"),
                                      {"f": orphans}).all())  # fmt: skip
            _refuse(conn, stage, report, [
                {"feature": f, "code": codes.get(f), "kind": "outside", "reason": f"feature {f}: outside every current "
                 f"{above} grid", "detail": above, "location": None} for f in orphans])  # fmt: skip
            orphans = []
        if orphans:
            raise InvalidInput(
                "features {orphans} lie outside every current {above} grid", orphans=orphans[:20], above=above
            )
        return
    missing = (
        conn.execute(
            sa.text(
                f"SELECT DISTINCT s.parent_code FROM {stage} s LEFT JOIN grids g "
                "ON g.code = s.parent_code AND g.valid_to IS NULL AND g.level = :above "
                "WHERE g.id IS NULL ORDER BY 1"
            ),
            {"above": above},
        )
        .scalars()
        .all()
    )
    if missing:
        shown = ", ".join(str(m) for m in missing[:20])
        raise InvalidInput("parent grids not found among current {above} grids: {shown}", above=above, shown=shown)


def _snap_to_parents(conn, stage, tolerance_m: float, report: ImportReport) -> None:
    rows = conn.execute(
        sa.text(
            f"SELECT s.feature, ST_AsBinary(s.geom) AS child, ST_AsBinary(p.geom) AS parent FROM {stage} s "
            "JOIN grids p ON p.code = s.parent_code AND p.valid_to IS NULL ORDER BY s.feature"
        )
    ).all()
    changed = []
    for row in rows:
        child, parent = shapely.from_wkb(row.child), shapely.from_wkb(row.parent)
        snapped = snap_to_boundary(child, parent, tolerance_m)
        if not shapely.equals_exact(snapped, child, tolerance=0):
            if not snapped.is_valid:
                raise InvalidInput(
                    "feature {feature}: snapping it onto its parent's boundary makes it invalid "
                    "({is_valid_reason}); import it without --snap-to-parent",
                    feature=row.feature,
                    is_valid_reason=shapely.is_valid_reason(snapped),
                )
            changed.append({"feature": row.feature, "wkb": shapely.to_wkb(snapped)})
    if changed:
        conn.execute(
            sa.text(f"UPDATE {stage} SET geom = ST_Multi(ST_GeomFromWKB(:wkb, 4326)) WHERE feature = :feature"),
            changed,
        )
    report.snapped = len(changed)


def snap_to_boundary(geom: BaseGeometry, parent: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    """*geom* (EPSG:4326) with its vertices within *tolerance_m* of *parent*'s boundary moved onto it.

    First onto the parent's vertices (and those vertices put into *geom*'s edges where
    they lie on one), then, for the rest, onto the nearest point of the parent's edges.
    """
    boundary = parent.boundary
    lat = parent.centroid.y if not parent.is_empty else 0.0
    tolerance = tolerance_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    snapped = shapely.snap(geom, boundary, tolerance)
    coords = shapely.get_coordinates(snapped)
    points = shapely.points(coords)
    distance = shapely.distance(points, boundary)
    move = (distance > 0) & (distance <= tolerance)
    if move.any():
        along = shapely.line_locate_point(boundary, points[move])
        coords[move] = shapely.get_coordinates(shapely.line_interpolate_point(boundary, along))
        snapped = shapely.transform(snapped, lambda _: coords)
    return snapped


def _check_scheme(conn, stage, level: str, settings: Settings) -> None:
    """Codes given in the file must fit the configured code scheme (nothing to check for plain codes)."""
    if settings.code_scheme == "plain":
        return
    for row in conn.execute(sa.text(f"SELECT code, parent_code FROM {stage} WHERE code IS NOT NULL ORDER BY feature")):
        check_scheme(settings, row.code, level, row.parent_code)


def _assign_missing_codes(conn, stage, level: str, settings: Settings) -> None:
    """Codes for features without one: the same ground keeps its code, new ground gets the next."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT s.feature, s.parent_code, ST_AsBinary(s.geom) AS wkb,
                   (SELECT g.code FROM grids g
                     WHERE g.valid_to IS NULL AND g.level = :level
                       AND g.parent_code IS NOT DISTINCT FROM s.parent_code
                       AND g.geom && s.geom AND ST_Equals(g.geom, s.geom) LIMIT 1) AS existing
              FROM {stage} s WHERE s.code IS NULL ORDER BY s.feature
            """
        ),
        {"level": level},
    ).all()
    if not rows:
        return
    codes: dict[int, str] = {}
    new_by_parent: dict[str, list] = defaultdict(list)
    for row in rows:
        if row.existing:
            codes[row.feature] = row.existing
        elif row.parent_code is None:
            raise InvalidInput("feature {feature}: has no code and no parent; give --code-field", feature=row.feature)
        else:
            new_by_parent[row.parent_code].append(row)
    for parent, new in new_by_parent.items():
        ordered = [new[i].feature for i in reading_order([shapely.from_wkb(bytes(r.wkb)) for r in new])]
        codes.update(zip(ordered, next_codes(conn, settings, parent, len(ordered)), strict=True))
    conn.execute(
        sa.text(f"UPDATE {stage} SET code = :code, name = coalesce(name, :code) WHERE feature = :feature"),
        [{"feature": f, "code": c} for f, c in codes.items()],
    )


def _write(conn, stage, level: str, report: ImportReport, settings: Settings, actor: str) -> None:
    rows = conn.execute(
        sa.text(
            f"""
            SELECT s.feature, s.code, g.id, g.level,
                   (g.id IS NOT NULL AND ST_Equals(g.geom, s.geom) AND g.name = s.name
                    AND g.parent_code IS NOT DISTINCT FROM s.parent_code
                    AND g.attributes = s.attributes) AS same,
                   EXISTS (SELECT 1 FROM grids r WHERE r.code = s.code AND r.valid_to IS NOT NULL) AS retired
              FROM {stage} s
              LEFT JOIN grids g ON g.code = s.code AND g.valid_to IS NULL
             ORDER BY s.feature
            """
        )
    ).all()
    for row in rows:
        if row.id is None and row.retired:
            raise InvalidInput("grid code {code} was retired; a code is never reused for new ground", code=row.code)
        if row.id is not None and row.level != level:
            raise InvalidInput("grid {code} is a {level}, not a {wanted}", code=row.code, level=row.level, wanted=level)
    changed = [r for r in rows if r.id is not None and not r.same]
    report.unchanged = [r.code for r in rows if r.same]
    report.changed = [r.code for r in changed]
    report.created = [r.code for r in rows if r.id is None]
    if changed:
        versions.retire(conn, [r.id for r in changed])
    versions.insert_from(conn, stage, report.created + report.changed, level)
    # Parents that gained children hold incidents their new children should have.
    gained = conn.execute(
        sa.text(
            f"SELECT DISTINCT p.id FROM {stage} s JOIN grids p ON p.code = s.parent_code AND p.valid_to IS NULL "
            "WHERE s.code = ANY(:codes)"
        ),
        {"codes": report.created},
    ).scalars().all()  # fmt: skip
    new_ids = conn.execute(
        sa.text("SELECT id FROM grids WHERE valid_to IS NULL AND code = ANY(:codes)"),
        {"codes": report.created + report.changed},
    ).scalars().all()  # fmt: skip
    if changed or report.created:
        from geogrid.incidents.intake import reassign

        report.incidents_moved = reassign(
            conn, settings, grid_ids=[r.id for r in changed] + list(gained), near_ids=list(new_ids), actor=actor,
            reason="boundary file import",
        )  # fmt: skip


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _json_value(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
