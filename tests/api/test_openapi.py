"""The OpenAPI document: complete, generated from the models, and honoured (schemathesis)."""

from __future__ import annotations

import contextlib
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from usermgmt.api.app import create_app, route_table
from usermgmt.api.openapi import operation_id, operations
from usermgmt.api.operations import Op
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import AuthenticationError
from usermgmt.core.services import build_services

from .api_helpers import API, STRONG_PASSWORD

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
KEEP_ENV = {"USERMGMT_TEST_POSTGRES_URL", "USERMGMT_PG_BIN"}

METHODS = ("get", "post", "put", "patch", "delete")
AUTH_PATHS = (
    "register login refresh logout me change-password forgot-password reset-password "
    "verify-email resend-verification"
)


def test_document_covers_every_route_and_status(api):
    doc = api.simulate_get("/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    expected = {f"{API}/auth/{p}" for p in AUTH_PATHS.split()} | {
        f"{API}/users",
        f"{API}/users/{{user_id}}",
        f"{API}/users/{{user_id}}/restore",
        f"{API}/users/{{user_id}}/lock",
        f"{API}/users/{{user_id}}/unlock",
        f"{API}/users/{{user_id}}/roles",
        f"{API}/users/{{user_id}}/sessions",
        f"{API}/audit",
        f"{API}/roles",
        # remote mode (tests/api/test_remote_endpoints.py)
        f"{API}/info",
        f"{API}/users/resolve",
        f"{API}/users/ensure",
        f"{API}/users/import",
        f"{API}/users/export",
        f"{API}/audit/verify",
        f"{API}/maintenance/purge",
        f"{API}/mail",
        f"{API}/mail/deliver",
        f"{API}/mail/{{mail_id}}/retry",
        f"{API}/users/{{user_id}}/password",
        f"{API}/sessions/{{session_id}}",
        f"{API}/audit/head",
        f"{API}/api-keys",
        f"{API}/api-keys/{{key_id}}",
        # the second factor (tests/api/test_mfa.py)
        f"{API}/auth/mfa/verify",
        f"{API}/auth/mfa/totp/setup",
        f"{API}/auth/mfa/totp/confirm",
        f"{API}/auth/mfa/totp",
        f"{API}/auth/mfa/recovery-codes",
        f"{API}/users/{{user_id}}/mfa",
        f"{API}/webhooks",
        f"{API}/webhooks/{{webhook_id}}",
        f"{API}/webhooks/{{webhook_id}}/deliveries",
        f"{API}/webhooks/{{webhook_id}}/test",
        f"{API}/webhooks/{{webhook_id}}/replay",
        f"{API}/webhook-deliveries/{{delivery_id}}/retry",
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
    assert set(paths) == expected
    login = paths[f"{API}/auth/login"]["post"]
    assert {"200", "400", "401", "403", "413", "415", "423", "429", "500", "503"} <= set(
        login["responses"]
    )
    assert "Retry-After" in login["responses"]["429"]["headers"]
    users = paths[f"{API}/users"]["get"]
    assert {p["name"] for p in users["parameters"]} == {
        "page",
        "limit",
        "search",
        "role",
        "status",
        "include_deleted",
        "sort",
        "cursor",
    }
    assert users["security"] == [{"bearerAuth": []}]
    assert paths[f"{API}/auth/register"]["post"]["security"] == []
    schemas = doc["components"]["schemas"]
    # The same pydantic models the API validates with.
    assert schemas["UserCreate"]["additionalProperties"] is False
    assert set(schemas["UserOut"]["properties"]) >= {"id", "email", "roles", "deleted_at"}
    assert "password_hash" not in schemas["UserOut"]["properties"]
    no_database = {"/health", "/health/live", "/metrics", "/openapi.json", "/docs"}
    for path, item in paths.items():
        for method, op in item.items():
            assert method in METHODS
            assert "400" in op["responses"] and "500" in op["responses"], (path, method)
            assert ("503" in op["responses"]) == (path not in no_database), (path, method)
            assert ("401" in op["responses"]) == (op["security"] != []) or path in (
                f"{API}/auth/login",
                f"{API}/auth/refresh",
                f"{API}/auth/mfa/verify",
            )
            # (a DELETE with a body: turning the second factor off)
            takes_body = method in ("post", "put", "patch") or "requestBody" in op
            assert ("413" in op["responses"]) == takes_body
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody")


def test_document_is_faithful_to_formats_limits_and_headers(api):
    doc = api.simulate_get("/openapi.json").json
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    user_out = schemas["UserOut"]["properties"]
    for name in ("created_at", "updated_at"):
        assert user_out[name] == {
            "format": "date-time",
            "title": name.title().replace("_", " "),
            "type": "string",
        }
    assert {"format": "date-time", "type": "string"} in user_out["deleted_at"]["anyOf"]
    assert schemas["ErrorDetail"]["properties"]["timestamp"]["format"] == "date-time"
    email = schemas["UserCreate"]["properties"]["email"]
    assert email["maxLength"] == 254 and email["format"] == "idn-email"
    # Omittable is not nullable: a PATCH may leave timezone out, never send null.
    profile = schemas["ProfileIn"]["properties"]
    assert profile["timezone"]["type"] == "string" and "default" not in profile["timezone"]
    assert profile["locale"]["maxLength"] == 16
    patch = schemas["UserPatch"]["properties"]
    assert patch["is_active"] == {"title": "Is Active", "type": "boolean"}
    assert patch["email"]["type"] == "string"
    for path in (f"{API}/users", f"{API}/auth/register"):
        created = paths[path]["post"]["responses"]["201"]
        assert created["headers"]["Location"]["required"] is True
    audit = {p["name"]: p for p in paths[f"{API}/audit"]["get"]["parameters"]}
    assert audit["since"]["schema"] == {"format": "date-time", "type": "string"}
    # Business rules are declared where they apply, and only there.
    login = paths[f"{API}/auth/login"]["post"]["responses"]
    assert "too many failed logins" in login["423"]["description"]
    register = paths[f"{API}/auth/register"]["post"]["responses"]
    assert "password policy" in register["400"]["description"]
    assert "423" not in register and "404" not in register
    assert "403" not in paths[f"{API}/auth/refresh"]["post"]["responses"]
    assert set(paths["/health/live"]["get"]["responses"]) == {"200", "400", "500"}


def test_docs_page_is_local(api):
    page = api.simulate_get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    for name in ("docs.js", "docs.css"):
        asset = api.simulate_get(f"/docs/{name}")
        assert asset.status_code == 200
        assert "http://" not in asset.text and "https://" not in asset.text
    assert "http" not in page.text.replace("http-equiv", "")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


# ---- schemathesis ----------------------------------------------------------------
# Every check, on both databases, as an admin (so protected operations run). A
# schema-valid request must get a success or a status its operation declares for
# something other than malformed input; where a business rule the schema cannot
# express refuses such a request (the password policy, a lockout, an unknown token or
# cursor), the operation declares it (``refusals``) and only that operation accepts it.

MAX_EXAMPLES = int(os.environ.get("USERMGMT_SCHEMATHESIS_EXAMPLES", "10"))
MALFORMED = {400, 413, 415}  # what a schema-valid request never deserves
NO_SUCH_KEY = "00000000-0000-4000-8000-000000000000"  # a well-formed API key id (404)


def accepted_for_valid_data(op: Op, *, public: bool, has_body: bool) -> list[str]:
    declared = set(op.all_errors(public=public, has_body=has_body))
    statuses = declared - MALFORMED - {429, 500, 503}  # 5xx: not_a_server_error's job
    statuses |= {status for status, _rule in op.refusals}
    return ["2xx", *map(str, sorted(statuses))]


def schemathesis_config(services, target_id: str) -> schemathesis.Config:
    routes = route_table(services, limiter=None, metrics=None)
    mail = services.mail.list(Actor.operator("cli", "fuzz"), limit=1000).data
    invitation_id = str(next(m.id for m in mail if str(m.user_id) == target_id))
    per_operation = [
        {
            "include-operation-id": operation_id(method, path),
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": accepted_for_valid_data(
                        op,
                        public=getattr(resource, "public", False),
                        has_body=method in ("post", "put", "patch"),
                    )
                },
                **UPLOAD_CHECKS.get(path, {}),
            },
        }
        for path, method, op, resource in operations(routes)
    ]
    return schemathesis.Config.from_dict(
        {
            "checks": {
                "enabled": True,
                # Malformed input is a 400 (or 413/415) before anything else happens;
                # a request without its Authorization header is a 401.
                "negative_data_rejection": {
                    "expected-statuses": sorted(map(str, MALFORMED | {401}))
                },
            },
            "operations": per_operation,
            # A real user, so operations on {user_id} do their work instead of a 404;
            # the same for {mail_id}: the target's invitation. No session is pinned:
            # {session_id} is a well-formed id of none (a 404); {key_id} likewise.
            # No such webhook or delivery: their operations answer 404 (declared).
            "parameters": {
                "path.user_id": target_id,
                "path.mail_id": invitation_id,
                "path.session_id": "00000000-0000-4000-8000-000000000000",
                "path.key_id": NO_SUCH_KEY,
                "path.webhook_id": "00000000-0000-4000-8000-000000000001",
                "path.delivery_id": "00000000-0000-4000-8000-000000000002",
            },
        }
    )


