"""RankRAGLLM: the RankRAG model as a LangChain chat model (invoke, stream, batch and async forms)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS
from rankrag.integration import call_options
from rankrag.model.generation import GenerationOptions
from rankrag_langchain._convert import messages_to_dicts, usage_metadata
from rankrag_langchain._model import RankRAGModelFields

if TYPE_CHECKING:
    from rankrag.model.generation import Generation

PROVIDER = "rankrag"


class RankRAGLLM(RankRAGModelFields, BaseChatModel):
    """Chat with the RankRAG model. Messages go through the model's chat template; text only, no tools.

    Pass ``model=`` a loaded :class:`rankrag.RankRAGModel` (e.g. ``reranker.model``) to share its weights,
    or ``model_name=`` and load options; equal load options share one instance process-wide.

    >>> llm = RankRAGLLM(max_tokens=64)
    >>> llm.invoke("What is the capital of Kenya?").content
    """

    max_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, gt=0)
    """Most new tokens per answer."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 decodes greedily (deterministic); above 0 samples."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    """Seed for sampling (temperature > 0), for reproducible samples."""
    stop: list[str] | None = None
    """Stop sequences: generation ends before the first one (it is not part of the answer)."""
    streaming: bool = False
    """Use the streaming path for ``invoke`` too (callbacks then see every token)."""

    @property
    def _llm_type(self) -> str:
        return "rankrag-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.rankrag_model.name,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop or self.stop, **kwargs)
        params["ls_provider"] = PROVIDER
        if not isinstance(kwargs.get("model"), str):
            params["ls_model_name"] = self.rankrag_model.name
        return params

    # ------------------------------------------------------------------------------ translation
    def generation_options(self, stop: Sequence[str] | None = None, **kwargs: Any) -> GenerationOptions:
        """This model's settings, overridden by the per-call options (see :mod:`rankrag.integration.call_options`)."""
        settings = GenerationOptions(
            max_new_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(self.stop or ()),
            seed=self.seed,
        )
        call = {**kwargs, "stop": stop}
        return call_options.generation_options(
            settings, call, loaded=self.rankrag_model.name, aliases=[self.model_name]
        )

    def _prompt_ids(self, messages: list[BaseMessage]) -> list[int]:
        return self.rankrag_model.messages_prompt_ids(messages_to_dicts(messages))

    def _response_metadata(self, **extra: Any) -> dict[str, Any]:
        return {"model_name": self.rankrag_model.name, **extra}

    # ------------------------------------------------------------------------------- generation
    def _chat_result(self, result: Generation) -> ChatResult:
        message = AIMessage(
            content=result.text,
            usage_metadata=usage_metadata(result.prompt_tokens, result.completion_tokens),
            response_metadata=self._response_metadata(finish_reason=result.finish_reason),
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output={"model_name": self.rankrag_model.name}
        )

    def _last_chunk(self, prompt_ids: list[int], text: str) -> ChatGenerationChunk:
        """The empty chunk that ends a stream, carrying usage and model name."""
        # the stream yields text, not ids: the output count is the token length of the streamed text
        output_tokens = len(self.rankrag_model.tokenizer.encode(text, add_special_tokens=False)) if text else 0
        last = AIMessageChunk(
            content="",
            usage_metadata=usage_metadata(len(prompt_ids), output_tokens),
            response_metadata=self._response_metadata(),
            chunk_position="last",
        )
        return ChatGenerationChunk(message=last)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        options = self.generation_options(stop, **kwargs)
        return self._chat_result(self.rankrag_model.generate_ids(self._prompt_ids(messages), options))

    # Kept twin: _generate's async form; BaseChatModel fixes both signatures (only the run manager's type differs).
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        options = self.generation_options(stop, **kwargs)
        prompt_ids = await asyncio.to_thread(self._prompt_ids, messages)
        return self._chat_result(await self.rankrag_model.agenerate_ids(prompt_ids, options))

    # BaseChatModel reports every yielded chunk to the callbacks (on_llm_new_token) itself.
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        options = self.generation_options(stop, **kwargs)
        prompt_ids = self._prompt_ids(messages)
        text = ""
        for piece in self.rankrag_model.stream_ids(prompt_ids, options):
            text += piece
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._last_chunk(prompt_ids, text)

    # Kept twin: _stream's steps over the core's async stream (async for and await keep the bodies apart).
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        options = self.generation_options(stop, **kwargs)
        prompt_ids = await asyncio.to_thread(self._prompt_ids, messages)
        text = ""
        async for piece in self.rankrag_model.astream_ids(prompt_ids, options):
            text += piece
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._last_chunk(prompt_ids, text)
