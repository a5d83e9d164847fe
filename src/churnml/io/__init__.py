"""The I/O layer: the only code that reads and writes files.

* :mod:`churnml.io.tables`: the contract tables of a data folder, opened as DuckDB relations;
* :mod:`churnml.io.outputs`: atomic files and folders published in one step;
* :mod:`churnml.io.artifacts`: models, figures, pages, config and playbook files.
"""

from churnml.io.outputs import (
    MARKER,
    atomic_write,
    check_target,
    clean_stale,
    csv_text,
    publish_dir,
    read_json,
    read_table_file,
    to_csv,
    write_csv,
    write_dataset,
    write_json,
    write_parquet,
    write_text,
)
from churnml.io.tables import RawTable, Workspace, find_table_file, open_raw_tables, register_frames

__all__ = [
    "MARKER",
    "RawTable",
    "Workspace",
    "atomic_write",
    "check_target",
    "clean_stale",
    "find_table_file",
    "open_raw_tables",
    "publish_dir",
    "read_json",
    "read_table_file",
    "register_frames",
    "csv_text",
    "to_csv",
    "write_csv",
    "write_dataset",
    "write_json",
    "write_parquet",
    "write_text",
]
