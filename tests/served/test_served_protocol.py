"""The served client against a scripted fake server: P(True) from logprobs, missing tokens, retries,
timeouts and every malformed answer a server can give. No model runs here."""

from __future__ import annotations

import math
import socket
import threading
import time
from pathlib import Path

import pytest
from served_helpers import FakeRequest, FakeResponse, FakeServer, free_port, logprobs_body

pytest.importorskip("httpx", reason='the served backend needs httpx (pip install "rankrag[server]")')

from rankrag import PromptTemplates, PromptTooLongError, RankRAGModel, ScoringOptions  # noqa: E402
from rankrag.model.ranking_prompts import RankingEncoder  # noqa: E402
from rankrag.served import (  # noqa: E402
    ServedModelNotFoundError,
    ServedRankRAGModel,
    ServerDisconnectedError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnavailableError,
)

pytestmark = pytest.mark.timeout(120)

PASSAGES = ["Paris is the capital of France.", "Bananas are yellow."]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def connect(server: FakeServer, **options: object) -> ServedRankRAGModel:
    model = RankRAGModel.connect(server.url, model="smollm2-fake", max_attempts=3, **options)  # type: ignore[arg-type]
    assert isinstance(model, ServedRankRAGModel) and isinstance(model, RankRAGModel)
    return model


