"""Everything that touches MLflow lives here: runs, the registry, aliases, loading.

The tracking URI is always set explicitly (from config or ``--tracking-uri``); the
default is a SQLite file under the output folder, with artifacts beside it.
Registered models use aliases, not stages: ``challenger`` for every newly trained
model, ``champion`` for the one in use. Every run this module starts ends FINISHED or
FAILED (also on errors and Ctrl-C), never stays RUNNING.

The store is a dependency that can fail, and every failure is one :class:`ChurnmlError` line
naming the store and what to do: a SQLite store is checked before use (not a database,
damaged, unreadable), a lock held by another process is waited on for
``mlflow.lock_timeout_seconds`` (every statement MLflow runs waits at most that long, not
MLflow's built-in 20 s), a new store is created under a file lock (two commands starting at
once on a new store create its schema once), and any store error later on (a lock, a damaged
page) is reported the same way. A registration that fails half-way removes its version.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.models import infer_signature

from churnml.duck import system_scratch
from churnml.errors import ChurnmlError
from churnml.io.artifacts import save_model
from churnml.io.database import SQLITE, mask_uri, sqlite_file

CHAMPION, CHALLENGER = "champion", "challenger"
DEFAULT_LOCK_TIMEOUT = 30.0

# the store in use (set by configure): its URI and how long a lock is waited on
_STORE: dict = {"uri": None, "timeout": DEFAULT_LOCK_TIMEOUT, "hooked": False}

# (what the error says, what it means, what to do); first match wins
_DAMAGED = (
    "restore it from a backup, or move it aside to start a new, empty store (its runs and registered "
    "models are then gone), or point --tracking-uri (mlflow.tracking_uri) at another store"
)
_PROBLEMS = (
    ("file is not a database", "is not an SQLite database (damaged, or another file)", _DAMAGED),
    ("file is encrypted or is not a database", "is not an SQLite database (damaged, or another file)", _DAMAGED),
    ("database disk image is malformed", "is damaged (database disk image is malformed)", _DAMAGED),
    ("malformed database schema", "is damaged (malformed database schema)", _DAMAGED),
    ("database corrupt", "is damaged", _DAMAGED),
    (
        "database is locked",
        "is locked by another process (waited {timeout:g} s)",
        "retry when the other command has finished, raise mlflow.lock_timeout_seconds, or use another store "
        "with --tracking-uri",
    ),
    (
        "database table is locked",
        "is locked by another process (waited {timeout:g} s)",
        "retry when the other command has finished, or raise mlflow.lock_timeout_seconds",
    ),
    (
        "unable to open database file",
        "cannot be opened",
        "check that it is a file churnml may read and write, or point --tracking-uri at another store",
    ),
    (
        "attempt to write a readonly database",
        "is read-only",
        "make it writable, or point --tracking-uri (mlflow.tracking_uri) at another store",
    ),
    ("disk i/o error", "cannot be read or written (disk I/O error)", "check the disk, then " + _DAMAGED),
    ("database or disk is full", "cannot grow: the disk is full", "free space, or use another store"),
    (
        "out-of-date database schema",
        "was written by another MLflow version (out-of-date schema)",
        "back it up, then run `mlflow db upgrade <its URI>`, or use another store with --tracking-uri",
    ),
)


def store_name(uri: str | None = None) -> str:
    """The store as messages name it: a SQLite store by its file, another by its URI without a password."""
    uri = uri or _STORE["uri"] or ""
    if uri.startswith("sqlite:///"):
        return uri[len("sqlite:///") :]
    return mask_uri(uri)


def store_error(e: BaseException, uri: str | None = None) -> ChurnmlError | None:
    """The one-line :class:`ChurnmlError` for an error of the MLflow store (seen anywhere in ``e``'s chain of
    causes), or None when ``e`` is no store problem."""
    import sqlalchemy.exc

    seen, texts = 0, []
    x: BaseException | None = e
    while x is not None and seen < 12:
        if isinstance(x, (mlflow.exceptions.MlflowException, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error)):
            texts.append(str(x).lower())
        x, seen = x.__cause__ or x.__context__, seen + 1
    text = " ".join(texts)
    for needle, what, advice in _PROBLEMS:
        if needle in text:
            what = what.format(timeout=_STORE["timeout"])
            return ChurnmlError(f"the MLflow store {store_name(uri)} {what}: {advice}")
    return None


def _guarded(fn):
    """Turn an error of the store raised by ``fn`` into its one-line :class:`ChurnmlError`."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ChurnmlError:
            raise
        except Exception as e:
            err = store_error(e)
            if err is None:
                raise
            raise err from None

    return call


