"""Opt-in: an export's roles on vLLM's CPU build with multi-LoRA, checked against the in-process model.

vLLM pins other transformers versions than the project, so it runs from its own venv, built once by
``bash tests/served/build_vllm_venv.sh`` (about 5 min, 3.5 GB). Run with ``RANKRAG_TEST_VLLM=1`` (and
``RANKRAG_VLLM_VENV=DIR`` for a venv other than ``.vllm-venv``); without it the tests skip. The server serves the
export's base weights as ``smollm2`` and its adapters as the LoRA modules ``ranker`` and ``answerer``
(``--enable-lora``), float32, ``--enforce-eager``; ``RankRAGModel.connect`` sends each request with its role.
The start-up time, the server's memory and the largest |dP| are printed and written to
``$RANKRAG_VLLM_REPORT`` when set (docs/serving.md records them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from served_helpers import free_port

from rankrag import RankRAGModel

pytestmark = [
    pytest.mark.skipif(not os.environ.get("RANKRAG_TEST_VLLM"), reason="opt-in: set RANKRAG_TEST_VLLM=1"),
    pytest.mark.timeout(1200),
]

VENV = Path(os.environ.get("RANKRAG_VLLM_VENV", Path(__file__).parents[2] / ".vllm-venv"))
START_TIMEOUT_S = 600
BASE_NAME = "smollm2"
QUESTIONS = [
    ("What is the capital of France?", ["Paris is the capital and largest city of France.", "Bananas are yellow."]),
    ("Who wrote Hamlet?", ["Hamlet is a tragedy written by William Shakespeare.", "The Seine flows through Paris."]),
    ("What do bees make?", ["Honey bees make honey from the nectar of flowers.", "Tokyo is the capital of Japan."]),
]
RANKING_QUERY = "Who built the first steam locomotive?"
RANKING_PASSAGES = [
    "Richard Trevithick built the first full-scale working railway steam locomotive in 1804.",
    "Paris is the capital and most populous city of France.",
    "Steam engines were improved by James Watt in the 18th century.",
    "The Amazon rainforest covers much of the Amazon basin of South America.",
    "George Stephenson built the Locomotion No. 1 for the Stockton and Darlington Railway.",
]
REPORT: dict[str, object] = {}


def _rss_mib(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


@pytest.fixture(scope="module")
def vllm_url(exported_roles: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    python = VENV / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"no vLLM venv at {VENV}: build it with `bash tests/served/build_vllm_venv.sh {VENV}`")
    work = tmp_path_factory.mktemp("vllm")
    port = free_port()
    adapters = exported_roles / "adapters"
    command = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(exported_roles),
        "--served-model-name",
        BASE_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "2048",
        "--enforce-eager",
        "--enable-lora",
        "--max-lora-rank",
        "16",
        "--max-loras",
        "2",
        "--lora-modules",
        f"ranker={adapters / 'ranker'}",
        f"answerer={adapters / 'answerer'}",
    ]
    environment = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(work),
        "VLLM_CACHE_ROOT": str(work / "cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor"),
    }
    log = (work / "vllm.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited with {process.returncode}:\n{(work / 'vllm.log').read_text()[-3000:]}")
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(
                    f"vLLM did not answer within {START_TIMEOUT_S} s:\n{(work / 'vllm.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        REPORT["start_s"] = round(time.monotonic() - started, 1)
        REPORT["server_rss_mib"] = round(_rss_mib(process.pid), 0)
        yield url, process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        print("vLLM CPU figures:", REPORT)
        if os.environ.get("RANKRAG_VLLM_REPORT"):
            Path(os.environ["RANKRAG_VLLM_REPORT"]).write_text(json.dumps(REPORT, indent=2), encoding="utf-8")


def test_each_role_reaches_its_adapter(vllm_url: tuple[str, int], exported_roles: Path) -> None:
    with RankRAGModel.connect(vllm_url[0], model=BASE_NAME, calibration=exported_roles) as served:
        assert served.info.flavor == "vllm" and served.info.prompt_mode == "ids"
        assert served.info.role_models == {"ranker": "ranker", "answerer": "answerer"}


def test_scores_and_rerank_match_in_process(vllm_url: tuple[str, int], roles_model: RankRAGModel) -> None:
    with RankRAGModel.connect(vllm_url[0], model=BASE_NAME) as served:
        remote = served.score(RANKING_QUERY, RANKING_PASSAGES)
        ranked = served.rerank(RANKING_QUERY, RANKING_PASSAGES, top_k=3, alpha=1.0)
    local = roles_model.score(RANKING_QUERY, RANKING_PASSAGES)
    worst = max(abs(a - b) for a, b in zip(local, remote))
    REPORT["max_abs_dP_float32"] = worst
    assert worst <= 1e-4, (local, remote)
    expected = roles_model.rerank(RANKING_QUERY, RANKING_PASSAGES, top_k=3, alpha=1.0)
    assert [p.index for p in ranked] == [p.index for p in expected]


def test_answers_in_each_role_match_in_process(
    vllm_url: tuple[str, int], roles_model: RankRAGModel, base_model: RankRAGModel, embedded_model: RankRAGModel
) -> None:
    """The answerer LoRA, the ranker LoRA and the base (the shipped roles' answerer) each answer greedily as the
    in-process model with the same weights does."""
    ranker_answering = RankRAGModel.load(answerer_adapter=embedded_model.adapters["ranker"])
    expected = {
        "answerer": [roles_model.generate(q, p, max_new_tokens=24) for q, p in QUESTIONS],
        "ranker": [ranker_answering.generate(q, p, max_new_tokens=24) for q, p in QUESTIONS],
        BASE_NAME: [base_model.generate(q, p, max_new_tokens=24) for q, p in QUESTIONS],
    }
    for served_name, answers in expected.items():
        with RankRAGModel.connect(vllm_url[0], model=BASE_NAME, role_models={"answerer": served_name}) as served:
            assert [served.generate(q, p, max_new_tokens=24) for q, p in QUESTIONS] == answers, served_name
            streamed = "".join(served.stream(*QUESTIONS[0], max_new_tokens=24))
            assert streamed == answers[0], served_name


def test_a_dead_server_fails_fast_and_clearly(vllm_url: tuple[str, int]) -> None:
    """A server that dies (SIGKILL, as in a crash): the next request fails at once as unavailable, naming it."""
    from rankrag.served import ServerUnavailableError

    served = RankRAGModel.connect(vllm_url[0], model=BASE_NAME, max_attempts=2, timeout=30)
    os.killpg(vllm_url[1], signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="127.0.0.1"):
        served.score(RANKING_QUERY, RANKING_PASSAGES[:1])
    assert time.monotonic() - started < 15
    served.close()
