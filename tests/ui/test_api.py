"""The REST API, health and metrics, over a real uvicorn server on loopback."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import httpx
import pytest

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.ui.conftest import serving, sse_events
from ui.server import create_app

pytestmark = pytest.mark.unit
WARRANTY_SENTENCE = "The warranty on blenders lasts two years from delivery."


@pytest.fixture
def base(components: Components) -> Iterator[str]:
    with serving(create_app(components, web=False)) as url:
        yield url


def test_send_message_then_read_and_export_the_conversation(
    base: str, model: FakeChatModel
) -> None:
    model.enqueue("Blenders carry a two year warranty.")
    sent = httpx.post(
        f"{base}/api/v1/messages", json={"text": "How long is the warranty on blenders?"}
    )
    assert sent.status_code == 200, sent.text
    reply = sent.json()
    assert reply["answer"] == "Blenders carry a two year warranty."
    assert reply["sources"][0]["source"].endswith("warranty.md")
    assert WARRANTY_SENTENCE in reply["sources"][0]["quote"], (
        "the evidence, from the dialog manager"
    )
    conversation_id = reply["conversation_id"]

    read = httpx.get(f"{base}/api/v1/conversations/{conversation_id}").json()
    assert [e["type"] for e in read["events"]] == ["user", "bot"]
    assert read["state"]["turns"] == 1
    assert read["state"]["last_sources"][0]["source"].endswith("warranty.md")

    exported = httpx.get(f"{base}/api/v1/conversations/{conversation_id}/export?format=markdown")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert "**Customer:** How long is the warranty on blenders?" in exported.text
    assert "  > “" in exported.text and f"{WARRANTY_SENTENCE}”" in exported.text
    as_json = httpx.get(f"{base}/api/v1/conversations/{conversation_id}/export").json()
    assert as_json["events"][1]["text"] == reply["answer"]


def test_stream_sends_sources_first_then_deltas_then_done(base: str, model: FakeChatModel) -> None:
    model.enqueue("Points expire after eighteen months.")
    events = sse_events(base, {"text": "When do loyalty points expire?"})
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


def test_continuing_a_conversation_keeps_its_history(base: str, model: FakeChatModel) -> None:
    model.enqueue("Two years.", "Eighteen months.")
    first = httpx.post(f"{base}/api/v1/messages", json={"text": "blender warranty"}).json()
    second = httpx.post(
        f"{base}/api/v1/messages",
        json={"text": "loyalty points expire", "conversation_id": first["conversation_id"]},
    ).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert {"role": "assistant", "content": "Two years."} in model.requests[1]["messages"]


def test_unknown_conversation_and_bad_input(base: str) -> None:
    assert httpx.get(f"{base}/api/v1/conversations/nope").status_code == 404
    assert httpx.post(f"{base}/api/v1/messages", json={"text": ""}).status_code == 422
    assert (
        httpx.post(
            f"{base}/api/v1/messages", json={"text": "hi", "conversation_id": "../x"}
        ).status_code
        == 422
    )


def test_health_metrics_and_openapi(base: str, model: FakeChatModel) -> None:
    health = httpx.get(f"{base}/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 2
    model.enqueue("Two years.")
    httpx.post(f"{base}/api/v1/messages", json={"text": "blender warranty"})
    metrics = httpx.get(f"{base}/metrics").text
    assert 'assistant_turns_total{channel="api"} 1' in metrics
    answers = [line for line in metrics.splitlines() if line.startswith("assistant_answers_total{")]
    assert len(answers) == 1 and answers[0].endswith(" 1"), answers
    assert 'assistant_http_requests_total{code="200",method="POST"} 1' in metrics
    spec = httpx.get(f"{base}/openapi.json").json()
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
    assert httpx.get(f"{base}/docs").status_code == 200


def test_feedback_is_stored_as_an_event_of_the_conversation(
    base: str, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    cid = httpx.post(f"{base}/api/v1/messages", json={"text": "blender warranty"}).json()[
        "conversation_id"
    ]
    response = httpx.post(f"{base}/api/v1/conversations/{cid}/feedback", json={"positive": False})
    assert response.status_code == 204
    events = httpx.get(f"{base}/api/v1/conversations/{cid}").json()["events"]
    assert events[-1] == {"type": "feedback", "positive": False, "target_seq": None}
    unknown = httpx.post(f"{base}/api/v1/conversations/nope/feedback", json={"positive": True})
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
    with serving(create_app(components, web=False)) as base:
        body = {"text": "blender warranty", "conversation_id": "leaver"}
        with httpx.stream("POST", f"{base}/api/v1/messages/stream", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("event: delta"):
                    break  # hang up after the first words
        started = time.monotonic()
        again = httpx.post(
            f"{base}/api/v1/messages", json={**body, "text": "blender warranty?"}, timeout=30
        )
        assert again.status_code == 200 and again.json()["answer"] == "Two years."
        assert time.monotonic() - started < 20
    types = [event.type for event in components.assistant.history("leaver")]
    assert "answer_failed" in types and types[-1] == "bot"


def test_feedback_on_an_event_the_conversation_lacks_is_refused_not_a_crash(
    base: str, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    cid = httpx.post(f"{base}/api/v1/messages", json={"text": "blender warranty"}).json()[
        "conversation_id"
    ]
    for seq in (0, 99, -1):
        response = httpx.post(
            f"{base}/api/v1/conversations/{cid}/feedback", json={"positive": True, "seq": seq}
        )
        assert response.status_code == 404, response.text
        assert f"no event {seq}" in response.json()["detail"]
    events = httpx.get(f"{base}/api/v1/conversations/{cid}").json()["events"]
    assert [e["type"] for e in events] == ["user", "bot"]  # nothing was written


def test_a_conversation_busy_past_the_lock_timeout_answers_503(components: Components) -> None:
    """A turn that cannot take the conversation's lock is a 503 with Retry-After, whole or
    streamed (not a stream that breaks), and nothing is written."""
    components.settings.turn_lock_timeout_s = 0.2
    body = {"text": "hello", "conversation_id": "busy-1"}
    with serving(create_app(components, web=False)) as url:
        with components.assistant.locks.acquire("busy-1", timeout=5):  # another turn holds it
            whole = httpx.post(f"{url}/api/v1/messages", json=body)
            streamed = httpx.post(f"{url}/api/v1/messages/stream", json=body)
        metrics = httpx.get(f"{url}/metrics").text
    for response in (whole, streamed):
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert response.json()["detail"] == (
            "conversation busy-1 is busy (waited 0.2 s); nothing was lost, please try again shortly"
        )
    assert components.assistant.history("busy-1") == []
    assert 'assistant_turns_total{channel="api"} 2' in metrics
