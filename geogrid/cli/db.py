"""`geogrid db ...`: the embedded PostGIS (or GEOGRID_DATABASE_URL's), migrations, backups."""

from __future__ import annotations

import sys

import click

from geogrid.cli.context import Group, settings_of


@click.group(cls=Group)
def db() -> None:
    """The database: the embedded PostGIS, or the one GEOGRID_DATABASE_URL names."""


@db.command("up")
@click.pass_context
def db_up(ctx: click.Context) -> None:
    """Start the embedded PostGIS (creating it on first use) and apply migrations."""
    from geogrid.store.db import make_engine
    from geogrid.store.embedded import EmbeddedCluster
    from geogrid.store.migrate import upgrade

    settings = settings_of(ctx)
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

    settings = settings_of(ctx)
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

    settings = settings_of(ctx)
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

    before, after = upgrade(make_engine(settings_of(ctx)))
    click.echo(f"schema at {after}" if before == after else f"schema migrated {before or 'empty'} -> {after}")


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def db_backup(ctx: click.Context, file: str) -> None:
    """Dump the database to FILE (pg_dump custom format) and print its fingerprint."""
    from geogrid.store.backup import backup

    _print_fingerprint(f"backed up to {file}", backup(settings_of(ctx), file))


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a database that already holds grids.")
@click.pass_context
def db_restore(ctx: click.Context, file: str, replace: bool) -> None:
    """Load a backup made by `db backup` into the database and print its fingerprint."""
    from geogrid.store.backup import restore

    _print_fingerprint(f"restored from {file}", restore(settings_of(ctx), file, replace=replace))


def _print_fingerprint(what: str, fingerprint: dict) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in fingerprint.items() if k != "grids_md5")
    click.echo(f"{what}: {counts}; grids md5 {fingerprint['grids_md5']}")
