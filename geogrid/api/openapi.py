"""The OpenAPI 3.1 document, built from the app's own routes so it lists every one.

Views may add request/response details with :func:`doc`; paths, methods, path
parameters, security and the problem responses come from the routes and their
access declarations.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from flask import Flask

from geogrid import __version__
from geogrid.api.auth import PUBLIC

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}
_CONVERTERS = {"int": {"type": "integer"}, "float": {"type": "number"}}
_RULE_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def doc(
    *,
    query: dict[str, dict] | None = None,
    body: dict | None = None,
    response: dict | None = None,
    status: int = 200,
    media_type: str = "application/json",
) -> Callable:
    """Describe a view's query parameters, request body and success response (JSON Schema)."""

    def mark(view: Callable) -> Callable:
        view.geogrid_doc = {
            "query": query or {},
            "body": body,
            "response": response,
            "status": status,
            "media_type": media_type,
        }
        return view

    return mark


def build(app: Flask) -> dict:
    """The OpenAPI document for every ``/api/`` route of *app*."""
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = _RULE_ARG.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, view, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "geogrid API",
            "version": __version__,
            "description": "Grid boundaries, incidents and patrol coverage for a grid center. "
            "Errors are application/problem+json.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


def _operation(rule, view: Callable, method: str) -> dict:
    info = getattr(view, "geogrid_doc", None) or doc()(lambda: None).geogrid_doc
    summary, _, description = (inspect.getdoc(view) or rule.endpoint).partition("\n")
    allowed = view.geogrid_access
    params = [
        {"name": name, "in": "path", "required": True,
         "schema": _CONVERTERS.get(conv or "", {"type": "string"})}
        for conv, name in _RULE_ARG.findall(rule.rule)
    ]  # fmt: skip
    params += [
        {"name": name, "in": "query", "required": False, "schema": schema} for name, schema in info["query"].items()
    ]
    success = {"description": "OK"}
    if info["response"] is not None:
        success["content"] = {info["media_type"]: {"schema": info["response"]}}
    problem = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    responses = {str(info["status"]): success}
    for code, text in [
        ("400", "Bad request"),
        ("422", "Invalid input"),
        ("503", "Database unavailable"),
    ]:
        responses[code] = {"description": text, **problem}
    op = {
        "operationId": f"{method.lower()}_{rule.endpoint.replace('.', '_')}",
        "summary": summary.strip(),
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": params,
        "responses": responses,
    }
    if description.strip():
        op["description"] = description.strip()
    if PUBLIC in allowed:
        op["security"] = []
    else:
        op["security"] = [{"bearer": []}, {"session": []}]
        responses["401"] = {"description": "Not authenticated", **problem}
        responses["403"] = {
            "description": "Role not allowed: " + ", ".join(sorted(allowed)),
            **problem,
        }
        op["x-roles"] = sorted(allowed)
    if method in ("POST", "PUT", "PATCH"):
        responses["413"] = {"description": "Request body too large", **problem}
        if info["body"] is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": info["body"]}},
            }
    return op
