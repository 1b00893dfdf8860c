"""The ``geogrid`` command: thin click commands that parse, call the domain, print."""

from __future__ import annotations

import getpass
import json
import sys

import click

from geogrid.config import Settings
from geogrid.errors import GeogridError


class _Group(click.Group):
    """Turns geogrid's own errors into one readable line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GeogridError as err:
            click.echo(f"geogrid: {err}", err=True)
            sys.exit(1)
        except Exception as err:
            import sqlalchemy as sa

            if not isinstance(err, sa.exc.OperationalError):
                raise
            # The server went away mid-command (a crash, a restart): say so in one line.
            reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
            click.echo(f"geogrid: lost the database connection ({reason}); the command's transaction "
                       "did not complete: run it again once the database is back", err=True)  # fmt: skip
            sys.exit(1)


def _settings(ctx: click.Context) -> Settings:
    ctx.ensure_object(dict)
    if "settings" not in ctx.obj:
        ctx.obj["settings"] = Settings.from_env()
    return ctx.obj["settings"]


#: Who the CLI's changes are by, in incident histories and the audit trail.
_ACTOR = f"cli:{getpass.getuser()}"


def _engine(ctx: click.Context):
    """An engine for the configured database, starting the embedded one when needed."""
    from geogrid.store.db import make_engine
    from geogrid.store.migrate import upgrade

    engine = make_engine(_settings(ctx), start=True, actor=_ACTOR)
    upgrade(engine)
    return engine


@click.group(cls=_Group)
@click.version_option(package_name="geogrid")
def main() -> None:
    """geogrid: grid boundaries, incidents and patrol coverage for a grid center."""


# -- db ---------------------------------------------------------------------------


@main.group(cls=_Group)
def db() -> None:
    """The database: the embedded PostGIS, or the one GEOGRID_DATABASE_URL names."""


@db.command("up")
@click.pass_context
def db_up(ctx: click.Context) -> None:
    """Start the embedded PostGIS (creating it on first use) and apply migrations."""
    from geogrid.store.db import make_engine
    from geogrid.store.embedded import EmbeddedCluster
    from geogrid.store.migrate import upgrade

    settings = _settings(ctx)
    if settings.database_url:
        click.echo("GEOGRID_DATABASE_URL is set: using that database, nothing to start")
    else:
        status = EmbeddedCluster(settings.home).up()
        click.echo(f"database running: {status.url}")
    before, after = upgrade(make_engine(settings))
    click.echo(f"schema at {after}" + (f" (migrated from {before or 'empty'})" if before != after else ""))


@db.command("down")
@click.pass_context
def db_down(ctx: click.Context) -> None:
    """Stop the embedded PostGIS."""
    from geogrid.store.embedded import EmbeddedCluster

    settings = _settings(ctx)
    if settings.database_url:
        click.echo("GEOGRID_DATABASE_URL is set: geogrid did not start that database, so it leaves it be")
        return
    stopped = EmbeddedCluster(settings.home).down()
    click.echo("database stopped" if stopped else "database was not running")


@db.command("status")
@click.pass_context
def db_status(ctx: click.Context) -> None:
    """Print the database URL and its PostgreSQL and PostGIS versions."""
    from geogrid.store.db import make_engine, server_versions
    from geogrid.store.embedded import EmbeddedCluster
    from geogrid.store.migrate import current_revision, head_revision

    settings = _settings(ctx)
    if settings.database_url:
        from sqlalchemy.engine import make_url

        click.echo(f"url: {make_url(settings.database_url).render_as_string(hide_password=True)}")
    else:
        status = EmbeddedCluster(settings.home).status()
        if not status.running:
            state = "stopped" if status.initialized else "not created yet"
            click.echo(f"embedded database in {settings.home / 'pg'}: {state} (start it: geogrid db up)")
            sys.exit(3)
        click.echo(f"url: {status.url}")
        click.echo(f"socket: {status.socket_dir}  pid: {status.pid}")
    with make_engine(settings).connect() as conn:
        versions = server_versions(conn)
        revision = current_revision(conn)
    click.echo(f"PostgreSQL {versions['postgresql']}")
    click.echo(f"PostGIS {versions['postgis']}")
    click.echo(f"schema: {revision or 'empty'} (latest {head_revision()})")


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply the schema migrations (also done by `db up`)."""
    from geogrid.store.db import make_engine
    from geogrid.store.migrate import upgrade

    before, after = upgrade(make_engine(_settings(ctx)))
    click.echo(f"schema at {after}" if before == after else f"schema migrated {before or 'empty'} -> {after}")


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def db_backup(ctx: click.Context, file: str) -> None:
    """Dump the database to FILE (pg_dump custom format) and print its fingerprint."""
    from geogrid.store.backup import backup

    _print_fingerprint(f"backed up to {file}", backup(_settings(ctx), file))


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a database that already holds grids.")
@click.pass_context
def db_restore(ctx: click.Context, file: str, replace: bool) -> None:
    """Load a backup made by `db backup` into the database and print its fingerprint."""
    from geogrid.store.backup import restore

    _print_fingerprint(f"restored from {file}", restore(_settings(ctx), file, replace=replace))


