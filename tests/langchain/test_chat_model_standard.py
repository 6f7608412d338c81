"""LangChain's standard chat-model suites, run against RankRAGLLM on the embedded model.

Only features a local text-only model lacks are switched off, through the suites' own properties.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from rankrag_langchain import RankRAGLLM


class _LocalTextModel:
    """What the embedded model is: text in, text out, no tools, no multimodal input, one fixed model."""

    @property
    def chat_model_class(self) -> type[RankRAGLLM]:
        return RankRAGLLM

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_tool_choice(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_video_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        """One loaded model per instance: a per-call ``model=`` is refused, not silently ignored."""
        return False


@pytest.mark.usefixtures("embedded_model")
class TestRankRAGLLMUnit(_LocalTextModel, ChatModelUnitTests):
    pass


@pytest.mark.usefixtures("embedded_model")
class TestRankRAGLLMIntegration(_LocalTextModel, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        """Few tokens per answer: the suite runs about twenty generations."""
        return {"max_tokens": 8}
