"""One error hierarchy: each error carries an HTTP status and a message safe to show."""

from __future__ import annotations


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose.

    ``str(err)`` is the public message: the CLI prints it as one line and the API
    puts it in the ``detail`` of a problem+json body with ``http_status``.
    """

    http_status = 500
    title = "Internal error"

    def __init__(self, message: str, **extra) -> None:
        super().__init__(message)
        #: Extra members for the problem body (e.g. the offending geometry).
        self.extra = extra


class ConfigError(GeogridError):
    """A setting is missing or malformed."""

    title = "Configuration error"


class DatabaseUnavailable(GeogridError):
    """The database cannot be started or reached."""

    http_status = 503
    title = "Database unavailable"


class PostGISMissing(DatabaseUnavailable):
    """PostgreSQL is there but the PostGIS extension is not installed."""

    title = "PostGIS not installed"


class InvalidInput(GeogridError):
    """The request or file is malformed or out of range."""

    http_status = 422
    title = "Invalid input"


class NotFound(GeogridError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    http_status = 404
    title = "Not found"


class Conflict(GeogridError):
    """The change conflicts with the current state (stale version, duplicate)."""

    http_status = 409
    title = "Conflict"


class Unauthorized(GeogridError):
    """No valid credentials were given."""

    http_status = 401
    title = "Unauthorized"


class Forbidden(GeogridError):
    """The caller's role may not do this."""

    http_status = 403
    title = "Forbidden"