def _print_fingerprint(what: str, fingerprint: dict) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in fingerprint.items() if k != "grids_md5")
    click.echo(f"{what}: {counts}; grids md5 {fingerprint['grids_md5']}")


# -- users ------------------------------------------------------------------------


@main.group(cls=_Group)
def users() -> None:
    """People who sign in, their roles and API tokens."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "planner", "supervisor", "operator", "worker"]),
)
@click.option(
    "--password",
    is_flag=False,
    flag_value="",
    default=None,
    help="Also set a password for the map pages (asked for when no value is given).",
)
@click.option("--person-id", type=int, help="Link the user to this person (workers get one made otherwise).")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password: str | None, person_id: int | None) -> None:
    """Create a user and print their API token (shown this once)."""
    from geogrid import accounts
    from geogrid.store.db import unit_of_work

    if password == "":
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with unit_of_work(_engine(ctx)) as conn:
        user, token = accounts.create_user(conn, name, role, password=password, person_id=person_id)
    click.echo(f"user {user.name} ({user.role}) created; API token (shown once):", err=True)
    click.echo(token)


@users.command("revoke")
@click.argument("token")
@click.pass_context
def users_revoke(ctx: click.Context, token: str) -> None:
    """Revoke an API token."""
    from geogrid import accounts
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        if not accounts.revoke_token(conn, token):
            raise GeogridError("no such live token")
    click.echo("token revoked")


@main.command("audit")
@click.option("--from", "since", help="From this ISO date or date-time.")
@click.option("--to", "until", help="Until this ISO date or date-time (exclusive).")
@click.option("--actor", help="Only changes by this user (cli:<os user> for the CLI, db:<role> for plain SQL).")
@click.option("--table", help="Only changes to this table.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_context
def audit(ctx, since, until, actor, table, limit, as_json):
    """Who changed which records when, newest first (one line per statement and table)."""
    from geogrid.audit import audit_entries
    from geogrid.grids.queries import parse_since
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        entries = audit_entries(conn, since=parse_since(since), until=parse_since(until), actor=actor,
                                table=table, limit=limit)  # fmt: skip
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=1))
        return
    for e in entries:
        count = "?" if e["row_count"] is None else f"{e['row_count']:,}"
        keys = ", ".join(e["keys"][:5]) + (" ..." if len(e["keys"]) > 5 or (e["row_count"] or 0) > 5 else "")
        click.echo(f"{e['at'][:19]}  {e['actor']:<20} {e['operation']:<8} {e['table']:<16} {count:>9}  {keys}")


# -- grids ------------------------------------------------------------------------


@main.group(cls=_Group)
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
@click.pass_context
def grids_import(ctx, file, level, code_field, name_field, parent_field, parent_code, crs, layer, make_valid):
    """Import boundaries from GeoJSON, Shapefile (.shp/.zip) or GeoPackage, in one transaction."""
    from geogrid.grids.importer import import_grids
    from geogrid.grids.io import read_boundaries
    from geogrid.store.db import unit_of_work

    settings = _settings(ctx)
    frame = read_boundaries(file, crs=crs, layer=layer, max_vertices=settings.max_vertices)
    click.echo(f"read {len(frame)} features from {file}", err=True)
    with unit_of_work(_engine(ctx)) as conn:
        report = import_grids(
            conn, frame, level=level, settings=settings, code_field=code_field,
            name_field=name_field, parent_field=parent_field, parent_code=parent_code,
            make_valid=make_valid,
        )  # fmt: skip
    for line in report.repaired + report.warnings:
        click.echo(f"  {line}")
    click.echo(report.summary())


@grids.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--level", help="Only this level.")
@click.option("--at", help="Boundaries as they were at this ISO date or date-time.")
@click.pass_context
def grids_export(ctx, file, level, at):
    """Write grids to GeoJSON (.geojson) or GeoPackage (.gpkg)."""
    import geopandas as gpd

    from geogrid.grids.io import write_boundaries
    from geogrid.grids.queries import grids_geojson, parse_at
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        collection = grids_geojson(conn, level=level, at=parse_at(at))
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
    type=float,
    help="Ignore gaps and overlaps under this many m² (default GEOGRID_SLIVER_M2).",
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
    from geogrid.grids.topology import check_topology
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        problems = check_topology(conn, _settings(ctx), code, tolerance_m2=tolerance)
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
@click.pass_context
def grids_split(ctx, code, line, cascade):
    """Split a grid by a line drawn across it."""
    from geogrid.grids import edit
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        settings = _settings(ctx)
        cut = edit.parse_geometry(line, max_vertices=settings.max_vertices)
        result = edit.split_grid(conn, settings, code, cut, cascade=cascade)
    _print_edit(result)


@grids.command("merge")
@click.argument("codes", nargs=-1, required=True)
@click.option("--name", help="Name of the merged grid.")
@click.pass_context
def grids_merge(ctx, codes, name):
    """Merge adjacent sibling grids into one."""
    from geogrid.grids import edit
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        result = edit.merge_grids(conn, _settings(ctx), list(codes), name=name)
    _print_edit(result)


@grids.command("generate")
@click.argument("code")
@click.option("--shape", type=click.Choice(["square", "hex", "voronoi"]), default="square", show_default=True)
@click.option("--area", "area", type=float, help="Target cell area in m².")
@click.option("--balanced", type=int, help="Make K cells around the weight (--shape voronoi: Voronoi regions).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Point file whose points weigh the cells.")
@click.option("--weight-field", help="Field of --weights holding each point's weight (default 1 each).")
@click.pass_context
def grids_generate(ctx, code, shape, area, balanced, weights, weight_field):
    """Generate the unit cells of a grid, tiling it exactly."""
    from geogrid.grids.generate import generate_cells
    from geogrid.store.db import unit_of_work

    points = _read_weights(weights, weight_field) if weights else None
    with unit_of_work(_engine(ctx)) as conn:
        result = generate_cells(conn, _settings(ctx), code, shape=shape, area_m2_target=area,
                                balanced=balanced, weights=points)  # fmt: skip
    _print_edit(result)


def _read_weights(path: str, field: str | None) -> list[tuple[float, float, float]]:
    import geopandas as gpd

    frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    if field is not None and field not in frame.columns:
        raise GeogridError(f"{path} has no field {field!r}")
    points = frame[frame.geometry.geom_type == "Point"]
    weights = points[field].fillna(0).astype(float) if field else [1.0] * len(points)
    return [(g.x, g.y, float(w)) for g, w in zip(points.geometry, weights, strict=True)]


def _write_rejects(rejected: list[tuple[int, dict, str]], path: str) -> None:
    """Bad rows with their line and reason, as CSV (cells that a spreadsheet would run are neutralised)."""
    import csv

    from geogrid.incidents.files import neutralise

    if not rejected:
        return
    rows = [{"line": line, "reason": reason, **{k: v for k, v in raw.items() if k}} for line, raw, reason in rejected]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: neutralise(v) for k, v in row.items()})
    click.echo(f"{len(rows)} rejected rows written to {path}", err=True)


def _print_edit(result) -> None:
    for code, area in result.created.items():
        click.echo(f"created {code}  {area:,.0f} m²")
    if result.retired:
        click.echo(f"retired {', '.join(result.retired)}")
    for child, parent in result.reparented.items():
        click.echo(f"moved {child} under {parent}")


# -- incidents ------------------------------------------------------------------------


@main.group(cls=_Group)
def incidents() -> None:
    """Command center: register incidents and assign them to their cells."""


@incidents.command("add")
@click.option("--lon", type=float, required=True, help="Longitude, WGS84.")
@click.option("--lat", type=float, required=True, help="Latitude, WGS84.")
@click.option("--category", required=True, help="Category code (see the taxonomy).")
@click.option("--source", default="reception", show_default=True)
@click.option("--description", default="")
@click.option("--reporter")
@click.option("--accuracy", "accuracy", type=float, help="GPS accuracy in metres.")
@click.option("--at", "reported_at", help="When it was reported (ISO; naive = GEOGRID_TIMEZONE).")
@click.option("--external-id")
@click.pass_context
def incidents_add(ctx, lon, lat, category, source, description, reporter, accuracy, reported_at, external_id):
    """Register one incident; prints the cell it was assigned to."""
    import datetime as dt

    from geogrid.incidents.intake import NewIncident, register
    from geogrid.store.db import unit_of_work

    when = dt.datetime.fromisoformat(reported_at) if reported_at else None
    incident = NewIncident(
        lon=lon, lat=lat, category=category, source=source, description=description, reporter=reporter,
        reported_at=when, gps_accuracy_m=accuracy, external_id=external_id,
    )  # fmt: skip
    with unit_of_work(_engine(ctx)) as conn:
        out = register(conn, _settings(ctx), incident, actor=_ACTOR)
    where = out["grid_code"] or "no cell (unassigned, flagged)"
    extra = f", snapped {out['snap_distance_m']} m" if out["assignment"] == "snapped" else ""
    click.echo(f"incident {out['id']}: {where}{extra}; deadline {out['deadline']}")


@incidents.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--reject",
    "reject_path",
    type=click.Path(dir_okay=False),
    help="Where bad rows go with their reason (default FILE.rejects.csv).",
)
@click.option("--category", help="Category for rows that have none.")
@click.option("--source", default="hotline", show_default=True, help="Source for rows that have none.")
@click.option("--batch-size", default=20_000, show_default=True)
@click.pass_context
def incidents_import(ctx, file, reject_path, category, source, batch_size):
    """Bulk import from CSV or GeoJSON: assigned in PostGIS a batch at a time, idempotent."""
    from geogrid.incidents.files import read_incidents
    from geogrid.incidents.intake import import_incidents
    from geogrid.store.db import unit_of_work

    rejected = []

    def reject(line: int, raw: dict, reason: str) -> None:
        rejected.append((line, raw, reason))

    total = sum(1 for _ in open(file, encoding="utf-8", errors="replace")) if file.endswith(".csv") else 0
    with (
        unit_of_work(_engine(ctx)) as conn,
        click.progressbar(length=max(total - 1, 1), label="importing", file=sys.stderr) as bar,
    ):
        report = import_incidents(conn, _settings(ctx), read_incidents(file, default_category=category,
                                  default_source=source), actor=_ACTOR, reject=reject,
                                  batch_size=batch_size, progress=bar.update)  # fmt: skip
    _write_rejects(rejected, reject_path or f"{file}.rejects.csv")
    click.echo(report.summary())


@incidents.command("list")
@click.option("--status", help="One or more states, comma separated.")
@click.option("--category")
@click.option("--grid", help="Incidents of this grid and the grids below it.")
@click.option("--overdue", is_flag=True, help="Only overdue ones.")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def incidents_list(ctx, status, category, grid, overdue, limit):
    """List incidents, newest first."""
    from geogrid.incidents.queries import list_incidents
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        found = list_incidents(conn, statuses=status.split(",") if status else None, category=category,
                               grid=grid, overdue=True if overdue else None, limit=limit)  # fmt: skip
    for f in found["features"]:
        p = f["properties"]
        flag = "  OVERDUE" if p["overdue"] else ""
        click.echo(f"{p['id']:>8}  {p['reported_at'][:16]}  {p['status']:<15} {p['category']:<22} "
                   f"{p['grid_code'] or '(unassigned)'}{flag}")  # fmt: skip
    click.echo(f"{found['numberReturned']} of {found['numberMatched']}")


@incidents.command("transition")
@click.argument("incident_id", type=int)
@click.argument("to")
@click.option("--note", default="")
@click.option("--department", help="Department it is dispatched or escalated to.")
@click.pass_context
def incidents_transition(ctx, incident_id, to, note, department):
    """Move an incident to another state (dispatched, in_progress, escalated, resolved, ...)."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        event = workflow.transition(conn, _settings(ctx), incident_id, to, actor=_ACTOR, note=note,
                                    department=department)  # fmt: skip
    click.echo(f"incident {incident_id}: {event['from']} -> {event['to']} {event['details'] or ''}")


