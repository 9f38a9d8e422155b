"""Rendering the console's pages: templates, the headers every page carries, and reading form
fields (a control character in one is refused, never passed on to the database)."""
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.console.accounts import MAX_TEXT_CHARS, has_control_characters
from services.console.sessions import session_of

# Pages carry personal data: never cached, never framed, no scripts at all (a second line of
# defence behind escaping), and no Referer, so the sites of the reported posts never learn
# the console's address when an operator opens a URL.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


class InvalidCharacters(ValueError):
    """A form or JSON field with a control character (NUL, escape ...)."""


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page(request: Request, name: str, context: dict, status_code: int = 200,
         headers: dict | None = None) -> HTMLResponse:
    """A page; its forms find the session's token as `csrf_token`, the operator as `operator`."""
    session = session_of(request)
    context = {"csrf_token": session.csrf_token if session else "",
               "operator": session.operator if session else None} | context
    return templates.TemplateResponse(request, name, context, status_code=status_code,
                                      headers=PAGE_HEADERS | (headers or {}))


def text_field(form, name: str, multiline: bool = False) -> str:
    """A text field of a submitted form ("" when absent), at most MAX_TEXT_CHARS long; line
    breaks only where `multiline`. InvalidCharacters (400) for any other control character."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if has_control_characters(value, allow_line_breaks=multiline):
        raise InvalidCharacters(name)
    return value[:MAX_TEXT_CHARS]
