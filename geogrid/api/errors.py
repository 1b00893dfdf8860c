"""Every error leaves the API as ``application/problem+json`` (RFC 9457) with a clear detail."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from geogrid.api import i18n
from geogrid.api.i18n import translate_error
from geogrid.errors import GeogridError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def _plain(extra: dict) -> dict:
    """The error's fields that can go into a JSON body as they are."""
    return {k: v for k, v in extra.items() if isinstance(v, str | int | float | bool | list | dict | type(None))}


def problem(status: int, detail: str, title: str | None = None, extra: dict | None = None) -> Response:
    """A problem+json response; *extra* members never replace the standard ones."""
    from http import HTTPStatus

    body = {
        **(extra or {}),
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


def install(app: Flask) -> None:
    """Map geogrid errors, HTTP errors and anything unexpected to problem responses."""

    @app.errorhandler(GeogridError)
    def _geogrid(err: GeogridError):
        detail = translate_error(err.template, err.extra) if err.extra else i18n.gettext(err.template)
        response = problem(err.http_status, detail, i18n.gettext(err.title), _plain(err.extra))
        if err.http_status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="geogrid"'
        return response

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        detail = {
            404: translate_error("no such resource: {path}", {"path": request.path}),
            405: translate_error("{method} is not allowed on {path}", {"method": request.method, "path": request.path}),
            413: translate_error(
                "request body is larger than the limit of {limit} bytes", {"limit": app.config["MAX_CONTENT_LENGTH"]}
            ),  # fmt: skip
        }.get(err.code, err.description)
        response = problem(err.code or 500, detail)
        if err.code == 405 and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(sa.exc.DataError)
    def _data(err: sa.exc.DataError):
        # The database refused a value the request carried (a number out of range, a NUL
        # character in text, ...): the caller's input, not a server fault. Found by fuzzing.
        first = str(err.orig).strip().splitlines()[0] if err.orig is not None else "invalid value"
        detail = translate_error("a value in the request cannot be stored or searched: {reason}", {"reason": first})
        return problem(422, detail, i18n.gettext("Invalid input"))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, i18n.gettext("internal error; the server log has the details"))
