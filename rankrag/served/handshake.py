"""The connect handshake: which server this is, how it takes prompts, and whether its logprobs can be trusted.

It lists the server's models, reads its context window, checks the client's tokenizer against the server's,
and probes one ranking prompt plain and under a logit bias (:class:`ServerInfo` records what it learned).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from rankrag.model.prompts import PromptTemplates
from rankrag.model.ranking_prompts import RankingEncoder, answer_token_ids
from rankrag.model.roles import ROLES
from rankrag.model.scoring_options import ScoringOptions
from rankrag.served.client import ServerClient
from rankrag.served.errors import ServedModelNotFoundError, ServerResponseError, TokenizerMismatchError
from rankrag.served.wire import BIAS, Flavor, ServerInfo, ServerWire, first_difference

logger = logging.getLogger(__name__)

PROBE_QUESTION = "What is the capital of France?"
PROBE_PASSAGE = "Paris is the capital and most populous city of France."

# (path, payload builder, whether the count includes the BOS token a text prompt gets) per server kind
_TOKENIZE: dict[str, tuple[str, Any, bool]] = {
    "llama-cpp-python": ("/extras/tokenize", lambda model, text: {"input": text, "model": model}, True),
    "vllm": ("/tokenize", lambda model, text: {"model": model, "prompt": text, "add_special_tokens": False}, False),
    "llama.cpp": (
        "/tokenize",
        lambda model, text: {"content": text, "add_special": False, "parse_special": True},
        False,
    ),
}


def resolve_role_models(model: str, names: Sequence[str], given: Mapping[str, str], base_url: str) -> dict[str, str]:
    """The served model each role's requests name: ``given`` (checked against the server's list), else a served
    model named after the role (``ranker``, ``answerer``: the LoRA names ``rankrag export`` gives vLLM, the aliases
    ``rankrag serve`` gives an export's roles), else ``model``."""
    unknown = set(given) - set(ROLES)
    if unknown:
        raise ValueError(f"role_models names unknown role(s) {sorted(unknown)}; roles are {ROLES}")
    chosen: dict[str, str] = {}
    for role in ROLES:
        name = given.get(role) or (role if role in names else model)
        if name not in names:
            raise ServedModelNotFoundError(
                f"role_models[{role!r}] is {name!r}, but the model server at {base_url} serves only "
                f"{', '.join(repr(n) for n in names)}"
            )
        chosen[role] = name
    return chosen


async def handshake(
    client: ServerClient,
    model: str,
    tokenizer: PreTrainedTokenizerBase,
    templates: PromptTemplates,
    options: ScoringOptions,
    *,
    context_window: int | None,
    tokenizer_given: bool,
    top_logprobs: int,
    role_models: Mapping[str, str] | None = None,
) -> ServerInfo:
    listing = await client.request("GET", "/v1/models")
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise ServerResponseError(
            f"malformed response from {client.url('/v1/models')}: expected an OpenAI model list, got {str(listing)[:200]!r}"
        )
    names = tuple(e["id"] for e in entries)
    if model not in names:
        raise ServedModelNotFoundError(
            f"the model server at {client.base_url} does not serve a model named {model!r}; it serves "
            f"{', '.join(repr(n) for n in names) or 'no model'}. Pass one of those as model= "
            f"(llama-cpp-python: --model_alias; vLLM: --served-model-name)"
        )
    chosen = resolve_role_models(model, names, role_models or {}, client.base_url)
    owners = {str(e.get("owned_by", "")).lower() for e in entries}
    flavor: Flavor = (
        "vllm"
        if "vllm" in owners
        else "llama.cpp"
        if "llamacpp" in owners
        else "llama-cpp-python"
        if "me" in owners
        else "openai-compatible"
    )
    info = ServerInfo(
        base_url=client.base_url,
        model=model,
        flavor=flavor,
        models=names,
        role_models=chosen,
        prompt_mode="ids",
        context_window=None,
        context_window_source="unknown",
        tokenizer_verified=False,
    )
    entry = next(e for e in entries if e["id"] == model)
    if context_window is not None:
        info.context_window, info.context_window_source = int(context_window), "connect(context_window=...)"
    elif isinstance(entry.get("max_model_len"), int):
        info.context_window, info.context_window_source = entry["max_model_len"], "server (/v1/models max_model_len)"
    elif flavor == "llama.cpp":
        try:
            props = await client.request("GET", "/props", retry=False)
            n_ctx = props["default_generation_settings"]["n_ctx"]
            if isinstance(n_ctx, int) and n_ctx > 0:
                info.context_window, info.context_window_source = n_ctx, "server (/props n_ctx)"
        except Exception:  # noqa: BLE001 - optional metadata
            pass

    probe = RankingEncoder(tokenizer, templates, options).encode(PROBE_QUESTION, [PROBE_PASSAGE])[0]
    await verify_tokenizer(client, info, tokenizer, probe, tokenizer_given)

    true_id, false_id = answer_token_ids(tokenizer, templates)
    wire = ServerWire(client, tokenizer, info, warn_retokenized=False)  # the probe's re-tokenization is not news
    try:
        plain = await wire.complete_one_token(probe, logprobs=top_logprobs, bias=None)
    except ServerResponseError as error:
        rejected = error.status_code in (400, 422) or (error.status_code == 500 and "validation error" in str(error))
        if not rejected:
            raise
        info.prompt_mode = "text"
        info.notes.append("the server does not take token-id prompts; prompts are sent as text")
        plain = await wire.complete_one_token(wire.prompt(probe), logprobs=top_logprobs, bias=None)
    if info.prompt_mode == "text" and not info.tokenizer_verified:
        raise TokenizerMismatchError(
            f"the model server at {client.base_url} takes prompts as text only and offers no tokenize endpoint, so "
            f"RankRAG cannot check that the server sees the prompts it builds; use a server that takes token ids"
        )
    sent = probe if info.prompt_mode == "ids" else wire.prompt(probe)
    # Bias the less likely answer token: whether the server then picks it tells whether it honours logit_bias,
    # and the logprob it reports tells whether its logprobs are taken before (raw) or after the bias.
    lt, lf = plain.logprob(true_id, wire.token_name(true_id)), plain.logprob(false_id, wire.token_name(false_id))
    target = false_id if lf is None or (lt is not None and lf <= lt) else true_id
    biased = await wire.complete_one_token(sent, logprobs=top_logprobs, bias={target: BIAS})
    info.logit_bias = biased.sampled.matches(target, wire.token_name(target))
    info.raw_logprobs = info.logit_bias and biased.sampled.logprob < -0.1
    if not info.logit_bias:
        info.notes.append("the server ignores logit_bias; P(True) relies on both answers being in the top logprobs")
    return info


async def verify_tokenizer(
    client: ServerClient, info: ServerInfo, tokenizer: PreTrainedTokenizerBase, probe: list[int], given: bool
) -> None:
    """Compare the client's tokenization of a rendered ranking prompt with the server's."""
    text = tokenizer.decode(probe, clean_up_tokenization_spaces=False)
    local = tokenizer.encode(text, add_special_tokens=False)
    kinds = [info.flavor] if info.flavor in _TOKENIZE else list(_TOKENIZE)
    for kind in kinds:
        path, payload, with_bos = _TOKENIZE[kind]
        try:
            answer = await client.request("POST", path, payload(info.model, text), retry=False)
        except ServerResponseError as error:
            if error.status_code in (400, 404, 405, 422):
                continue
            raise
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            continue
        bos = tokenizer.bos_token_id
        if with_bos and bos is not None and tokens == [bos] + local:
            info.text_adds_bos = True
        elif tokens != local:
            at = first_difference(local, tokens)
            raise TokenizerMismatchError(
                f"the tokenizer {'given' if given else '(the embedded SmolLM2 one, as tokenizer=None)'} does not "
                f"tokenize like the model {info.model!r} at {client.base_url}: on a ranking prompt they differ from "
                f"token {at} ({tokenizer.convert_ids_to_tokens(local[at : at + 3])} here, ids {tokens[at : at + 3]} "
                f"there); pass tokenizer= the served model's tokenizer (directory, Hugging Face id or .gguf file)"
            )
        info.tokenizer_verified = True
        return
    if not given and "smollm2" not in info.model.lower():
        raise TokenizerMismatchError(
            f"the model server at {client.base_url} offers no tokenize endpoint to check the tokenizer against, and "
            f"{info.model!r} does not look like the embedded SmolLM2; pass tokenizer= the served model's tokenizer"
        )
    info.notes.append("the server offers no tokenize endpoint; the tokenizer could not be checked against it")
    logger.warning("the model server at %s offers no tokenize endpoint; the tokenizer is unchecked", client.base_url)
