"""The OpenAPI 3.1 document, built from the routes' :class:`Op` declarations and the
same pydantic models the API and the core validate with.

Each operation lists the error statuses it can return and no others
(:meth:`Op.all_errors`): 400 and 500 everywhere; 503 where the database is used;
401 where a token is needed; 413 and 415 on POST, PUT and PATCH; 429 where
rate-limited; then its own ``errors``. A business rule that refuses a request
the schema allows (``refusals``: the password policy, a lockout, an unknown
token) is described on its status, so a client, and schemathesis, can tell
it from a malformed request.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from usermgmt import __version__
from usermgmt.api.operations import Op
from usermgmt.api.schemas import ErrorBody, NoQuery

REF = "#/components/schemas/{model}"
METHODS = ("get", "post", "put", "patch", "delete")

ERROR_TEXT = {
    400: "VALIDATION_ERROR: the body or the query does not match the schema",
    401: "UNAUTHORIZED, INVALID_CREDENTIALS or TOKEN_REUSED",
    403: "FORBIDDEN or ACCOUNT_DISABLED",
    404: "NOT_FOUND (also for a malformed id or a deleted user)",
    409: "EMAIL_EXISTS, USERNAME_EXISTS or CONFLICT",
    413: "PAYLOAD_TOO_LARGE: body over the configured limit",
    415: "UNSUPPORTED_MEDIA_TYPE: a body of a media type the operation does not take",
    423: "ACCOUNT_LOCKED: details.locked_until",
    429: "RATE_LIMITED: see Retry-After",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE: the database does not answer",
}
PATH_PARAMETERS = {
    "user_id": "The user's id (a malformed id is a 404)",
    "mail_id": "The mail message's id, from the mail listing (a malformed id is a 404)",
    "session_id": "The session's id, from a user's sessions (a malformed id is a 404)",
    "key_id": "The API key's id (a malformed id is a 404)",
}
SUCCESS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}
RAW_CONTENT = {
    "/metrics": ("text/plain", {"type": "string"}),
    "/openapi.json": ("application/json", {"type": "object"}),
    "/docs": ("text/html", {"type": "string"}),
}
INFO_DESCRIPTION = """User management REST API.

Authenticate with `Authorization: Bearer <access token>` (from login, register
or refresh) or `Authorization: Bearer <API key>` (`umk_…`, from POST
/api/v1/api-keys; it acts with the intersection of its scopes and its owner's
current roles). Every error has the body `{"error": {code, message, details?,
field_errors?, request_id, timestamp}}`; every response carries `X-Request-ID`.
Write bodies are JSON objects; unknown fields are refused with 400, as are
unknown query parameters.
"""


# Headers a response of that status always carries (besides X-Request-ID).
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "required": True,
            "description": "Bearer",
            "schema": {"type": "string"},
        }
    },
    423: {
        "Retry-After": {
            "description": "Seconds until a temporary lock ends (absent for an admin's lock)",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    429: {
        "Retry-After": {
            "required": True,
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    503: {
        "Retry-After": {
            "required": True,
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}
SUCCESS_HEADERS = {
    "Location": {
        "required": True,
        "description": "The created user (/api/v1/users/{id})",
        "schema": {"type": "string", "format": "uri-reference"},
    }
}


def _strip_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` -> X, for query parameters (a query string has no null)."""
    options = schema.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        other = next(o for o in options if o != {"type": "null"})
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if rest.get("default", 0) is None:
            rest.pop("default")
        return {**other, **rest}
    return schema


