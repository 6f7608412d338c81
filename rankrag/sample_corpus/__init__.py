"""The sample corpus shipped with rankrag: eight paragraphs each of four Wikipedia articles (CC BY-SA 4.0,
from SQuAD v1.1; see README.md here), for the demo, the quickstart notebooks and your first experiments.

>>> from rankrag.sample_corpus import articles_dir, passages
>>> [p.pid for p in passages("Steam_engine")][:2]
['Steam_engine#0', 'Steam_engine#1']
>>> articles_dir()          # one file per article, for loaders that read a directory

Each article file is a title line followed by paragraphs separated by blank lines; ``pid`` is
``"<file stem>#<paragraph number>"``, the SQuAD paragraph id.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

__all__ = ["SamplePassage", "articles_dir", "passages", "titles"]

_ARTICLES = "articles"
_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class SamplePassage:
    """One paragraph of the sample corpus: ``pid`` "Kenya#0", ``title`` "Kenya" (the file stem), ``text``."""

    pid: str
    title: str
    text: str


def _article_files() -> list[Traversable]:
    folder = resources.files(__name__) / _ARTICLES
    return sorted((f for f in folder.iterdir() if f.name.endswith(_SUFFIXES)), key=lambda f: f.name)


def articles_dir() -> Path:
    """The directory holding the article files (installed with the package, never downloaded)."""
    return Path(str(resources.files(__name__) / _ARTICLES))


def titles() -> list[str]:
    """The article titles, as ``passages()`` takes them: "Amazon_rainforest", "Kenya", "Steam_engine", "Warsaw"."""
    return [f.name.rsplit(".", 1)[0] for f in _article_files()]


def passages(title: str | None = None) -> list[SamplePassage]:
    """The paragraphs of every article (or of the one named ``title``), in file order."""
    known = titles()
    if title is not None and title not in known:
        raise ValueError(f"the sample corpus has no article {title!r}; it has {known}")
    result: list[SamplePassage] = []
    for file in _article_files():
        stem = file.name.rsplit(".", 1)[0]
        if title is not None and stem != title:
            continue
        blocks = [block.strip() for block in file.read_text(encoding="utf-8").split("\n\n")]
        paragraphs = [block for block in blocks[1:] if block]  # blocks[0] is the title line
        result += [SamplePassage(pid=f"{stem}#{i}", title=stem, text=text) for i, text in enumerate(paragraphs)]
    return result
