"""Writing churnml's outputs: every file atomically, every output folder published in one step.

* A file goes to a hidden temporary sibling (``.<name>.<pid>.<random>.tmp``) and is
  renamed into place, so a crash never leaves a half-written file. Files get the
  usual permissions (``0666`` less the umask), not the ``0600`` of temporary files.
* An output folder (the scores of a run, the CSM pages, the training report) is built
  complete in a hidden version folder beside it, then published by replacing a
  symbolic link in one rename: readers see the old set or the new one, never a mix and
  never nothing. Older versions are removed once a newer one is published.
* churnml only removes what it wrote: every folder it builds holds a marker file, and
  a target that exists without that marker (someone else's files) is refused.
* Temporary files and folders left by a killed run are removed by the next run that
  writes there (only those whose process is gone, so a concurrent run is never hurt).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from churnml.errors import ChurnmlError

MARKER = ".churnml-output"
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_permissions(path: Path, folder: bool = False) -> None:
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files and folders of dead churnml processes in ``folder``; returns what went."""
    gone: list[Path] = []
    if not folder.is_dir():
        return gone
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        if m and not _alive(int(m.group("pid"))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def _tmp_name(path: Path) -> str:
    return f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def scratch_dir(parent: str | Path, name: str) -> Path:
    """A new hidden working folder ``.<name>.<pid>.<random>.tmp`` in ``parent`` (an output folder), after
    removing those of dead processes there: the caller removes it when done; a killed run's is removed by
    the next run (:func:`clean_stale`)."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent)
        tmp = parent / _tmp_name(parent / name)
        tmp.mkdir()
    except OSError as e:
        raise ChurnmlError(f"cannot create a working folder in {parent}: {e.strerror or e}") from None
    return tmp


def atomic_write(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it onto ``path``
    (what ``writer`` returns is ignored)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ChurnmlError(f"cannot create the folder {path.parent}: {e.strerror or e}") from None
    tmp = path.parent / _tmp_name(path)
    try:
        writer(tmp)
        _normal_permissions(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ChurnmlError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    return path


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_parquet(p, index=False))


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def _guard(v):
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells (and column names) that a spreadsheet would run as a formula (starting with = + - @, a
    tab, a carriage return or a line feed) get a leading single quote, as OWASP recommends for CSV files;
    numbers are untouched. Categorical text is guarded like any other text."""
    out = df.copy()
    out.columns = [_guard(c) for c in out.columns]
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
            out.isetitem(i, s)
        if pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s):
            text = s.where(s.map(lambda v: isinstance(v, str)), None)
            risky = text.str.startswith(FORMULA_PREFIXES, na=False)
            if risky.any():
                out.isetitem(i, s.where(~risky, "'" + text))
    return out


def to_csv(df: pd.DataFrame, target: str | Path | None = None, *, raw: bool = False) -> str | None:
    """The one CSV writer of churnml: every CSV it writes (score runs, the training report, replays, the
    tables logged to MLflow, generated data) goes through here.

    Every text cell and every column name is quoted (``csv.QUOTE_NONNUMERIC``), so no carriage return or
    line feed inside a value ever ends a row, and (unless ``raw``: data files that must read back
    exactly, e.g. a generated base) formula-like text is neutralised (:func:`csv_safe`). Numbers stay
    unquoted numbers. ``target`` None: the CSV as text."""
    frame = df if raw else csv_safe(df)
    return frame.to_csv(target, index=False, quoting=csv.QUOTE_NONNUMERIC)


def csv_text(df: pd.DataFrame) -> str:
    """A frame as CSV text through :func:`to_csv` (for tables logged to MLflow)."""
    return str(to_csv(df))


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """A CSV file (no index), atomically, through :func:`to_csv` (quoted, formula-like text neutralised)."""
    return atomic_write(path, lambda p: to_csv(df, p))


