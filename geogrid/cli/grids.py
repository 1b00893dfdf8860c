"""`geogrid grids ...`: planners' import, export, validation, split, merge, generation."""

from __future__ import annotations

import json
import sys

import click

from geogrid.cli.context import ACTOR, Group, engine_of, settings_of
from geogrid.errors import GeogridError, InvalidInput


@click.group(cls=Group)
def grids() -> None:
    """Planners: import, check, split, merge and generate grid boundaries."""


@grids.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--level", required=True, help="Level of the grids in the file (e.g. village).")
@click.option("--code-field", help="Field holding each grid's code (else made from the parent's).")
@click.option("--name-field", help="Field holding each grid's name.")
@click.option("--parent-field", help="Field holding the parent's code (else found by containment).")
@click.option("--parent", "parent_code", help="Code of the parent of every grid in the file.")
@click.option("--crs", help="CRS of a file that declares none, e.g. EPSG:4547.")
@click.option("--layer", help="Layer of a GeoPackage.")
@click.option("--make-valid", is_flag=True, help="Repair invalid geometries (and say how).")
@click.option("--snap-to-parent", is_flag=True, help="Move vertices within GEOGRID_TOLERANCE_M of the parent's "
              "boundary onto it, so the children's edges lie exactly on their parent's.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what the import would do (new, changed with the ground moved, "
              "unchanged, the tiling check of the result); write nothing.")  # fmt: skip
@click.option("--skip-refused", is_flag=True, help="Leave out features that cannot be imported (saying why) and "
              "import the rest.")  # fmt: skip
@click.pass_context
def grids_import(ctx, file, level, code_field, name_field, parent_field, parent_code, crs, layer, make_valid,
                 snap_to_parent, dry_run, skip_refused):  # fmt: skip
    """Import boundaries from GeoJSON, Shapefile (.shp/.zip) or GeoPackage, in one transaction."""
    from geogrid.grids.importer import import_grids
    from geogrid.grids.io import read_boundaries
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    frame = read_boundaries(file, crs=crs, layer=layer, max_vertices=settings.max_vertices)
    click.echo(f"read {len(frame)} features from {file}", err=True)
    with unit_of_work(engine_of(ctx)) as conn:
        report = import_grids(
            conn, frame, level=level, settings=settings, code_field=code_field,
            name_field=name_field, parent_field=parent_field, parent_code=parent_code,
            make_valid=make_valid, snap_to_parent=snap_to_parent, actor=ACTOR, dry_run=dry_run,
            skip_refused=skip_refused,
        )  # fmt: skip
    for line in report.repaired + report.warnings:
        click.echo(f"  {line}")
    if dry_run:
        for code in report.created:
            click.echo(f"  new      {code}")
        for code in report.changed:
            click.echo(f"  changed  {code}: {report.moved_m2.get(code, 0):,.0f} m² of ground moved")
    for refused in report.refused:
        click.echo(f"  refused  {refused['reason']}")
    for line in report.problems:
        click.echo(f"  tiling: {line}")
    click.echo(report.summary())


@grids.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--level", help="Only this level.")
@click.option("--at", help="Boundaries as they were at this ISO date or date-time.")
@click.pass_context
def grids_export(ctx, file, level, at):
    """Write grids to GeoJSON (.geojson) or GeoPackage (.gpkg)."""
    import geopandas as gpd

    from geogrid import inputs
    from geogrid.grids.io import write_boundaries
    from geogrid.grids.queries import grids_geojson
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    level, at = inputs.level(level, settings.levels), inputs.at(at, settings.timezone)
    with unit_of_work(engine_of(ctx)) as conn:
        collection = grids_geojson(conn, level=level, at=at)
    features = collection["features"]
    for feature in features:
        feature["properties"]["attributes"] = json.dumps(feature["properties"]["attributes"], ensure_ascii=False)
    frame = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")
    write_boundaries(frame, file)
    click.echo(f"wrote {len(frame)} grids to {file}")


@grids.command("validate")
@click.argument("code", required=False)
@click.option(
    "--tolerance",
    help="Gaps and overlaps narrower than this many metres are slivers (default GEOGRID_TOLERANCE_M, 0.1).",
)
@click.option(
    "--geojson",
    "geojson_out",
    type=click.Path(dir_okay=False),
    help="Also write the problems here.",
)
@click.pass_context
def grids_validate(ctx, code, tolerance, geojson_out):
    """Check that children tile their parents; exit 1 when they do not."""
    from geogrid import inputs
    from geogrid.grids.topology import check_topology
    from geogrid.store.db import unit_of_work

    tolerance_m = inputs.tolerance(tolerance)
    with unit_of_work(engine_of(ctx)) as conn:
        problems = check_topology(conn, settings_of(ctx), code, tolerance_m=tolerance_m)
    for problem in problems:
        click.echo(problem.describe())
    if geojson_out:
        with open(geojson_out, "w") as out:
            json.dump({"type": "FeatureCollection", "features": [p.to_json() for p in problems]},
                      out, ensure_ascii=False)  # fmt: skip
    if problems:
        click.echo(f"{len(problems)} tiling problems", err=True)
        sys.exit(1)
    click.echo("the hierarchy tiles: no gaps, overlaps or parts outside a parent")


