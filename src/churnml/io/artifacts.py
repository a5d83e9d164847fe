"""Models, figures, pages, playbooks and config files: read and written here only.

The built-in playbooks ship inside the package (``churnml/resources``), so an installed
churnml works from any folder; ``churnml init DIR`` copies them next to a config file
for editing.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from churnml.errors import ChurnmlError
from churnml.io.outputs import to_csv, write_text

PLAYBOOKS = "playbooks.yaml"


# --- models -------------------------------------------------------------------------------------------
def save_model(model, folder: str | Path) -> Path:
    """Write a model (anything with ``to_state()``: JSON meta + LightGBM text models) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta, texts = model.to_state()
    for name, text in texts.items():
        (folder / f"{name}.lgb.txt").write_text(text, encoding="utf-8")
    (folder / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def read_model_state(folder: str | Path) -> tuple[dict, dict[str, str]]:
    """What :func:`save_model` wrote: the JSON meta and the LightGBM text models by name (the caller
    rebuilds the model with its ``from_state``)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        texts = {p.name.removesuffix(".lgb.txt"): p.read_text(encoding="utf-8") for p in folder.glob("*.lgb.txt")}
    except (OSError, ValueError) as e:
        raise ChurnmlError(f"cannot read the model in {folder}: {e}") from None
    return meta, texts


# --- figures and pages ------------------------------------------------------------------------------------
def write_pages(pages: dict[str, str], folder: str | Path) -> int:
    """Write ``{relative path: html}`` under ``folder`` (a folder being built, e.g. by ``publish_dir``)."""
    folder = Path(folder)
    for rel, text in pages.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return len(pages)


# --- playbooks and config files ---------------------------------------------------------------------------
def builtin_text(name: str) -> str:
    return resources.files("churnml.resources").joinpath(name).read_text(encoding="utf-8")


def read_playbook(path: str | Path | None) -> dict:
    """The playbook YAML at ``path`` (None: the built-in one), parsed."""
    if path is None:
        text, where = builtin_text(PLAYBOOKS), "the built-in playbooks"
    else:
        p = Path(path)
        if not p.is_file():
            raise ChurnmlError(
                f"playbook file not found: {p} (config scoring.playbook_file; a path in a config file is from the "
                f"file's folder)"
            )
        text, where = p.read_text(encoding="utf-8"), str(p)
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ChurnmlError(f"{where} is not valid YAML: {e}") from None


def init_project(folder: str | Path, config_text: str, *, force: bool = False) -> list[Path]:
    """Write ``churnml.yaml`` and ``playbooks.yaml`` into ``folder`` (refusing to overwrite unless ``force``)."""
    folder = Path(folder)
    targets = {folder / "churnml.yaml": config_text, folder / PLAYBOOKS: builtin_text(PLAYBOOKS)}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ChurnmlError(f"{', '.join(map(str, existing))} already exist; use --force to overwrite")
    return [write_text(text, p) for p, text in targets.items()]


def fingerprint_files(paths: list[Path]) -> str:
    """A content hash of files (names and bytes), streamed: the digest of a data folder."""
    h = hashlib.sha256()
    for p in sorted(paths):
        # a table given as a folder of part files: every file in it, by its path inside the folder
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            h.update(str(q.relative_to(p.parent)).encode())
            with open(q, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def write_files(files: dict[str, object], folder: str | Path) -> list[Path]:
    """Write ``{name: content}`` into ``folder`` (a folder being built, e.g. by ``publish_dir``) by kind:
    a DataFrame as Parquet or CSV by the name's suffix (no index), a figure as PNG, bytes as they are, a dict or list as
    JSON, text as text."""
    folder = Path(folder)
    out = []
    for name, obj in files.items():
        p = folder / name
        if isinstance(obj, pd.DataFrame) and name.endswith(".parquet"):
            obj.to_parquet(p, index=False)
        elif isinstance(obj, pd.DataFrame):
            to_csv(obj, p)
        elif isinstance(obj, bytes):
            p.write_bytes(obj)
        elif hasattr(obj, "savefig"):
            obj.savefig(p, dpi=110, format="png")
        elif isinstance(obj, (dict, list)):
            p.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
        else:
            p.write_text(str(obj), encoding="utf-8")
        out.append(p)
    return out


def read_yaml(path: str | Path, what: str = "file"):
    """A YAML file, parsed (a clear error when it is missing or not YAML)."""
    p = Path(path)
    if not p.is_file():
        raise ChurnmlError(f"{what} not found: {p}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ChurnmlError(f"{what} {p} is not valid YAML: {e}") from None