def write_text(text: str, path: str | Path) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(obj, path: str | Path) -> Path:
    return write_text(json.dumps(obj, indent=1, default=str) + "\n", path)


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read one of churnml's own outputs (Parquet or CSV, by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ChurnmlError(f"file not found: {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:
        raise ChurnmlError(f"cannot read {path}: {type(e).__name__}: {e}") from None


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChurnmlError(f"file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise ChurnmlError(f"cannot read {path}: {e}") from None


# --- folders ------------------------------------------------------------------------------------
def rename_folder(src: str | Path, dst: str | Path) -> Path:
    """Move a folder to a new name in one step (same file system); ``dst`` must not exist."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise ChurnmlError(f"cannot move {src} to {dst}: it exists")
    os.rename(src, dst)
    return dst


def owned(folder: Path) -> bool:
    """Whether churnml wrote ``folder`` (it holds the marker file)."""
    return (folder / MARKER).is_file()


def _kind(folder: Path) -> str | None:
    try:
        text = (folder / MARKER).read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^kind: (\S+)", text, re.M)
    return m.group(1) if m else None


def check_target(path: Path, kind: str | None = None) -> None:
    """Refuse an output folder that holds someone else's files (churnml never deletes those), or
    churnml's output of another kind (pages never replace the scores they are made from)."""
    path = Path(path)
    folder = path.resolve() if path.is_symlink() else path
    if path.is_symlink() and folder.exists() and not owned(folder):
        raise ChurnmlError(f"{path} points to {folder}, which churnml did not write; choose another output folder")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ChurnmlError(f"{path} exists and is not a folder; choose another output folder")
    if not owned(folder):
        if any(folder.iterdir()):
            raise ChurnmlError(
                f"{path} holds files churnml did not write: choose an empty or new folder "
                f"(churnml only ever replaces what it wrote)"
            )
        return
    other = _kind(folder)
    if kind and other and other != kind:
        raise ChurnmlError(f"{path} holds churnml's {other} output, not {kind}: choose another folder")


def ensure_writable(folder: Path) -> None:
    """Fail early, before any work, when ``folder`` cannot be created or written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / _tmp_name(folder / "probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ChurnmlError(f"cannot write into {folder}: {e.strerror or e}; choose a writable --output-dir") from None


@contextmanager
def publish_dir(path: str | Path, keep: int = 2, kind: str | None = None):
    """Yield a new, empty version folder; on success it becomes ``path`` in one step.

    ``path`` is a symbolic link to the current hidden version folder (``.<name>.v-<id>``).
    On error the half-built folder vanishes and ``path`` is untouched. Older versions
    beyond the newest ``keep`` are removed (only ours: they hold the marker).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ChurnmlError(f"cannot create the folder {path.parent}: {e.strerror or e}") from None
    check_target(path, kind)
    clean_stale(path.parent)
    tmp = path.parent / _tmp_name(path)
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(
            f"written by churnml; replaced as a whole by the next run\nkind: {kind or 'output'}\n", encoding="utf-8"
        )
        yield tmp
        for p in tmp.rglob("*"):
            _normal_permissions(p, folder=p.is_dir())
        _normal_permissions(tmp, folder=True)
        version = path.parent / f".{path.name}.v-{pd.Timestamp.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
        os.replace(tmp, version)
        _swap_link(path, version)
        _prune(path, version, keep)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise ChurnmlError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def _swap_link(path: Path, version: Path) -> None:
    link = path.parent / _tmp_name(path)
    os.symlink(version.name, link)
    if path.exists() and path.is_dir() and not path.is_symlink():
        # a folder written by an older churnml: move it aside (ours: it has the marker), then link
        aside = path.parent / f".{path.name}.v-old-{uuid.uuid4().hex[:6]}"
        os.replace(path, aside)
    os.replace(link, path)


def _prune(path: Path, current: Path, keep: int) -> None:
    prefix = f".{path.name}.v-"
    versions = sorted(
        (
            p
            for p in path.parent.iterdir()
            if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink() and owned(p)
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in [v for v in versions if v != current][max(keep - 1, 0) :]:
        shutil.rmtree(old, ignore_errors=True)


def write_dataset(tables: dict[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write contract tables as ``<table>.<fmt>`` into ``out_dir``, published in one step.

    ``out_dir`` must be new, empty, or a folder churnml wrote before (it is replaced as a whole).
    """
    if fmt not in ("parquet", "csv"):
        raise ChurnmlError(f"format must be parquet or csv, got {fmt!r}")
    with publish_dir(out_dir, keep=1, kind="data") as tmp:
        for name, df in tables.items():
            if df is None:
                continue
            if fmt == "parquet":
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                to_csv(df, tmp / f"{name}.csv", raw=True)  # data: read back exactly
    return Path(out_dir)
