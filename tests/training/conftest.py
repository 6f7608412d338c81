"""Fixtures for the training tests: a reduced copy of the shared data and a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCIFACT_TRAIN_QUERIES = 30
SCIFACT_EXTRA_DOCS = 200


@pytest.fixture(scope="session")
def mini_data_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared data with SciFact cut to 30 train claims and a few hundred abstracts (BM25 mining in seconds).

    Every other set is linked unchanged, so split membership and leakage checks run on the real ids.
    """
    root = tmp_path_factory.mktemp("mini_data")
    for entry in data_dir.iterdir():
        if entry.is_dir() and entry.name != "scifact":
            (root / entry.name).symlink_to(entry)
    source, target = data_dir / "scifact", root / "scifact"
    target.mkdir()
    queries = [line for line in (source / "queries_train.jsonl").read_text(encoding="utf-8").splitlines() if line][
        :SCIFACT_TRAIN_QUERIES
    ]
    kept = {str(json.loads(line)["_id"]) for line in queries}
    qrels = (source / "qrels_train.tsv").read_text(encoding="utf-8").splitlines()
    kept_qrels = [qrels[0]] + [row for row in qrels[1:] if row.split("\t")[0] in kept]
    wanted_docs = {row.split("\t")[1] for row in kept_qrels[1:]}
    corpus = []
    with (source / "corpus.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if json.loads(line)["_id"] in wanted_docs or number < SCIFACT_EXTRA_DOCS:
                corpus.append(line.rstrip("\n"))
    (target / "queries_train.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    (target / "qrels_train.tsv").write_text("\n".join(kept_qrels) + "\n", encoding="utf-8")
    (target / "corpus.jsonl").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    for name in ("queries.jsonl", "qrels.tsv", "bm25_top100.jsonl"):
        (target / name).symlink_to(source / name)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(base_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer (chat template included): mechanics only."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = base_model.tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    directory = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
