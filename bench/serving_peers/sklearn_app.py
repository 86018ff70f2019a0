"""scikit-learn behind raw ASGI: POST {"data": [[...]]} -> {"predictions": [...]}.

The model is the MLflow folder ``$PEER_MODEL``, loaded once with ``mlflow.sklearn``; requests
then call the estimator's ``predict`` directly.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import mlflow.sklearn
import numpy as np

from ._asgi import json_app

# Fitted on a DataFrame, called with arrays: sklearn would warn on every request.
warnings.filterwarnings("ignore", message="X does not have valid feature names")
_model = mlflow.sklearn.load_model(os.environ["PEER_MODEL"])


def score(body: dict[str, Any]) -> dict[str, Any]:
    return {"predictions": _model.predict(np.asarray(body["data"], dtype=np.float64)).tolist()}


app = json_app(score)
