"""Hypothesis strategies for text that breaks naive handling: any unicode, blanks, very long passages."""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that break naive text handling: controls and NUL, bidi overrides, zero-width joiners, combining
# marks, emoji (incl. ZWJ sequences and flags), CJK, Arabic/Hebrew, the BOM, line/paragraph separators.
AWKWARD_CHARACTERS = [
    "\x00",
    "\x01",
    "\x07",
    "\x1b",
    "\x7f",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x85",
    "\u00a0",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffd",
    "\u0301",
    "\u0336",
    "\u05d0",
    "\u05e9",
    "\u0627",
    "\u0644",
    "\u4e2d",
    "\u6587",
    "\U0001f600",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1eb\U0001f1f7",
    "{",
    "}",
    "{passage}",
    "{question}",
    "<|im_start|>",
    "<|im_end|>",
    "</s>",
    "<s>",
    "System:",
    "Assistant:",
    "\\",
    '"',
    "'",
    "%s",
    " ",
]

BLANK_CHARACTERS = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2028", "\u3000"]

awkward_text = st.lists(st.sampled_from(AWKWARD_CHARACTERS), max_size=12).map("".join)
# st.text() draws any code point except surrogates, control characters and NUL included.
any_text = st.one_of(
    st.text(max_size=80), awkward_text, st.builds(lambda a, b: a + b, st.text(max_size=40), awkward_text)
)
blank_text = st.lists(st.sampled_from(BLANK_CHARACTERS), max_size=6).map("".join)
nonblank_text = any_text.filter(lambda text: bool(text.strip()))


@st.composite
def long_text(draw: st.DrawFn, max_chars: int = 100_000) -> str:
    """A text of up to ``max_chars`` characters, built by repeating a short unicode seed (cheap to draw)."""
    seed = draw(st.one_of(st.text(min_size=1, max_size=16), awkward_text.filter(bool)))
    size = draw(st.integers(min_value=1, max_value=max_chars))
    return (seed * (size // len(seed) + 1))[:size]
