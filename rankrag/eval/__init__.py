"""Evaluation: ranking and QA metrics, reranking and QA runs, fusion calibration, reports."""
