"""One error hierarchy: each error carries an HTTP status and a message safe to show.

A message is an English template with named fields, ``InvalidInput("no grid {code}",
code=code)``: ``str(err)`` fills it in (the CLI prints that), and the API translates the
template from the gettext catalogue first (``geogrid.api.i18n``), so the words follow the
caller's language. The fields also go into the API's problem body. The templates are
extracted for translation by the exception's name (``babel.cfg``), so a message must be
a literal, not an f-string.
"""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 (gettext's name for a text marked, not translated, here)
    """Mark *text* for the catalogue without translating it now (titles, labels)."""
    return text


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose.

    ``str(err)`` is the public message: the CLI prints it as one line and the API
    puts it in the ``detail`` of a problem+json body with ``http_status``.
    """

    http_status = 500
    title = N_("Internal error")

    def __init__(self, message: str, **extra) -> None:
        #: The English template, and the values that fill it in.
        self.template = message
        try:
            text = message.format(**extra) if extra else message
        except (KeyError, IndexError, ValueError):
            text = message
        super().__init__(text)
        #: Extra members for the problem body (e.g. the offending geometry), and the template's fields.
        self.extra = extra


class ConfigError(GeogridError):
    """A setting is missing or malformed."""

    title = N_("Configuration error")


class DatabaseUnavailable(GeogridError):
    """The database cannot be started or reached."""

    http_status = 503
    title = N_("Database unavailable")


class PostGISMissing(DatabaseUnavailable):
    """PostgreSQL is there but the PostGIS extension is not installed."""

    title = N_("PostGIS not installed")


class InvalidInput(GeogridError):
    """The request or file is malformed or out of range."""

    http_status = 422
    title = N_("Invalid input")


class NotFound(GeogridError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    http_status = 404
    title = N_("Not found")


class Conflict(GeogridError):
    """The change conflicts with the current state (stale version, duplicate)."""

    http_status = 409
    title = N_("Conflict")


class Unauthorized(GeogridError):
    """No valid credentials were given."""

    http_status = 401
    title = N_("Unauthorized")


class Forbidden(GeogridError):
    """The caller's role may not do this."""

    http_status = 403
    title = N_("Forbidden")


class TooLarge(GeogridError):
    """The file is larger than its limit."""

    http_status = 413
    title = N_("Too large")
