"""A persistent Chroma index of a user's files: ingestion and retrieve-then-rerank."""