def test_p_true_is_read_from_the_logprobs(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        assert model.info.prompt_mode == "ids" and model.info.logit_bias and model.info.raw_logprobs
        assert model.score("What is the capital of France?", PASSAGES) == pytest.approx([sigmoid(1.0)] * 2)
        assert model.score("q", PASSAGES, normalization="vocab") == pytest.approx([math.exp(-0.5)] * 2)
        sent = fake_server.completion_requests()[-4:]
        assert all(isinstance(r.body["prompt"], list) and r.body["max_tokens"] == 1 for r in sent)
        assert model.score("q", []) == []


def test_the_prompts_are_the_in_process_token_ids(fake_server: FakeServer) -> None:
    from rankrag.served.tokenizers import embedded_tokenizer

    with connect(fake_server) as model:
        model.score("What is the capital of France?", PASSAGES + ["x " * 3000])
        sent = [r.body["prompt"] for r in fake_server.completion_requests()[-3:]]
        encoder = RankingEncoder(embedded_tokenizer(), PromptTemplates(), ScoringOptions())  # as RankRAGModel does
        assert sorted(sent) == sorted(encoder.encode("What is the capital of France?", PASSAGES + ["x " * 3000]))


def test_a_token_missing_from_the_top_logprobs_is_asked_for_explicitly(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        false_id = model._answer_ids[1]

        def answer(request: FakeRequest) -> FakeResponse:
            bias = request.body.get("logit_bias") or {}
            if list(bias) == [str(false_id)]:
                return FakeResponse(body=logprobs_body({"False": -4.0}, "False"))
            return FakeResponse(body=logprobs_body({"True": -0.5, "Yes": -1.0}))

        fake_server.completions = answer
        assert model.score("q", PASSAGES[:1]) == pytest.approx([sigmoid(3.5)])
        assert model.stats["forced_lookups"] == 1


def test_a_missing_token_is_an_error_when_the_server_ignores_logit_bias(fake_server: FakeServer) -> None:
    fake_server.completions = lambda request: FakeResponse(body=logprobs_body({"True": -0.5, "Yes": -1.0}))
    with connect(fake_server) as model:
        assert not model.info.logit_bias
        with pytest.raises(ServerResponseError, match=r"did not report the logprob of 'False'.*ignore logit_bias"):
            model.score("q", PASSAGES[:1])


def test_no_logprobs_is_a_clear_error_at_connect(fake_server: FakeServer) -> None:
    fake_server.completions = lambda request: FakeResponse(body={"choices": [{"text": "True", "logprobs": None}]})
    with pytest.raises(ServerResponseError, match=rf"{fake_server.url}/v1/completions returned no logprobs"):
        connect(fake_server)


@pytest.mark.parametrize(
    ("response", "pattern"),
    [
        (FakeResponse(raw=b'{"choices": [{"text": "Tr'), r"malformed response .* not JSON"),
        (FakeResponse(body={"id": "x"}), r"malformed response .* no 'choices'"),
        (FakeResponse(body=logprobs_body({"True": "high"})), r"malformed response .* not a logprob"),
        (FakeResponse(status=400, body={"error": {"message": "bad things"}}), r"answered HTTP 400: bad things"),
    ],
)
def test_malformed_answers_are_clear_errors(fake_server: FakeServer, response: FakeResponse, pattern: str) -> None:
    with connect(fake_server) as model:
        fake_server.completions = lambda request: response
        with pytest.raises(ServerResponseError, match=pattern) as caught:
            model.score("q", PASSAGES[:1])
        assert fake_server.url in str(caught.value)


def test_a_truncated_response_is_retried_then_reported(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        fake_server.completions = lambda request: FakeResponse(body=logprobs_body({"True": -0.5}), truncate=True)
        before = len(fake_server.completion_requests())
        with pytest.raises(ServerUnavailableError, match=r"connection to the model server at .* failed"):
            model.score("q", PASSAGES[:1])
        assert len(fake_server.completion_requests()) - before == 3  # max_attempts


def test_429_and_5xx_are_retried_with_backoff(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        calls: list[float] = []

        def flaky(request: FakeRequest) -> FakeResponse:
            calls.append(time.monotonic())
            if len(calls) <= 2:
                return FakeResponse(status=503 if len(calls) == 1 else 429, body={"detail": "busy"})
            return FakeResponse(body=logprobs_body({"True": -0.5, "False": -1.5}))

        fake_server.completions = flaky
        assert model.score("q", PASSAGES[:1]) == pytest.approx([sigmoid(1.0)])
        assert len(calls) == 3 and calls[1] - calls[0] >= 0.25 and calls[2] - calls[1] >= 0.5  # backoff doubles

        fake_server.completions = lambda request: FakeResponse(status=429, body={"detail": "slow down"})
        started = time.monotonic()
        with pytest.raises(ServerResponseError, match=r"HTTP 429: slow down"):
            model.score("q", PASSAGES[:1])
        assert time.monotonic() - started < 10


def test_a_slow_server_times_out(fake_server: FakeServer) -> None:
    with connect(fake_server, timeout=0.5) as model:
        fake_server.completions = lambda request: FakeResponse(body=logprobs_body({"True": -0.5}), delay_s=3)
        started = time.monotonic()
        with pytest.raises(ServerTimeoutError, match=r"did not answer within 0.5 s"):
            model.score("q", PASSAGES[:1])
        assert time.monotonic() - started < 3


def test_a_context_length_error_is_a_prompt_too_long_error(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        message = "This model's maximum context length is 64 tokens, however you requested 99 tokens"
        fake_server.completions = lambda request: FakeResponse(status=400, body={"error": {"message": message}})
        with pytest.raises(PromptTooLongError, match=r"rejected the prompt as too long"):
            model.score("q", PASSAGES[:1])
        assert model.context_window == 64
        with pytest.raises(PromptTooLongError, match=r"context window of 64 tokens of the model server at"):
            model.score("q", PASSAGES[:1])  # now refused before sending


def test_streaming_and_a_stream_that_dies(fake_server: FakeServer) -> None:
    def events(finish: bool) -> list[str]:
        lines = [f'{{"choices": [{{"text": "{w}", "finish_reason": null}}]}}' for w in (" Paris", " is", " nice")]
        return lines + (['{"choices": [{"text": "", "finish_reason": "stop"}]}', "[DONE]"] if finish else [])

    with connect(fake_server) as model:
        ids = model.answer_prompt_ids("Where?", ["Paris is the capital of France."])
        fake_server.completions = lambda request: FakeResponse(sse=events(True))
        assert "".join(model.stream_ids(ids)) == "Paris is nice"
        assert fake_server.completion_requests()[-1].body["stream"] is True

        fake_server.completions = lambda request: FakeResponse(sse=events(False), drop_after_sse=True)
        with pytest.raises(ServerDisconnectedError, match=r"dropped the stream after 3 events|ended after 3 events"):
            list(model.stream_ids(ids))


def test_generation_result(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        fake_server.completions = lambda request: FakeResponse(
            body={
                "choices": [{"text": "  Paris.\n", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
            }
        )
        result = model.generate_ids(model.answer_prompt_ids("Where?", ["Paris."]), max_new_tokens=5)
        assert (result.text, result.prompt_tokens, result.completion_tokens, result.finish_reason) == (
            "Paris.",
            7,
            3,
            "stop",
        )
        body = fake_server.completion_requests()[-1].body
        assert body["max_tokens"] == 5 and body["temperature"] == 0.0 and "logprobs" not in body


def test_wrong_model_name(fake_server: FakeServer) -> None:
    with pytest.raises(ServedModelNotFoundError, match=r"does not serve a model named 'nope'.*'smollm2-fake'"):
        RankRAGModel.connect(fake_server.url, model="nope")


def test_unreachable_url_is_a_clear_error_in_bounded_time() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=rf"cannot reach the model server at {url}/v1/models"):
        RankRAGModel.connect(url, model="smollm2", max_attempts=3)
    assert time.monotonic() - started < 10


def test_a_server_that_crashes_mid_handshake_is_reported_as_closing_the_connection(fake_server: FakeServer) -> None:
    """As llama-cpp-python's server on an AMX CPU: /v1/models answers, the first multi-token completion kills it."""
    fake_server.completions = lambda request: FakeResponse(crash=True)
    started = time.monotonic()
    with pytest.raises(ServerDisconnectedError) as caught:
        connect(fake_server)
    message = str(caught.value)
    assert message.startswith("RankRAGModel.connect could not finish its handshake: ")
    assert f"model server at {fake_server.url}/v1/completions closed the connection without answering" in message
    assert "then refused new connections" in message and "cannot reach" not in message
    assert "rankrag serve" in message and "docs/serving.md" in message
    assert time.monotonic() - started < 10


def test_a_server_that_accepts_and_closes_every_connection_is_reported_as_closing_it() -> None:
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.1)

        def accept_and_close() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                connection.close()

        thread = threading.Thread(target=accept_and_close, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        try:
            with pytest.raises(ServerDisconnectedError) as caught:
                RankRAGModel.connect(url, model="smollm2", max_attempts=2)
        finally:
            stop.set()
            thread.join(timeout=5)
    message = str(caught.value)
    assert f"{url}/v1/models failed: the server closed the connection without a complete answer" in message
    assert "docs/serving.md" in message


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_url must be an http"):
        RankRAGModel.connect("localhost:8000", model="smollm2")
    with pytest.raises(ValueError, match="model must be"):
        RankRAGModel.connect("http://127.0.0.1:1", model="")
    with pytest.raises(ValueError, match="max_concurrency"):
        RankRAGModel.connect("http://127.0.0.1:1", model="m", max_concurrency=0)


async def test_async_callers_share_one_bound_on_requests_in_flight(fake_server: FakeServer) -> None:
    import asyncio

    with connect(fake_server, max_concurrency=2) as model:
        active = {"now": 0, "most": 0}

        def slow(request: FakeRequest) -> FakeResponse:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
            time.sleep(0.05)
            active["now"] -= 1
            return FakeResponse(body=logprobs_body({"True": -0.5, "False": -1.5}))

        fake_server.completions = slow
        results = await asyncio.gather(*(model.ascore(f"q{i}", PASSAGES) for i in range(4)))
        assert all(r == pytest.approx([sigmoid(1.0)] * 2) for r in results)
        assert active["most"] <= 2
        ranked = await model.arerank("q", PASSAGES, top_k=1)
        assert len(ranked) == 1 and ranked[0].metadata["llm_score"] == pytest.approx(sigmoid(1.0))


def test_closing_fails_later_calls_clearly(fake_server: FakeServer) -> None:
    model = connect(fake_server)
    model.close()
    with pytest.raises(Exception, match="closed"):
        model.score("q", PASSAGES[:1])


def test_repr_and_interface(fake_server: FakeServer) -> None:
    with connect(fake_server) as model:
        assert "ServedRankRAGModel(name='smollm2-fake'" in repr(model) and fake_server.url in repr(model)
        assert model.device == f"server:{fake_server.url}" and model.model is None
        other = model.with_options(scoring_options=model.scoring_options)
        assert isinstance(other, ServedRankRAGModel) and other.client is model.client


def test_a_served_model_takes_the_exported_calibration(fake_server: FakeServer, tmp_path: Path) -> None:
    """`connect(calibration=DIR)` reads the rankrag_calibration.json that `rankrag export` wrote beside the model."""
    (tmp_path / "rankrag_calibration.json").write_text('{"alpha": 0.85}')
    with connect(fake_server, calibration=tmp_path) as model:
        assert model.default_alpha == 0.85
        assert model.with_options(scoring_options=ScoringOptions(normalization="vocab")).default_alpha == 0.85
    (tmp_path / "rankrag_calibration.json").write_text('{"alpha": 3}')
    with pytest.raises(ValueError, match="no alpha between 0 and 1"):
        connect(fake_server, calibration=tmp_path)
    with pytest.raises(ValueError, match="cannot be read"):
        connect(fake_server, calibration=tmp_path / "missing.json")
