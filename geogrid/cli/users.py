"""`geogrid users ...`: people who sign in, their roles and API tokens."""

from __future__ import annotations

import click

from geogrid.cli.context import Group, engine_of
from geogrid.errors import GeogridError


@click.group(cls=Group)
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
    with unit_of_work(engine_of(ctx)) as conn:
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

    with unit_of_work(engine_of(ctx)) as conn:
        if not accounts.revoke_token(conn, token):
            raise GeogridError("no such live token")
    click.echo("token revoked")