@grids.command("split")
@click.argument("code")
@click.option("--line", required=True, help="The cut as WKT or GeoJSON, in lon/lat (EPSG:4326).")
@click.option("--cascade", is_flag=True, help="Also split child grids the line cuts.")
@click.option("--duties", "plan", multiple=True, metavar="PIECE=PEOPLE",
              help="Who goes to which piece, e.g. --duties 1=W-01,W-02 --duties 2=W-03 (pieces numbered north "
              "to south; people by id, staff number or name). Default: every duty on every piece.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show the pieces, the duties and the incidents that would move; "
              "write nothing.")  # fmt: skip
@click.pass_context
def grids_split(ctx, code, line, cascade, plan, dry_run):
    """Split a grid by a line drawn across it; its duties and open incidents follow the pieces."""
    from geogrid.grids import edit
    from geogrid.store.db import unit_of_work

    duties = _piece_plan(plan) if plan else None
    settings = settings_of(ctx)
    cut = edit.parse_geometry(line, max_vertices=settings.max_vertices)
    with unit_of_work(engine_of(ctx)) as conn:
        result = edit.split_grid(conn, settings, code, cut, cascade=cascade, duties=duties, actor=ACTOR,
                                 dry_run=dry_run)  # fmt: skip
    _print_edit(result)


def _piece_plan(items: tuple[str, ...]) -> dict[str, list[str]]:
    plan: dict[str, list[str]] = {}
    for item in items:
        piece, sep, names = item.partition("=")
        if not sep or not piece.strip():
            raise InvalidInput("--duties takes PIECE=PEOPLE (e.g. 1=W-01,W-02), not {item!r}", item=item)
        plan.setdefault(piece.strip(), []).extend(n.strip() for n in names.split(",") if n.strip())
    return plan


@grids.command("merge")
@click.argument("codes", nargs=-1, required=True)
@click.option("--name", help="Name of the merged grid.")
@click.option("--keep", multiple=True, metavar="PERSON",
              help="Only these people keep their duties on the merged grid (repeat; default: everyone).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what the merge would do; write nothing.")
@click.pass_context
def grids_merge(ctx, codes, name, keep, dry_run):
    """Merge adjacent sibling grids into one; their duties and open incidents follow."""
    from geogrid.grids import edit
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        result = edit.merge_grids(conn, settings_of(ctx), list(codes), name=name, keep=list(keep) or None,
                                  actor=ACTOR, dry_run=dry_run)  # fmt: skip
    _print_edit(result)


@grids.command("generate")
@click.argument("code")
@click.option("--shape", type=click.Choice(["square", "hex", "voronoi"]), default="square", show_default=True)
@click.option("--area", "area", type=float, help="Target cell area in m².")
@click.option("--balanced", type=int, help="Make K cells around the weight (--shape voronoi: Voronoi regions).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Point file whose points weigh the cells.")
@click.option("--weight-field", help="Field of --weights holding each point's weight (default 1 each).")
@click.option("--dry-run", is_flag=True, help="Say which cells it would make; write nothing.")
@click.pass_context
def grids_generate(ctx, code, shape, area, balanced, weights, weight_field, dry_run):
    """Generate the unit cells of a grid, tiling it exactly."""
    from geogrid.grids.generate import generate_cells
    from geogrid.store.db import unit_of_work

    points = _read_weights(weights, weight_field) if weights else None
    with unit_of_work(engine_of(ctx)) as conn:
        result = generate_cells(conn, settings_of(ctx), code, shape=shape, area_m2_target=area,
                                balanced=balanced, weights=points, actor=ACTOR, dry_run=dry_run)  # fmt: skip
    _print_edit(result)


def _read_weights(path: str, field: str | None) -> list[tuple[float, float, float]]:
    import geopandas as gpd

    frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    if field is not None and field not in frame.columns:
        raise GeogridError("{path} has no field {field!r}", path=path, field=field)
    points = frame[frame.geometry.geom_type == "Point"]
    weights = points[field].fillna(0).astype(float) if field else [1.0] * len(points)
    return [(g.x, g.y, float(w)) for g, w in zip(points.geometry, weights, strict=True)]


def _print_edit(result) -> None:
    if result.dry_run:
        click.echo("dry run: nothing written; this is what the edit would do")
    for code, area in result.created.items():
        click.echo(f"created {code}  {area:,.0f} m²")
    if result.retired:
        click.echo(f"retired {', '.join(result.retired)}")
    for child, parent in result.reparented.items():
        click.echo(f"moved {child} under {parent}")
    for d in result.duties:
        click.echo(f"duty {d['duty']} of {d['person']} ({d['person_id']}): {', '.join(d['from'])} -> "
                   f"{', '.join(d['to'])}")  # fmt: skip
    for d in result.dropped:
        click.echo(f"duty {d['duty']} of {d['person']} ({d['person_id']}) on {d['from']} ended (not carried)")
    click.echo(f"{result.incidents_moved} open incident(s) moved to another cell")
