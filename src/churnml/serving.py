"""The registered model as MLflow serves it: a pyfunc whose ``predict`` is the model's ``predict_proba``.

MLflow rebuilds it from code (``churnml/_pyfunc_entry.py``, no pickle) and the model files
logged beside it (:func:`churnml.io.artifacts.save_model`). Serving, the promotion gate and
batch scoring all read a model's probabilities through
:meth:`churnml.modeling.model.ChurnmlModel.predict_proba`, so a served model answers the
question its card names (``churn_probability`` within its ``horizon_days``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.pyfunc import PythonModel

from churnml.io.artifacts import read_model_state
from churnml.modeling.model import ChurnmlModel

ENTRY = Path(__file__).with_name("_pyfunc_entry.py")


def load_model(folder: str | Path) -> ChurnmlModel:
    """A model written by :func:`churnml.io.artifacts.save_model`."""
    return ChurnmlModel.from_state(*read_model_state(folder))


class ChurnmlPyfunc(PythonModel):
    """MLflow pyfunc wrapper: ``predict`` returns every probability of :meth:`ChurnmlModel.predict_proba`."""

    def load_context(self, context):
        self.model = load_model(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict_proba(pd.DataFrame(model_input))
