"""The REST API beside the UI: JSON routes over the same heads and the same encoder.

``build_api(ctx)`` returns a FastAPI app with

- ``POST /v1/embed`` ``{"texts", "role"}``
- ``POST /v1/sentiment`` ``{"texts", "head"}``
- ``POST /v1/translation/search`` ``{"queries", "candidates", "top_k", "scoring"}``
- ``POST /v1/recommend`` ``{"liked", "disliked"}`` or ``{"text"}`` or ``{"item"}``
- ``POST /v1/qa`` ``{"question", "context", "top_k", "no_answer_threshold"}``
- ``GET /health`` (``ready`` once the encoder is loaded), ``GET /server_stats``
  (loopback only unless allowed), OpenAPI docs at ``/docs``.

A route takes one item or a list, as the heads do, and returns the heads' own JSON
dicts. Bad input gets a 4xx whose body is ``{"error": {"status", "type", "message"}}``
with the heads' message; nothing a client sends gives a 500. Every call runs under the
app's request time limit and is cancelled past it (:mod:`embedsuite.cancel`).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import importlib.util
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from embedsuite.app.services import (
    demo_recommender,
    qa_head,
    sentiment_batcher,
    sentiment_proba,
    sentiment_rows,
)
from embedsuite.app.ui import (
    MAX_BATCH,
    MAX_TEXT_CHARS,
    AppContext,
    RequestTimeoutError,
    error_message,
    record_time,
    request_timeout,
    run_with_timeout,
    server_stats,
    timeout_message,
)
from embedsuite.errors import EmbedsuiteError, UnknownNameError
from embedsuite.validation import as_text_list

logger = logging.getLogger(__name__)

__all__ = ["ApiError", "build_api"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")

Texts = str | list[str]


class ApiError(Exception):
    """An error answered as JSON with an HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def _error(status: int, kind: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "type": kind, "message": message}},
                        status_code=status, headers=headers or None)


# -- request bodies --------------------------------------------------------------
class EmbedRequest(BaseModel):
    texts: Texts = Field(description="A text, or a list of texts.",
                         examples=["A cheap flight to Japan"])
    role: Literal["query", "passage"] = Field(
        "query", description="query: short searches and sentences to classify; "
                             "passage: documents to be found.")


class SentimentRequest(BaseModel):
    texts: Texts = Field(description="A text, or a list of texts.",
                         examples=["A gorgeous, witty, seductive movie."])
    head: str = Field("default", description="The sentiment head (this server: 'default', "
                                             "trained on SST-2).")


class TranslationSearchRequest(BaseModel):
    queries: Texts = Field(description="A sentence, or a list, whose translations to find.",
                           examples=["Der Zug nach Berlin fährt um acht Uhr ab."])
    candidates: list[str] = Field(description="The sentences to search (any language).",
                                  examples=[["The train to Berlin leaves at eight o'clock.",
                                             "My grandmother grows tomatoes."]])
    top_k: int = Field(5, ge=1, le=100, description="Candidates per query.")
    scoring: Literal["margin", "cosine"] = "margin"


class RecommendRequest(BaseModel):
    liked: list[str] = Field(default_factory=list, description="Item ids liked.",
                             examples=[["b001", "f008"]])
    disliked: list[str] = Field(default_factory=list, description="Item ids disliked.")
    text: Texts | None = Field(None, description="Or a free-text wish (or a list of wishes).")
    item: str | None = Field(None, description="Or one item id: items similar to it.")
    k: int = Field(8, ge=1, le=100, description="How many items.")
    diversity: float = Field(0.0, ge=0.0, le=1.0,
                             description="0 = most relevant, 1 = most diverse (MMR).")


class QARequest(BaseModel):
    question: Texts = Field(description="A question, or a list of questions.",
                            examples=["When was the mill built?"])
    context: Texts = Field(description="The text to read; one for all questions or one per "
                                       "question.",
                           examples=["The old mill was built in 1921 and closed in 1980."])
    top_k: int = Field(1, ge=1, le=10, description="Answers per question; 1 gives a dict, "
                                                   "more a list.")
    no_answer_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Score under which the answer is empty (default: "
                                          "the head's).")


# -- helpers ------------------------------------------------------------------
def _check_texts(texts: Texts | None, what: str = "texts") -> None:
    """The app's limits: at most MAX_BATCH texts of at most MAX_TEXT_CHARS each."""
    items = [texts] if isinstance(texts, str) else list(texts or [])
    if len(items) > MAX_BATCH:
        raise ApiError(413, f"{len(items):,} {what} in one request; this server takes at most "
                            f"{MAX_BATCH:,}. Send them in several requests.", "too_large")
    for i, t in enumerate(items):
        if len(t) > MAX_TEXT_CHARS:
            raise ApiError(413, f"{what}[{i}] has {len(t):,} characters; this server takes at "
                                f"most {MAX_TEXT_CHARS:,} per text. Split it.", "too_large")


