"""Import hygiene: `import rankrag` and `rankrag --help` load no torch/transformers, the core loads no
framework, and a missing optional dependency names the extra that installs it."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import rankrag
from rankrag.errors import MissingDependencyError
from rankrag.optional import require

HEAVY = ("torch", "transformers")
FRAMEWORKS = ("langchain", "llama_index")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; returns its stdout (fails the test on a non-zero exit)."""
    process = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr
    return process.stdout


def test_import_rankrag_loads_neither_torch_nor_transformers() -> None:
    _run("import rankrag, sys; assert 'torch' not in sys.modules and 'transformers' not in sys.modules")


def test_cli_app_and_help_load_neither_torch_nor_transformers() -> None:
    _run("import rankrag.cli.app, sys; assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    loaded = _run(
        f"""
        import sys
        from rankrag.cli.app import app

        for args in (["--help"], ["eval", "rerank", "--help"], ["index", "--help"]):
            try:
                app(args)
            except SystemExit:
                pass
        print("LOADED", [name for name in {HEAVY!r} if name in sys.modules])
        """
    )
    assert "LOADED []" in loaded


def test_every_public_name_resolves() -> None:
    assert sorted(rankrag.__all__) == sorted(set(rankrag.__all__))
    for name in rankrag.__all__:
        value = getattr(rankrag, name)
        assert getattr(value, "__name__", name) == name
    assert set(rankrag.__all__) <= set(dir(rankrag))
    from rankrag import RankRAGModel, clear_registry
    from rankrag.model import RankRAGModel as model_class
    from rankrag.model import clear_registry as model_clear

    assert (RankRAGModel, clear_registry) == (model_class, model_clear)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        rankrag.not_a_name  # noqa: B018
    with pytest.raises(ImportError):
        from rankrag import not_a_name  # type: ignore[attr-defined]  # noqa: F401


def test_core_modules_import_no_framework() -> None:
    """Every rankrag.* module imported: LangChain and LlamaIndex stay out (transformers is fine)."""
    result = json.loads(
        _run(
            """
            import importlib, json, pkgutil, sys
            import rankrag

            imported, unavailable = [], {}
            for info in pkgutil.walk_packages(rankrag.__path__, "rankrag."):
                try:
                    importlib.import_module(info.name)
                    imported.append(info.name)
                except ImportError as error:  # an extra that is not installed here (e.g. [training])
                    unavailable[info.name] = str(error)
            print(json.dumps({"imported": imported, "unavailable": unavailable, "modules": sorted(sys.modules)}))
            """
        ).splitlines()[-1]
    )
    assert {"rankrag.eval.rerank", "rankrag.index.ingest", "rankrag.index.store", "rankrag.cli.app"} <= set(
        result["imported"]
    ), result["unavailable"]
    frameworks = [name for name in result["modules"] if name.split(".")[0].startswith(FRAMEWORKS)]
    assert frameworks == []


def test_require_returns_the_module() -> None:
    module = require("json", "eval", "testing")
    assert isinstance(module, ModuleType) and module.__name__ == "json"


@pytest.mark.parametrize(
    ("module", "extra", "where", "function", "args"),
    [
        ("ir_measures", "eval", "rankrag.eval.metrics", "_measures", (1,)),
        ("langchain_text_splitters", "chroma", "rankrag.index.ingest", "make_splitter", ()),
        ("chromadb", "chroma", "rankrag.index.store", "_chromadb", ()),
        ("llama_index.core", "llamaindex", "rankrag.eval.rerank", "load_llm_rerank_baseline", ()),
    ],
)
def test_a_missing_optional_dependency_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, where: str, function: str, args: tuple[object, ...]
) -> None:
    call = getattr(importlib.import_module(where), function)
    monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "rankrag_llamaindex.llm_rerank_baseline", None)
    with pytest.raises(MissingDependencyError, match=re.escape(f'pip install "rankrag[{extra}]"')) as caught:
        call(*args)
    assert module in str(caught.value)
    assert isinstance(caught.value, ImportError)  # `except ImportError` still catches it


def test_a_missing_pdf_reader_skips_the_file_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rankrag.index import ingest

    monkeypatch.setitem(sys.modules, "pypdf", None)
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(ingest.UnreadableFileError, match=re.escape('pip install "rankrag[pdf]"')):
        ingest.read_text(tmp_path / "paper.pdf")


def test_missing_dependency_in_a_fresh_interpreter() -> None:
    """The same as a user without LlamaIndex sees it, with nothing imported beforehand."""
    out = _run(
        """
        import sys
        sys.modules["llama_index"] = None
        from rankrag.errors import MissingDependencyError
        from rankrag.eval.rerank import load_llm_rerank_baseline
        try:
            load_llm_rerank_baseline()
        except MissingDependencyError as error:
            print(error)
        """
    )
    assert 'pip install "rankrag[llamaindex]"' in out and "llm_rerank" in out
