"""Parse and validate request input at the edge; bad input becomes a 422 with a clear detail."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from geogrid.errors import InvalidInput


def json_body() -> dict:
    """The request's JSON object; refuses other content types, bad JSON and non-objects.

    Strict JSON (RFC 8259): ``NaN`` and ``Infinity``, which Python would read, are refused,
    and so is nesting too deep for the parser (a stack-exhaustion attempt).
    """
    if not request.is_json:
        raise InvalidInput("send the request body as JSON (Content-Type: application/json)")
    try:
        body = json.loads(request.get_data(cache=True), parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidInput("the request body is not valid JSON: nested too deeply") from None
    except ValueError:  # also bad UTF-8
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _refuse_constant(name: str):
    raise InvalidInput("the request body is not valid JSON: {name} is not a JSON number", name=name)


def required(body: dict, name: str, kind: type) -> Any:
    """A member that must be present and of *kind*."""
    if name not in body or body[name] is None:
        raise InvalidInput("missing required field {name!r}", name=name)
    return _typed(body, name, kind)


def optional(body: dict, name: str, kind: type) -> Any:
    """A member that may be absent or null."""
    if body.get(name) is None:
        return None
    return _typed(body, name, kind)


def _typed(body: dict, name: str, kind: type) -> Any:
    value = body[name]
    # bool is an int in Python; JSON true is not a number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput("field {name!r} must be a {kind}", name=name, kind=kind.__name__)
    return value


def query_int(args, name: str, default: int) -> int:
    """Integer query parameter *name* of *args*, *default* when absent; 422 when not an integer."""
    text = args.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput("{name} must be an integer, not {text!r}", name=name, text=text) from None