def _api_error(exc: BaseException, name: str) -> ApiError:
    """The HTTP error of an exception raised while answering (a 500 is logged in full)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestTimeoutError):
        return ApiError(504, str(exc), "timeout")
    if isinstance(exc, UnknownNameError):
        return ApiError(404, str(exc), "not_found")
    if isinstance(exc, (EmbedsuiteError, ValueError, TypeError, KeyError)):
        return ApiError(400, error_message(exc))
    logger.error("unexpected error in %s", name, exc_info=exc)
    return ApiError(500, f"Something went wrong ({type(exc).__name__}); the details are in the "
                         f"server log.", "internal")


def _guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` under the time limit; map the heads' errors to :class:`ApiError`."""
    t0 = time.perf_counter()
    try:
        return run_with_timeout(fn, (), {}, request_timeout(), False)
    except Exception as exc:
        raise _api_error(exc, name) from None
    finally:
        record_time(name, time.perf_counter() - t0)


async def _awaited(name: str, future: Future[Any]) -> Any:
    """Await a batcher's future under the time limit (cancelled past it)."""
    t0 = time.perf_counter()
    limit = request_timeout()
    try:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limit)
        except TimeoutError:
            future.cancel()
            raise RequestTimeoutError(timeout_message(limit or 0.0)) from None
    except Exception as exc:
        raise _api_error(exc, name) from None
    finally:
        record_time(name, time.perf_counter() - t0)


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from local files (FastAPI's default loads it from a CDN, which
    an offline machine cannot reach, leaving a blank page), from the ``fastapi-offline``
    package; without it, a plain list of the routes."""
    from fastapi.responses import HTMLResponse

    if importlib.util.find_spec("fastapi_offline") is not None:
        assets = importlib.resources.files("fastapi_offline") / "static"
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.staticfiles import StaticFiles

        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="embedsuite API",
                                       swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                       swagger_css_url="/docs-assets/swagger-ui.css",
                                       swagger_favicon_url="/docs-assets/favicon.png")
        return

    @app.get("/docs", include_in_schema=False)
    def plain_docs() -> HTMLResponse:
        import html

        rows = "".join(
            f"<li><code>{html.escape(method.upper())} {html.escape(path)}</code>: "
            f"{html.escape(str(op.get('summary', '')))}</li>"
            for path, ops in app.openapi()["paths"].items() for method, op in ops.items())
        return HTMLResponse(f"<!doctype html><title>embedsuite API</title><h1>embedsuite API"
                            f"</h1><ul>{rows}</ul><p>The full description: "
                            f"<a href='/openapi.json'>/openapi.json</a>.</p>")


def build_api(ctx: AppContext, *, api_key: str | None = None,
              public_stats: bool = False) -> FastAPI:
    """The FastAPI app of the REST routes (mount the Gradio UI on it with
    ``gr.mount_gradio_app``).

    Args:
        ctx: The app context shared with the UI (encoder, heads, limits).
        api_key: When set, every ``/v1`` route needs ``Authorization: Bearer <key>``.
        public_stats: Serve ``/server_stats`` to any client, not only loopback.
    """
    app = FastAPI(title="embedsuite", version="1", docs_url=None, redoc_url=None,
                  description="NLP task heads on one shared text encoder. Every route takes "
                              "one item or a list and returns the heads' JSON dicts; errors "
                              "come as `{\"error\": {\"status\", \"type\", \"message\"}}`.")
    _add_docs(app)

    @app.exception_handler(ApiError)
    async def _on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.status < 500:  # a client's mistake: one line, no traceback
            logger.info("%d %s: %s", exc.status, request.url.path, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return _error(exc.status, exc.kind, exc.message, **headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        msg = ("The request body does not match the route's schema (see /docs): "
               + "; ".join(parts[:5]))
        logger.info("422 %s: %s", request.url.path, msg)
        return _error(422, "invalid_request", msg)

    async def check_key(request: Request) -> None:  # async: no threadpool hop per request
        if not api_key:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                  api_key.encode()):
            raise ApiError(401, "This server needs an API key: send the header "
                                "'Authorization: Bearer <key>'.", "unauthorized")

    auth = [Depends(check_key)]

    @app.get("/health", tags=["service"])
    def health() -> JSONResponse:
        """``{"status": "ready"}`` once the shared encoder is loaded (503 ``loading`` before)."""
        ready = ctx.ready.is_set()
        return JSONResponse({"status": "ready" if ready else "loading",
                             "encoder": ctx.encoder_name}, status_code=200 if ready else 503)

    @app.get("/server_stats", tags=["service"])
    def stats(request: Request) -> dict[str, dict[str, float]]:
        """Server-side time per handler (count, p50, p95 ms); loopback clients only."""
        host = request.client.host if request.client else ""
        if not public_stats and host not in LOOPBACK:
            raise ApiError(403, "server_stats is served to this machine only (start the "
                                "server with --public-stats to change that).", "forbidden")
        return server_stats()

    @app.post("/v1/embed", tags=["encoder"], dependencies=auth)
    def embed(req: EmbedRequest) -> Any:
        """Sentence vectors of the shared encoder (L2-normalised)."""
        _check_texts(req.texts)

        def run() -> Any:
            vecs = np.asarray(ctx.encoder.encode(req.texts, role=req.role), np.float32)
            rows = [{"embedding": [round(float(x), 7) for x in v]}
                    for v in np.atleast_2d(vecs)]
            return rows[0] if isinstance(req.texts, str) else rows

        return _guarded("rest_embed", run)

    @app.post("/v1/sentiment", tags=["heads"], dependencies=auth)
    async def sentiment(req: SentimentRequest) -> Any:
        """``{"label", "score"}`` per text."""
        _check_texts(req.texts)
        if req.head != "default":
            raise ApiError(404, f"No sentiment head {req.head!r} on this server; it has "
                                f"'default'.", "not_found")
        try:
            items, single = as_text_list(req.texts)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        batcher = None
        if ctx.batch_window_ms is not None and 0 < len(items) < ctx.batch_max:
            # the first call loads the head: in a worker thread, not on the event loop
            batcher = (ctx.resources.get("sentiment:batcher")
                       or await run_in_threadpool(_guarded, "rest_sentiment_load",
                                                  lambda: sentiment_batcher(ctx)))
        if batcher is None:
            rows = await run_in_threadpool(_guarded, "rest_sentiment", lambda: sentiment_rows(
                ctx, sentiment_proba(ctx, items)))
        else:
            proba = await _awaited("rest_sentiment", batcher.submit_future("proba", items))
            rows = sentiment_rows(ctx, np.stack(proba))
        return rows[0] if single else rows

    @app.post("/v1/translation/search", tags=["heads"], dependencies=auth)
    def translation_search(req: TranslationSearchRequest) -> Any:
        """``[{"text", "index", "score", "cosine", "margin"}]`` best first, per query."""
        from embedsuite.heads.translation import TranslationRetriever

        _check_texts(req.queries, "queries")
        _check_texts(req.candidates, "candidates")
        if len(req.candidates) < 2:
            raise ApiError(400, f"Give at least 2 candidates (got {len(req.candidates)}).")

        def run() -> Any:
            tr = TranslationRetriever(ctx.encoder, scoring=req.scoring)
            tr.index(req.candidates, show_progress=False)
            return tr.search(req.queries, top_k=req.top_k, show_progress=False)

        return _guarded("rest_translation", run)

    @app.post("/v1/recommend", tags=["heads"], dependencies=auth)
    def recommend(req: RecommendRequest) -> Any:
        """``[{"item_id", "score", "because"}]`` from likes/dislikes, a wish, or an item,
        over the demo catalogue."""
        given = sum([bool(req.liked or req.disliked), req.text is not None,
                     req.item is not None])
        if given != 1:
            raise ApiError(400, "Send exactly one of: liked/disliked item ids, a text wish, "
                                "or an item id (for similar items).")
        if req.text is not None:
            _check_texts(req.text, "text")
        lam = 1.0 - req.diversity

        def run() -> Any:
            head = demo_recommender(ctx)
            if req.text is not None:
                return head.recommend_for_text(req.text, k=req.k, mmr_lambda=lam)
            if req.item is not None:
                return head.similar(req.item, k=req.k, mmr_lambda=lam)
            both = sorted(set(req.liked) & set(req.disliked))
            if both:
                raise ValueError(f"{both} both liked and disliked; put each item in one list.")
            history = [(i, 1.0) for i in req.liked] + [(i, -1.0) for i in req.disliked]
            return head.recommend(history, k=req.k, mmr_lambda=lam, rating_center=None)

        return _guarded("rest_recommend", run)

    @app.post("/v1/qa", tags=["heads"], dependencies=auth)
    def qa(req: QARequest) -> Any:
        """``{"answer", "score", "start", "end", ...}`` (a list per question when
        ``top_k`` > 1); ``answer`` is empty under the no-answer threshold."""
        _check_texts(req.question, "question")
        _check_texts(req.context, "context")
        return _guarded("rest_qa", lambda: qa_head(ctx).answer(
            req.question, req.context, top_k=req.top_k,
            no_answer_threshold=req.no_answer_threshold))

    return app