@incidents.command("visit")
@click.argument("incident_id", type=int)
@click.option("--method", type=click.Choice(["phone", "visit"]), required=True)
@click.option("--satisfied/--unsatisfied", required=True)
@click.option("--note", default="")
@click.pass_context
def incidents_visit(ctx, incident_id, method, satisfied, note):
    """Record the return visit: satisfied closes, unsatisfied reopens."""
    from geogrid.incidents import workflow
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        event = workflow.return_visit(conn, incident_id, actor=_ACTOR, method=method, satisfied=satisfied, note=note)
    click.echo(f"incident {incident_id}: {event['from']} -> {event['to']}")


@incidents.command("metrics")
@click.option("--level", help="Grids of this level (default: the top level).")
@click.option("--grid", help="Only grids inside this one.")
@click.option("--from", "start", help="ISO date: first day.")
@click.option("--to", "end", help="ISO date: the day after the last.")
@click.pass_context
def incidents_metrics(ctx, level, grid, start, end):
    """Indicators per grid: registered, on the spot, escalated, closed, and the four rates."""
    from geogrid.grids.queries import parse_since as day
    from geogrid.incidents.metrics import metrics
    from geogrid.store.db import unit_of_work

    settings = _settings(ctx)
    with unit_of_work(_engine(ctx)) as conn:
        rows = metrics(conn, level=level or settings.levels[0], within=grid, start=day(start), end=day(end))
    click.echo(f"{'grid':<16}{'reg':>6}{'spot':>6}{'esc':>6}{'closed':>8}{'closure':>9}{'on time':>9}"
               f"{'visited':>9}{'satisf.':>9}")  # fmt: skip
    pct = lambda r: "-" if r is None else f"{r:.0%}"  # noqa: E731
    for r in rows:
        click.echo(f"{r['code']:<16}{r['registered']:>6}{r['handled_on_spot']:>6}{r['escalated']:>6}{r['closed']:>8}"
                   f"{pct(r['closure_rate']):>9}{pct(r['on_time_rate']):>9}{pct(r['return_visit_rate']):>9}"
                   f"{pct(r['satisfaction_rate']):>9}")  # fmt: skip


