"""Batch scoring, per-account explanations in plain words, and drift checks."""
