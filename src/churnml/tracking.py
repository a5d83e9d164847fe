"""Everything that touches MLflow lives here: runs, the registry, aliases, loading.

The tracking URI is always set explicitly (from config or ``--tracking-uri``); the
default is a SQLite file under the output folder, with artifacts beside it.
Registered models use aliases, not stages: ``challenger`` for every newly trained
model, ``champion`` for the one in use. Every run this module starts ends FINISHED or
FAILED (also on errors and Ctrl-C), never stays RUNNING.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.models import infer_signature

from churnml.errors import ChurnmlError
from churnml.io.artifacts import save_model

CHAMPION, CHALLENGER = "champion", "challenger"


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
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    return uri


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
    if not uri.startswith("sqlite:///"):
        raise ChurnmlError(f"{STORE_SCHEME}: artifacts are relative to a SQLite store's folder, not to {uri}")
    return Path(uri[len("sqlite:///") :]).parent


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
    if uri.startswith("sqlite:///"):
        store = Path(uri[len("sqlite:///") :]).resolve().parent
        try:
            return f"{STORE_SCHEME}:{root.relative_to(store).as_posix()}"
        except ValueError:
            pass
    return root.as_uri()


def configure(tracking_uri: str, experiment: str, artifact_root: str | Path | None = None) -> str:
    """Point MLflow at ``tracking_uri`` and make ``experiment`` (created if needed) the one
    new runs go to; returns its id. A new experiment's artifacts go to ``artifact_root/<experiment>``,
    recorded relative to the store when they lie in its folder (:func:`artifact_location`)."""
    mlflow = _mlflow()
    _register_store_scheme()
    uri = resolve_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
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
        mlflow.MlflowClient().set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
    except mlflow.exceptions.MlflowException as e:
        raise ChurnmlError(f"cannot use the MLflow store {uri}: {str(e).splitlines()[0]}") from None
    return exp_id


@contextmanager
def run(name: str, *, nested: bool = False, tags: dict | None = None, description: str | None = None):
    """An MLflow run that ends FINISHED on success and FAILED on any error or interrupt."""
    mlflow = _mlflow()
    active = mlflow.start_run(run_name=name, nested=nested, tags=tags, description=description)
    try:
        yield active
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_params(params: dict) -> None:
    _mlflow().log_params({k: _short(v) for k, v in params.items()})


def log_metrics(metrics: dict) -> None:
    _mlflow().log_metrics({k: float(v) for k, v in metrics.items() if v == v})


def set_tags(tags: dict) -> None:
    _mlflow().set_tags({k: _short(v) for k, v in tags.items()})


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


def log_artifacts(folder: Path) -> None:
    _mlflow().log_artifacts(str(folder))


def log_model(model, *, input_example: pd.DataFrame, pip_requirements: list[str], code_path: Path, entry: Path) -> str:
    """Log the model to the active run as a pyfunc (models from code, no pickle: ``entry`` is the
    file MLflow runs to rebuild it, ``churnml/_pyfunc_entry.py``); returns its URI. Its signature is
    what ``model.predict_proba`` gives for ``input_example``."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model(model, Path(tmp) / "churnml_model")
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
    return info.model_uri


def register(model_uri: str, name: str, *, description: str = "", tags: dict | None = None) -> str:
    """Register a logged model under ``name``, give it the ``challenger`` alias; returns the version."""
    mlflow = _mlflow()
    mv = mlflow.register_model(model_uri, name, tags={k: _short(v) for k, v in (tags or {}).items()})
    client = mlflow.MlflowClient()
    if description:
        client.update_model_version(name, mv.version, description=description)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return str(mv.version)


def describe_model(name: str, description: str) -> None:
    """The registered model's own description (what it predicts, its aliases)."""
    _mlflow().MlflowClient().update_registered_model(name, description=description)


def set_description(text: str) -> None:
    """The active run's description (shown at the top of the run page)."""
    _mlflow().set_tag("mlflow.note.content", text)


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


def alias_version(name: str, alias: str) -> str | None:
    """The version holding ``alias``, or None."""
    mlflow = _mlflow()
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    _mlflow().MlflowClient().set_registered_model_alias(name, alias, version)


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
        raise ChurnmlError(
            f"cannot read model {name} v{version} from the MLflow store: {str(e).splitlines()[0]}"
        ) from None
    return Path(local) / "artifacts" / "churnml_model", version


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
    except (mlflow.exceptions.MlflowException, OSError):
        return None


def _folder_name(experiment: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment).strip(".") or "experiment"


def _short(v) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 6000 else s[:5997] + "..."
