"""Every error leaves the API as ``application/problem+json`` (RFC 9457) with a clear detail."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from geogrid.errors import GeogridError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


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
        response = problem(err.http_status, str(err), err.title, err.extra)
        if err.http_status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="geogrid"'
        return response

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        detail = {
            404: f"no such resource: {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"request body is larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes",
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
        return problem(422, f"a value in the request cannot be stored or searched: {first}", "Invalid input")

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error; the server log has the details")
