"""MLflow's entry point for ``churnml-store:`` artifact locations (see :data:`churnml.tracking.STORE_SCHEME`).

MLflow loads its ``mlflow.artifact_repository`` entry points while ``import mlflow`` runs, which
:mod:`churnml.tracking` itself starts: this module imports the tracking module only when MLflow asks for a
repository, so neither import is left half done.
"""

from __future__ import annotations


def store_artifact_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
    """The artifact repository of a ``churnml-store:`` URI (under the tracking store's folder)."""
    from churnml.tracking import store_artifact_repository as make

    return make(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
