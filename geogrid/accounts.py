"""Users, roles and API tokens; and which grids a user may see.

Tokens are random and shown once; only their SHA-256 is stored (a slow hash adds
nothing for 256-bit random secrets). Passwords, for the map pages' login form, are
stored with scrypt.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from werkzeug.security import check_password_hash, generate_password_hash

from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.store.models import ROLES, ApiToken, Person, User

TOKEN_PREFIX = "gg_"


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is making a request: enough to decide what they may do."""

    id: int
    name: str
    role: str
    person_id: int | None
    #: The language the user chose for the pages and messages (None: the browser's, else the default).
    language: str | None = None

    def to_json(self) -> dict:
        """Plain dict for the API."""
        return dataclasses.asdict(self)


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: Connection,
    name: str,
    role: str,
    *,
    password: str | None = None,
    person_id: int | None = None,
) -> tuple[Principal, str]:
    """Create a user and its first API token; returns (user, token).

    A worker is always a person on the grid: when no *person_id* is given, a person
    with the user's name is created for them.
    """
    if role not in ROLES:
        raise InvalidInput("unknown role {role!r}; choose one of {ROLES}", role=role, ROLES=", ".join(ROLES))
    if conn.execute(sa.select(User.id).where(User.name == name)).first():
        raise Conflict("user {name!r} already exists", name=name)
    if not name or len(name) > 64 or not all(c.isalnum() or c in "_.@-" for c in name):
        raise InvalidInput("user names are 1-64 letters, digits or _ . @ -")
    if password is not None and len(password) < 8:
        raise InvalidInput("passwords must be at least 8 characters")
    if person_id is not None:
        if conn.execute(sa.select(Person.id).where(Person.id == person_id)).first() is None:
            raise NotFound("no person with id {person_id}", person_id=person_id)
    elif role == "worker":
        person_id = conn.execute(sa.insert(Person).values(name=name).returning(Person.id)).scalar_one()
    user_id = conn.execute(
        sa.insert(User)
        .values(
            name=name,
            role=role,
            person_id=person_id,
            password_hash=generate_password_hash(password) if password else None,
        )
        .returning(User.id)
    ).scalar_one()
    token = issue_token(conn, user_id, label="created with the user")
    return Principal(user_id, name, role, person_id), token


def issue_token(conn: Connection, user_id: int, label: str = "") -> str:
    """A new API token for a user; the caller shows it once, geogrid keeps its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(sa.insert(ApiToken).values(user_id=user_id, token_sha256=hash_token(token), label=label))
    return token


def revoke_token(conn: Connection, token: str) -> bool:
    """Revoke one token; False when it was unknown or already revoked."""
    result = conn.execute(
        sa.update(ApiToken)
        .where(ApiToken.token_sha256 == hash_token(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return result.rowcount == 1


def principal_for_token(conn: Connection, token: str) -> Principal | None:
    """The active user a live token belongs to, or None."""
    row = conn.execute(
        sa.select(User.id, User.name, User.role, User.person_id, User.language)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_sha256 == hash_token(token),
            ApiToken.revoked_at.is_(None),
            User.active,
        )
    ).first()
    return Principal(*row) if row else None


def principal_by_id(conn: Connection, user_id: int) -> Principal | None:
    """The active user with this id (a page session stores it), or None."""
    row = conn.execute(
        sa.select(User.id, User.name, User.role, User.person_id, User.language).where(User.id == user_id, User.active)
    ).first()
    return Principal(*row) if row else None


def check_password(conn: Connection, name: str, password: str) -> Principal | None:
    """The user when *password* is theirs, else None (same answer for unknown names)."""
    row = conn.execute(
        sa.select(User.id, User.name, User.role, User.person_id, User.language, User.password_hash).where(
            User.name == name, User.active
        )
    ).first()
    if row is None or row.password_hash is None:
        # Spend the same time as a real check so names cannot be probed by timing.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row.password_hash, password):
        return None
    return Principal(row.id, row.name, row.role, row.person_id, row.language)


def _user_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(User.id).where(User.name == name)).scalar()
    if found is None:
        raise NotFound("no user {name!r}", name=name)
    return found


def set_active(conn: Connection, name: str, active: bool) -> dict:
    """Disable (every session ends, tokens stop working) or enable a user; the user as now."""
    from geogrid import sessions

    user_id = _user_id(conn, name)
    conn.execute(sa.update(User).where(User.id == user_id).values(active=active))
    if not active:
        sessions.end_all(conn, user_id, "user disabled")
    return user(conn, name)


def set_password(conn: Connection, name: str, password: str, *, keep_session: str | None = None) -> int:
    """A new password for *name*; every session of theirs ends but *keep_session* (the caller's own). How many ended."""
    from geogrid import sessions

    if not isinstance(password, str) or len(password) < 8:
        raise InvalidInput("passwords must be at least 8 characters")
    if len(password) > 1000:
        raise InvalidInput("passwords must be at most 1000 characters")
    user_id = _user_id(conn, name)
    conn.execute(sa.update(User).where(User.id == user_id).values(password_hash=generate_password_hash(password)))
    return sessions.end_all(conn, user_id, "password changed", keep=keep_session)


def set_language(conn: Connection, user_id: int, language: str | None) -> None:
    """The user's choice of language for pages and messages (None: follow the browser)."""
    conn.execute(sa.update(User).where(User.id == user_id).values(language=language))


def user(conn: Connection, name: str) -> dict:
    """One user, without secrets."""
    found = list_users(conn, name=name)
    if not found:
        raise NotFound("no user {name!r}", name=name)
    return found[0]


def list_users(conn: Connection, *, name: str | None = None) -> list[dict]:
    """Every user (or the one called *name*), without secrets: whether they can sign in, live sessions."""
    rows = conn.execute(
        sa.text(
            """
            SELECT u.id, u.name, u.role, u.person_id, u.active, u.created_at, u.password_hash IS NOT NULL AS password,
                   (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.ended_at IS NULL) AS sessions
              FROM users u WHERE CAST(:name AS text) IS NULL OR u.name = :name ORDER BY u.name
            """
        ),
        {"name": name},
    ).mappings()
    return [{**row, "created_at": row["created_at"].isoformat()} for row in rows]


def visible_grid_codes(conn: Connection, principal: Principal) -> set[str] | None:
    """Codes of the current grids *principal* may see; None means every grid.

    A worker sees the grids assigned to them and everything inside those; every
    other role sees all grids.
    """
    if principal.role != "worker":
        return None
    rows = conn.execute(
        sa.text(
            """
            SELECT geogrid_subtree(ARRAY(
                SELECT grid_code FROM assignments WHERE person_id = :person AND valid_to IS NULL))
            """
        ),
        {"person": principal.person_id},
    )
    return {code for (code,) in rows}


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("not a real password")