def _hook_lock_timeout() -> None:
    """Make every SQLite connection MLflow opens wait at most ``_STORE["timeout"]`` on a lock: the
    connection's busy timeout, and the one MLflow sets at the start of each session (20 s, fixed)."""
    if _STORE["hooked"]:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def ms() -> int:
        return int(_STORE["timeout"] * 1000)

    def on_connect(dbapi_conn, _record):
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute(f"PRAGMA busy_timeout = {ms()}")

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        if conn.dialect.name == "sqlite" and statement.lstrip().lower().startswith("pragma busy_timeout"):
            return f"PRAGMA busy_timeout = {ms()};", parameters
        return statement, parameters

    event.listen(Engine, "connect", on_connect)
    event.listen(Engine, "before_cursor_execute", before_execute, retval=True)
    _STORE["hooked"] = True


def check_sqlite_store(path: Path, timeout: float) -> None:
    """Refuse, in one line, an SQLite store that is not a database, is damaged, cannot be opened or stays
    locked for ``timeout`` seconds. A missing file is fine (a new store)."""
    uri = f"sqlite:///{path}"
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() and not path.exists():
        raise ChurnmlError(
            f"the MLflow store {path} is a link to nothing ({os.readlink(path)}): restore the file it points to, "
            f"or point --tracking-uri at another store"
        )
    if not path.is_file():
        raise ChurnmlError(f"the MLflow store {path} is not a file: point --tracking-uri at an SQLite file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ChurnmlError(
            f"the MLflow store {path} cannot be read ({e.strerror or e}): fix its permissions, or point "
            f"--tracking-uri at another store"
        ) from None
    if head and head != b"SQLite format 3\x00":
        raise ChurnmlError(f"the MLflow store {path} is not an SQLite database (damaged, or another file): {_DAMAGED}")
    try:
        con = sqlite3.connect(str(path), timeout=timeout)
        try:
            con.execute("PRAGMA schema_version").fetchone()
            bad = [r[0] for r in con.execute("PRAGMA quick_check(3)").fetchall() if r[0] != "ok"]
        finally:
            con.close()
    except sqlite3.Error as e:
        err = store_error(e, uri)
        raise (err or ChurnmlError(f"the MLflow store {path} cannot be used ({e}): {_DAMAGED}")) from None
    if bad:
        raise ChurnmlError(f"the MLflow store {path} is damaged ({'; '.join(bad)[:200]}): {_DAMAGED}")


@contextmanager
def _store_lock(path: Path | None, timeout: float):
    """Hold an exclusive lock on the store's folder (``flock``, released when the process ends) while a
    store is first used, so two commands starting at once on a new store create it once."""
    if path is None:
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ChurnmlError(
                        f"the MLflow store {path} is being set up by another process (waited {timeout:g} s): "
                        f"retry, or raise mlflow.lock_timeout_seconds"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return mlflow


def quiet() -> None:
    """Keep MLflow's informational logging off the console (warnings still show)."""
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)  # "pip version" noise in uv venvs


def resolve_uri(uri: str) -> str:
    """Make a relative ``sqlite:///file.db`` absolute (from the current directory)."""
    db = sqlite_file(uri)
    return SQLITE + str(db.resolve()) if db is not None and not db.is_absolute() else uri


