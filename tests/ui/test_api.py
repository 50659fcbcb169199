"""The REST API, health and metrics, over a real uvicorn server on loopback."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.ui.conftest import TOKEN_HEADER, ApiClient, scoped, serving, sse_events
from ui.server import create_app

pytestmark = pytest.mark.unit
WARRANTY_SENTENCE = "The warranty on blenders lasts two years from delivery."


@pytest.fixture
def base(components: Components) -> Iterator[str]:
    with serving(create_app(components, web=False)) as url:
        yield url


@pytest.fixture
def api(base: str) -> Iterator[ApiClient]:
    """No key exists: an anonymous customer, its conversations bound by their tokens."""
    with ApiClient(base) as client:
        yield client


def test_send_message_then_read_and_export_the_conversation(
    api: ApiClient, model: FakeChatModel
) -> None:
    model.enqueue("Blenders carry a two year warranty.")
    sent = api.post("/api/v1/messages", json={"text": "How long is the warranty on blenders?"})
    assert sent.status_code == 200, sent.text
    reply = sent.json()
    assert reply["answer"] == "Blenders carry a two year warranty."
    assert reply["sources"][0]["source"].endswith("warranty.md")
    assert WARRANTY_SENTENCE in reply["sources"][0]["quote"], (
        "the evidence, from the dialog manager"
    )
    conversation_id = reply["conversation_id"]

    read = api.get(f"/api/v1/conversations/{conversation_id}").json()
    assert [e["type"] for e in read["events"]] == ["user", "bot"]
    assert read["state"]["turns"] == 1
    assert read["state"]["last_sources"][0]["source"].endswith("warranty.md")

    exported = api.get(f"/api/v1/conversations/{conversation_id}/export?format=markdown")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert "**Customer:** How long is the warranty on blenders?" in exported.text
    assert "  > “" in exported.text and f"{WARRANTY_SENTENCE}”" in exported.text
    as_json = api.get(f"/api/v1/conversations/{conversation_id}/export").json()
    assert as_json["events"][1]["text"] == reply["answer"]


def test_stream_sends_sources_first_then_deltas_then_done(
    api: ApiClient, model: FakeChatModel
) -> None:
    model.enqueue("Points expire after eighteen months.")
    events = sse_events(api, {"text": "When do loyalty points expire?"})
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert names.count("delta") == 5
    assert (
        "".join(str(d["text"]) for n, d in events if n == "delta")
        == "Points expire after eighteen months."
    )
    assert str(events[0][1]["sources"][0]["source"]).endswith("loyalty.md")  # type: ignore[index]
    assert events[-1][1]["answer"] == "Points expire after eighteen months."
    final = events[-1][1]["sources"][0]  # type: ignore[index]
    lines = final["quote"].splitlines()
    assert lines and all(line in final["text"] for line in lines), "done carries verbatim quotes"


def test_continuing_a_conversation_keeps_its_history(api: ApiClient, model: FakeChatModel) -> None:
    model.enqueue("Two years.", "Eighteen months.")
    first = api.post("/api/v1/messages", json={"text": "blender warranty"}).json()
    second = api.post(
        "/api/v1/messages",
        json={"text": "loyalty points expire", "conversation_id": first["conversation_id"]},
    ).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert {"role": "assistant", "content": "Two years."} in model.requests[1]["messages"]


def test_unknown_conversation_and_bad_input(api: ApiClient) -> None:
    assert api.get("/api/v1/conversations/nope").status_code == 404
    assert api.post("/api/v1/messages", json={"text": ""}).status_code == 422
    assert (
        api.post("/api/v1/messages", json={"text": "hi", "conversation_id": "../x"}).status_code
        == 422
    )


def test_health_metrics_and_openapi(api: ApiClient, model: FakeChatModel) -> None:
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 2
    model.enqueue("Two years.")
    api.post("/api/v1/messages", json={"text": "blender warranty"})
    metrics = api.get("/metrics").text
    assert 'assistant_turns_total{channel="api"} 1' in metrics
    answers = [line for line in metrics.splitlines() if line.startswith("assistant_answers_total{")]
    assert len(answers) == 1 and answers[0].endswith(" 1"), answers
    assert 'assistant_http_requests_total{code="200",method="POST"} 1' in metrics
    spec = api.get("/openapi.json").json()
    assert {
        "/api/v1/messages",
        "/api/v1/messages/stream",
        "/webhooks/generic",
        "/webhooks/chatwoot",
    } <= set(spec["paths"])
    generic = spec["paths"]["/webhooks/generic"]["post"]
    assert {p["name"] for p in generic["parameters"]} == {
        "X-Assistant-Timestamp",
        "X-Assistant-Signature",
    }
    assert (
        "delivery_id" in generic["requestBody"]["content"]["application/json"]["schema"]["required"]
    )
    assert api.get("/docs").status_code == 200


def test_feedback_is_stored_as_an_event_of_the_conversation(
    api: ApiClient, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    cid = api.post("/api/v1/messages", json={"text": "blender warranty"}).json()["conversation_id"]
    response = api.post(f"/api/v1/conversations/{cid}/feedback", json={"positive": False})
    assert response.status_code == 204
    events = api.get(f"/api/v1/conversations/{cid}").json()["events"]
    assert events[-1] == {"type": "feedback", "positive": False, "target_seq": None}
    unknown = api.post("/api/v1/conversations/nope/feedback", json={"positive": True})
    assert unknown.status_code == 404


def long_answer(words: int) -> str:
    """A long answer that does not loop (the grounding check cuts a loop at once): lowercase
    made-up words, each pass over them in another order."""
    syllables = "ba ce di fo gu ka le mi no pu ra se ti vo zu".split()
    vocabulary = [a + b + c for a in syllables for b in syllables for c in syllables[:2]]
    order = random.Random(7)
    out: list[str] = []
    while len(out) < words:
        out += order.sample(vocabulary, len(vocabulary))
    return "Here is how " + " ".join(out[:words])


def test_a_client_leaving_mid_stream_frees_the_conversation(components: Components) -> None:
    # a long answer streamed slowly, like a real model on a CPU
    slow = FakeChatModel(chunk_delay_s=0.05).enqueue(long_answer(200), "Two years.")
    components.overrides["chat_model"] = slow
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    with serving(create_app(components, web=False)) as base, ApiClient(base) as api:
        body = {"text": "blender warranty", "conversation_id": "leaver"}
        with api.stream("POST", "/api/v1/messages/stream", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("event: delta"):
                    break  # hang up after the first words
        started = time.monotonic()
        again = api.post("/api/v1/messages", json={**body, "text": "blender warranty?"}, timeout=30)
        assert again.status_code == 200 and again.json()["answer"] == "Two years."
        assert time.monotonic() - started < 20
    types = [event.type for event in components.assistant.history(scoped("leaver"))]
    assert "answer_failed" in types and types[-1] == "bot"


def test_feedback_on_an_event_the_conversation_lacks_is_refused_not_a_crash(
    api: ApiClient, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    cid = api.post("/api/v1/messages", json={"text": "blender warranty"}).json()["conversation_id"]
    for seq in (0, 99, -1):
        response = api.post(
            f"/api/v1/conversations/{cid}/feedback", json={"positive": True, "seq": seq}
        )
        assert response.status_code == 404, response.text
        assert f"no event {seq}" in response.json()["detail"]
    events = api.get(f"/api/v1/conversations/{cid}").json()["events"]
    assert [e["type"] for e in events] == ["user", "bot"]  # nothing was written


def test_a_conversation_busy_past_the_lock_timeout_answers_503(components: Components) -> None:
    """A turn that cannot take the conversation's lock is a 503 with Retry-After, whole or
    streamed (not a stream that breaks), and nothing is written."""
    components.settings.turn_lock_timeout_s = 0.2
    body = {"text": "hello", "conversation_id": "busy-1"}
    busy = scoped("busy-1")
    with serving(create_app(components, web=False)) as url, ApiClient(url) as api:
        with components.assistant.locks.acquire(busy, timeout=5):  # another turn holds it
            whole = api.post("/api/v1/messages", json=body)
            streamed = api.post("/api/v1/messages/stream", json=body)
        metrics = api.get("/metrics").text
    for response in (whole, streamed):
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert response.json()["detail"] == (
            f"conversation {busy} is busy (waited 0.2 s); nothing was lost, please try again "
            "shortly"
        )
    assert whole.headers[TOKEN_HEADER], "the token of the conversation it started comes back"
    assert TOKEN_HEADER not in streamed.headers, "the second call found it bound already"
    assert components.assistant.history(busy) == []
    assert 'assistant_turns_total{channel="api"} 2' in metrics


def test_a_conversation_is_bound_to_its_token_returned_once(
    api: ApiClient, base: str, model: FakeChatModel
) -> None:
    """Without any key the caller is an anonymous customer: its ids are namespaced, the token
    comes back once (body and header) and every later call must show it."""
    model.enqueue("Two years.", "Eighteen months.")
    started = api.post("/api/v1/messages", json={"text": "warranty", "conversation_id": "o-1"})
    reply = started.json()
    assert reply["conversation_id"] == scoped("o-1")
    assert reply["conversation_token"] == started.headers[TOKEN_HEADER]
    again = api.post("/api/v1/messages", json={"text": "points", "conversation_id": "o-1"})
    assert again.status_code == 200 and again.json()["conversation_token"] is None
    assert TOKEN_HEADER not in again.headers
    with ApiClient(base) as stranger:  # same (anonymous) caller, but without the token
        for response in (
            stranger.get(f"/api/v1/conversations/{scoped('o-1')}"),
            stranger.get(f"/api/v1/conversations/{scoped('o-1')}/export"),
            stranger.post(f"/api/v1/conversations/{scoped('o-1')}/feedback", json={"positive": 1}),
            stranger.post("/api/v1/messages", json={"text": "/forget", "conversation_id": "o-1"}),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["detail"] == f"no conversation with id {scoped('o-1')!r}" or (
                response.json()["detail"] == "no conversation with id 'o-1'"
            )
    assert len(api.get(f"/api/v1/conversations/{scoped('o-1')}").json()["events"]) == 4


def test_a_request_that_fails_in_the_app_is_counted_as_a_500(components: Components) -> None:
    app = create_app(components, web=False)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug in a route")

    with serving(app) as url:
        with ApiClient(url) as client:  # uvicorn closes the connection after an unhandled error
            assert client.get("/broken").status_code == 500
        with ApiClient(url) as client:
            assert client.get("/healthz").status_code == 200
            metrics = client.get("/metrics").text
    assert 'assistant_http_requests_total{code="500",method="GET"} 1' in metrics
    assert 'assistant_http_requests_total{code="200",method="GET"} 1' in metrics
