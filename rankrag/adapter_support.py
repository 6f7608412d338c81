"""Rules every framework adapter follows, kept in one place so LangChain and LlamaIndex behave alike.

**Blank passages.** A blank passage (empty, whitespace only, or None) never takes a top-n slot and never
reaches the generator: :func:`select` / :func:`aselect` rank the other passages and leave blank ones out of
the result, and :func:`score` gives a blank passage 0.0 without running the model. The rerankers
(``rankrag_langchain.RankRAGReranker``, ``rankrag_llamaindex.RankRAGReranker``), and through them
``create_rankrag_chain`` and LlamaIndex query engines, pass only what these functions keep.

**Empty prompts.** A prompt, or a conversation, with no text to answer is refused with the same
``ValueError`` (:data:`EMPTY_PROMPT_MESSAGE`) by both frameworks' chat models: :func:`check_prompt` and
:func:`check_conversation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rankrag.model import selection as core_selection
from rankrag.model.selection import Selection
from rankrag.model.validation import check_passages, check_query

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel

BLANK_PASSAGE_RULE = "blank (empty or whitespace-only) passages never take a top-n slot and never reach the generator"

EMPTY_PROMPT_MESSAGE = (
    "the prompt is empty or only whitespace, so there is nothing to answer; pass a question or a message with text"
)


def is_blank(text: Any) -> bool:
    """True for None, "" and whitespace-only strings: text that is no passage and no prompt."""
    return text is None or (isinstance(text, str) and not text.strip())


# ------------------------------------------------------------------------------------- passages
def without_blanks(selection: Selection) -> Selection:
    """``selection`` with blank passages left out of both the ranking and the kept list."""
    ranking = [p for p in selection.ranking if not is_blank(p.text)]
    kept = [p for p in selection.kept if not is_blank(p.text)]
    return replace(selection, ranking=ranking, kept=kept)


def select(model: RankRAGModel, query: str, texts: Sequence[str], **options: Any) -> Selection:
    """:func:`rankrag.model.selection.select` under the blank-passage rule: blank texts are never scored and
    never appear in the result (``ScoredPassage.index`` is still the position in ``texts``).

    ``options`` are :func:`rankrag.model.selection.select`'s (``top_n``, ``score_threshold``,
    ``first_stage_scores`` (None allowed for blank texts), ``alpha``, ``batch_size``). Blank passages
    rank after every other passage there, so dropping them after the cut keeps the best ``top_n`` of the rest.
    """
    return without_blanks(core_selection.select(model, query, texts, **options))


# Kept twin of select().
async def aselect(model: RankRAGModel, query: str, texts: Sequence[str], **options: Any) -> Selection:
    """Async :func:`select`: scoring runs off the event loop."""
    return without_blanks(await core_selection.aselect(model, query, texts, **options))


def score(model: RankRAGModel, query: str, passages: Sequence[str], batch_size: int | None = None) -> list[float]:
    """P("True") per passage in input order; a blank passage gets 0.0 and is not sent to the model."""
    check_query(query)
    passages = check_passages(passages)
    positions = [i for i, passage in enumerate(passages) if not is_blank(passage)]
    scores = [0.0] * len(passages)
    if positions:
        values = model.score(query, [passages[i] for i in positions], batch_size=batch_size)
        for i, value in zip(positions, values):
            scores[i] = value
    return scores


# -------------------------------------------------------------------------------------- prompts
def check_prompt(prompt: Any) -> str:
    """The prompt, or ``ValueError(EMPTY_PROMPT_MESSAGE)`` when it is blank; ``TypeError`` when not a string."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if is_blank(prompt):
        raise ValueError(EMPTY_PROMPT_MESSAGE)
    return prompt


def check_conversation(turns: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Role/content turns, or ``ValueError(EMPTY_PROMPT_MESSAGE)`` when no turn other than a system prompt
    has text (no messages at all, or only blank ones): the model would have nothing to answer."""
    items = list(turns)
    if all(turn["role"] == "system" or is_blank(turn["content"]) for turn in items):
        raise ValueError(EMPTY_PROMPT_MESSAGE)
    return items
