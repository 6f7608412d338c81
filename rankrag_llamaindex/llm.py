"""RankRAGLLM: the shared RankRAG model as a LlamaIndex LLM (chat template, streaming, async)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import ConfigDict, Field
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS
from rankrag.integration.call_options import generation_options
from rankrag.integration.messages import check_prompt, completion
from rankrag.model.generation import GenerationOptions
from rankrag_llamaindex import _convert
from rankrag_llamaindex._component import RankRAGComponent


class RankRAGLLM(RankRAGComponent, CustomLLM):
    """A LlamaIndex ``LLM`` answering with a shared :class:`rankrag.RankRAGModel` (greedy by default).

    Chat requests use the model's chat template; ``complete`` sends the prompt as one user turn
    (``formatted=True`` sends it verbatim). Async methods run generation in a worker thread. Messages and
    per-call options follow :mod:`rankrag.integration.messages` and :mod:`rankrag.integration.call_options`,
    as ``rankrag_langchain.RankRAGLLM`` does: an empty or whitespace-only prompt (or a chat with no text besides
    a system prompt) is a ValueError with the same message.

    >>> llm = RankRAGLLM()                                   # embedded SmolLM2, shared with RankRAGReranker
    >>> llm = RankRAGLLM("nvidia/Llama3-ChatQA-1.5-8B", quantization="4bit", max_new_tokens=128)
    >>> llm = RankRAGLLM(model=reranker.model)               # explicitly the same instance
    """

    model_config = ConfigDict(protected_namespaces=())
    __init__ = RankRAGComponent.__init__

    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, gt=0, description="Tokens generated at most per call.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 is greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling when temperature > 0.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences (not part of the output).")
    seed: int | None = Field(default=None, description="Sampling seed when temperature > 0.")
    context_window: int | None = Field(
        default=None, gt=0, description="Prompt + output tokens; None reads it from the model config."
    )

    @classmethod
    def class_name(cls) -> str:
        return "RankRAGLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window or self._model.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.model_name,
            system_role=MessageRole.SYSTEM,
        )

    # ------------------------------------------------------------------ translation
    def _options(self, overrides: dict[str, Any]) -> GenerationOptions:
        settings = GenerationOptions(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(self.stop),
            seed=self.seed,
        )
        return generation_options(settings, overrides, loaded=self._model.name)

    def _completion_ids(self, prompt: str, formatted: bool) -> list[int]:
        if formatted:
            check_prompt(prompt)
            # An already formatted prompt is tokenised as the core tokenises the prompts it renders.
            return self._model.tokenizer.encode(prompt, add_special_tokens=self._model.prompt_style == "chatqa")
        return self._model.messages_prompt_ids(completion(prompt, self.system_prompt))

    def _chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self._model.messages_prompt_ids(_convert.chat_messages_to_dicts(messages))

    def _generate(self, prompt_ids: list[int], options: GenerationOptions) -> CompletionResponse:
        return _convert.completion_response(self._model.generate_ids(prompt_ids, options))

    def _stream(self, prompt_ids: list[int], options: GenerationOptions) -> CompletionResponseGen:
        text = ""
        for delta in self._model.stream_ids(prompt_ids, options):
            text += delta
            yield CompletionResponse(text=text, delta=delta)

    def _complete_sync(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> CompletionResponse:
        return self._generate(self._completion_ids(prompt, formatted), self._options(kwargs))

    def _chat_sync(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        return _convert.chat_response(self._generate(self._chat_ids(messages), self._options(kwargs)))

    def _stream_complete_sync(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> CompletionResponseGen:
        prompt_ids, options = self._completion_ids(prompt, formatted), self._options(kwargs)
        return self._stream(prompt_ids, options)

    def _stream_chat_sync(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponseGen:
        prompt_ids, options = self._chat_ids(messages), self._options(kwargs)
        return (_convert.chat_response(chunk) for chunk in self._stream(prompt_ids, options))

    # --------------------------------------------------------------------- sync API
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete_sync(prompt, formatted, kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._stream_complete_sync(prompt, formatted, kwargs)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat_sync(messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat_sync(messages, kwargs)

    # -------------------------------------------------------------------- async API
    async def _agenerate(self, prompt_ids: list[int], options: GenerationOptions) -> CompletionResponse:
        return _convert.completion_response(await self._model.agenerate_ids(prompt_ids, options))

    # Kept twin of _stream, over the core's async stream.
    async def _astream(self, prompt_ids: list[int], options: GenerationOptions) -> CompletionResponseAsyncGen:
        text = ""
        async for delta in self._model.astream_ids(prompt_ids, options):
            text += delta
            yield CompletionResponse(text=text, delta=delta)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        prompt_ids = await asyncio.to_thread(self._completion_ids, prompt, formatted)
        return await self._agenerate(prompt_ids, self._options(kwargs))

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        prompt_ids = await asyncio.to_thread(self._completion_ids, prompt, formatted)
        return self._astream(prompt_ids, self._options(kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        prompt_ids = await asyncio.to_thread(self._chat_ids, messages)
        return _convert.chat_response(await self._agenerate(prompt_ids, self._options(kwargs)))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        prompt_ids = await asyncio.to_thread(self._chat_ids, messages)
        chunks = self._astream(prompt_ids, self._options(kwargs))
        return (_convert.chat_response(chunk) async for chunk in chunks)
