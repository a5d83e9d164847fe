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
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            location = None
            if artifact_root is not None:
                location = Path(artifact_root).resolve().as_uri()
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


def log_artifacts(folder: Path) -> None:
    _mlflow().log_artifacts(str(folder))


class ChurnmlPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: ``predict`` returns calibrated churn and expansion probabilities."""

    def load_context(self, context):
        from churnml.io.artifacts import load_model

        self.model = load_model(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict_proba(pd.DataFrame(model_input))


def log_model(model, *, input_example: pd.DataFrame, pip_requirements: list[str], code_path: Path) -> str:
    """Log the model to the active run as a pyfunc (models from code, no pickle); returns its URI."""
    mlflow = _mlflow()
    from mlflow.models import infer_signature

    from churnml.io.artifacts import save_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model(model, Path(tmp) / "churnml_model")
        out = model.predict_proba(input_example)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("_pyfunc_entry.py")),
            artifacts={"model": str(folder)},
            signature=infer_signature(input_example, out), input_example=input_example,
            pip_requirements=pip_requirements, code_paths=[str(code_path)],
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
        src = (CodeDatasetSource({"database": source}) if source.startswith("postgresql://")
               else resolve_dataset_source(source))
    mlflow.log_input(MetaDataset(src, name=name, digest=digest), context=context)


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


def load_churnml_model(name: str, alias: str = CHAMPION):
    """The native :class:`ChurnmlModel` behind ``models:/<name>@<alias>``, with its version."""
    mlflow = _mlflow()
    from churnml.io.artifacts import load_model

    version = alias_version(name, alias)
    if version is None:
        raise ChurnmlError(f"no model {name}@{alias} in the registry at {mlflow.get_tracking_uri()}: "
                           f"train one first (churnml train, or make train)")
    try:
        local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    except (mlflow.exceptions.MlflowException, OSError) as e:
        raise ChurnmlError(f"cannot read model {name} v{version} from the MLflow store: "
                           f"{str(e).splitlines()[0]}") from None
    return load_model(Path(local) / "artifacts" / "churnml_model"), version


def load_holdout_model(name: str, alias: str = CHAMPION):
    """The holdout model of the run behind ``<name>@<alias>``: the same recipe trained without
    the holdout cutoffs, which the promotion gate compares (None if the alias is unset).

    Runs that kept no ``holdout_model/`` artifact fall back to the registered model itself.
    """
    mlflow = _mlflow()
    from churnml.io.artifacts import load_model

    version = alias_version(name, alias)
    if version is None:
        return None
    run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="holdout_model")
    except (mlflow.exceptions.MlflowException, OSError):
        return load_churnml_model(name, alias)[0]
    return load_model(local)


def load_fold_models(name: str, alias: str = CHAMPION) -> list:
    """The backtest folds' bundles of the run behind ``<name>@<alias>``, each trained and calibrated
    only on labels known before its ``first_test_cutoff`` (its settings say which); [] when the run
    kept none (models trained before churnml kept them)."""
    mlflow = _mlflow()
    from churnml.io.artifacts import load_model

    version = alias_version(name, alias)
    if version is None:
        return []
    run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="fold_models"))
    except (mlflow.exceptions.MlflowException, OSError):
        return []
    return [load_model(d) for d in sorted(local.iterdir()) if d.is_dir()]


def _short(v) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 6000 else s[:5997] + "..."
