"""Replay examples: general instructions answered by the base model itself.

The paper's stage 1 (about 128k general instruction examples) keeps the tuned model from losing what the base
model could do. Our data has no instruction set, so the replay share is built from the train split's own
material: closed-book questions and small instructions over passages (summarise, name the topic, give a
title), each answered greedily by the untuned base model. Training on the base's own answers in a plain chat
turn anchors the adapter to the base's behaviour outside RankRAG's prompts.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from tqdm.auto import tqdm

from rankrag.data.datasets import resolve_data_dir
from rankrag.train.blend import REPLAY_TASK, BlendExample
from rankrag.train.pool import pool_qa_queries
from rankrag.train.sources import QAQuery, qa_queries

if TYPE_CHECKING:
    from transformers import GenerationMixin

    from rankrag.model.rankrag_model import RankRAGModel

PASSAGE_INSTRUCTIONS = (
    "Summarize the following text in one sentence.\n\n{passage}",
    "What is the main topic of this text?\n\n{passage}",
    "Give a short title for this passage.\n\n{passage}",
    "{passage}\n\nWhat is this passage about?",
)
REPLAY_MAX_NEW_TOKENS = 64
REPLAY_PASSAGE_CHARS = 700


def replay_instructions(queries: Sequence[QAQuery], count: int, seed: int) -> list[tuple[QAQuery, str]]:
    """``count`` instructions drawn from train-split QA material: half closed-book questions, half an
    instruction over one of the query's gold passages. Each keeps its query, so its split group is known."""
    rng = random.Random(f"{seed}:replay")
    pool = [q for q in queries if q.gold]
    rng.shuffle(pool)
    chosen: list[tuple[QAQuery, str]] = []
    for number, query in enumerate(pool[:count]):
        if number % 2 == 0:
            chosen.append((query, query.question.strip().rstrip("?") + "?"))
        else:
            passage = query.gold[0][:REPLAY_PASSAGE_CHARS]
            template = PASSAGE_INSTRUCTIONS[rng.randrange(len(PASSAGE_INSTRUCTIONS))]
            chosen.append((query, template.format(passage=passage)))
    return chosen


def replay_examples(
    model: RankRAGModel,
    instructions: Sequence[tuple[QAQuery, str]],
    *,
    max_new_tokens: int = REPLAY_MAX_NEW_TOKENS,
    batch_size: int = 16,
    progress: bool = True,
) -> list[BlendExample]:
    """The base ``model``'s greedy answer to each instruction as a ``replay`` example, generated in left-padded
    batches. Answers that did not end within ``max_new_tokens`` are left out: a cut answer would teach the
    model to stop mid-sentence."""
    import torch

    weights = model.model
    if weights is None:
        raise ValueError("replay answers are generated in batches on loaded weights; load the model in-process")
    tokenizer = model.tokenizer
    eos = int(tokenizer.eos_token_id)
    pad = int(tokenizer.pad_token_id)
    examples = []
    for start in tqdm(range(0, len(instructions), batch_size), desc="replay", disable=not progress):
        chunk = instructions[start : start + batch_size]
        prompts = [model.messages_prompt_ids([{"role": "user", "content": text}]) for _, text in chunk]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        with torch.inference_mode():
            output = cast("GenerationMixin", weights).generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        for (query, instruction), row in zip(chunk, output[:, width:].tolist()):
            if eos not in row:
                continue
            text = str(tokenizer.decode(row[: row.index(eos)], skip_special_tokens=True)).strip()
            if text:
                examples.append(
                    BlendExample(REPLAY_TASK, query.source, query.group, instruction, (), text, shape="plain_user")
                )
    return examples


def with_replay(
    examples: Sequence[BlendExample], data_dir: str | os.PathLike[str] | None, count: int, seed: int
) -> list[BlendExample]:
    """``examples`` with ``count`` replay instructions (from ``data_dir``'s train split) answered by the
    untuned embedded base model, mixed in at seeded positions."""

    from rankrag.model.rankrag_model import RankRAGModel

    directory = resolve_data_dir(data_dir)
    queries = qa_queries(directory) + pool_qa_queries(directory)
    replayed = replay_examples(RankRAGModel.load(adapter=None), replay_instructions(queries, count, seed))
    mixed = [*examples, *replayed]
    random.Random(f"{seed}:replay-order").shuffle(mixed)
    return mixed