@incidents.command("warnings")
@click.pass_context
def incidents_warnings(ctx):
    """Early warning: cells where a category is rising, and categories rising in many cells."""
    from geogrid.incidents.metrics import early_warnings
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        found = early_warnings(conn)
    click.echo(f"rule: {found['rule']}")
    for w in found["cells"]:
        click.echo(f"{w['grid_code']}  {w['category']}: {w['last_7_days']} in 7 days "
                   f"(baseline {w['weekly_baseline']}/week, p={w['p_value']:.2g})")  # fmt: skip
    for w in found["widespread"]:
        click.echo(f"widespread: {w['category']} in {len(w['cells'])} cells")


@incidents.command("reassign")
@click.option("--all", "all_incidents", is_flag=True, help="Closed incidents too (default: open ones).")
@click.option("--full", is_flag=True,
              help="Look at every incident, not only where boundaries changed since it was assigned.")  # fmt: skip
@click.pass_context
def incidents_reassign(ctx, all_incidents, full):
    """Re-run cell assignment after boundaries changed (each move is recorded)."""
    from geogrid.incidents.intake import reassign
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        moved = reassign(conn, _settings(ctx), open_only=not all_incidents, actor=_ACTOR, everything=full)
    click.echo(f"{moved} incidents moved to another cell")


