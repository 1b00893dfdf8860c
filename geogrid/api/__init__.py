"""The Flask app factory: one blueprint per concern, problem+json errors, role checks."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from geogrid.api import auth, errors
from geogrid.api.context import AppState
from geogrid.config import Settings
from geogrid.store.db import Bind, make_engine


def create_app(settings: Settings | None = None, bind: Bind | None = None) -> Flask:
    """Build the geogrid web app.

    *settings* default to the ``GEOGRID_*`` environment. *bind* is the database
    engine (default: one for the configured database, which must be running) or, in
    tests, an open connection whose transaction every request joins.
    """
    settings = settings or Settings.from_env()
    bind = bind if bind is not None else make_engine(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The cookie carries a session token; whether it still holds is the server's to say (geogrid.sessions).
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
    )
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    from geogrid.api.refresh import refresher

    app.extensions["geogrid"] = AppState(settings=settings, bind=bind, refresher=refresher(settings, bind))

    from geogrid.api import (
        audit,
        coverage,
        grids,
        health,
        i18n,
        incidents,
        maps,
        pages,
        patrols,
        people,
        reports,
        security,
        users,
        worker,
    )

    blueprints = (health.bp, users.bp, people.bp, grids.bp, incidents.bp, patrols.bp, coverage.bp, audit.bp,
                  pages.bp, maps.bp, reports.bp, worker.bp)  # fmt: skip
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    errors.install(app)
    auth.install(app)
    security.install(app, settings)
    i18n.install(app, settings)
    return app
