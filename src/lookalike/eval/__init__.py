"""Evaluation: datasets with labels, retrieval metrics, and (later) reports."""