# -- patrols ---------------------------------------------------------------------------


@main.group(cls=_Group)
def patrols() -> None:
    """Supervisors: patrol track import and cleaning."""


@patrols.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--person", required=True, help="Whose track: person id, staff number or name.")
@click.option("--time-column", default="time", show_default=True, help="CSV header of the time column.")
@click.option("--lon-column", default="lon", show_default=True)
@click.option("--lat-column", default="lat", show_default=True)
@click.option("--accuracy-column", default="accuracy", show_default=True)
@click.pass_context
def patrols_import(ctx, file, person, time_column, lon_column, lat_column, accuracy_column):
    """Import a GPX, CSV or GeoJSON track; re-importing the same fixes stores nothing new."""
    from pathlib import Path

    from geogrid.patrols.ingest import import_patrol
    from geogrid.people import find_person
    from geogrid.store.db import unit_of_work

    columns = {"time": time_column, "lon": lon_column, "lat": lat_column, "accuracy": accuracy_column}
    with unit_of_work(_engine(ctx)) as conn:
        person_id = find_person(conn, person)
        report = import_patrol(conn, _settings(ctx), person_id, Path(file).name, Path(file).read_bytes(),
                               csv_columns=columns)  # fmt: skip
    click.echo(report.summary())


@patrols.command("coverage")
@click.option("--date", "day", required=True, help="The day, YYYY-MM-DD (in GEOGRID_TIMEZONE).")
@click.option("--grid", help="Only cells under this grid.")
@click.pass_context
def patrols_coverage(ctx, day, grid):
    """Recompute and print patrol coverage per cell and worker for a day."""
    import datetime as dt

    from geogrid.patrols.coverage import compute_coverage, coverage_report
    from geogrid.store.db import unit_of_work

    when = dt.date.fromisoformat(day)
    settings = _settings(ctx)
    with unit_of_work(_engine(ctx)) as conn:
        compute_coverage(conn, settings, when, grid=grid)
        report = coverage_report(conn, settings, when, grid=grid)
    for r in report["cells"]:
        state = "ok" if r["compliant"] else "; ".join(r["reasons"])
        click.echo(
            f"{r['grid_code']:<16} {r['person']:<12} {r['fraction']:>6.0%} {r['visit_count']:>3} visits  {state}"
        )
    missed = sum(len(w["missed"]) for w in report["workers"])
    click.echo(f"{len(report['cells'])} cell-person rows, {missed} assigned cells not patrolled")


