"""RankRAGModel: one loaded causal LM that both reranks passages and answers from them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Literal, cast

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rankrag.model import (
    adapter_bypass,
    batching,
    calibration_store,
    fusion,
    generation,
    loading,
    prefix_cache,
    scoring,
)
from rankrag.model.async_iteration import iterate_in_thread
from rankrag.model.generation import Generation, GenerationOptions
from rankrag.model.prompts import PromptTemplates, render_generation_prompt, render_messages, resolve_style
from rankrag.model.registry import SharedRegistry
from rankrag.model.results import RAGAnswer, ScoredPassage
from rankrag.model.scoring import Normalization, RankingEncoder, ScoringOptions
from rankrag.model.validation import check_alpha, check_passages, check_positive, check_query

ModelSource = str | os.PathLike[str] | tuple[PreTrainedModel, PreTrainedTokenizerBase] | None
Generator = Literal["auto", "adapter", "base"]
GENERATORS: tuple[Generator, ...] = ("auto", "adapter", "base")

logger = logging.getLogger(__name__)
_REGISTRY: SharedRegistry[RankRAGModel] = SharedRegistry()
_WARNED_UNCALIBRATED: set[str] = set()
# Fusion weight of a model without calibration. Chosen on the dev split of TREC DL (BM25 top-30): the
# zero-shot SmolLM2 ranks far below BM25 alone (nDCG@10 0.282 vs 0.523), yet fused at 0.25 it stays
# within 0.005 of BM25 (score or rank fusion), while the tuned adapter still gains +0.03 at 0.25.
# See docs/evaluation.md; a calibrated model uses its own weight.
UNCALIBRATED_ALPHA = 0.25
# What score() reports for an empty or whitespace-only passage, without running the model; rerank() leaves
# such passages out of its result, so they never take a top-k slot or reach the generator.
BLANK_PASSAGE_SCORE = 0.0


class RankRAGModel:
    """A causal LM serving both RankRAG jobs. Build it with :meth:`load`; equal loads share one instance.

    >>> model = RankRAGModel.load()                                   # embedded SmolLM2 (+ shipped adapter)
    >>> model = RankRAGModel.load("nvidia/Llama3-ChatQA-1.5-8B", quantization="4bit")   # on a GPU
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str,
        spec: loading.ModelSpec | None = None,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        generator: Generator = "auto",
    ) -> None:
        if generator not in GENERATORS:
            raise ValueError(f"unknown generator {generator!r}; choose one of {GENERATORS}")
        self.model = model
        self.generator: Generator = generator
        self.tokenizer = tokenizer
        self.name = name
        self.spec = spec
        self.templates = templates or PromptTemplates()
        self.scoring_options = scoring_options or ScoringOptions()
        self._answer_ids = scoring.answer_token_ids(tokenizer, self.templates)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        source: ModelSource = None,
        *,
        dtype: str = "auto",
        quantization: str | None = None,
        device: str = "auto",
        adapter: str | os.PathLike[str] | None = "default",
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        generator: Generator = "auto",
    ) -> RankRAGModel:
        """Load (or fetch from the process-wide registry) a model.

        ``source``: None for the embedded SmolLM2-135M-Instruct, a Hugging Face id, a local directory,
        a ``.gguf`` file, or a ``(model, tokenizer)`` pair. ``dtype``: float32, bfloat16, float16 or auto
        (bfloat16 on CUDA, float32 on CPU). ``quantization``: None, "4bit" or "8bit" (bitsandbytes; the
        output layer stays unquantized). ``adapter``: a LoRA adapter directory or id, "default" (the
        shipped RankRAG adapter for the embedded model, none for other models) or None. ``generator``: which
        weights answer when an adapter is loaded: "adapter", "base" (the same loaded instance with the adapter's
        contribution removed while generating; ranking keeps the adapter) or "auto" (what the adapter's
        calibration file records under ``generator``, else "adapter"; the shipped adapter records "base").
        """
        if generator not in GENERATORS:
            raise ValueError(f"unknown generator {generator!r}; choose one of {GENERATORS}")
        loaded = cls._load_shared(source, dtype, quantization, device, adapter, trust_remote_code, allow_pickle)
        return loaded if generator == "auto" else loaded.with_options(generator=generator)

    @classmethod
    def _load_shared(
        cls,
        source: ModelSource,
        dtype: str,
        quantization: str | None,
        device: str,
        adapter: str | os.PathLike[str] | None,
        trust_remote_code: bool,
        allow_pickle: bool,
    ) -> RankRAGModel:
        if isinstance(source, tuple):
            model, tokenizer = source
            key = ("object", id(model), id(tokenizer))
            name = getattr(model.config, "name_or_path", "") or type(model).__name__
            return _REGISTRY.get_or_create(
                key, lambda: cls(*loading.prepare_for_inference(model, tokenizer), name=name)
            )
        resolved_device = loading.resolve_device(device)
        directory, gguf_file = loading.resolve_source(source)
        spec = loading.ModelSpec(
            source=directory,
            gguf_file=gguf_file,
            dtype=loading.resolve_dtype(dtype, resolved_device),
            quantization=loading.resolve_quantization(quantization, resolved_device),
            device=resolved_device,
            adapter=loading.resolve_adapter(adapter, directory, gguf_file),
            trust_remote_code=trust_remote_code,
            allow_pickle=allow_pickle,
        )
        return _REGISTRY.get_or_create(spec, lambda: cls._from_spec(spec))

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        model: str,
        tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_concurrency: int = 16,
        **options: object,
    ) -> RankRAGModel:
        """A model served over HTTP (llama.cpp, vLLM, any OpenAI-compatible ``/v1/completions``), usable
        everywhere a loaded model is; it holds no weights. Needs ``pip install "rankrag[server]"``.

        ``model``: the served model's name (checked against the server's ``/v1/models``). ``tokenizer``: the
        served model's tokenizer (object, directory, Hugging Face id or ``.gguf`` file); None for the embedded
        SmolLM2's. Prompts are built and truncated here exactly as in-process. ``timeout``: seconds per
        connect/read; ``max_concurrency``: most requests in flight. Further options (``templates``,
        ``scoring_options``, ``context_window``, ``strict_tokens``, ``top_logprobs``, ``max_attempts``, ``calibration``:
        the served model's ``rankrag_calibration.json`` or the ``rankrag export`` directory holding it): see
        :func:`rankrag.served.connect` and docs/serving.md.
        """
        from rankrag.served.model import connect as connect_served

        return connect_served(
            base_url,
            model=model,
            tokenizer=tokenizer,
            api_key=api_key,
            timeout=timeout,
            max_concurrency=max_concurrency,
            **options,  # type: ignore[arg-type]
        )

    @classmethod
    def _from_spec(cls, spec: loading.ModelSpec) -> RankRAGModel:
        model, tokenizer = loading.load_model_and_tokenizer(spec)
        return cls(model, tokenizer, name=spec.display_name, spec=spec)

    def with_options(
        self,
        *,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        generator: Generator | None = None,
    ) -> RankRAGModel:
        """A handle on the same loaded weights with other prompts, scoring options or generator."""
        return type(self)(
            self.model,
            self.tokenizer,
            name=self.name,
            spec=self.spec,
            templates=templates or self.templates,
            scoring_options=scoring_options or self.scoring_options,
            generator=generator or self.generator,
        )

    @property
    def context_window(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    @property
    def prompt_style(self) -> str:
        return resolve_style(self.tokenizer, self.templates)

    # ------------------------------------------------------------------ ranking
    def _scoring_options(self, batch_size: int | None, normalization: Normalization | None) -> ScoringOptions:
        check_positive(batch_size, "batch_size")
        options = self.scoring_options
        if batch_size is not None:
            options = replace(options, batch_size=batch_size)
        if normalization is not None:
            if normalization not in scoring.NORMALIZATIONS:
                raise ValueError(f"unknown normalization {normalization!r}; choose one of {scoring.NORMALIZATIONS}")
            options = replace(options, normalization=normalization)
        return options

    def encode_ranking(self, query: str, passages: Sequence[str]) -> list[list[int]]:
        """Token ids of the ranking prompt of every passage (truncated inside the passage)."""
        return RankingEncoder(self.tokenizer, self.templates, self.scoring_options).encode(query, passages)

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
        return _spread(items, unique, batching.score_requests([self._score_request(query, unique, options)])[0])

    def _score_inputs(
        self, query: str, passages: Sequence[str], batch_size: int | None, normalization: Normalization | None
    ) -> tuple[list[str], list[str], ScoringOptions]:
        """Checked inputs of a scoring call: the passages, each distinct one once, and the call's options."""
        check_query(query)
        items = check_passages(passages)
        options = self._scoring_options(batch_size, normalization)
        return items, _distinct(items), options

    def _rerank_inputs(self, query: str, passages: Sequence[str], top_k: int | None, alpha: float | None) -> list[str]:
        check_positive(top_k, "top_k")
        check_alpha(alpha)
        check_query(query)
        return check_passages(passages)  # a generator is read once, for scoring and for the result

    def _score_request(self, query: str, passages: Sequence[str], options: ScoringOptions) -> batching.ScoreRequest:
        encoder = RankingEncoder(self.tokenizer, self.templates, options)
        true_id, false_id = self._answer_ids
        return batching.ScoreRequest(
            model=self.model,
            prompts=prefix_cache.split_prompts(encoder, query, passages),
            options=options,
            true_id=true_id,
            false_id=false_id,
            pad_id=int(self.tokenizer.pad_token_id),
        )

    def rerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        top_k: int | None = None,
        batch_size: int | None = None,
        first_stage_scores: Sequence[float] | None = None,
        alpha: float | None = None,
    ) -> list[ScoredPassage]:
        """Passages sorted by score (ties keep retrieval order), cut to ``top_k`` if given. Blank passages
        (empty or whitespace-only) are left out, so they never take a top-k slot.

        ``alpha`` < 1 fuses the LLM score with the first-stage signal (``first_stage_scores``, higher is
        better, or the input order when None); see :mod:`rankrag.model.fusion`. ``alpha=None`` uses the model's
        calibrated default (1.0, LLM only, when the model is uncalibrated). ``ScoredPassage.score`` is the
        fused score; ``metadata["llm_score"]`` always holds P(True).
        """
        items = self._rerank_inputs(query, passages, top_k, alpha)
        llm_scores = self.score(query, items, batch_size=batch_size)
        return self.rank_scored(items, llm_scores, top_k=top_k, first_stage_scores=first_stage_scores, alpha=alpha)

    def rank_scored(
        self,
        passages: Sequence[str],
        llm_scores: Sequence[float],
        *,
        top_k: int | None = None,
        first_stage_scores: Sequence[float] | None = None,
        alpha: float | None = None,
    ) -> list[ScoredPassage]:
        """What :meth:`rerank` returns, from P(True) scores already computed (``score``), so a caller that
        keeps the scores of a deeper list does not score the passages twice."""
        if len(llm_scores) != len(passages):
            raise ValueError(f"llm_scores has {len(llm_scores)} scores for {len(passages)} passages")
        weight = self.default_alpha if alpha is None else alpha
        first = fusion.normalized_first_stage(len(llm_scores), first_stage_scores)
        final = fusion.fuse(llm_scores, first, weight) if weight < 1.0 else list(llm_scores)
        ranked = sorted(
            (
                ScoredPassage(text=p, score=s, index=i, metadata={"llm_score": llm})
                for i, (p, s, llm) in enumerate(zip(passages, final, llm_scores))
                if not is_blank(p)
            ),
            key=lambda item: (-item.score, item.index),
        )
        return ranked[:top_k] if top_k is not None else ranked

    async def ascore(self, query: str, passages: Sequence[str], **kwargs: object) -> list[float]:
        """Async :meth:`score`; runs off the event loop. Concurrent calls on one model share forward
        passes (:mod:`rankrag.model.batching`) unless the handle's ``ScoringOptions(coalesce=False)``."""
        return await self._ascore(query, passages, **kwargs)  # type: ignore[arg-type]

    # Kept twin of score(): the same signature, scoring coalesced across concurrent calls off the event loop.
    async def _ascore(
        self,
        query: str,
        passages: Sequence[str],
        *,
        batch_size: int | None = None,
        normalization: Normalization | None = None,
    ) -> list[float]:
        items, unique, options = self._score_inputs(query, passages, batch_size, normalization)
        if not unique:  # nothing to score, or blank passages only
            return [BLANK_PASSAGE_SCORE] * len(items)
        if not options.coalesce:
            return await asyncio.to_thread(self.score, query, items, batch_size=batch_size, normalization=normalization)
        request = await asyncio.to_thread(self._score_request, query, unique, options)
        return _spread(items, unique, await batching.coalescer_for(self.model).score(request))

    async def arerank(self, query: str, passages: Sequence[str], **kwargs: object) -> list[ScoredPassage]:
        """Async :meth:`rerank`; runs off the event loop and shares forward passes like :meth:`ascore`."""
        return await self._arerank(query, passages, **kwargs)  # type: ignore[arg-type]

    # Kept twin of rerank(): the same signature, awaiting _ascore.
    async def _arerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        top_k: int | None = None,
        batch_size: int | None = None,
        first_stage_scores: Sequence[float] | None = None,
        alpha: float | None = None,
    ) -> list[ScoredPassage]:
        items = self._rerank_inputs(query, passages, top_k, alpha)
        llm_scores = await self._ascore(query, items, batch_size=batch_size)
        return self.rank_scored(items, llm_scores, top_k=top_k, first_stage_scores=first_stage_scores, alpha=alpha)

    @property
    def calibration(self) -> dict[str, object] | None:
        """The stored fusion calibration of this model (see ``rankrag calibrate``), or None."""
        if not hasattr(self, "_calibration"):
            self._calibration = calibration_store.load_calibration(self.spec, self.name)
        return self._calibration

    def reload_calibration(self) -> None:
        self.__dict__.pop("_calibration", None)

    @property
    def default_alpha(self) -> float:
        """Fusion weight used when a call gives none: the calibrated value, else :data:`UNCALIBRATED_ALPHA`."""
        calibration = self.calibration
        if calibration is None:
            if self.name not in _WARNED_UNCALIBRATED:
                _WARNED_UNCALIBRATED.add(self.name)
                logger.warning(
                    "RankRAG model %r has no calibration: its reranking quality is unmeasured, so it fuses "
                    "with the retriever at alpha=%s (a quarter LLM). Measure it and pick the weight with: "
                    "rankrag calibrate --data-dir DIR --dataset trec_dl_passage --model <model> [--adapter <adapter>]",
                    self.name,
                    UNCALIBRATED_ALPHA,
                )
            return UNCALIBRATED_ALPHA
        return float(calibration["alpha"])  # type: ignore[arg-type]  # JSON value checked when it was saved

    # --------------------------------------------------------------- generation
    @property
    def generates_with_adapter(self) -> bool:
        """Whether answers come from the adapted weights. False when :attr:`generator` (or, for "auto", the
        adapter's calibration) says "base"; then generation runs on the base weights of this same instance."""
        if adapter_bypass.bypass_for(self.model) is None:
            return True  # no adapter loaded in-process: the weights are what they are
        choice = self.generator
        if choice == "auto":
            recorded = (self.calibration or {}).get("generator")
            choice = "base" if recorded == "base" else "adapter"
        return choice == "adapter"

    def _generation_weights(self) -> AbstractContextManager[None]:
        return nullcontext() if self.generates_with_adapter else adapter_bypass.base_weights(self.model)

    def _generation_options(self, **kwargs: object) -> GenerationOptions:
        stop = kwargs.pop("stop", None) or ()
        stops = (
            (stop,) if isinstance(stop, str) else tuple(cast("Iterable[str]", stop))
        )  # one string is one stop sequence
        return GenerationOptions(stop=stops, **{k: v for k, v in kwargs.items() if v is not None})  # type: ignore[arg-type]

    def answer_prompt_ids(self, question: str, contexts: Sequence[str], max_context_tokens: int = 384) -> list[int]:
        """RankRAG's generation prompt as token ids; each context is cut to ``max_context_tokens``."""
        # Cutting the text first bounds tokenizer work on huge contexts, as in scoring.RankingEncoder.
        char_limit = max_context_tokens * 16 + 64
        cut = (
            [
                cast(str, self.tokenizer.decode(ids[:max_context_tokens]))
                for ids in self.tokenizer([c[:char_limit] for c in contexts], add_special_tokens=False)["input_ids"]
            ]
            if contexts
            else []
        )
        text = render_generation_prompt(self.tokenizer, self.templates, question, cut)
        return self.tokenizer.encode(text, add_special_tokens=self.prompt_style == "chatqa")

    def messages_prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = render_messages(self.tokenizer, self.templates, messages)
        return self.tokenizer.encode(text, add_special_tokens=self.prompt_style == "chatqa")

    def generate_ids(self, prompt_ids: Sequence[int], **options: object) -> Generation:
        """Generate from prompt token ids. Options: max_new_tokens, temperature, top_p, stop, seed."""
        return generation.generate(
            self.model, self.tokenizer, prompt_ids, self._generation_options(**options), self._generation_weights
        )

    def stream_ids(self, prompt_ids: Sequence[int], **options: object) -> Iterator[str]:
        return generation.stream(
            self.model, self.tokenizer, prompt_ids, self._generation_options(**options), self._generation_weights
        )

    async def agenerate_ids(self, prompt_ids: Sequence[int], **options: object) -> Generation:
        """Async :meth:`generate_ids`; generation runs in a worker thread, off the event loop."""
        return await asyncio.to_thread(self.generate_ids, prompt_ids, **options)

    async def astream_ids(self, prompt_ids: Sequence[int], **options: object) -> AsyncIterator[str]:
        """Async :meth:`stream_ids`: text chunks as they are generated; leaving early stops generation."""
        chunks = await asyncio.to_thread(self.stream_ids, prompt_ids, **options)
        async for chunk in iterate_in_thread(chunks):
            yield chunk

    def generate(self, question: str, contexts: Sequence[str], **options: object) -> str:
        """Answer ``question`` from ``contexts`` with RankRAG's generation prompt (greedy by default); blank
        contexts are left out."""
        check_query(question, "question")
        prompt = self.answer_prompt_ids(question, _non_blank(check_passages(contexts, "contexts")))
        return self.generate_ids(prompt, **options).text

    def stream(self, question: str, contexts: Sequence[str], **options: object) -> Iterator[str]:
        """Like :meth:`generate`, yielding text chunks as they are produced."""
        check_query(question, "question")
        prompt = self.answer_prompt_ids(question, _non_blank(check_passages(contexts, "contexts")))
        return self.stream_ids(prompt, **options)

    async def agenerate(self, question: str, contexts: Sequence[str], **options: object) -> str:
        """Async :meth:`generate`."""
        return await asyncio.to_thread(self.generate, question, contexts, **options)

    async def astream(self, question: str, contexts: Sequence[str], **options: object) -> AsyncIterator[str]:
        """Async :meth:`stream`."""
        chunks = await asyncio.to_thread(self.stream, question, contexts, **options)  # tokenising is work too
        async for chunk in iterate_in_thread(chunks):
            yield chunk

    # ----------------------------------------------------------------- pipeline
    def answer(self, question: str, passages: Sequence[str], *, top_k: int = 5, **options: object) -> RAGAnswer:
        """Score every passage, keep the best ``top_k``, answer from them."""
        best = self.rerank(question, passages, top_k=top_k)
        text = self.generate(question, [p.text for p in best], **options) if best else ""
        return RAGAnswer(question=question, answer=text, contexts=best)

    def __repr__(self) -> str:
        return f"RankRAGModel(name={self.name!r}, device={self.device!s}, dtype={self.model.dtype})"

    @property
    def device(self) -> object:
        return next(self.model.parameters()).device


def is_blank(passage: str) -> bool:
    """Empty or whitespace-only: such a passage is never scored, ranked into a top-k, or given to the generator."""
    return not passage.strip()


def _non_blank(passages: list[str]) -> list[str]:
    return [passage for passage in passages if not is_blank(passage)]


def _distinct(passages: list[str]) -> list[str]:
    """Each non-blank passage once, in first-seen order: a repeated passage is scored once, so duplicates tie
    exactly (scored in different batches they could differ in the last float bits and lose their input order)."""
    return [passage for passage in dict.fromkeys(passages) if not is_blank(passage)]


def _spread(passages: list[str], distinct: list[str], scores: list[float]) -> list[float]:
    """The scores of ``distinct`` passages back in the order (and multiplicity) of ``passages``; a blank
    passage gets :data:`BLANK_PASSAGE_SCORE`."""
    if len(distinct) == len(passages):
        return scores
    by_text = dict(zip(distinct, scores))
    return [by_text.get(passage, BLANK_PASSAGE_SCORE) for passage in passages]


def clear_registry() -> None:
    """Forget every shared model (their memory is freed once no caller holds them)."""
    _REGISTRY.clear()
