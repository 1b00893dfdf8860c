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


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Every user: role, whether they may sign in, live sessions."""
    from geogrid import accounts
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        found = accounts.list_users(conn)
    for u in found:
        state = "active" if u["active"] else "disabled"
        password = "password" if u["password"] else "token only"
        click.echo(f"{u['name']:<24} {u['role']:<11} {state:<9} {password:<11} {u['sessions']} session(s)")


@users.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable a user: their sessions end at once, their tokens stop working (audited)."""
    _set_active(ctx, name, False)


@users.command("enable")
@click.argument("name")
@click.pass_context
def users_enable(ctx: click.Context, name: str) -> None:
    """Let a disabled user sign in again (audited)."""
    _set_active(ctx, name, True)


def _set_active(ctx: click.Context, name: str, active: bool) -> None:
    from geogrid import accounts
    from geogrid.store.db import unit_of_work

    with unit_of_work(engine_of(ctx)) as conn:
        accounts.set_active(conn, name, active)
    click.echo(f"user {name} {'enabled' if active else 'disabled: sessions ended, tokens refused'}")


@users.command("passwd")
@click.argument("name")
@click.option("--password", help="The new password (asked for when not given).")
@click.pass_context
def users_passwd(ctx: click.Context, name: str, password: str | None) -> None:
    """Give a user a new password; every session of theirs ends (audited)."""
    from geogrid import accounts
    from geogrid.store.db import unit_of_work

    if password is None:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    with unit_of_work(engine_of(ctx)) as conn:
        ended = accounts.set_password(conn, name, password)
    click.echo(f"user {name}: password changed, {ended} session(s) ended")
