"""The chat-message policy of both frameworks' ``RankRAGLLM``.

- Roles are the chat template's: ``human`` is ``user``, ``ai`` is ``assistant``, ``function`` is ``tool``.
- Consecutive turns of one role are merged into one (a blank line between them), because many chat
  templates require roles to alternate.
- The model reads text only: another content block (an image, audio ...) is a ValueError
  (:func:`text_only_error`).
- A prompt, or a conversation, with no text to answer besides a system prompt is refused with
  ``ValueError(EMPTY_PROMPT_MESSAGE)``.
- A completion prompt is one user turn, after the LLM's system prompt if it has one.
"""

from __future__ import annotations

from collections.abc import Iterable

from rankrag.model.passages import is_blank

EMPTY_PROMPT_MESSAGE = (
    "the prompt is empty or only whitespace, so there is nothing to answer; pass a question or a message with text"
)

ROLE_ALIASES = {"human": "user", "ai": "assistant", "function": "tool"}
"""Role names of the frameworks' message types, as chat templates name them."""


def check_prompt(prompt: object) -> str:
    """The prompt, or ``ValueError(EMPTY_PROMPT_MESSAGE)`` when it is blank; ``TypeError`` when not a string."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if is_blank(prompt):
        raise ValueError(EMPTY_PROMPT_MESSAGE)
    return prompt


def text_only_error(role: str, kind: str) -> ValueError:
    """The error for a message content block that is not text (``kind`` names the block)."""
    return ValueError(f"RankRAGLLM reads text only; a {role} message holds a {kind!r} content block")


def conversation(turns: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """(role, text) turns as the role/content dicts of the chat template, under the policy above."""
    merged: list[dict[str, str]] = []
    for role, text in turns:
        role = ROLE_ALIASES.get(role, role)
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": role, "content": text})
    if all(turn["role"] == "system" or is_blank(turn["content"]) for turn in merged):
        raise ValueError(EMPTY_PROMPT_MESSAGE)
    return merged


def completion(prompt: object, system_prompt: str | None = None) -> list[dict[str, str]]:
    """A completion prompt as one user turn, after ``system_prompt`` when there is one."""
    text = check_prompt(prompt)
    return conversation([*([("system", system_prompt)] if system_prompt else []), ("user", text)])
