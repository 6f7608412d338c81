"""Exceptions raised by rankrag. Each one names the problem and, where possible, the fix."""

from __future__ import annotations


class RankRAGError(Exception):
    """Base class for every error rankrag raises on purpose."""


class ModelNotFoundError(RankRAGError, FileNotFoundError):
    """The model id, directory or file could not be found or loaded."""


class UnsupportedConfigurationError(RankRAGError, ValueError):
    """A precision, quantization, device or source combination that cannot work."""


class MissingDependencyError(RankRAGError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


class PassageTooLongError(RankRAGError, ValueError):
    """A passage does not fit the token budget and truncation was switched off."""


class PromptTooLongError(RankRAGError, ValueError):
    """A generation prompt plus the requested new tokens does not fit the model's context window."""
