"""Shared fixtures: a small generated customer base, made once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def base_tables():
    """A deterministic synthetic base (2,000 accounts, 3 years) as DataFrames, with hostile names (markup,
    quotes, a script tag) that every page and file must keep as text."""
    from churnml.generate import GeneratorConfig, generate

    return generate(GeneratorConfig(accounts=2000, seed=7, hostile_names=True))


@pytest.fixture(scope="session")
def base_dir(base_tables, tmp_path_factory):
    """The same base written as Parquet to a folder (read-only for tests)."""
    from churnml.io import write_dataset

    out = tmp_path_factory.mktemp("base") / "data"
    write_dataset(base_tables, out, fmt="parquet")
    return out
