"""The REST API (through httpx / FastAPI's TestClient) on the real encoder and shipped heads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embedsuite.app.rest import build_api
from embedsuite.app.ui import MAX_BATCH, AppContext

LOCAL = ("127.0.0.1", 50000)


@pytest.fixture(scope="module")
def ctx(e5) -> AppContext:  # type: ignore[no-untyped-def]
    c = AppContext(encoder_name="e5-small", batch_window_ms=5.0)
    c.ready.set()
    return c


@pytest.fixture(scope="module")
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(build_api(ctx), client=LOCAL) as c:
        yield c


def _error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def test_health_and_docs(client: TestClient, ctx: AppContext) -> None:
    assert client.get("/health").json() == {"status": "ready", "encoder": "e5-small"}
    spec = client.get("/openapi.json").json()
    assert {"/v1/embed", "/v1/sentiment", "/v1/translation/search", "/v1/recommend",
            "/v1/qa", "/health"} <= set(spec["paths"])
    page = client.get("/docs")
    assert page.status_code == 200 and "embedsuite API" in page.text
    assert "cdn." not in page.text  # an offline machine gets a working page
    if "/docs-assets/" in page.text:  # swagger-ui-bundle installed: its files are served
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    else:
        assert "/v1/sentiment" in page.text
    loading = AppContext(encoder_name="e5-small")
    with TestClient(build_api(loading)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"


def test_embed_one_and_many(client: TestClient, ctx: AppContext) -> None:
    one = client.post("/v1/embed", json={"texts": "hello world", "role": "query"}).json()
    assert len(one["embedding"]) == 384
    many = client.post("/v1/embed", json={"texts": ["a cat", "a dog"], "role": "passage"}).json()
    assert [len(r["embedding"]) for r in many] == [384, 384]
    want = ctx.encoder.encode("a cat", role="passage")
    assert many[0]["embedding"] == pytest.approx(want.tolist(), abs=1e-6)
    assert "role" in _error(client.post("/v1/embed", json={"texts": "x", "role": "doc"}), 422)


def test_sentiment_one_and_many(client: TestClient) -> None:
    one = client.post("/v1/sentiment", json={"texts": "A gorgeous, witty, seductive movie."})
    assert one.json()["label"] == "positive" and set(one.json()) == {"label", "score"}
    many = client.post("/v1/sentiment", json={"texts": ["Dull and far too long.",
                                                         "A wonderful film."]}).json()
    assert [r["label"] for r in many] == ["negative", "positive"]
    assert "empty" in _error(client.post("/v1/sentiment", json={"texts": "  "}), 400)
    assert "'default'" in _error(client.post("/v1/sentiment",
                                             json={"texts": "x", "head": "imdb"}), 404)
    assert "texts" in _error(client.post("/v1/sentiment", json={"text": "typo"}), 422)
    assert "at most" in _error(client.post("/v1/sentiment",
                                           json={"texts": ["x"] * (MAX_BATCH + 1)}), 413)
    r = client.post("/v1/sentiment", content=b"{not json", headers={"content-type":
                                                                     "application/json"})
    _error(r, 422)


def test_translation_search(client: TestClient) -> None:
    body = {"queries": "Der Zug nach Berlin fährt um acht Uhr ab.",
            "candidates": ["My grandmother grows tomatoes.",
                           "The train to Berlin leaves at eight o'clock.",
                           "The museum is closed on Mondays."], "top_k": 2}
    hits = client.post("/v1/translation/search", json=body).json()
    assert hits[0]["index"] == 1 and set(hits[0]) == {"text", "index", "score", "cosine",
                                                      "margin"}
    both = client.post("/v1/translation/search", json={**body, "queries": [
        body["queries"], "Meine Oma baut Tomaten an."]}).json()
    assert [h[0]["index"] for h in both] == [1, 0]
    assert "at least 2" in _error(client.post("/v1/translation/search", json={
        "queries": "x", "candidates": ["only one"]}), 400)
    _error(client.post("/v1/translation/search", json={**body, "scoring": "csls"}), 422)


def test_recommend(client: TestClient) -> None:
    picks = client.post("/v1/recommend", json={"liked": ["b001", "f008"], "k": 3}).json()
    assert len(picks) == 3 and set(picks[0]) == {"item_id", "score", "because"}
    assert not {"b001", "f008"} & {p["item_id"] for p in picks}
    wish = client.post("/v1/recommend", json={"text": "a funny space adventure for kids",
                                              "k": 2}).json()
    assert len(wish) == 2
    sim = client.post("/v1/recommend", json={"item": "f004", "k": 2}).json()
    assert len(sim) == 2 and all(p["item_id"] != "f004" for p in sim)
    assert "not in the catalogue" in _error(client.post("/v1/recommend",
                                                        json={"liked": ["nope"]}), 400)
    assert "exactly one" in _error(client.post("/v1/recommend", json={}), 400)
    assert "both liked and disliked" in _error(client.post("/v1/recommend", json={
        "liked": ["b001"], "disliked": ["b001"]}), 400)
    _error(client.post("/v1/recommend", json={"liked": ["b001"], "k": 0}), 422)


def test_qa(client: TestClient) -> None:
    ctx_text = "The old mill was built in 1921 and closed in 1980."
    one = client.post("/v1/qa", json={"question": "When was the mill built?",
                                      "context": ctx_text}).json()
    assert one["answer"] == "1921"
    assert ctx_text[one["start"]:one["end"]] == "1921"
    other = "Tickets for the night train to Berlin can be bought on board."
    two = client.post("/v1/qa", json={"question": ["When was the mill built?",
                                                   "Where can tickets be bought?"],
                                      "context": [ctx_text, other], "top_k": 2}).json()
    assert len(two) == 2 and [len(r) for r in two] == [2, 2]
    assert two[0][0]["answer"] == "1921"
    assert all(other[r["start"]:r["end"]] == r["answer"] for r in two[1])
    assert "empty" in _error(client.post("/v1/qa", json={"question": "",
                                                         "context": ctx_text}), 400)


def test_api_key(ctx: AppContext) -> None:
    with TestClient(build_api(ctx, api_key="s3cret"), client=LOCAL) as c:
        body = {"texts": "fine"}
        r = c.post("/v1/sentiment", json=body)
        assert "Bearer" in _error(r, 401) and r.headers["www-authenticate"] == "Bearer"
        _error(c.post("/v1/sentiment", json=body, headers={"Authorization": "Bearer nope"}),
               401)
        ok = c.post("/v1/sentiment", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/health").status_code == 200  # health stays open


def test_server_stats_only_from_loopback(ctx: AppContext, client: TestClient) -> None:
    client.post("/v1/sentiment", json={"texts": "fine"})
    stats = client.get("/server_stats").json()
    assert stats["rest_sentiment"]["count"] >= 1
    with TestClient(build_api(ctx), client=("203.0.113.9", 4000)) as remote:
        assert "this machine only" in _error(remote.get("/server_stats"), 403)
    with TestClient(build_api(ctx, public_stats=True), client=("203.0.113.9", 4000)) as remote:
        assert remote.get("/server_stats").status_code == 200
