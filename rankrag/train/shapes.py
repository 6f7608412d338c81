"""The prompt shapes users send to ``RankRAGLLM``, for rendering QA examples of the training blend.

RankRAG's own answer prompt is one shape. Users of the LangChain and LlamaIndex classes write others: a
LangChain system + human RAG prompt, LlamaIndex's default text-QA and refine templates, a plain user message
holding context and question, a multi-turn chat. An adapter trained on RankRAG's prompt only learns that shape
(it answered "Kyoto" to "What is the capital of Japan?" in a LangChain prompt), so the blend renders part of
its QA examples in these shapes, as role/content messages that go through the chat template exactly as the
framework classes send them (:meth:`RankRAGModel.messages_prompt_ids`).

The LlamaIndex texts are llama-index-core 0.14's defaults (``CHAT_TEXT_QA_PROMPT``, ``CHAT_REFINE_PROMPT``);
the LangChain texts are the RAG prompts of LangChain's tutorials. Each shape has a few variants, picked by a
hash of the example, so no single wording is learned as the only one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

RANKRAG_SHAPE = "rankrag"
USER_SHAPES = ("llamaindex_text_qa", "llamaindex_refine", "system_human", "plain_user", "multi_turn")
SHAPES = (RANKRAG_SHAPE, *USER_SHAPES)
Messages = list[dict[str, str]]

LLAMAINDEX_QA_SYSTEM = (
    "You are an expert Q&A system that is trusted around the world.\n"
    "Always answer the query using the provided context information, and not prior knowledge.\n"
    "Some rules to follow:\n"
    "1. Never directly reference the given context in your answer.\n"
    "2. Avoid statements like 'Based on the context, ...' or 'The context information ...' or anything along "
    "those lines."
)
LLAMAINDEX_QA_USER = (
    "Context information is below.\n"
    "---------------------\n"
    "{context}\n"
    "---------------------\n"
    "Given the context information and not prior knowledge, answer the query.\n"
    "Query: {question}\n"
    "Answer: "
)
LLAMAINDEX_REFINE_USER = (
    "You are an expert Q&A system that strictly operates in two modes when refining existing answers:\n"
    "1. **Rewrite** an original answer using the new context.\n"
    "2. **Repeat** the original answer if the new context isn't useful.\n"
    "Never reference the original answer or context directly in your answer.\n"
    "When in doubt, just repeat the original answer.\n"
    "New Context: {context}\n"
    "Query: {question}\n"
    "Original Answer: {existing}\n"
    "New Answer: "
)
# (system, human) pairs; an empty system is a human message only.
SYSTEM_HUMAN_VARIANTS: tuple[tuple[str, str], ...] = (
    (
        "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
        "answer the question. If you don't know the answer, say that you don't know. Use three sentences maximum "
        "and keep the answer concise.\n\n{context}",
        "{question}",
    ),
    (
        "",
        "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
        "answer the question. If you don't know the answer, just say that you don't know. Use three sentences "
        "maximum and keep the answer concise.\nQuestion: {question} \nContext: {context} \nAnswer:",
    ),
    (
        "You are a helpful assistant.",
        "Answer the question based only on the following context:\n{context}\n\nQuestion: {question}",
    ),
    ("Answer the user's question using only the context below.\n\nContext:\n{context}", "{question}"),
)
PLAIN_USER_VARIANTS = (
    "Context: {context}\n\nQuestion: {question}",
    "{context}\n\n{question}",
    "Answer in a few words: {question} Context: {context}",
    "Read the text and answer the question.\n\nText: {context}\n\nQuestion: {question}\nAnswer:",
)
MULTI_TURN_OPENINGS = (
    ("Hi! Can you help me with a question about some text?", "Of course. Please share the text and your question."),
    ("I have some documents and a question.", "Sure, send them over and I'll answer from them."),
)
# What a refine step holds as the earlier answer when the new context is the one with the answer.
UNINFORMED_ANSWERS = ("I don't know.", "The context does not say.", "Empty Response")


def _pick(options: Sequence[str] | Sequence[tuple[str, str]], key: str, label: str) -> int:
    digest = hashlib.sha1(f"{label}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % len(options)


def join_contexts(passages: Sequence[str]) -> str:
    """Passages as the frameworks join them: LangChain's ``format_docs`` and LlamaIndex's context both use a
    blank line between texts."""
    return "\n\n".join(passages)


def render_shape(shape: str, question: str, passages: Sequence[str], answer: str, key: str) -> Messages:
    """The messages a user of ``shape`` sends for ``question`` over ``passages``; ``answer`` is only used by the
    refine shape (the earlier answer it repeats when the new context does not help); ``key`` picks the variant."""
    context = join_contexts(passages)
    if shape == "llamaindex_text_qa":
        return [
            {"role": "system", "content": LLAMAINDEX_QA_SYSTEM},
            {"role": "user", "content": LLAMAINDEX_QA_USER.format(context=context, question=question)},
        ]
    if shape == "llamaindex_refine":
        # Half the time the earlier answer is already right and is repeated; otherwise it is uninformed
        # and the new context supplies the answer.
        keep = _pick(("keep", "rewrite"), key, "refine") == 0
        existing = answer if keep else UNINFORMED_ANSWERS[_pick(UNINFORMED_ANSWERS, key, "uninformed")]
        text = LLAMAINDEX_REFINE_USER.format(context=context, question=question, existing=existing)
        return [{"role": "user", "content": text}]
    if shape == "system_human":
        system, human = SYSTEM_HUMAN_VARIANTS[_pick(SYSTEM_HUMAN_VARIANTS, key, shape)]
        messages = [{"role": "system", "content": system.format(context=context)}] if system else []
        return [*messages, {"role": "user", "content": human.format(context=context, question=question)}]
    if shape == "plain_user":
        text = PLAIN_USER_VARIANTS[_pick(PLAIN_USER_VARIANTS, key, shape)].format(context=context, question=question)
        return [{"role": "user", "content": text}]
    if shape == "multi_turn":
        opening, reply = MULTI_TURN_OPENINGS[_pick(MULTI_TURN_OPENINGS, key, shape)]
        return [
            {"role": "user", "content": opening},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": f"{context}\n\nQuestion: {question}"},
        ]
    raise ValueError(f"unknown prompt shape {shape!r}; choose one of {SHAPES}")