# -- people -----------------------------------------------------------------------------


@main.group(cls=_Group)
def people() -> None:
    """The roster: grid workers, cadres and handlers, and their duties on grids."""


def _echo_person(p: dict) -> None:
    staff = f" [{p['staff_no']}]" if p["staff_no"] else ""
    duties = ", ".join(f"{d['duty']} {d['grid_code']}" + (f" ({d['department']})" if d["department"] else "")
                       for d in p["duties"]) or "no duty"  # fmt: skip
    click.echo(f"{p['id']:>6}  {p['name']}{staff}: {duties}")


@people.command("add")
@click.argument("name")
@click.option("--phone")
@click.option("--staff-no", help="Staff or terminal number (unique).")
@click.pass_context
def people_add(ctx, name, phone, staff_no):
    """Register a person."""
    from geogrid.people import add_person
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        _echo_person(add_person(conn, name, phone=phone, staff_no=staff_no))


@people.command("list")
@click.option("--grid", help="Only people with a duty on this grid or below it.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
def people_list(ctx, grid, as_json):
    """Everyone (or the people of a grid) with their current duties."""
    from geogrid.people import list_people
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        found = list_people(conn, grid=grid)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=1, default=str))
        return
    for p in found:
        _echo_person(p)


@people.command("assign")
@click.argument("person")
@click.argument("grid_code")
@click.option("--duty", default="grid_helper", show_default=True,
              help="grid_chief, grid_manager, grid_helper, adopting_cadre or department_handler.")  # fmt: skip