# --- artifacts kept relative to the store ------------------------------------------------------------
# A SQLite store and the artifact folder beside it (outputs/mlflow.db, outputs/mlartifacts) record artifact
# locations as ``churnml-store:<path relative to the store's folder>``, so a moved or copied outputs/ still
# opens (runs, the report, the registered models). This repository resolves such a URI against the folder of
# the store in use: the client's tracking URI, or the store an ``mlflow server``/``mlflow ui`` serves (the
# package declares it as an ``mlflow.artifact_repository`` entry point, so that server finds it too).
STORE_SCHEME = "churnml-store"


def _store_folder(tracking_uri: str | None) -> Path:
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    uri = os.environ.get(BACKEND_STORE_URI_ENV_VAR) or tracking_uri or _mlflow().get_tracking_uri()
    uri = resolve_uri(uri)
    db = sqlite_file(uri)
    if db is None:
        raise ChurnmlError(f"{STORE_SCHEME}: artifacts are relative to a SQLite store's folder, not to {uri}")
    return db.parent


def store_artifact_path(artifact_uri: str, tracking_uri: str | None = None) -> Path:
    """The local folder of a ``churnml-store:`` URI, in the folder of the store at ``tracking_uri``."""
    rel = artifact_uri[len(STORE_SCHEME) + 1 :].lstrip("/")
    if ".." in Path(rel).parts:
        raise ChurnmlError(f"{artifact_uri}: a store-relative artifact location never leaves the store's folder")
    return _store_folder(tracking_uri) / rel


def _store_repository():
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    class StoreArtifactRepository(LocalArtifactRepository):
        """Artifacts under the store's folder (see ``STORE_SCHEME``)."""

        def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
            local = store_artifact_path(artifact_uri, tracking_uri)
            super().__init__(local.as_uri(), tracking_uri=tracking_uri, registry_uri=registry_uri)

    return StoreArtifactRepository


def store_artifact_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
    """The artifact repository of ``churnml-store:`` URIs (MLflow's entry point calls this)."""
    return _store_repository()(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)


def _register_store_scheme() -> None:
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    _artifact_repository_registry.register(STORE_SCHEME, store_artifact_repository)


def artifact_location(uri: str, artifact_root: str | Path, experiment_id_hint: str) -> str:
    """Where a new experiment's artifacts go: ``churnml-store:<relative path>`` when the store is a SQLite
    file and ``artifact_root`` lies in its folder, else ``artifact_root`` as an absolute file URI. Each
    experiment gets its own subfolder (``<root>/<experiment>``)."""
    root = Path(artifact_root).resolve() / experiment_id_hint
    db = sqlite_file(uri)
    if db is not None:
        store = db.resolve().parent
        try:
            return f"{STORE_SCHEME}:{root.relative_to(store).as_posix()}"
        except ValueError:
            pass
    return root.as_uri()


