"""`geogrid patrols ...`: supervisors' track import and coverage."""

from __future__ import annotations

import click

from geogrid.cli.context import Group, engine_of, settings_of


@click.group(cls=Group)
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
    with unit_of_work(engine_of(ctx)) as conn:
        person_id = find_person(conn, person)
        report = import_patrol(conn, settings_of(ctx), person_id, Path(file).name, Path(file).read_bytes(),
                               csv_columns=columns)  # fmt: skip
    click.echo(report.summary())


@patrols.command("coverage")
@click.option("--date", "day", required=True, help="The day, YYYY-MM-DD (in GEOGRID_TIMEZONE).")
@click.option("--grid", help="Only cells under this grid.")
@click.pass_context
def patrols_coverage(ctx, day, grid):
    """Recompute and print patrol coverage per cell and worker for a day."""
    from geogrid import inputs
    from geogrid.grids import hierarchy
    from geogrid.patrols.compute import compute_coverage, day_moment, day_notice, describe_reason
    from geogrid.patrols.queries import coverage_report
    from geogrid.store.db import unit_of_work

    when = inputs.day(day)
    settings = settings_of(ctx)
    with unit_of_work(engine_of(ctx)) as conn:
        notice = day_notice(conn, settings, when)
        if notice is None:
            if grid:
                hierarchy.require(conn, grid, day_moment(settings, when))
            compute_coverage(conn, settings, when, grid=grid)
            report = coverage_report(conn, settings, when, grid=grid)
    if notice is not None:
        click.echo(str(notice))
        return
    for r in report["cells"]:
        state = "ok" if r["compliant"] else "; ".join(describe_reason(code) for code in r["reasons"])
        click.echo(
            f"{r['grid_code']:<16} {r['person']:<12} {r['fraction']:>6.0%} {r['visit_count']:>3} visits  {state}"
        )
    missed = sum(len(w["missed"]) for w in report["workers"])
    click.echo(f"{len(report['cells'])} cell-person rows, {missed} assigned cells not patrolled")
