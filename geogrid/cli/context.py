"""What every command shares: the error handling, settings, the engine, who the changes are by.

Like ``geogrid/api/context.py`` and ``api/errors.py`` for the API: one place turns
geogrid's errors into what a shell expects. Exit status 2: what was given is wrong
(a malformed or out-of-range value, a code that names nothing: the API's 422 and 404,
with the same words); 1: it could not be done (a conflict, the database went away).
"""

from __future__ import annotations

import getpass
import sys

import click

from geogrid.config import Settings
from geogrid.errors import GeogridError

#: Who the CLI's changes are by, in incident histories and the audit trail.
ACTOR = f"cli:{getpass.getuser()}"


def exit_status(err: GeogridError) -> int:
    """2 when the user's input is at fault (422, 404), 1 otherwise."""
    return 2 if err.http_status in (404, 422) else 1


class Group(click.Group):
    """Turns geogrid's own errors into one readable line and an exit status."""

    def invoke(self, ctx: click.Context):
        """Run the command; geogrid's errors and a lost connection end it with one line."""
        try:
            return super().invoke(ctx)
        except GeogridError as err:
            click.echo(f"geogrid: {err}", err=True)
            sys.exit(exit_status(err))
        except Exception as err:
            import sqlalchemy as sa

            if not isinstance(err, sa.exc.OperationalError):
                raise
            # The server went away mid-command (a crash, a restart): say so in one line.
            reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
            click.echo(f"geogrid: lost the database connection ({reason}); the command's transaction "
                       "did not complete: run it again once the database is back", err=True)  # fmt: skip
            sys.exit(1)


def settings_of(ctx: click.Context) -> Settings:
    """The settings, read from the environment once per command line."""
    ctx.ensure_object(dict)
    if "settings" not in ctx.obj:
        ctx.obj["settings"] = Settings.from_env()
    return ctx.obj["settings"]


def engine_of(ctx: click.Context):
    """An engine for the configured database, starting the embedded one and migrating when needed."""
    from geogrid.store.db import make_engine
    from geogrid.store.migrate import upgrade

    made = make_engine(settings_of(ctx), start=True, actor=ACTOR)
    upgrade(made)
    return made


def write_rejects(rejected: list[tuple[int, dict, str]], path: str) -> None:
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
