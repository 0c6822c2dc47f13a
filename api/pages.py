"""The shell of the hub's phone pages: the customer's signing page and the staff pages share
one stylesheet (templates/base.css) and one frame (templates/page.html).

Staff pages also share how they know who opens them. A push carries a link with `?token=`
once: the page turns it into an HttpOnly cookie and redirects to the same address without
the token, so the token stays out of the browser history and out of screenshots. Without a
valid token or cookie a page answers 401 with a Chinese page (never JSON): the person opens
the link from the push again.
"""
from __future__ import annotations

import base64
import hashlib
import html
import time
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import COOKIE, foreign_origin, load_staff, token_claims, token_of
from connectors.settings import Settings
from models import Staff

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSS = (TEMPLATES / "base.css").read_text(encoding="utf-8")
# a str.format template: {title}, {css}, {content}, {script}
SHELL = (TEMPLATES / "page.html").read_text(encoding="utf-8")


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Under the escaping, a safety net: a staff page runs only its own inline script and style
# (by their hashes: what render() and script() put between the tags), fetches and posts
# only to this site, loads nothing from elsewhere and is framed by no one.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "style-src " + _sha256_source("\n" + CSS),
    "script-src " + " ".join(_sha256_source("\n" + p.read_text(encoding="utf-8"))
                             for p in sorted(TEMPLATES.glob("*.js"))),
    "connect-src 'self'", "img-src 'self' data:", "form-action 'self'", "base-uri 'none'",
    "frame-ancestors 'none'"))

# staff pages show business data for one person: not cached, not framed, no token in Referer
STAFF_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                 "Referrer-Policy": "same-origin", "Vary": "Accept, Cookie",
                 "Content-Security-Policy": CONTENT_SECURITY_POLICY}

REOPEN = "请回到企业微信或钉钉，从推送消息中重新打开此链接。"
# pushes carry no token: without the cookie, reopening one shows this page again
LOGIN_LINK = "如仍无法打开，请联系系统管理员获取您的登录链接，打开一次即可登录。"


def esc(value: object) -> str:
    """Text for HTML (element content and quoted attributes)."""
    return html.escape("" if value is None else str(value))


def script(name: str) -> str:
    return "<script>\n" + (TEMPLATES / name).read_text(encoding="utf-8") + "</script>"


def render(title: str, content: str, script_html: str = "") -> str:
    """A whole page. `title` is plain text (escaped here); `content` and `script_html` are
    HTML built by the caller, every value in them escaped."""
    return SHELL.format(title=esc(title), css=CSS, content=content, script=script_html)


def card(title: str, message: str, extra_class: str = "") -> str:
    cls = f"card {extra_class}".strip()
    return f'<div class="{cls}"><h1>{esc(title)}</h1><p>{esc(message)}</p></div>'


def staff_page(status: int, title: str, content: str, script_html: str = "") -> HTMLResponse:
    return HTMLResponse(render(title, content, script_html), status_code=status,
                        headers=STAFF_HEADERS)


def staff_message(status: int, title: str, message: str) -> HTMLResponse:
    return staff_page(status, title, card(title, message))


def wants_html(request: Request) -> bool:
    """Whether the client asks for a page: browsers list text/html in Accept; API clients
    send application/json, */* or nothing and keep getting JSON."""
    weights: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *params = part.split(";")
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        media = media.strip().lower()
        weights[media] = max(weights.get(media, 0.0), weight)
    page = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    return page > 0 and page >= weights.get("application/json", 0.0)


# --- who opens a staff page ------------------------------------------------------------------

def kept_text(typed: str) -> str:
    """What a person typed into a form that could not be sent, shown to copy (a long reason
    is not to be typed twice)."""
    if not typed.strip():
        return ""
    return ('<div class="card notice" id="typed-card"><h2>您填写的内容尚未提交</h2>'
            '<label class="field" for="typed">请先复制保存，重新登录后再提交：</label>'
            f'<textarea id="typed" readonly rows="4">{esc(typed)}</textarea></div>')


def unauthenticated(title: str, message: str, *, forget_cookie: bool = False,
                    typed: str = "") -> HTMLResponse:
    response = staff_page(401, title, card(title, f"{message}{REOPEN}{LOGIN_LINK}")
                          + kept_text(typed))
    if forget_cookie:
        response.delete_cookie(COOKIE, path="/")
    return response


def _without_token(request: Request) -> str:
    """The same address, relative, without `token` (other parameters kept in order)."""
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return request.url.path + (f"?{urlencode(rest)}" if rest else "")


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


async def _cookie_person(request: Request, settings: Settings) -> Staff | None:
    """The staff member the page's cookie names, when it is valid."""
    claims = token_claims(settings, request.cookies.get(COOKIE) or "")
    return await run_in_threadpool(load_staff, settings.db_url, claims[0]) if claims else None


async def staff_for_page(request: Request, *, from_link: bool = True,
                         typed: str = "") -> Staff | Response:
    """The staff member who opens a page, or the response to send instead: a redirect that
    trades a link's `?token=` for the cookie (GET pages, `from_link`), or the 401 page (which
    shows a form's `typed` text, so that a login run out while typing loses nothing)."""
    settings: Settings = request.app.state.settings
    # an empty `?token=` is no token: the cookie still counts
    link_token = (request.query_params.get("token") or None) if from_link else None
    token = link_token if link_token is not None else token_of(request)
    if not token:
        return unauthenticated("需要登录", "此页面仅限公司员工查看，当前未登录。", typed=typed)
    claims = token_claims(settings, token)
    person = await run_in_threadpool(load_staff, settings.db_url, claims[0]) if claims else None
    if person is None and link_token is not None and await _cookie_person(request, settings):
        # an old login link (expired, or of a removed person) tapped by someone whose cookie
        # is valid: the cookie logs in; the link's token leaves the address
        return RedirectResponse(_without_token(request), status_code=303,
                                headers=STAFF_HEADERS)
    if person is None:
        # a stale cookie is dropped so the next link with a fresh token starts clean
        stale_cookie = link_token is None and token == request.cookies.get(COOKIE)
        if claims is None:
            return unauthenticated("链接已失效", "访问令牌无效或已过期。",
                                   forget_cookie=stale_cookie, typed=typed)
        return unauthenticated("无法识别您的身份", "访问令牌对应的人员已不在系统中。",
                               forget_cookie=stale_cookie, typed=typed)
    if link_token is None:
        return person
    response = RedirectResponse(_without_token(request), status_code=303,
                                headers=STAFF_HEADERS)
    response.set_cookie(COOKIE, link_token, max_age=max(0, claims[1] - int(time.time())),
                        path="/", httponly=True, samesite="lax",
                        secure=_secure(request, settings))
    return response


def cross_site(request: Request) -> bool:
    """A form posted from another site. The Lax cookie is not sent with such a post anyway;
    this refuses it as well when the browser names its origin."""
    return foreign_origin(request)


def refused_cross_site() -> HTMLResponse:
    return staff_message(403, "无法提交", "提交来源不是本系统页面，已拒绝。" + REOPEN)
