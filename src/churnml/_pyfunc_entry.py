"""MLflow "models from code" entry: the file MLflow logs to rebuild the pyfunc (no pickle)."""

import mlflow.models

from churnml.serving import ChurnmlPyfunc

mlflow.models.set_model(ChurnmlPyfunc())