def _query_parameters(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    if model is NoQuery:
        return []
    schema = model.model_json_schema(ref_template=REF)
    for name, sub in schema.get("$defs", {}).items():
        defs.setdefault(name, sub)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = _strip_nullable(copy.deepcopy(prop))
        description = prop.pop("description", None) or prop.get("title", "")
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def operations(routes) -> Iterator[tuple[str, str, Op, object]]:
    """(path, method, declaration, resource) of each operation of ``routes``."""
    for path, resource in routes:
        for method in METHODS:
            op: Op | None = getattr(getattr(resource, f"on_{method}", None), "op", None)
            if op is not None:
                yield path, method, op, resource


def _collect_models(routes) -> tuple[list, list]:
    inputs: list[type[BaseModel]] = []
    outputs: list[type[BaseModel]] = [ErrorBody]
    for _path, _method, op, _resource in operations(routes):
        if op.body and op.body not in inputs:
            inputs.append(op.body)
        if op.response and op.response not in outputs:
            outputs.append(op.response)
    return inputs, outputs


def build_openapi(routes, *, max_body_bytes: int) -> dict[str, Any]:
    """``routes``: (path, resource) pairs, as added to the Falcon app."""
    inputs, outputs = _collect_models(routes)
    keys, schema = models_json_schema(
        [(m, "validation") for m in inputs] + [(m, "serialization") for m in outputs],
        ref_template=REF,
    )
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    ref_in = {m: keys[(m, "validation")] for m in inputs}
    ref_out = {m: keys[(m, "serialization")] for m in outputs}
    error_ref = ref_out[ErrorBody]
    request_id_header = {"$ref": "#/components/headers/X-Request-ID"}

    paths: dict[str, Any] = {}
    for path, method, op, resource in operations(routes):
        item = paths.setdefault(path, {})
        public = getattr(resource, "public", False)
        has_body = method in ("post", "put", "patch") or op.body is not None
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
                "description": PATH_PARAMETERS.get(
                    name, f"The {name.removesuffix('_id')}'s id (a malformed id is a 404)"
                ),
            }
            for name in _path_names(path)
        ]
        params += _query_parameters(op.query, defs)
        success: dict[str, Any] = {
            "description": SUCCESS_TEXT.get(op.success, "Success"),
            "headers": {"X-Request-ID": request_id_header},
        }
        for header in op.success_headers:
            success["headers"][header] = SUCCESS_HEADERS[header]
        if op.response is not None:
            success["content"] = {"application/json": {"schema": ref_out[op.response]}}
        elif op.response_media:
            success["content"] = {m: {"schema": schema} for m, schema in op.response_media}
        elif path in RAW_CONTENT:
            media, raw_schema = RAW_CONTENT[path]
            success["content"] = {media: {"schema": raw_schema}}
        responses: dict[str, Any] = {str(op.success): success}
        refusals = dict(op.refusals)
        for code in op.all_errors(public=public, has_body=has_body):
            description = ERROR_TEXT[code]
            if code in refusals:
                description += f". Also, for a request the schema allows: {refusals[code]}"
            responses[str(code)] = {
                "description": description,
                "headers": {"X-Request-ID": request_id_header, **ERROR_HEADERS.get(code, {})},
                "content": {"application/json": {"schema": error_ref}},
            }
        operation: dict[str, Any] = {
            "operationId": operation_id(method, path),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
            "security": [] if public else [{"bearerAuth": []}],
        }
        if op.description:
            operation["description"] = op.description
        if params:
            operation["parameters"] = params
        if op.body is not None:
            operation["requestBody"] = {
                "required": op.body_required,
                "content": {"application/json": {"schema": ref_in[op.body]}},
            }
        elif op.upload_media:
            operation["requestBody"] = {
                "required": True,
                "content": {m: {"schema": {"type": "string"}} for m in op.upload_media},
            }
        item[method] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "usermgmt API",
            "version": __version__,
            "description": INFO_DESCRIPTION
            + f"\nRequest bodies are limited to {max_body_bytes} bytes.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "auth", "description": "Registration, login, tokens, self-service"},
            {"name": "users", "description": "User administration"},
            {"name": "audit", "description": "The audit log"},
            {"name": "roles", "description": "Roles"},
            {"name": "mail", "description": "The outgoing mail queue"},
            {"name": "api-keys", "description": "API keys for apps and cron jobs"},
            {"name": "webhooks", "description": "Webhook subscriptions and deliveries (admin)"},
            {"name": "operations", "description": "Health, metrics and documentation"},
        ],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "headers": {
                "X-Request-ID": {
                    "required": True,
                    "description": "The request id (the caller's if sane, else generated)",
                    "schema": {"type": "string"},
                }
            },
        },
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def operation_id(method: str, path: str) -> str:
    words = [p.strip("{}").replace("-", "_") for p in path.split("/") if p and p not in ("api",)]
    words = [w for w in words if w != "v1"]
    return method + "_" + "_".join(words or ["root"])


def render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
