"""Who is calling: staff access tokens.

A token names a staff member and an expiry and is signed with the server's `auth_secret`
(HMAC-SHA256); nothing is stored. `salesops staff token <id>` issues one. Callers send it as
`Authorization: Bearer <token>`; a page link may carry `?token=` once, which the page turns
into an HttpOnly cookie. Roles come from the staff table at each request, so a changed role
or a removed person takes effect at once. A post authenticated by the cookie alone is refused
when the browser names another site as its origin.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api.errors import ApiError
from connectors.settings import Settings
from models import Staff
from models.db import session_scope
from models.staff import role_label

COOKIE = "salesops_token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: str) -> str:
    digest = hmac.new(settings.secret("auth_secret"), payload.encode(), hashlib.sha256).digest()
    return _b64(digest[:24])


def issue_token(settings: Settings, staff_id: str, days: int | None = None) -> str:
    expires = int(time.time()) + 86400 * (days or settings.auth_token_days)
    payload = f"{_b64(staff_id.encode())}.{expires}"
    return f"{payload}.{_mac(settings, payload)}"


def token_claims(settings: Settings, token: str) -> tuple[str, int] | None:
    """(staff id, expiry as a Unix time) of a valid, unexpired token; None otherwise."""
    try:
        encoded_id, expires, mac = token.strip().split(".")
        if not hmac.compare_digest(mac, _mac(settings, f"{encoded_id}.{expires}")):
            return None
        if int(expires) < time.time():
            return None
        return _unb64(encoded_id).decode(), int(expires)
    except (ValueError, TypeError):  # TypeError: compare_digest refuses non-ASCII text
        return None


def token_staff_id(settings: Settings, token: str) -> str | None:
    """The staff id a valid, unexpired token names; None otherwise."""
    claims = token_claims(settings, token)
    return claims[0] if claims else None


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> str:
    """scheme://host[:port] as a browser names an origin: lower case, no default port (an
    address written as https://Hub.Example.com:443/ is the origin https://hub.example.com)."""
    u = urlsplit(url.strip())
    scheme = u.scheme.lower()
    try:
        port = u.port
    except ValueError:  # not a port: compared as written
        return f"{scheme}://{u.netloc.lower()}"
    host = (u.hostname or "").lower()
    if not scheme or not host:  # "null" (a sandboxed page), or no address configured
        return ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    default = port in (None, _DEFAULT_PORTS.get(scheme))
    return f"{scheme}://{host}" + ("" if default else f":{port}")


def foreign_origin(request: Request) -> bool:
    """Whether the browser names another site as the origin of the request (a form or a
    script of another site posting with our cookie); no Origin: a program, or a plain GET."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    settings: Settings = request.app.state.settings
    allowed = {_origin(str(request.base_url)), _origin(settings.public_base_url)} - {""}
    return _origin(origin) not in allowed


def _rides_cookie(request: Request) -> bool:
    """A request that changes something, authenticated only by the browser's cookie."""
    return (request.method not in ("GET", "HEAD", "OPTIONS")
            and not request.headers.get("authorization", "").lower().startswith("bearer ")
            and not request.query_params.get("token"))


def load_staff(db_url: str, staff_id: str) -> Staff | None:
    with session_scope(db_url) as s:
        return s.get(Staff, staff_id)


async def current_staff(request: Request) -> Staff:
    """FastAPI dependency: the authenticated staff member, or 401."""
    settings: Settings = request.app.state.settings
    token = token_of(request)
    if not token:
        raise ApiError(401, "unauthenticated", "请先登录（缺少访问令牌）")
    if _rides_cookie(request) and foreign_origin(request):
        # the Lax cookie is not sent from another site's post; a sibling site's would be
        raise ApiError(403, "cross_site", "请求来源不是本系统页面，已拒绝；程序调用请在请求头中携带访问令牌")
    staff_id = token_staff_id(settings, token)
    if staff_id is None:
        raise ApiError(401, "invalid_token", "访问令牌无效或已过期，请重新获取")
    staff = await run_in_threadpool(load_staff, settings.db_url, staff_id)
    if staff is None:
        raise ApiError(401, "unknown_staff", "访问令牌对应的人员不存在")
    return staff


async def optional_staff(request: Request) -> Staff | None:
    """The authenticated staff member, None when no token is sent (a bad one is still 401)."""
    return await current_staff(request) if token_of(request) else None


def require_roles(staff: Staff, *roles: str) -> None:
    if staff.role not in roles:
        raise ApiError(403, "forbidden", f"当前角色（{role_label(staff.role)}）无权执行此操作")