# An upload's body is a file: any text is a body of the declared type (a string), and
# a "schema-violating" one (JSON where CSV is declared) is read row by row like any
# file, its bad rows reported with their line numbers in a 200 — checked by
# tests/api/test_remote_endpoints.py, not a schema violation to reject.
UPLOAD_CHECKS = {f"{API}/users/import": {"negative_data_rejection": {"enabled": False}}}

# Schemathesis draws email domains under .test and .example too, which the API refuses
# on purpose (special-use names, RFC 6761; tests/core checks the refusal): valid data
# here is an address a person could have, as Hypothesis's emails() draws them.
for email_format in ("email", "idn-email"):
    schemathesis.openapi.format(email_format, st.emails())


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_target(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as cleanup:
        for name in list(os.environ):
            if name.startswith("USERMGMT_") and name not in KEEP_ENV:
                mp.delenv(name)
        data = tmp_path_factory.mktemp("fuzz")
        mp.setenv("USERMGMT_DATA_DIR", str(data))
        if request.param == "sqlite":
            url = f"sqlite:///{data / 'fuzz.db'}"
        else:
            databases = request.getfixturevalue("pg_databases")
            url = cleanup.enter_context(databases.new(prefix="fuzz"))
        services = build_services(
            load_settings(
                database_url=url,
                bcrypt_rounds=4,
                rate_limit_login="off",
                rate_limit_auth="off",
            )
        )
        operator, ctx = Actor.operator("cli", "fuzz"), RequestContext()
        admin = {"email": "fuzz-admin@example.com", "password": STRONG_PASSWORD}
        services.users.create(operator, ctx, {**admin, "roles": ["admin"]})
        target = services.users.create(operator, ctx, {"email": "fuzz-target@example.com"})
        yield services, create_app(services), admin, str(target.id)
        services.close()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_target):
    services, app, _admin, target_id = fuzz_target
    return schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis_config(services, target_id)
    )


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_schemathesis_all_checks(case, fuzz_target, admin_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token()}"})


@pytest.fixture(scope="module")
def admin_token(fuzz_target):
    """The admin's access token, renewed when a fuzzed request revoked its session (a
    logout, or all sessions of a user id the fuzzer read from a listing), so the rest
    of the run is not a series of 401s."""
    services, _app, admin, _target_id = fuzz_target
    token = None

    def current() -> str:
        nonlocal token
        if token is not None:
            try:
                services.auth.authenticate_token(token)
                return token
            except AuthenticationError:
                pass
        token = services.auth.login(RequestContext(ip="127.0.0.1"), admin).tokens.access_token
        return token

    return current
