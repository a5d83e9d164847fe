"""Everything that touches MLflow lives here: runs, the registry, aliases, loading.

The tracking URI is always set explicitly (from config or ``--tracking-uri``); the
default is a local SQLite file in the project (``sqlite:///mlflow.db``), with
artifacts in ``mlartifacts/``. Registered models use aliases, not stages:
``challenger`` for every newly trained model, ``champion`` for the one in use.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd

from churnml.errors import ChurnmlError

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
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


def configure(tracking_uri: str, experiment: str, artifact_root: str | Path | None = None) -> str:
    """Point MLflow at ``tracking_uri`` and make ``experiment`` (created if needed) the one
    new runs go to; returns its id."""
    mlflow = _mlflow()
    uri = resolve_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if artifact_root is not None:
            location = Path(artifact_root).resolve().as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


class ChurnmlPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: ``predict`` returns calibrated churn and expansion probabilities."""

    def load_context(self, context):
        from churnml.modeling.model import ChurnmlModel

        self.model = ChurnmlModel.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict_proba(pd.DataFrame(model_input))


def log_training_run(*, run_name: str, params: dict, tags: dict, metrics: dict, artifacts_dir: Path,
                     model, input_example: pd.DataFrame, pip_requirements: list[str],
                     code_path: Path) -> tuple[str, str]:
    """Log one training run (params, tags, metrics, files under ``artifacts_dir``, the model).

    Returns the run id and the logged model's URI.
    """
    mlflow = _mlflow()
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: _short(v) for k, v in params.items()})
        mlflow.set_tags({k: _short(v) for k, v in tags.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        mlflow.log_artifacts(str(artifacts_dir))
        with tempfile.TemporaryDirectory() as tmp:
            folder = model.save(Path(tmp) / "churnml_model")
            out = model.predict_proba(input_example)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("_pyfunc_entry.py")),
                artifacts={"model": str(folder)},
                signature=infer_signature(input_example, out), input_example=input_example,
                pip_requirements=pip_requirements, code_paths=[str(code_path)],
            )
        return run.info.run_id, info.model_uri


def register(model_uri: str, name: str, *, description: str = "") -> str:
    """Register a logged model under ``name``, give it the ``challenger`` alias; returns the version."""
    mlflow = _mlflow()
    mv = mlflow.register_model(model_uri, name)
    client = mlflow.MlflowClient()
    if description:
        client.update_model_version(name, mv.version, description=description)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return str(mv.version)


def alias_version(name: str, alias: str) -> str | None:
    """The version holding ``alias``, or None."""
    mlflow = _mlflow()
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    _mlflow().MlflowClient().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: dict) -> None:
    client = _mlflow().MlflowClient()
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, _short(v))


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


def log_scoring_run(*, as_of: str, model: str, version: str, metrics: dict, files: dict, tags: dict) -> str:
    """One MLflow run per batch scoring: counts, ARR at risk, drift (PSI table as an artifact)."""
    with mlflow.start_run(run_name=f"score-{as_of}") as run:
        mlflow.set_tags({"kind": "scoring", "as_of": as_of, "model": model, "model_version": version,
                         **{k: _short(v) for k, v in tags.items()}})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for name, text in files.items():
            mlflow.log_text(text, name)
        return run.info.run_id


def load_pyfunc(name: str, alias: str = CHAMPION):
    """``models:/<name>@<alias>`` as an MLflow pyfunc (predict -> probabilities)."""
    mlflow = _mlflow()
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    except mlflow.exceptions.MlflowException as e:
        raise ChurnmlError(f"no model {name}@{alias} in the registry at {mlflow.get_tracking_uri()}: "
                           f"train one first (make train)") from e


def load_churnml_model(name: str, alias: str = CHAMPION):
    """The native :class:`ChurnmlModel` behind ``models:/<name>@<alias>``, with its version."""
    mlflow = _mlflow()
    from churnml.modeling.model import ChurnmlModel

    version = alias_version(name, alias)
    if version is None:
        raise ChurnmlError(f"no model {name}@{alias} in the registry at {mlflow.get_tracking_uri()}: "
                           f"train one first (make train)")
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    return ChurnmlModel.load(Path(local) / "artifacts" / "churnml_model"), version


def load_holdout_model(name: str, alias: str = CHAMPION):
    """The holdout model of the run behind ``<name>@<alias>``: the same recipe trained without
    the holdout cutoffs, which the promotion gate compares (None if the alias is unset).

    Runs that kept no ``holdout_model/`` artifact fall back to the registered model itself.
    """
    mlflow = _mlflow()
    from churnml.modeling.model import ChurnmlModel

    version = alias_version(name, alias)
    if version is None:
        return None
    run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="holdout_model")
    except (mlflow.exceptions.MlflowException, OSError):
        return load_churnml_model(name, alias)[0]
    return ChurnmlModel.load(local)


def _short(v) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 6000 else s[:5997] + "..."