@click.option("--department", help="The department (for a department handler).")
@click.pass_context
def people_assign(ctx, person, grid_code, duty, department):
    """Give PERSON (id, staff number or name) a duty on GRID_CODE."""
    from geogrid.people import assign_duty
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        given, new = assign_duty(conn, person, grid_code, duty, department=department)
    click.echo(f"{'assigned' if new else 'already assigned'}: person {given['person_id']} {duty} {grid_code}")


@people.command("unassign")
@click.argument("person")
@click.argument("grid_code")
@click.option("--duty", help="Only this duty (default: all of theirs on the grid).")
@click.pass_context
def people_unassign(ctx, person, grid_code, duty):
    """End PERSON's duties on GRID_CODE (kept in the history)."""
    from geogrid.people import end_duty
    from geogrid.store.db import unit_of_work

    with unit_of_work(_engine(ctx)) as conn:
        ended = end_duty(conn, person, grid_code, duty)
    click.echo(f"{ended} duty(ies) ended on {grid_code}")


@people.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reject", "reject_path", type=click.Path(dir_okay=False),
              help="Where bad rows go with their reason (default FILE.rejects.csv).")  # fmt: skip
@click.pass_context
def people_import(ctx, file, reject_path):
    """Import a roster CSV: name, grid_code, duty[, staff_no, phone, department] (also 姓名, 网格编码, 职责...)."""
    from geogrid.people import import_roster, read_roster
    from geogrid.store.db import unit_of_work

    rejected = []
    with unit_of_work(_engine(ctx)) as conn:
        report = import_roster(conn, read_roster(file),
                               reject=lambda line, raw, reason: rejected.append((line, raw, reason)))  # fmt: skip
    _write_rejects(rejected, reject_path or f"{file}.rejects.csv")
    click.echo(report.summary())


# -- serve and demo -----------------------------------------------------------------


@main.command()
@click.option("--host", help="Address to listen on (default GEOGRID_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GEOGRID_PORT or 8000).")
@click.option("--processes", type=click.IntRange(1, 64), help="Server processes (default GEOGRID_PROCESSES: "
              "the cores, at most 4).")  # fmt: skip
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, processes: int | None) -> None:
    """Serve the API and map pages with a production WSGI server (waitress)."""
    _engine(ctx).dispose()  # starts and migrates the database first; no connection crosses a fork
    _serve(_settings(ctx), host, port, processes)


@main.command()
@click.option("--serve/--no-serve", "then_serve", default=False, help="Serve the app afterwards.")
@click.option("--seed", type=int, default=20261120, show_default=True, help="Everything in the demo follows from it.")
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, seed: int) -> None:
    """Load the demo township (西王庄乡-sized, a week of incidents and patrols; idempotent)."""
    from geogrid import demo_township
    from geogrid.store.db import unit_of_work

    settings = _settings(ctx)
    engine = _engine(ctx)
    with unit_of_work(engine) as conn:
        counts = demo_township.load(conn, settings, seed=seed, progress=lambda m: click.echo(f"  {m}"))
    engine.dispose()  # no connection may cross the server's fork
    click.echo("demo township: {villages} villages, {grids} grids, {cells} cells; {managers} grid managers, "
               "{helpers} helpers; {incidents} incidents ({closed} closed); {tracks} patrol tracks, "
               "{fixes} GPS fixes".format(**counts))  # fmt: skip
    click.echo(f"sign in as {demo_township.ADMIN_NAME} / {demo_township.ADMIN_PASSWORD}")
    if then_serve:
        _serve(settings, None, None)


def _serve(settings: Settings, host: str | None, port: int | None, processes: int | None = None) -> None:
    from geogrid.server import serve

    host, port, processes = host or settings.host, port or settings.port, processes or settings.processes
    click.echo(f"geogrid serving on http://{host}:{port}/ with {processes} process(es) of {settings.threads} threads "
               "(Ctrl-C stops)")  # fmt: skip
    click.echo(f"  start page:      http://{host}:{port}/")
    click.echo(f"  planner map:     http://{host}:{port}/map/grids")
    click.echo(f"  command center:  http://{host}:{port}/map/incidents")
    click.echo(f"  coverage map:    http://{host}:{port}/map/coverage")
    click.echo(f"  API:             http://{host}:{port}/api/openapi.json")
    sys.stdout.flush()
    serve(settings, host, port, processes)
