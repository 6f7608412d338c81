"""create_rankrag_chain: any LangChain retriever turned into the RankRAG pipeline, as one LCEL Runnable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)
from langchain_core.runnables.utils import AddableDict
from langchain_core.vectorstores import VectorStoreRetriever

from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS, NOT_FOUND_MESSAGE
from rankrag.integration.load_options import check_pipeline_options
from rankrag.integration.metadata import RELEVANCE_SCORE_KEY
from rankrag.model.hybrid import FirstStageKind
from rankrag.model.validation import check_positive, check_threshold
from rankrag_langchain._convert import question_of
from rankrag_langchain.chat_model import RankRAGLLM
from rankrag_langchain.reranker import RankRAGReranker


def create_rankrag_chain(
    retriever: Runnable[str, list[Document]],
    *,
    reranker: RankRAGReranker | None = None,
    llm: RankRAGLLM | None = None,
    top_k: int = 5,
    score_threshold: float | None = None,
    not_found_message: str = NOT_FOUND_MESSAGE,
    **model_options: Any,
) -> Runnable[Any, dict[str, Any]]:
    """The RankRAG chain: retrieve, rerank with the RankRAG model, keep ``top_k`` (5, RankRAG's k), answer from them.

    ``retriever`` is any LangChain retriever (or Runnable from a question to Documents); it decides how
    many candidates are retrieved, e.g. ``vectorstore.as_retriever(search_kwargs={"k": 20})``.
    ``reranker`` and ``llm`` default to a :class:`RankRAGReranker` built from ``model_options``
    (``model=``, ``model_name=``, ``dtype=`` ...; its ``first_stage`` is "dense" for a vector store's retriever) and a
    :class:`RankRAGLLM` sharing its model; pass your own
    to set their options (``alpha``, ``max_tokens`` ...). The answer uses RankRAG's generation prompt.

    ``score_threshold``: keep only documents whose ``relevance_score`` (the calibrated probability that the
    document is relevant) reaches it; when none does, the answer is ``not_found_message``, the generator is not
    called, and ``abstained`` is True.

    The chain takes a question (a string, or a dict with "question", "query" or "input") and returns
    ``{"answer": str, "source_documents": [Document, ...], "abstained": bool}``, the documents best first with
    their scores in metadata. ``stream``/``astream`` first yield ``{"source_documents": [...], "abstained": bool}``,
    then ``{"answer": chunk}`` pieces; ``chain.pick("answer").stream(q)`` yields the answer text alone.
    Blank retrieved documents (empty or whitespace-only) are neither kept nor shown to the generator:
    the reranker leaves them out (:mod:`rankrag.integration.ranking`).
    """
    check_positive(top_k, "top_k")
    check_threshold(score_threshold)
    check_pipeline_options(model_options, (reranker, llm), "chain")
    if reranker is None:
        first_stage: FirstStageKind = "dense" if isinstance(retriever, VectorStoreRetriever) else "lexical"
        options = model_options if llm is None else {"model": llm.model}
        reranker = RankRAGReranker(top_n=top_k, first_stage=first_stage, **options)
    if llm is None:
        llm = RankRAGLLM(model=reranker.model, max_tokens=DEFAULT_MAX_NEW_TOKENS)

    def relevant(documents: Sequence[Document]) -> list[Document]:
        kept = [d for d in documents if score_threshold is None or d.metadata[RELEVANCE_SCORE_KEY] >= score_threshold]
        return kept[:top_k]

    def rerank(inputs: dict[str, Any], config: RunnableConfig) -> list[Document]:
        return relevant(
            reranker.compress_documents(inputs["documents"], inputs["question"], callbacks=config.get("callbacks"))
        )

    async def arerank(inputs: dict[str, Any], config: RunnableConfig) -> list[Document]:
        return relevant(
            await reranker.acompress_documents(
                inputs["documents"], inputs["question"], callbacks=config.get("callbacks")
            )
        )

    def answer_stream(inputs: dict[str, Any]) -> Iterator[str]:
        contexts = [document.page_content for document in inputs["source_documents"]]
        return llm.rankrag_model.stream(inputs["question"], contexts, llm.generation_options())

    def respond(inputs: dict[str, Any]) -> Iterator[AddableDict]:
        abstained = not inputs["source_documents"]
        yield AddableDict(source_documents=inputs["source_documents"], abstained=abstained)
        if abstained:
            yield AddableDict(answer=not_found_message)
            return
        answered = False
        for chunk in answer_stream(inputs):
            answered = True
            yield AddableDict(answer=chunk)
        if not answered:
            yield AddableDict(answer="")

    # Kept twin of respond(), over the core's async stream.
    async def arespond(inputs: dict[str, Any]) -> AsyncIterator[AddableDict]:
        abstained = not inputs["source_documents"]
        yield AddableDict(source_documents=inputs["source_documents"], abstained=abstained)
        if abstained:
            yield AddableDict(answer=not_found_message)
            return
        contexts = [document.page_content for document in inputs["source_documents"]]
        answered = False
        async for chunk in llm.rankrag_model.astream(inputs["question"], contexts, llm.generation_options()):
            answered = True
            yield AddableDict(answer=chunk)
        if not answered:
            yield AddableDict(answer="")

    chain = (
        RunnableLambda(question_of, name="question")
        | RunnableParallel(question=RunnablePassthrough(), documents=retriever)
        | RunnablePassthrough.assign(source_documents=RunnableLambda(rerank, afunc=arerank, name="rerank"))
        | RunnableLambda(respond, afunc=arespond, name="RankRAGAnswer")
    )
    return chain.with_config(run_name="RankRAGChain")
