"""`geogrid serve` and `geogrid demo`: the app on waitress, the demo township."""

from __future__ import annotations

import sys

import click

from geogrid.cli.context import engine_of, settings_of
from geogrid.config import Settings


@click.command()
@click.option("--host", help="Address to listen on (default GEOGRID_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GEOGRID_PORT or 8000).")
@click.option("--processes", type=click.IntRange(1, 64), help="Server processes (default GEOGRID_PROCESSES: "
              "the cores, at most 4).")  # fmt: skip
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, processes: int | None) -> None:
    """Serve the API and map pages with a production WSGI server (waitress)."""
    engine_of(ctx).dispose()  # starts and migrates the database first; no connection crosses a fork
    _serve(settings_of(ctx), host, port, processes)


@click.command()
@click.option("--serve/--no-serve", "then_serve", default=False, help="Serve the app afterwards.")
@click.option("--seed", type=int, default=20261120, show_default=True, help="Everything in the demo follows from it.")
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, seed: int) -> None:
    """Load the demo township (西王庄乡-sized, a week of incidents and patrols, its own basemap; idempotent)."""
    from geogrid import demo_basemap, demo_township
    from geogrid.store.db import unit_of_work

    settings = settings_of(ctx)
    engine = engine_of(ctx)
    with unit_of_work(engine) as conn:
        counts = demo_township.load(conn, settings, seed=seed, progress=lambda m: click.echo(f"  {m}"))
        demo_basemap.ensure(conn, settings, seed, progress=lambda m: click.echo(f"  {m}"))
    engine.dispose()  # no connection may cross the server's fork
    click.echo("demo township: {villages} villages, {grids} grids, {cells} cells; {managers} grid managers, "
               "{helpers} helpers; {incidents} incidents ({closed} closed); {tracks} patrol tracks, "
               "{fixes} GPS fixes".format(**counts))  # fmt: skip
    click.echo(
        f"sign in as {demo_township.ADMIN_NAME} / {demo_township.ADMIN_PASSWORD}, or as the grid worker "
        f"{demo_township.WORKER_NAME} / {demo_township.WORKER_PASSWORD} (their phone page: /worker)"
    )
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
    click.echo(f"  dashboard:       http://{host}:{port}/dashboard")
    click.echo(f"  grid worker:     http://{host}:{port}/worker (a phone)")
    click.echo(f"  API:             http://{host}:{port}/api/openapi.json")
    sys.stdout.flush()
    serve(settings, host, port, processes)
