"""What every blueprint needs from the app: settings, the database bind, the caller."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager

from flask import current_app, g
from sqlalchemy.engine import Connection

from geogrid.accounts import Principal
from geogrid.config import Settings
from geogrid.errors import Unauthorized
from geogrid.store.db import Bind, unit_of_work


@dataclasses.dataclass(frozen=True)
class AppState:
    """Kept in ``app.extensions['geogrid']`` by the factory."""

    settings: Settings
    bind: Bind
    #: Brings patrol days up to date in the background after uploads (None: pages do it when asked).
    refresher: object | None = None


def state() -> AppState:
    """The running app's settings and database bind."""
    return current_app.extensions["geogrid"]


def db() -> AbstractContextManager[Connection]:
    """One transaction for one unit of work: ``with db() as conn: ...``."""
    who = g.get("principal")
    return unit_of_work(state().bind, actor=who.name if who is not None else None)


def principal() -> Principal:
    """The authenticated caller (the access check has already run)."""
    who = g.get("principal")
    if who is None:
        raise Unauthorized("authentication required")
    return who
