"""The ``geogrid`` command: thin click commands that parse, call the domain, print.

One module per concern, mirroring ``geogrid/api/``; errors become one line and an
exit status in :mod:`geogrid.cli.context`.
"""

from __future__ import annotations

import click

from geogrid.cli import audit, basemap, db, grids, incidents, patrols, people, serve, users
from geogrid.cli.context import Group


@click.group(cls=Group)
@click.version_option(package_name="geogrid")
def main() -> None:
    """geogrid: grid boundaries, incidents and patrol coverage for a grid center."""


for command in (db.db, basemap.basemap, users.users, audit.audit, grids.grids, incidents.incidents, patrols.patrols,
                people.people, serve.serve, serve.demo):  # fmt: skip
    main.add_command(command)
