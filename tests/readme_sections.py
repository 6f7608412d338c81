"""The README's code blocks by section, for the tests that run them as a newcomer pastes them."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def section_blocks(heading: str, language: str) -> list[str]:
    """The fenced ``language`` blocks under the heading whose text is ``heading``, up to the next heading of any
    level. Lines inside fences are never headings (a ``# comment`` in a code block does not end a section)."""
    blocks: list[str] = []
    inside, fence, found = False, None, False
    for line in README.read_text(encoding="utf-8").splitlines():
        if fence is None and line.startswith("#"):
            inside = line.lstrip("#").strip() == heading
            found = found or inside
        elif line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                if inside and fence == language:
                    blocks.append("")
            else:
                fence = None
        elif inside and fence == language:
            blocks[-1] += line + "\n"
    if not found:
        raise AssertionError(f"README has no section {heading!r}")
    return blocks


def section_text(heading: str) -> str:
    """The whole text under the heading whose text is ``heading`` (prose and code), up to the next heading."""
    lines: list[str] = []
    inside, fence, found = False, False, False
    for line in README.read_text(encoding="utf-8").splitlines():
        if not fence and line.startswith("#"):
            inside = line.lstrip("#").strip() == heading
            found = found or inside
            continue
        if line.startswith("```"):
            fence = not fence
        if inside:
            lines.append(line)
    if not found:
        raise AssertionError(f"README has no section {heading!r}")
    return "\n".join(lines)
