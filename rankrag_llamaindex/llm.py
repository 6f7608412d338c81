"""RankRAGLLM: the shared RankRAG model as a LlamaIndex LLM (chat template, streaming, async)."""

from __future__ import annotations

import asyncio
import os
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
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from typing_extensions import Self

from rankrag import RankRAGModel, adapter_support
from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS
from rankrag_llamaindex import _convert


class RankRAGLLM(CustomLLM):
    """A LlamaIndex ``LLM`` answering with a shared :class:`rankrag.RankRAGModel` (greedy by default).

    Chat requests use the model's chat template; ``complete`` sends the prompt as one user turn
    (``formatted=True`` sends it verbatim). Async methods run generation in a worker thread. An empty or
    whitespace-only prompt (or a chat with no text besides a system prompt) is a ValueError, with the same
    message as ``rankrag_langchain.RankRAGLLM`` (:data:`rankrag.adapter_support.EMPTY_PROMPT_MESSAGE`).

    >>> llm = RankRAGLLM()                                   # embedded SmolLM2, shared with RankRAGReranker
    >>> llm = RankRAGLLM("nvidia/Llama3-ChatQA-1.5-8B", quantization="4bit", max_new_tokens=128)
    >>> llm = RankRAGLLM(model=reranker.model)               # explicitly the same instance
    """

    model_config = ConfigDict(protected_namespaces=())

    model_name: str = Field(description="Name of the loaded RankRAG model.")
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, gt=0, description="Tokens generated at most per call.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 is greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling when temperature > 0.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences (not part of the output).")
    seed: int | None = Field(default=None, description="Sampling seed when temperature > 0.")
    context_window: int | None = Field(
        default=None, gt=0, description="Prompt + output tokens; None reads it from the model config."
    )

    _model: RankRAGModel = PrivateAttr()

    # The load keywords are spelled out (as in RankRAGReranker) so that IDEs and help() show them.
    def __init__(
        self,
        model: RankRAGModel | str | os.PathLike[str] | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
        quantization: str | None = None,
        adapter: str | os.PathLike[str] | None = "default",
        dtype: str | None = None,
        device: str | None = None,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        options = _convert.load_options(
            source, quantization, adapter, dtype, device, trust_remote_code, kwargs.pop("model_name", None)
        )
        resolved = _convert.resolve_model(model, options)
        super().__init__(model_name=resolved.name, **kwargs)
        self._model = resolved

    @classmethod
    def class_name(cls) -> str:
        return "RankRAGLLM"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """The settings and the model's load arguments: ``RankRAGLLM.from_dict(d)`` rebuilds it (the same shared model)."""
        return {**super().to_dict(**kwargs), _convert.LOAD_KEY: _convert.load_spec(self._model)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self:
        return cls(**_convert.from_serialized({**data, **kwargs}))

    @property
    def model(self) -> RankRAGModel:
        """The shared RankRAGModel this LLM generates with."""
        return self._model

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
    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        defaults = {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
        }
        return _convert.generation_options(defaults, overrides)

    def _completion_ids(self, prompt: str, formatted: bool) -> list[int]:
        if formatted:
            adapter_support.check_prompt(prompt)
            # An already formatted prompt is tokenised as the core tokenises the prompts it renders.
            return self._model.tokenizer.encode(prompt, add_special_tokens=self._model.prompt_style == "chatqa")
        return self._model.messages_prompt_ids(_convert.completion_messages(prompt, self.system_prompt))

    def _chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self._model.messages_prompt_ids(_convert.chat_messages_to_dicts(messages))

    def _generate(self, prompt_ids: list[int], options: dict[str, Any]) -> CompletionResponse:
        return _convert.completion_response(self._model.generate_ids(prompt_ids, **options))

    def _stream(self, prompt_ids: list[int], options: dict[str, Any]) -> CompletionResponseGen:
        text = ""
        for delta in self._model.stream_ids(prompt_ids, **options):
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
    async def _agenerate(self, prompt_ids: list[int], options: dict[str, Any]) -> CompletionResponse:
        return _convert.completion_response(await self._model.agenerate_ids(prompt_ids, **options))

    # Kept twin of _stream, over the core's async stream.
    async def _astream(self, prompt_ids: list[int], options: dict[str, Any]) -> CompletionResponseAsyncGen:
        text = ""
        async for delta in self._model.astream_ids(prompt_ids, **options):
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
