"""Training: the RankRAG instruction blend, its sources, example encoding and the LoRA trainers."""
