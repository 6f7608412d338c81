"""RankRAGModel: one causal LM that both reranks passages and answers from them, over one backend.

The model owns what every backend shares: prompt encoding, input checks, deduplication, fusion and
calibration. Where the forward passes run is the backend's business (:mod:`rankrag.model.backend`): weights
loaded in this process (:meth:`RankRAGModel.load`) or a model server (:meth:`RankRAGModel.connect`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rankrag.defaults import NOT_FOUND_MESSAGE
from rankrag.model import answer_prompts
from rankrag.model.async_iteration import iterate_in_thread
from rankrag.model.backend import Backend, BackendAttribute
from rankrag.model.dense import DEFAULT_EMBEDDING_MODEL, Embedder, EmbeddingModelSource, resolve_embedder
from rankrag.model.generation import Generation, GenerationOptions, generation_options
from rankrag.model.hybrid import FirstStageKind, HybridWeights, check_first_stage_kind
from rankrag.model.loading import AdapterChoice, ModelSpec
from rankrag.model.local_backend import LocalBackend, ModelSource, local_source
from rankrag.model.passages import BLANK_PASSAGE_SCORE, distinct, is_blank, non_blank, spread
from rankrag.model.prompts import PromptTemplates, resolve_style
from rankrag.model.ranking_plan import RankingPlan, check_scores, plan_ranking
from rankrag.model.ranking_prompts import RankingEncoder, RankingRequest, answer_token_ids, split_prompts
from rankrag.model.registry import SharedRegistry
from rankrag.model.relevance import LogisticModel, RelevanceModels
from rankrag.model.results import RAGAnswer, ScoredPassage
from rankrag.model.roles import Role
from rankrag.model.scoring_options import Normalization, ScoringOptions, check_normalization
from rankrag.model.validation import check_alpha, check_passages, check_positive, check_query, check_threshold

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from rankrag.model.generation import GenerationOverrides
    from rankrag.model.ranking_plan import RankingKeywords, RerankKeywords
    from rankrag.served.client import ServerClient
    from rankrag.served.http_backend import HTTPBackend
    from rankrag.served.tokenizers import TokenizerSource
    from rankrag.served.wire import ServerInfo

__all__ = [
    "BLANK_PASSAGE_SCORE",
    "ModelSource",
    "RankRAGModel",
    "ServedRankRAGModel",
    "UNCALIBRATED_ALPHA",
    "UNCALIBRATED_HYBRID",
    "clear_registry",
    "connect",
    "is_blank",
]

logger = logging.getLogger(__name__)
_REGISTRY: SharedRegistry[RankRAGModel] = SharedRegistry()
_WARNED_UNCALIBRATED: set[str] = set()
# Fusion weight of a model without calibration. Chosen on the dev split of TREC DL (BM25 top-30): the
# zero-shot SmolLM2 ranks far below BM25 alone (nDCG@10 0.282 vs 0.523), yet fused at 0.25 it stays
# within 0.005 of BM25 (score or rank fusion), while the tuned adapter still gains +0.03 at 0.25.
# See docs/evaluation.md; a calibrated model uses its own weight.
UNCALIBRATED_ALPHA = 0.25
# Hybrid weights of a model without calibration, per kind of first stage: see docs/evaluation.md
# ("Hybrid reranking"), where they were measured on dev with the zero-shot SmolLM2 and the shipped adapter.
UNCALIBRATED_HYBRID: dict[FirstStageKind, HybridWeights] = {
    "lexical": HybridWeights(llm=0.2, dense=0.5, first_stage=0.3, cascade=30),
    "dense": HybridWeights(llm=0.1, dense=0.9, first_stage=0.0, cascade=30),
}
# Relevance models of a model without calibration, per kind of first stage: the shipped adapter's calib fit (2026-12-07,
# docs/evaluation.md "Calibrated relevance"), with the cascade at 30. Another model's P(True) may be calibrated
# differently; rankrag calibrate fits its own.
UNCALIBRATED_RELEVANCE: dict[FirstStageKind, RelevanceModels] = {
    "lexical": RelevanceModels(
        full=LogisticModel(-4.62, {"llm": 0.678, "dense": 0.0, "first_stage": 1.49, "dense_in_query": 3.566}),
        cheap=LogisticModel(-4.298, {"dense": 3.195, "first_stage": 2.469}),
        no_dense=LogisticModel(-2.848, {"llm": 0.901, "first_stage": 1.653}),
        cascade=30,
    ),
    "dense": RelevanceModels(
        full=LogisticModel(-5.305, {"llm": 0.825, "dense": 0.0, "first_stage": 4.468, "dense_in_query": 0.0}),
        cheap=LogisticModel(-4.393, {"dense": 3.425, "first_stage": 1.328}),
        no_dense=LogisticModel(-2.846, {"llm": 0.98, "first_stage": 0.863}),
        cascade=30,
    ),
}
_UNCHANGED: Any = object()


class RankRAGModel:
    """A causal LM serving both RankRAG jobs. Build it with :meth:`load` (equal loads share one instance) or
    :meth:`connect` (a model server).

    >>> model = RankRAGModel.load()                                   # embedded SmolLM2 (+ shipped adapter)
    >>> model = RankRAGModel.load("nvidia/Llama3-ChatQA-1.5-8B", quantization="4bit")   # on a GPU
    """

    def __init__(
        self,
        backend: Backend,
        *,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        embedding_model: EmbeddingModelSource | Embedder = DEFAULT_EMBEDDING_MODEL,
    ) -> None:
        self.backend = backend
        self.embedding_model = embedding_model
        self.templates = templates or PromptTemplates()
        self.scoring_options = scoring_options or ScoringOptions()
        self._answer_ids = answer_token_ids(backend.tokenizer, self.templates)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        source: ModelSource = None,
        *,
        dtype: str = "auto",
        quantization: str | None = None,
        device: str = "auto",
        adapter: AdapterChoice = "default",
        answerer_adapter: AdapterChoice = "default",
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        embedding_model: EmbeddingModelSource | Embedder = DEFAULT_EMBEDDING_MODEL,
    ) -> RankRAGModel:
        """Load (or fetch from the process-wide registry) a model.

        ``source``: None for the embedded SmolLM2-135M-Instruct, a Hugging Face id, a local directory,
        a ``.gguf`` file, or a ``(model, tokenizer)`` pair. ``dtype``: float32, bfloat16, float16 or auto
        (bfloat16 on CUDA, float32 on CPU). ``quantization``: None, "4bit" or "8bit" (bitsandbytes; the
        output layer stays unquantized).

        Two roles share the loaded weights (:mod:`rankrag.model.roles`): the ranker scores, the answerer
        generates. ``adapter``: the RankRAG LoRA adapter (a directory or id), which ranks and, as RankRAG trains
        one model for both jobs, also answers unless ``answerer_adapter`` says otherwise; "default" is the
        shipped adapter for the embedded model, what a ``rankrag export`` directory records, else none; None
        for the zero-shot base. ``answerer_adapter``: the answerer's own adapter directory or id, None for the
        base weights, or "default": what ``adapter``'s calibration records under ``answerer_adapter`` (the
        shipped one records the answerer the project measured best, ``docs/evaluation.md``), else ``adapter``.
        ``embedding_model``: the dense signal of :meth:`rerank` when the retriever gives none: "default" (the
        embedded all-MiniLM-L6-v2), a sentence-transformers directory or Hugging Face id, an
        :class:`~rankrag.model.dense.Embedder`, or None (no dense signal). It is loaded on first use.
        """
        key, load_backend = local_source(
            source, dtype, quantization, device, adapter, answerer_adapter, trust_remote_code, allow_pickle
        )
        loaded = _REGISTRY.get_or_create(key, lambda: cls(load_backend()))
        if embedding_model == DEFAULT_EMBEDDING_MODEL:
            return loaded
        return loaded.with_options(embedding_model=embedding_model)

    # Kept twin: HTTPBackend.connect takes the same server parameters; this public signature spells them out for
    # users and their IDEs, and adds what belongs to the model (embedding_model).
    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        model: str,
        tokenizer: TokenizerSource = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_concurrency: int = 16,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        context_window: int | None = None,
        strict_tokens: bool = False,
        top_logprobs: int = 20,
        max_attempts: int = 4,
        calibration: str | os.PathLike[str] | None = None,
        role_models: Mapping[str, str] | None = None,
        embedding_model: EmbeddingModelSource | Embedder = DEFAULT_EMBEDDING_MODEL,
    ) -> ServedRankRAGModel:
        """A model served over HTTP (llama.cpp, vLLM, any OpenAI-compatible ``/v1/completions``), usable
        everywhere a loaded model is; it holds no weights. Needs ``pip install "rankrag[server]"``.

        ``model``: the served model's name (checked against the server's ``/v1/models``). ``tokenizer``: the
        served model's tokenizer (object, directory, Hugging Face id or ``.gguf`` file); None for the embedded
        SmolLM2's. Prompts are built and truncated here exactly as in-process. ``timeout``: seconds per
        connect/read; ``max_concurrency``: most requests in flight; ``context_window``: the server's, when it
        does not report one; ``strict_tokens``: refuse prompts a text-only server would re-tokenize differently;
        ``top_logprobs``: logprobs asked per ranking request; ``max_attempts``: tries per request on
        connection errors; ``calibration``: the served model's ``rankrag_calibration.json`` or the
        ``rankrag export`` directory holding it; ``role_models``: the served model each role's requests name
        (``{"ranker": ..., "answerer": ...}``; by default a served model named after the role where the server
        lists one, as vLLM's ``--lora-modules ranker=... answerer=...`` and ``rankrag serve`` on an export do, else
        ``model``); ``embedding_model``: as in :meth:`load`, computed in this
        process, or a :class:`~rankrag.served.embeddings.ServedEmbedder` for a server's ``/v1/embeddings``.
        See docs/serving.md.
        """
        from rankrag.served.http_backend import HTTPBackend

        templates = templates or PromptTemplates()
        options = scoring_options or ScoringOptions()
        backend = HTTPBackend.connect(
            base_url,
            model=model,
            tokenizer=tokenizer,
            api_key=api_key,
            timeout=timeout,
            max_concurrency=max_concurrency,
            templates=templates,
            scoring_options=options,
            context_window=context_window,
            strict_tokens=strict_tokens,
            top_logprobs=top_logprobs,
            max_attempts=max_attempts,
            calibration=calibration,
            role_models=role_models,
        )
        return ServedRankRAGModel(
            backend, templates=templates, scoring_options=options, embedding_model=embedding_model
        )

    def with_options(
        self,
        *,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        embedding_model: EmbeddingModelSource | Embedder = _UNCHANGED,
    ) -> RankRAGModel:
        """A handle on the same backend (the same loaded weights or server connection) with other prompts,
        scoring options or embedding model (``embedding_model=None`` turns the dense signal off)."""
        return type(self)(
            self.backend,
            templates=templates or self.templates,
            scoring_options=scoring_options or self.scoring_options,
            embedding_model=self.embedding_model if embedding_model is _UNCHANGED else embedding_model,
        )

    @property
    def model(self) -> PreTrainedModel | None:
        """The loaded weights; None for a served model."""
        return self.backend.model if isinstance(self.backend, LocalBackend) else None

    @property
    def spec(self) -> ModelSpec | None:
        """How the weights were loaded; None for a served model or one built from a (model, tokenizer) pair."""
        return self.backend.spec if isinstance(self.backend, LocalBackend) else None

    tokenizer: BackendAttribute[PreTrainedTokenizerBase] = BackendAttribute()
    name: BackendAttribute[str] = BackendAttribute()
    context_window: BackendAttribute[int] = BackendAttribute()
    device: BackendAttribute[object] = BackendAttribute()

    @property
    def prompt_style(self) -> str:
        return resolve_style(self.tokenizer, self.templates)

    def close(self) -> None:
        """Close the backend's connections (a served model; every handle from :meth:`with_options` shares them)."""
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.backend.describe()})"

    # ------------------------------------------------------------------ ranking
    def _scoring_options(self, batch_size: int | None, normalization: Normalization | None) -> ScoringOptions:
        check_positive(batch_size, "batch_size")
        options = self.scoring_options
        if batch_size is not None:
            options = replace(options, batch_size=batch_size)
        if normalization is not None:
            options = replace(options, normalization=check_normalization(normalization))
        return options

    def encode_ranking(self, query: str, passages: Sequence[str]) -> list[list[int]]:
        """Token ids of the ranking prompt of every passage (truncated inside the passage)."""
        return RankingEncoder(self.tokenizer, self.templates, self.scoring_options).encode(query, passages)

    def _score_inputs(
        self, query: str, passages: Sequence[str], batch_size: int | None, normalization: Normalization | None
    ) -> tuple[list[str], list[str], ScoringOptions]:
        """Checked inputs of a scoring call: the passages, each distinct one once, and the call's options."""
        check_query(query)
        items = check_passages(passages)
        options = self._scoring_options(batch_size, normalization)
        return items, distinct(items), options

    def _ranking_request(self, query: str, passages: Sequence[str], options: ScoringOptions) -> RankingRequest:
        true_id, false_id = self._answer_ids
        prompts = split_prompts(RankingEncoder(self.tokenizer, self.templates, options), query, passages)
        return RankingRequest(prompts=prompts, true_id=true_id, false_id=false_id, options=options)

    def score(
        self,
        query: str,
        passages: Sequence[str],
        *,
        batch_size: int | None = None,
        normalization: Normalization | None = None,
    ) -> list[float]:
        """Probability that the model answers "True" to the ranking prompt, for each passage."""
        items, unique, options = self._score_inputs(query, passages, batch_size, normalization)
        if not unique:  # nothing to score, or blank passages only
            return [BLANK_PASSAGE_SCORE] * len(items)
        return spread(items, unique, self.backend.score(self._ranking_request(query, unique, options)))

    # Kept twin: score() awaiting the backend; the shared steps are _score_inputs and _ranking_request.
    async def ascore(
        self,
        query: str,
        passages: Sequence[str],
        *,
        batch_size: int | None = None,
        normalization: Normalization | None = None,
    ) -> list[float]:
        """Async :meth:`score`; runs off the event loop. Concurrent calls on one loaded model share forward
        passes (:mod:`rankrag.model.coalescer`) unless the handle's ``ScoringOptions(coalesce=False)``."""
        items, unique, options = self._score_inputs(query, passages, batch_size, normalization)
        if not unique:  # nothing to score, or blank passages only
            return [BLANK_PASSAGE_SCORE] * len(items)
        request = await asyncio.to_thread(self._ranking_request, query, unique, options)  # tokenizing is work too
        return spread(items, unique, await self.backend.ascore(request))

    @property
    def embedder(self) -> Embedder | None:
        """The model that computes the dense signal (loaded on first use), or None when it is off."""
        return resolve_embedder(self.embedding_model)

    def _rerank_inputs(self, query: str, passages: Sequence[str], top_k: int | None, alpha: float | None) -> list[str]:
        check_positive(top_k, "top_k")
        check_alpha(alpha)
        check_query(query)
        return check_passages(passages)  # a generator is read once, for scoring and for the result

    def _dense(
        self,
        query: str,
        passages: Sequence[str],
        first_stage: FirstStageKind,
        first_stage_scores: Sequence[float] | None,
        dense_scores: Sequence[float] | None,
    ) -> list[float] | None:
        """The dense similarity of each non-blank passage: given, the retriever's own (a dense first stage with
        scores), computed by :attr:`embedder`, or None when it is off."""
        positions = [i for i, text in enumerate(passages) if not is_blank(text)]
        given = dense_scores if dense_scores is not None else first_stage_scores if first_stage == "dense" else None
        if given is not None:
            name = "dense scores" if dense_scores is not None else "first-stage scores"
            values = check_scores(given, len(passages), name)
            return [values[i] for i in positions]
        embedder = self.embedder
        return None if embedder is None else embedder.similarities(query, [passages[i] for i in positions])

    def plan_ranking(
        self,
        query: str,
        passages: Sequence[str],
        **ranking: Unpack[RerankKeywords],
    ) -> RankingPlan:
        """The first half of :meth:`rerank` (its keywords; ``top_k`` and ``batch_size`` play no part here): the
        signals, and which passages the LLM scores."""
        first_stage_scores = ranking.get("first_stage_scores")
        kind = check_first_stage_kind(ranking.get("first_stage", "lexical"))
        alpha, weights = ranking.get("alpha"), ranking.get("weights")
        if alpha is not None and weights is not None:
            raise ValueError("give alpha (LLM fused with the first stage) or weights (hybrid), not both")
        if alpha is not None:
            return plan_ranking(passages, first_stage_scores=first_stage_scores, dense=None, weights=None, alpha=alpha)
        dense_scores = ranking.get("dense_scores")
        if weights is None:
            dense = self._dense(query, passages, kind, first_stage_scores, dense_scores)
            return plan_ranking(
                passages,
                first_stage_scores=first_stage_scores,
                dense=dense,
                weights=None,
                alpha=1.0,
                relevance=self.relevance_models(kind),
            )
        rule = weights
        dense = self._dense(query, passages, kind, first_stage_scores, dense_scores) if rule.dense > 0 else None
        fallback = self.default_alpha if dense is None and rule.dense > 0 else 1.0
        return plan_ranking(passages, first_stage_scores=first_stage_scores, dense=dense, weights=rule, alpha=fallback)

    def rerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        top_k: int | None = None,
        first_stage_scores: Sequence[float] | None = None,
        batch_size: int | None = None,
        **ranking: Unpack[RankingKeywords],
    ) -> list[ScoredPassage]:
        """Passages sorted by score (ties keep retrieval order), cut to ``top_k`` if given. Blank passages
        (empty or whitespace-only) are left out, so they never take a top-k slot.

        By default the score is the calibrated probability that the passage is relevant
        (:mod:`rankrag.model.relevance`), from three signals: the LLM's P(True), the dense similarity of query and
        passage, and the first stage (``first_stage_scores``, higher is better, or the input order when None). It
        keeps its meaning across queries, so a ``score_threshold`` drops what is irrelevant however it compares with
        the other passages. The cascade sends only the best passages by the cheap signals to the LLM (the models'
        ``cascade``); the others follow them, scored by the cheap signals alone. The ``ranking`` keywords
        (:class:`~rankrag.model.ranking_plan.RankingKeywords`):

        - ``first_stage``: "lexical" (the default: BM25 or other keyword scores, or an unknown retriever) or
          "dense" (a vector retriever: its scores are the dense signal, so no embedding is computed);
        - ``dense_scores``: the dense signal, one per passage; else the retriever's (``first_stage="dense"`` with
          scores), else computed with :attr:`embedder`;
        - ``weights``: :class:`~rankrag.model.hybrid.HybridWeights` instead: the min-max hybrid, a convex
          combination of the signals normalised within the query (its scores are relative to the query's passages);
        - ``alpha`` (0..1): instead, the LLM score fused with the first stage only, every passage scored:
          ``alpha * P(True) + (1 - alpha) * first stage`` (``alpha=1``: LLM alone).

        ``ScoredPassage.score`` is the final score; ``metadata`` holds ``llm_score`` (P(True), None where the
        cascade did not score the passage) and ``dense_score`` (None without a dense signal).
        """
        items = self._rerank_inputs(query, passages, top_k, ranking.get("alpha"))
        plan = self.plan_ranking(query, items, first_stage_scores=first_stage_scores, **ranking)
        llm_scores = self.score(query, plan.llm_passages, batch_size=batch_size) if plan.selected else []
        return plan.ranking(llm_scores, top_k)

    async def arerank(
        self, query: str, passages: Sequence[str], **options: Unpack[RerankKeywords]
    ) -> list[ScoredPassage]:
        """Async :meth:`rerank`, with its keywords; runs off the event loop and shares forward passes like
        :meth:`ascore`."""
        top_k, batch_size = options.get("top_k"), options.get("batch_size")
        items = self._rerank_inputs(query, passages, top_k, options.get("alpha"))
        plan = await asyncio.to_thread(partial(self.plan_ranking, query, items, **options))
        llm_scores = await self.ascore(query, plan.llm_passages, batch_size=batch_size) if plan.selected else []
        return plan.ranking(llm_scores, top_k)

    def rank_scored(
        self,
        passages: Sequence[str],
        llm_scores: Sequence[float],
        *,
        query: str = "",
        top_k: int | None = None,
        first_stage_scores: Sequence[float] | None = None,
        **ranking: Unpack[RankingKeywords],
    ) -> list[ScoredPassage]:
        """What :meth:`rerank` returns, from P(True) scores of every passage already computed (``score``), so a
        caller that keeps the scores of a deeper list does not score the passages twice. ``query`` is needed
        only when the dense signal is computed here."""
        if len(llm_scores) != len(passages):
            raise ValueError(f"llm_scores has {len(llm_scores)} scores for {len(passages)} passages")
        plan = self.plan_ranking(query, passages, first_stage_scores=first_stage_scores, **ranking)
        return plan.ranking([llm_scores[plan.positions[j]] for j in plan.selected], top_k)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The stored calibration of this model (see ``rankrag calibrate``), or None."""
        return self.backend.calibration()

    def reload_calibration(self) -> None:
        self.backend.reload_calibration()

    def _warn_uncalibrated(self) -> None:
        if self.name not in _WARNED_UNCALIBRATED:
            _WARNED_UNCALIBRATED.add(self.name)
            logger.warning(
                "RankRAG model %r has no calibration: its reranking quality is unmeasured, so it leans on the "
                "retriever and the embedding model (hybrid weights %s). Measure it and fit the weights with: "
                "rankrag calibrate --data-dir DIR --dataset trec_dl_passage --model <model> [--adapter <adapter>]",
                self.name,
                UNCALIBRATED_HYBRID["lexical"],
            )

    @property
    def default_alpha(self) -> float:
        """Weight of the LLM in the fused rule (LLM and first stage only) when a call gives none: the calibrated
        value, else :data:`UNCALIBRATED_ALPHA`."""
        calibration = self.calibration
        if calibration is None:
            self._warn_uncalibrated()
            return UNCALIBRATED_ALPHA
        return float(calibration["alpha"])

    def relevance_models(self, first_stage: FirstStageKind = "lexical") -> RelevanceModels:
        """The calibrated relevance models :meth:`rerank` ranks by for this kind of first stage: the model's own
        (``rankrag calibrate``), else :data:`UNCALIBRATED_RELEVANCE`."""
        kind = check_first_stage_kind(first_stage)
        calibration = self.calibration
        if calibration is None:
            self._warn_uncalibrated()
        fitted = (calibration or {}).get("relevance", {}).get(kind)
        return RelevanceModels.from_dict(fitted) if fitted else UNCALIBRATED_RELEVANCE[kind]

    def hybrid_weights(self, first_stage: FirstStageKind = "lexical") -> HybridWeights:
        """The hybrid weights :meth:`rerank` uses for this kind of first stage: the calibrated ones, else
        :data:`UNCALIBRATED_HYBRID` (also for a calibration made before hybrid weights were fitted)."""
        kind = check_first_stage_kind(first_stage)
        calibration = self.calibration
        if calibration is None:
            self._warn_uncalibrated()
        fitted = (calibration or {}).get("hybrid", {}).get(kind)
        return HybridWeights.from_dict(fitted) if fitted else UNCALIBRATED_HYBRID[kind]

    # --------------------------------------------------------------- generation
    @property
    def adapters(self) -> dict[Role, str | None]:
        """Each role's adapter: ``{"ranker": ..., "answerer": ...}`` (None: the base weights). A served model
        reports what its calibration records; a model built from a (model, tokenizer) pair reports {}."""
        return self.backend.adapters

    def _generation_options(
        self, options: GenerationOptions | None = None, **overrides: Unpack[GenerationOverrides]
    ) -> GenerationOptions:
        return generation_options(options, **overrides)

    def answer_prompt_ids(
        self,
        question: str,
        contexts: Sequence[str],
        max_context_tokens: int = answer_prompts.DEFAULT_MAX_CONTEXT_TOKENS,
    ) -> list[int]:
        """RankRAG's generation prompt as token ids; each context is cut to ``max_context_tokens``."""
        return answer_prompts.answer_prompt_ids(self.tokenizer, self.templates, question, contexts, max_context_tokens)

    def messages_prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return answer_prompts.messages_prompt_ids(self.tokenizer, self.templates, messages)

    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> Generation:
        """Generate from prompt token ids: greedy unless ``temperature`` > 0. ``options`` and the keywords
        (``max_new_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``) are :class:`GenerationOptions` fields."""
        return self.backend.generate(prompt_ids, generation_options(options, **overrides))

    def stream_ids(
        self,
        prompt_ids: Sequence[int],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> Iterator[str]:
        """Like :meth:`generate_ids`, yielding text chunks as they are produced."""
        return self.backend.stream(prompt_ids, generation_options(options, **overrides))

    async def agenerate_ids(
        self,
        prompt_ids: Sequence[int],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> Generation:
        """Async :meth:`generate_ids`, off the event loop."""
        return await self.backend.agenerate(prompt_ids, generation_options(options, **overrides))

    async def astream_ids(
        self,
        prompt_ids: Sequence[int],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> AsyncIterator[str]:
        """Async :meth:`stream_ids`: text chunks as they are generated; leaving early stops generation."""
        chunks = await asyncio.to_thread(self.stream_ids, prompt_ids, options, **overrides)
        async for chunk in iterate_in_thread(chunks):
            yield chunk

    def _answer_prompt(self, question: str, contexts: Sequence[str]) -> list[int]:
        check_query(question, "question")
        return self.answer_prompt_ids(question, non_blank(check_passages(contexts, "contexts")))

    def generate(
        self,
        question: str,
        contexts: Sequence[str],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> str:
        """Answer ``question`` from ``contexts`` with RankRAG's generation prompt (greedy by default); blank
        contexts are left out. Options as in :meth:`generate_ids`."""
        return self.generate_ids(self._answer_prompt(question, contexts), options, **overrides).text

    def stream(
        self,
        question: str,
        contexts: Sequence[str],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> Iterator[str]:
        """Like :meth:`generate`, yielding text chunks as they are produced."""
        return self.stream_ids(self._answer_prompt(question, contexts), options, **overrides)

    async def agenerate(
        self,
        question: str,
        contexts: Sequence[str],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> str:
        """Async :meth:`generate`."""
        return await asyncio.to_thread(self.generate, question, contexts, options, **overrides)

    async def astream(
        self,
        question: str,
        contexts: Sequence[str],
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> AsyncIterator[str]:
        """Async :meth:`stream`."""
        chunks = await asyncio.to_thread(self.stream, question, contexts, options, **overrides)
        async for chunk in iterate_in_thread(chunks):
            yield chunk

    # ----------------------------------------------------------------- pipeline
    def answer(
        self,
        question: str,
        passages: Sequence[str],
        *,
        top_k: int = 5,
        score_threshold: float | None = None,
        not_found_message: str = NOT_FOUND_MESSAGE,
        options: GenerationOptions | None = None,
        **overrides: Unpack[GenerationOverrides],
    ) -> RAGAnswer:
        """Rank the passages, keep the best ``top_k`` whose relevance probability reaches ``score_threshold``
        (None: every one), answer from them. When none is kept, the answer is ``not_found_message``, nothing is
        generated, and ``RAGAnswer.abstained`` is True."""
        check_threshold(score_threshold)
        best = [
            p
            for p in self.rerank(question, passages, top_k=top_k)
            if score_threshold is None or p.score >= score_threshold
        ]
        if not best:
            return RAGAnswer(question=question, answer=not_found_message, contexts=[], abstained=True)
        text = self.generate(question, [p.text for p in best], options, **overrides)
        return RAGAnswer(question=question, answer=text, contexts=best)


class ServedRankRAGModel(RankRAGModel):
    """A :class:`RankRAGModel` over an :class:`~rankrag.served.http_backend.HTTPBackend`, from :meth:`connect`.

    It overrides nothing: scoring, reranking and generation are the model's own, over the HTTP backend. It only
    adds the server's accessors. ``batch_size``, ``prefix_cache`` and ``coalesce`` of :class:`ScoringOptions` do
    not apply: the server batches and caches, and at most ``max_concurrency`` requests are in flight.
    """

    backend: HTTPBackend

    client: BackendAttribute[ServerClient] = BackendAttribute()
    info: BackendAttribute[ServerInfo] = BackendAttribute()
    """What :meth:`connect` learned about the server."""
    stats: BackendAttribute[dict[str, int]] = BackendAttribute()
    """Requests sent, prompts re-tokenized by a text-only server, and forced logprob lookups."""

    @property
    def base_url(self) -> str:
        return self.backend.client.base_url


# ``rankrag.served.connect``: the same call as ``RankRAGModel.connect``.
connect = RankRAGModel.connect


def clear_registry() -> None:
    """Forget every shared model (their memory is freed once no caller holds them)."""
    _REGISTRY.clear()
