"""Shared fixtures (a small generated customer base, made once per test session) and the order in
which ``pytest -n 2`` hands test files to its two workers."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Test files that train models or start servers, longest first (seconds on a quiet 2-core machine,
# roughly; see `pytest --durations`). `make test` runs with `--dist loadfile --no-loadscope-reorder`:
# every file is one unit of work (its module fixtures are made once, on one worker), and these go
# first so that the last file to finish is a short one. Files not listed follow in their usual order.
LONGEST_FIRST = (
    "test_spark.py",
    "test_faults.py",
    "test_online_retail.py",
    "test_own_data.py",
    "test_scoring.py",
    "test_train.py",
    "test_warehouse.py",
    "test_survival.py",
    "test_foreign_base.py",
    "test_reliability_trained.py",
    "test_reliability_store.py",
    "test_reliability_leftovers.py",
    "test_replay.py",
    "test_pages.py",
    "test_generate.py",
)
# files that share the session's trained project (tests/trained.py): one unit of work, in this order
SHARED_UNIT = {"test_scoring.py": "trained project", "test_train.py": "trained project"}


def pytest_collection_modifyitems(config, items):
    """The long files first (a stable sort keeps the order of each file's tests)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadfile``: one unit of work per file, except the files of SHARED_UNIT, which go
    to one worker together (so the trained project is made once)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndSharedUnits(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return SHARED_UNIT.get(file.rsplit("/", 1)[-1], file)

    return FilesAndSharedUnits(config, log)


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


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory):
    """The base of the shared trained project (tests/trained.py: 1,200 accounts, 2.5 years)."""
    from trained import write_base

    return write_base(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def trained_project(trained_base, tmp_path_factory):
    """One full `churnml train` on the shared base, made once: (config, TrainResult). Tests read it;
    those that register more models into its store run after the readers (see SHARED_GROUP)."""
    from trained import train_project

    return train_project(trained_base, tmp_path_factory.mktemp("trained-run"))
