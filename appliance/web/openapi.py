"""The OpenAPI 3.1 document of the declared operations (see appliance/web/api.py).

Generated, never written by hand: paths and parameters come from the operations'
templates and models, schemas from pydantic (`components.schemas`, JSON Schema
2020-12, which OpenAPI 3.1 uses as is). Each operation lists its declared status
and every error status the framework and the middlewares in front of it can
answer, all with the `Error` schema, so a client (or schemathesis) can rely on
"a status not listed here does not happen".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import appliance
from appliance.web import api

if TYPE_CHECKING:
    from appliance.web.api import Operation

ERROR_REF = {"$ref": api.REF_TEMPLATE.format(model="Error")}
SECURITY = [{"sessionCookie": []}, {"bearerToken": []}]

DESCRIPTION = """\
The REST API of a Tandem appliance. The same paths serve two realms, chosen by the host name:
a tenant at `<slug>.<cluster domain>` and the cluster console at the bare cluster domain.
An operation of the other realm answers 404 (`x-tandem-realm` says which realm an operation belongs to).

Sign in with `POST /api/v1/auth/login` (a session cookie; unsafe methods then need the
`X-CSRF-Token` header from `GET /api/v1/auth/me` and a same-origin `Origin`), or send an
API token as `Authorization: Bearer tdm_...`.

Errors are JSON `{"error": {"code", "message", "details"}}`; validation errors list
`details.fields = [{"field", "message"}]`. Lists answer `{"items": [...], "next_cursor"}`:
pass `next_cursor` back as `cursor` for the next page.
"""

# Statuses the framework (or the middlewares before it) answers, and why.
WHY = {
    401: "Not signed in, or the session or token is not valid for this host.",
    403: "Signed in, but the operation needs a higher role, or the CSRF check failed.",
    404: "Nothing at this address (also: an operation of the other realm, an unknown host).",
    413: "The request body is larger than the configured limit.",
    415: "The request body is not JSON.",
    422: "The input is not valid; `details.fields` says which field and why.",
    503: "The database is unavailable right now; try again later.",
}
CSRF_ONLY = "The CSRF check failed (a session cookie without a matching X-CSRF-Token header or Origin)."


def build_document(operations: list[Operation]) -> dict[str, Any]:
    """The document for `operations` (in the order given)."""
    schemas, refs = _component_schemas(operations)
    paths: dict[str, dict[str, Any]] = {
        api.OPENAPI_PATH: {"get": _openapi_operation()},
    }
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas)
    tags = sorted({tag for op in operations for tag in op.tags} | {"meta"})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tandem", "version": appliance.__version__, "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "The host you are talking to (tenant or console)."}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "sessionCookie": {
                    "type": "apiKey", "in": "cookie", "name": api.SESSION_COOKIE,
                    "description": "The session cookie set by POST /api/v1/auth/login "
                                   "(named `tandem_session` when the appliance serves plain HTTP).",
                },
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "An API token (`tdm_...`) created under /api/v1/tokens."},
            },
        },
    }


def _component_schemas(operations: list[Operation]) -> tuple[dict[str, Any], dict[tuple[type, str], dict]]:
    """components.schemas for every body and response model (and Error), and the
    `$ref` of each (model, mode)."""
    wanted: list[tuple[type[BaseModel], str]] = [(api.Error, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    wanted = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(wanted, ref_template=api.REF_TEMPLATE)
    return dict(top.get("$defs", {})), refs


def _operation(op: Operation, refs: dict, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
    }
    if op.description:
        doc["description"] = op.description
    parameters = (_parameters(op.params, "path", schemas)
                  + (_parameters(op.query, "query", schemas) if op.query is not None else []))
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": refs[(op.body, "validation")]}}}
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status)] = {"description": "Done."}
    else:
        responses[str(op.status)] = {
            "description": "Success.",
            "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
        }
    for status, why in sorted(_errors(op).items()):
        responses[str(status)] = _error_response(status, why)
    doc["responses"] = responses
    if op.role is not None:
        doc["security"] = SECURITY
    doc["x-tandem-realm"] = op.realm
    doc["x-tandem-role"] = op.role
    return doc


def _errors(op: Operation) -> dict[int, str]:
    errors = {404: WHY[404], 503: WHY[503]}
    if op.role is not None:
        errors[401] = WHY[401]
        errors[403] = WHY[403]
    elif op.method in api.UNSAFE_METHODS:
        errors[403] = CSRF_ONLY
    if op.body is not None:
        errors.update({413: WHY[413], 415: WHY[415], 422: WHY[422]})
    if op.query is not None:
        errors[422] = WHY[422]
    for status, why in op.errors.items():
        errors[status] = f"{errors[status]} {why}" if status in errors and why not in errors[status] else why
    return errors


def _error_response(status: int, why: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": why, "content": {"application/json": {"schema": ERROR_REF}}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                               "schema": {"type": "integer"}}}
    return response


def _parameters(model: type[BaseModel], where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=api.REF_TEMPLATE, mode="validation")
    for name, definition in schema.get("$defs", {}).items():
        schemas.setdefault(name, definition)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(dict(prop))
        prop.pop("title", None)
        parameter: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent rather than null: drop the null branch of `X | None`."""
    branches = prop.get("anyOf")
    if branches and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        del prop["anyOf"]
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
        if prop.get("default", 0) is None:
            del prop["default"]
    return prop


def _openapi_operation() -> dict[str, Any]:
    return {
        "operationId": "get_openapi",
        "summary": "This document",
        "tags": ["meta"],
        "responses": {
            "200": {"description": "The OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "404": _error_response(404, "Unknown host."),
            "503": _error_response(503, "The list of tenants cannot be read right now (tenant hosts only)."),
        },
        "x-tandem-realm": "any",
        "x-tandem-role": None,
    }
