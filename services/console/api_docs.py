"""How the console's JSON API is documented: OpenAPI at /api/openapi.json, behind the log-in like
everything else (the guard lets no one read it without a session). Every route documents the
refusals the guard and the error handlers may give it, besides its own; the session cookie and
the CSRF header are its security schemes. tests/integration/test_console_openapi.py fuzzes the
API against this document."""
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.console.guard import LOG_IN, SAFE_METHODS
from services.console.schemas import Credentials, Refusal
from services.console.sessions import CSRF_HEADER, SESSION_COOKIE

OPENAPI_URL = "/api/openapi.json"
WHY = {
    400: "A control character in the path, the query or a field, or a malformed body: nothing was done",
    401: "No session, or one that expired: log in (POST /api/v1/session)",
    403: "A write without the session's X-CSRF-Token header, or a supervisor's route",
    404: "No such task, review, phone entry of this operator's, or route",
    409: "Another operator or an earlier request got there first, the task is of another kind, or a "
         "submission_id was sent before with other contents",
    413: "The body is too large",
    415: "Not application/json",
    422: "The body or a parameter is not as documented: nothing was done",
    429: "Too many failed log-ins for this login or address: try again later",
    500: "An unexpected failure",
    503: "The console's database cannot be reached: nothing was done",
}
EVERY_ROUTE = (400, 401, 403, 404, 422, 500, 503)


def refusals(*statuses: int) -> dict:
    """The refusals every API route may give, and `statuses` besides: {code, detail} in Japanese."""
    return {status: {"model": Refusal, "description": WHY[status]} for status in sorted({*EVERY_ROUTE, *statuses})}


def json_body(model, description: str) -> dict:
    """A request body documented for a route that reads and checks its body itself."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


SESSION_BODY = json_body(Credentials, "The operator's login and password (JSON only: a form from another site "
                                      "cannot send it). On a logged-in session, send its X-CSRF-Token too.")

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": "Set by POST /api/v1/session (or the log-in page); HttpOnly, SameSite=Lax"},
    "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
             "description": "The csrf_token that POST /api/v1/session answers: required with every write"},
}


def document(app: FastAPI) -> dict:
    """The console's OpenAPI document: its JSON API only (the pages are not in it)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             description="The operators' console: tasks, claims, outcomes, reviews, consultations "
                                         "taken on the phone and the audit of personal data views. Answers and "
                                         "refusals in Japanese.")
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if (method.upper(), path) in LOG_IN:
                    operation["security"] = [{}]
                elif method.upper() in SAFE_METHODS:
                    operation["security"] = [{"session": []}]
                else:
                    operation["security"] = [{"session": [], "csrf": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)
