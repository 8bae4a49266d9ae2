"""Strict JSON in, pydantic JSON out.

Request bodies: at most ``max_bytes`` (checked against Content-Length before
reading, and again while reading, for chunked bodies), ``application/json``
only, UTF-8, an object at the top, no NaN/Infinity, no duplicate keys, nesting
at most :data:`MAX_DEPTH` deep. Anything else is a 400/413/415 with the
contract's error body.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
from pydantic import BaseModel

from usermgmt.api.errors import ApiError, bad_request

MAX_DEPTH = 16
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "PAYLOAD_TOO_LARGE",
        f"Request body is larger than {limit} bytes",
        details={"max_bytes": limit},
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("Request body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise bad_request(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise bad_request(f"Malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request("Request body must be a JSON object")
    if not _depth_ok(value, MAX_DEPTH):
        raise bad_request(f"JSON is nested more than {MAX_DEPTH} levels deep")
    return value


def is_json_media(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if mime != "application/json" and not (
        mime.startswith("application/") and mime.endswith("+json")
    ):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def read_body(req: falcon.Request, max_bytes: int) -> dict[str, Any] | None:
    """The request's JSON object, or None when it has no body at all."""
    length = req.content_length
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)
    if not length and not chunked:
        return None
    if not is_json_media(req.content_type):
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Request body must be JSON (Content-Type: application/json)",
        )
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    if not raw:
        return None
    return parse_json_object(raw)


def write_model(resp: falcon.Response, model: BaseModel, status: int = 200) -> None:
    """Serialise a pydantic model (fast path: pydantic's own JSON encoder)."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = model.model_dump_json().encode()
