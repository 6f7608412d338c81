"""The one adapter layer between the core and the framework components (LangChain, LlamaIndex).

Every rule a framework component follows lives here, framework-free (nothing here imports langchain or
llama_index), so that both frameworks behave alike; ``rankrag_langchain`` and ``rankrag_llamaindex`` only
translate their types to and from these plain ones:

- :mod:`~rankrag.integration.load_options`: which shared :class:`~rankrag.RankRAGModel` a component runs on.
- :mod:`~rankrag.integration.call_options`: an LLM's settings and per-call options as one ``GenerationOptions``.
- :mod:`~rankrag.integration.messages`: the chat-message policy (roles, merging, empty prompts).
- :mod:`~rankrag.integration.ranking`: reranking under the blank-passage rule, and the cross-encoder's scores.
- :mod:`~rankrag.integration.metadata`: the score names written into a reranked document's metadata.

The user-facing summary is ``docs/integrations.md``.
"""
