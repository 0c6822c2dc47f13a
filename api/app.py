"""THE DOORS: the FastAPI application."""
from __future__ import annotations

import contextlib
import logging
import threading

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import customers, orders, rebates, signing_page, todos, webhooks
from api.dispatcher import Dispatcher
from api.errors import ApiError, unreadable_body, validation_details
from api.pages import REOPEN, staff_message, wants_html
from connectors.base import TransientError
from connectors.settings import Settings, get_settings
from flows.customer_index import customer_index
from flows.dispatch import Launcher, PrefectLauncher
from flows.errors import Refusal
from flows.hub import check_backends
from models.db import database_busy, database_unreachable, nul_in_text


class PrivateAnswers:
    """Every answer is one person's business data (an order, a rebate, a to-do, a customer's
    quote): kept by no cache unless the route says otherwise; and the customer's signing
    page, whose address carries his token, is framed by no site and named in no Referer.
    Plain ASGI (no per-request task): webhook intake stays as fast."""

    SIGNING = ((b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"))

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        signing = signing_page.under_signing(scope["path"])

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"cache-control", b"no-store")] + (list(self.SIGNING) if signing else [])
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings | None = None, launcher: Launcher | None | str = "prefect",
               ) -> FastAPI:
    """`launcher="prefect"` starts flow runs through the Prefect API; None leaves accepted
    events pending for the sweeper (or a test) to dispatch."""
    settings = settings or get_settings()
    check_backends(settings)  # a backend chosen without what it needs: refused in words
    if launcher == "prefect":
        launcher = PrefectLauncher()
    dispatcher = Dispatcher(settings.db_url, launcher, settings.dispatch_batch_size,
                            settings.dispatch_interval_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        dispatcher.start()
        # the matcher's index is built in the background so the first suggestion is quick
        warm = threading.Thread(target=lambda: customer_index(
            settings.db_url, settings.customer_index_refresh_seconds).current(),
            name="customer-index", daemon=True)
        warm.start()
        try:
            yield
        finally:
            dispatcher.stop()
            # a stopped app reads nothing more: an index still being built would hold its
            # read open on the tables past the shutdown (a restore or a migration waits on it)
            warm.join(timeout=30)

    app = FastAPI(title="销售运营中台 API", version="0.1.0", lifespan=lifespan,
                  description="意向单 webhook、电子签回调、内置签署页与进度查询；客户联想与疑似新客户确认；返利预估、政策、看板与结算确认。")
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.add_middleware(PrivateAnswers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(Refusal)
    async def _refusal(_: Request, exc: Refusal):
        details = exc.details or ([{"field": exc.field, "problem": exc.code}]
                                  if exc.field else None)
        return ApiError(exc.status, exc.code, exc.message, details).response()

    @app.exception_handler(TransientError)
    async def _unavailable(_: Request, exc: TransientError):
        # an outside system (registry, finance …) did not answer: try again later
        return ApiError(503, "upstream_unavailable",
                        f"外部系统暂不可用（{exc.provider or '未知'}），请稍后重试").response()

    @app.exception_handler(sa.exc.DBAPIError)
    async def _database_refused(request: Request, exc: sa.exc.DBAPIError):
        if nul_in_text(exc):
            if wants_html(request):
                return staff_message(400, "链接有误", "链接中含有空字符（%00）。" + REOPEN)
            return ApiError(400, "invalid_character",
                            "请求中含有空字符（\\x00），请检查链接或提交的内容").response()
        if database_unreachable(exc):
            # PostgreSQL down or restarting: nothing was stored; the sender retries later
            logging.getLogger("salesops.api").warning("database unreachable: %s", exc.orig)
            if wants_html(request):
                response = staff_message(503, "暂时无法打开", "数据库暂时无法连接，请稍后再试。")
            else:
                response = ApiError(503, "database_unavailable",
                                    "数据库暂时无法连接，请稍后重试").response()
            response.headers["Retry-After"] = "30"
            return response
        if not database_busy(exc):
            raise exc  # a defect: the server error page, logged with its traceback
        # another writer held the database longer than the busy timeout (nothing was written)
        response = ApiError(503, "database_busy",
                            "数据库正忙（另一项操作正在写入），本次操作未保存，请稍后重试").response()
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        # the router's own answers (no such address, no such method, a JSON body it could not
        # parse): in Chinese, as ours
        missing = exc.status_code == 404
        # FastAPI's 400 for a body it could not parse carries the parser's error as its cause
        unreadable = (unreadable_body(exc.__cause__ or exc.__context__)
                      if exc.status_code == 400 else None)
        if signing_page.under_signing(request.url.path):  # a customer's link, cut off
            response = signing_page.broken_link(exc.status_code)
        elif wants_html(request):
            response = staff_message(exc.status_code, "页面不存在" if missing else "无法打开",
                                     "页面地址不正确。" + REOPEN)
        elif missing:
            response = ApiError(404, "not_found", f"接口不存在：{request.url.path}").response()
        elif exc.status_code == 405:
            response = ApiError(405, "method_not_allowed",
                                f"不支持该请求方法：{request.method} {request.url.path}").response()
        elif unreadable is not None:
            response = unreadable.response()
        else:
            response = ApiError(exc.status_code, "http_error", f"请求无法处理（{exc.status_code}）"
                                ).response()
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _defect(request: Request, exc: Exception):
        # the answer a phone or a sender sees; Starlette raises the error on to the server,
        # which logs it with its traceback
        if wants_html(request):
            return staff_message(500, "出错了", "服务器内部错误（已记录），请稍后重试。")
        return ApiError(500, "internal_error", "服务器内部错误（已记录），请稍后重试").response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        if signing_page.under_signing(request.url.path):
            return signing_page.broken_link(400)
        if wants_html(request):  # a mistyped link opened in a browser: a page, not JSON
            return staff_message(400, "链接有误", "页面地址或提交的内容不正确。" + REOPEN)
        details = validation_details(exc.errors())
        fields = "、".join(dict.fromkeys(d["field"] for d in details))
        return JSONResponse({"error": {"code": "invalid_request",
                                       "message": f"请求参数不合法：{fields}",
                                       "details": details}}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok"}

    app.include_router(webhooks.router)
    app.include_router(signing_page.router)
    app.include_router(orders.router)
    app.include_router(customers.router)
    app.include_router(rebates.router)
    app.include_router(todos.router)
    return app