def configure(
    tracking_uri: str,
    experiment: str,
    artifact_root: str | Path | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> str:
    """Point MLflow at ``tracking_uri`` and make ``experiment`` (created if needed) the one
    new runs go to; returns its id. A SQLite store is checked first, and created (schema,
    experiment) under a file lock; a lock is waited on for ``lock_timeout`` seconds."""
    mlflow = _mlflow()
    _register_store_scheme()
    uri = resolve_uri(tracking_uri)
    _STORE.update(uri=uri, timeout=float(lock_timeout))
    db = sqlite_file(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ChurnmlError(
                f"cannot create the folder of the MLflow store {db}: {e.strerror or e}; "
                f"choose a writable --output-dir or --tracking-uri"
            ) from None
        _hook_lock_timeout()
        check_sqlite_store(db, lock_timeout)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        with _store_lock(db, lock_timeout):
            exp = mlflow.get_experiment_by_name(experiment)
            if exp is None:
                location = None
                if artifact_root is not None:
                    location = artifact_location(uri, artifact_root, _folder_name(experiment))
                exp_id = mlflow.create_experiment(experiment, artifact_location=location)
            else:
                exp_id = exp.experiment_id
            mlflow.set_experiment(experiment_id=exp_id)
            # open on the runs of classic model training, not on the GenAI traces view
            client = mlflow.MlflowClient()
            client.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
            client.search_registered_models(max_results=1)  # the registry's tables, under the same lock
            fail_stale_runs(exp_id)
    except ChurnmlError:
        raise
    except Exception as e:
        err = store_error(e, uri)
        if err is not None:
            raise err from None
        if isinstance(e, mlflow.exceptions.MlflowException):
            raise ChurnmlError(f"cannot use the MLflow store {store_name(uri)}: {str(e).splitlines()[0]}") from None
        raise
    return exp_id


PID_TAG, HOST_TAG = "churnml.pid", "churnml.host"


def fail_stale_runs(experiment_id: str) -> list[str]:
    """Mark FAILED the runs of ``experiment_id`` that churnml started on this machine and that are still
    RUNNING although their process is gone (killed with SIGKILL, a power cut); returns their ids."""
    import socket

    client = _mlflow().MlflowClient()
    host = socket.gethostname()
    runs = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    )
    gone = []
    for r in runs:
        try:
            pid = int(r.data.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running (or another user's process)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        client.set_tag(r.info.run_id, "churnml.stopped", f"process {pid} ended without closing the run")
        client.set_terminated(r.info.run_id, status="FAILED")
        gone.append(r.info.run_id)
    return gone


@contextmanager
def run(name: str, *, nested: bool = False, tags: dict | None = None, description: str | None = None):
    """An MLflow run that ends FINISHED on success and FAILED on any error or interrupt."""
    mlflow = _mlflow()
    import socket

    mine = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}  # a later run can tell it was left
    active = _guarded(mlflow.start_run)(
        run_name=name, nested=nested, tags={**(tags or {}), **mine}, description=description
    )
    try:
        yield active
    except BaseException as e:
        try:
            mlflow.end_run(status="KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        except Exception as end:  # the store itself failed: say so, unless the body's error already does
            err = store_error(end)
            if err is not None and not isinstance(e, ChurnmlError):
                raise err from None
        raise
    else:
        _guarded(mlflow.end_run)(status="FINISHED")


@_guarded
def log_params(params: dict) -> None:
    _mlflow().log_params({k: _short(v) for k, v in params.items()})


@_guarded
def log_metrics(metrics: dict) -> None:
    _mlflow().log_metrics({k: float(v) for k, v in metrics.items() if v == v})


@_guarded
def set_tags(tags: dict) -> None:
    _mlflow().set_tags({k: _short(v) for k, v in tags.items()})


@_guarded
def log_text(text: str, name: str) -> None:
    _mlflow().log_text(text, name)


def log_dict(content: dict | list, name: str) -> None:
    """A JSON artifact of the active run (NaN written as null)."""
    _mlflow().log_text(json.dumps(_json_safe(content), indent=1, default=str) + "\n", name)


def log_table(table: pd.DataFrame, name: str) -> None:
    """A table artifact of the active run (``name`` ends in ``.json``), shown as a table by MLflow's
    artifact viewer; NaN cells are empty."""
    df = table.astype(object).where(table.notna(), None)
    _mlflow().log_table(data=df, artifact_file=name)


def _json_safe(v):
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


@_guarded
def log_artifacts(folder: Path) -> None:
    _mlflow().log_artifacts(str(folder))


@_guarded
def log_model(model, *, input_example: pd.DataFrame, pip_requirements: list[str], code_path: Path, entry: Path) -> str:
    """Log the model to the active run as a pyfunc (models from code, no pickle: ``entry`` is the
    file MLflow runs to rebuild it, ``churnml/_pyfunc_entry.py``); returns its URI. Its signature is
    what ``model.predict_proba`` gives for ``input_example``."""
    mlflow = _mlflow()
    tmp = system_scratch()  # removed below; a killed run's by the next churnml process
    try:
        folder = save_model(model, tmp / "churnml_model")
        out = model.predict_proba(input_example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(entry),
            artifacts={"model": str(folder)},
            signature=infer_signature(input_example, out),
            input_example=input_example,
            pip_requirements=pip_requirements,
            code_paths=[str(code_path)],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info.model_uri


@_guarded
def register(model_uri: str, name: str, *, description: str = "", tags: dict | None = None) -> str:
    """Register a logged model under ``name``, give it the ``challenger`` alias; returns the version."""
    mlflow = _mlflow()
    mv = mlflow.register_model(model_uri, name, tags={k: _short(v) for k, v in (tags or {}).items()})
    client = mlflow.MlflowClient()
    try:
        if description:
            client.update_model_version(name, mv.version, description=description)
        client.set_registered_model_alias(name, CHALLENGER, mv.version)
    except BaseException:
        with suppress(Exception):  # never a half-registered model: a version without its alias goes again
            client.delete_model_version(name, mv.version)
        raise
    return str(mv.version)


@_guarded
def describe_model(name: str, description: str) -> None:
    """The registered model's own description (what it predicts, its aliases)."""
    _mlflow().MlflowClient().update_registered_model(name, description=description)


@_guarded
def set_description(text: str) -> None:
    """The active run's description (shown at the top of the run page)."""
    _mlflow().set_tag("mlflow.note.content", text)


@_guarded
def log_dataset(source: str, *, name: str, digest: str, context: str = "training") -> None:
    """The training data as the run's input dataset: where it is and its content digest."""
    import warnings

    mlflow = _mlflow()
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": a local folder, as meant
        warnings.simplefilter("ignore", UserWarning)
        # a database schema (named without credentials) has no MLflow resolver: recorded by name
        src = (
            CodeDatasetSource({"database": source})
            if source.startswith("postgresql://")
            else resolve_dataset_source(source)
        )
    # mlflow's MetaDataset leaves Dataset.profile abstract; Dataset is no ABC, so it instantiates (profile None)
    mlflow.log_input(MetaDataset(src, name=name, digest=digest), context=context)  # type: ignore[abstract]


@_guarded
def alias_version(name: str, alias: str) -> str | None:
    """The version holding ``alias``, or None."""
    mlflow = _mlflow()
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException as e:
        if store_error(e) is not None:
            raise  # a locked or damaged store is no "no such alias"
        return None


@_guarded
def set_alias(name: str, alias: str, version: str) -> None:
    _mlflow().MlflowClient().set_registered_model_alias(name, alias, version)


@_guarded
def log_to_run(run_id: str, *, metrics: dict | None = None, tags: dict | None = None, text: dict | None = None):
    """Add metrics, tags or small text files to an existing run."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    for k, v in (metrics or {}).items():
        client.log_metric(run_id, k, float(v))
    for k, v in (tags or {}).items():
        client.set_tag(run_id, k, _short(v))
    for fname, content in (text or {}).items():
        client.log_text(run_id, content, fname)


@_guarded
def registered_model_dir(name: str, alias: str = CHAMPION) -> tuple[Path, str]:
    """The local folder of the churnml model files behind ``models:/<name>@<alias>``, and its version."""
    mlflow = _mlflow()
    version = alias_version(name, alias)
    if version is None:
        raise ChurnmlError(
            f"no model {name}@{alias} in the registry at {mlflow.get_tracking_uri()}: "
            f"train one first (churnml train, or make train)"
        )
    try:
        local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    except (mlflow.exceptions.MlflowException, OSError) as e:
        if store_error(e) is not None:
            raise
        raise ChurnmlError(
            f"cannot read model {name} v{version} ({name}@{alias}) from the MLflow store {store_name()}: "
            f"{str(e).splitlines()[0]}; restore its files, or retrain (churnml train --replace-champion)"
        ) from None
    return Path(local) / "artifacts" / "churnml_model", version


@_guarded
def run_artifact_dir(name: str, alias: str, path: str) -> Path | None:
    """A folder of artifacts (``holdout_model``, ``fold_models``) of the run behind ``<name>@<alias>``,
    downloaded; None when the alias is unset or the run kept no such folder."""
    mlflow = _mlflow()
    version = alias_version(name, alias)
    if version is None:
        return None
    run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))
    except (mlflow.exceptions.MlflowException, OSError) as e:
        if store_error(e) is not None:
            raise
        return None


def _folder_name(experiment: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment).strip(".") or "experiment"


def _short(v) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 6000 else s[:5997] + "..."
