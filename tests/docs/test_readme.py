"""The README's code blocks run as written, on the embedded defaults, and answer the README's own question.

Each section's blocks run in a fresh subprocess in an empty directory, the way a newcomer pastes them. This
checks that the snippets are true; no prompt or data is tuned to the question.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from readme_sections import README, section_blocks

QUESTION = "What is the capital of Japan?"
ANSWER = "tokyo"


def run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's rankrag first
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command[:2]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def first_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.strip()).lower()


@pytest.mark.slow
@pytest.mark.parametrize("heading", ["Quickstart (framework-free core)", "LangChain", "LlamaIndex"])
def test_python_sections_run_as_written_and_answer_the_example(heading: str, tmp_path: Path) -> None:
    blocks = section_blocks(heading, "python")
    assert blocks
    script = tmp_path / "snippet.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    output = run([sys.executable, str(script)], tmp_path)
    assert QUESTION in README.read_text(encoding="utf-8")
    assert ANSWER in first_line(output), f"the {heading} section's first printed answer is wrong:\n{output[:1500]}"


@pytest.mark.slow
def test_the_command_line_section_indexes_and_asks(tmp_path: Path) -> None:
    runnable = section_blocks("Command line", "bash")[0]
    output = run(["bash", "-euo", "pipefail", "-c", runnable], tmp_path)
    assert (tmp_path / "rankrag-db").is_dir()
    # `rankrag index` prints one summary line; `rankrag ask` streams the answer, then the passages it used.
    answer = output.split("Passages used", 1)[0].split("chunks\n", 1)[-1]
    assert ANSWER in first_line(answer), f"rankrag ask answered wrongly:\n{output[:1500]}"
