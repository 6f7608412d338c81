"""connect() sends each role's requests to its served model: ranking to the ranker's, generation to the answerer's.
Against a scripted fake server (no model runs here); the real servers are in test_served_llama_cpp.py and the
opt-in test_served_vllm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from served_helpers import FakeResponse, FakeServer

pytest.importorskip("httpx", reason='the served backend needs httpx (pip install "rankrag[server]")')

from rankrag import RankRAGModel  # noqa: E402
from rankrag.served import ServedModelNotFoundError  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _answer(request: object) -> FakeResponse:
    return FakeResponse(body={"choices": [{"text": "Paris.", "finish_reason": "stop"}]})


def _requests_by_kind(server: FakeServer) -> dict[str, set[str]]:
    models: dict[str, set[str]] = {"ranking": set(), "generation": set()}
    for request in server.completion_requests():
        kind = "ranking" if request.body.get("max_tokens") == 1 else "generation"
        models[kind].add(request.body["model"])
    return models


def test_roles_go_to_the_models_named_after_them(tmp_path: Path) -> None:
    server = FakeServer(models=("smollm2", "ranker", "answerer"))
    try:
        with RankRAGModel.connect(server.url, model="smollm2") as model:
            assert model.info.role_models == {"ranker": "ranker", "answerer": "answerer"}
            model.score("Where is Paris?", ["Paris is in France."])
            server.completions = _answer
            model.generate("Where is Paris?", ["Paris is in France."], max_new_tokens=4)
        assert _requests_by_kind(server) == {"ranking": {"ranker"}, "generation": {"answerer"}}
    finally:
        server.close()


def test_without_role_models_every_request_names_the_model() -> None:
    server = FakeServer(models=("smollm2",))
    try:
        with RankRAGModel.connect(server.url, model="smollm2") as model:
            assert model.info.role_models == {"ranker": "smollm2", "answerer": "smollm2"}
            model.score("Where is Paris?", ["Paris is in France."])
            server.completions = _answer
            model.generate("Where is Paris?", ["Paris is in France."], max_new_tokens=4)
        assert _requests_by_kind(server) == {"ranking": {"smollm2"}, "generation": {"smollm2"}}
    finally:
        server.close()


def test_role_models_can_be_chosen_and_are_checked(tmp_path: Path) -> None:
    server = FakeServer(models=("smollm2", "answerer"))
    calibration = tmp_path / "rankrag_calibration.json"
    calibration.write_text(json.dumps({"alpha": 0.9, "ranker_adapter": "adapters/ranker", "answerer_adapter": None}))
    try:
        with RankRAGModel.connect(server.url, model="smollm2", role_models={"answerer": "smollm2"}) as model:
            assert model.info.role_models == {"ranker": "smollm2", "answerer": "smollm2"}
        with RankRAGModel.connect(server.url, model="smollm2", calibration=calibration) as model:
            assert model.adapters == {"ranker": "adapters/ranker", "answerer": None}  # as the export records them
        with pytest.raises(ServedModelNotFoundError, match=r"role_models\['answerer'\] is 'writer'"):
            RankRAGModel.connect(server.url, model="smollm2", role_models={"answerer": "writer"})
        with pytest.raises(ValueError, match="unknown role"):
            RankRAGModel.connect(server.url, model="smollm2", role_models={"writer": "smollm2"})
    finally:
        server.close()
