"""Page sessions kept server-side, and the sign-in record with its throttle.

A session is a random token in the (signed) cookie whose SHA-256 is a row here: the
server decides whether it still holds, so signing out, a new password or disabling the
user ends it at once, and a copied cookie dies with it. It also ends
``session_hours`` after sign-in and ``session_idle_minutes`` after the last request.

Every sign-in, failed attempt, lockout and sign-out is a row of ``sign_in_events``
(audited). After ``login_failures`` failures of one name, or ``login_address_failures``
from one address, within ``login_window_s``, the form answers 429 with the time to
wait, for known and unknown names alike, without looking at the password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.accounts import Principal
from geogrid.config import Settings

#: A session's last request is written down at most this often (a write per request would
#: cost more than the idle timeout needs).
TOUCH_EVERY = dt.timedelta(seconds=60)
#: Longest user name or address kept in the sign-in record.
MAX_TEXT = 100


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(conn: Connection, principal: Principal, address: str | None) -> str:
    """A new session for *principal*; the token goes into the cookie, its hash into the table."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        sa.text("INSERT INTO sessions (token_sha256, user_id, address) VALUES (:h, :u, :a)"),
        {"h": _sha(token), "u": principal.id, "a": (address or "")[:MAX_TEXT] or None},
    )
    record(conn, principal.name, address, "signed_in")
    return token


def holder(conn: Connection, settings: Settings, token: str) -> Principal | None:
    """The active user whose live session *token* is, or None (ended, too old, idle too long, disabled)."""
    row = conn.execute(
        sa.text(
            """
            SELECT s.id, s.last_seen_at, now() AS now, u.id AS user_id, u.name, u.role, u.person_id, u.language
              FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_sha256 = :h AND s.ended_at IS NULL AND u.active
               AND s.created_at > now() - make_interval(secs => :absolute)
               AND s.last_seen_at > now() - make_interval(secs => :idle)
            """
        ),
        {"h": _sha(token), "absolute": settings.session_hours * 3600, "idle": settings.session_idle_minutes * 60},
    ).first()
    if row is None:
        return None
    if row.now - row.last_seen_at >= TOUCH_EVERY:
        conn.execute(sa.text("UPDATE sessions SET last_seen_at = now() WHERE id = :id"), {"id": row.id})
    return Principal(row.user_id, row.name, row.role, row.person_id, row.language)


def end(conn: Connection, token: str, address: str | None) -> None:
    """Sign out: the session ends (its cookie is refused from now on)."""
    name = conn.execute(
        sa.text(
            "UPDATE sessions s SET ended_at = now(), ended_reason = 'signed out' FROM users u "
            "WHERE u.id = s.user_id AND s.token_sha256 = :h AND s.ended_at IS NULL RETURNING u.name"
        ),
        {"h": _sha(token)},
    ).scalar()
    if name is not None:
        record(conn, name, address, "signed_out")


def end_all(conn: Connection, user_id: int, reason: str, *, keep: str | None = None) -> int:
    """End every live session of a user (a new password, disabled); *keep* one (the caller's own). How many."""
    return conn.execute(
        sa.text(
            "UPDATE sessions SET ended_at = now(), ended_reason = :reason WHERE user_id = :u AND ended_at IS NULL "
            "AND (CAST(:keep AS text) IS NULL OR token_sha256 <> :keep)"
        ),
        {"u": user_id, "reason": reason, "keep": _sha(keep) if keep else None},
    ).rowcount


def record(conn: Connection, name: str, address: str | None, event: str) -> None:
    """Write a sign-in event (audited)."""
    conn.execute(
        sa.text("INSERT INTO sign_in_events (name, address, event) VALUES (:n, :a, :e)"),
        {"n": (name or "")[:MAX_TEXT], "a": (address or "")[:MAX_TEXT] or None, "e": event},
    )


def wait_seconds(conn: Connection, settings: Settings, name: str, address: str | None) -> int:
    """How long sign-ins for *name* or from *address* are refused now (0: they are not).

    Failures count within the window, and for a name only since its last success; the
    wait lasts until the oldest counted failure leaves the window.
    """
    row = conn.execute(
        sa.text(
            """
            WITH recent AS (
                SELECT name, address, at, event FROM sign_in_events
                 WHERE at > now() - make_interval(secs => :window) AND (name = :name OR address = :address)
            ),
            by_name AS (
                SELECT at FROM recent
                 WHERE name = :name AND event = 'failed'
                   AND at > coalesce((SELECT max(at) FROM recent WHERE name = :name AND event = 'signed_in'),
                                     '-infinity')
                 ORDER BY at DESC LIMIT :per_name
            ),
            by_address AS (
                SELECT at FROM recent WHERE address = :address AND event = 'failed' ORDER BY at DESC LIMIT :per_address
            )
            SELECT (SELECT CASE WHEN count(*) >= :per_name THEN min(at) END FROM by_name) AS name_since,
                   (SELECT CASE WHEN count(*) >= :per_address THEN min(at) END FROM by_address) AS address_since,
                   now() AS now
            """
        ),
        {"window": settings.login_window_s, "name": (name or "")[:MAX_TEXT], "address": (address or "")[:MAX_TEXT],
         "per_name": settings.login_failures, "per_address": settings.login_address_failures},
    ).one()  # fmt: skip
    since = [t for t in (row.name_since, row.address_since) if t is not None]
    if not since:
        return 0
    until = max(since) + dt.timedelta(seconds=settings.login_window_s)
    return max(1, math.ceil((until - row.now).total_seconds()))
