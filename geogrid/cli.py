"""The ``geogrid`` command: thin click commands that parse, call the domain, print."""

from __future__ import annotations

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


def _settings(ctx: click.Context) -> Settings:
    ctx.ensure_object(dict)
    if "settings" not in ctx.obj:
        ctx.obj["settings"] = Settings.from_env()
    return ctx.obj["settings"]


def _engine(ctx: click.Context):
    """An engine for the configured database, starting the embedded one when needed."""
    from geogrid.store.db import make_engine
    from geogrid.store.migrate import upgrade

    engine = make_engine(_settings(ctx), start=True)
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
    click.echo(
        f"schema at {after}" + (f" (migrated from {before or 'empty'})" if before != after else "")
    )


@db.command("down")
@click.pass_context
def db_down(ctx: click.Context) -> None:
    """Stop the embedded PostGIS."""
    from geogrid.store.embedded import EmbeddedCluster

    settings = _settings(ctx)
    if settings.database_url:
        click.echo(
            "GEOGRID_DATABASE_URL is set: geogrid did not start that database, so it leaves it be"
        )
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
            click.echo(
                f"embedded database in {settings.home / 'pg'}: {state} (start it: geogrid db up)"
            )
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
    click.echo(
        f"schema at {after}"
        if before == after
        else f"schema migrated {before or 'empty'} -> {after}"
    )


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
@click.option(
    "--person-id", type=int, help="Link the user to this person (workers get one made otherwise)."
)
@click.pass_context
def users_add(
    ctx: click.Context, name: str, role: str, password: str | None, person_id: int | None
) -> None:
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


# -- serve and demo -----------------------------------------------------------------


@main.command()
@click.option("--host", help="Address to listen on (default GEOGRID_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GEOGRID_PORT or 8000).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the API and map pages with a production WSGI server (waitress)."""
    _engine(ctx)  # starts and migrates the database first
    _serve(_settings(ctx), host, port)


@main.command()
@click.option("--serve/--no-serve", "then_serve", default=False, help="Serve the app afterwards.")
@click.pass_context
def demo(ctx: click.Context, then_serve: bool) -> None:
    """Load the demo township (idempotent) and print how to sign in."""
    from geogrid import demo as demo_data
    from geogrid.store.db import unit_of_work

    settings = _settings(ctx)
    with unit_of_work(_engine(ctx)) as conn:
        summary = demo_data.load(conn)
    click.echo(f"demo loaded: {summary}")
    click.echo(f"sign in as {demo_data.ADMIN_NAME} / {demo_data.ADMIN_PASSWORD}")
    if then_serve:
        _serve(settings, None, None)


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    import waitress

    from geogrid.api import create_app

    host, port = host or settings.host, port or settings.port
    app = create_app(settings)
    click.echo(f"geogrid serving on http://{host}:{port}/  (Ctrl-C stops)")
    click.echo(f"  start page:  http://{host}:{port}/")
    click.echo(f"  API:         http://{host}:{port}/api/openapi.json")
    waitress.serve(app, host=host, port=port, threads=settings.threads, ident="geogrid")
