"""Scoring script for the 'blue' deployment: the Azure ML entry-script contract.

init() runs once when a replica starts; run(raw_data) once per request, with the
request body as a string. AZUREML_MODEL_DIR holds the registered model under its
own base name (here the folder 'model').
"""

import json
import logging
import os

logger = logging.getLogger(__name__)
model: dict = {}


def init() -> None:
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")
    with open(path) as f:
        model = json.load(f)
    logger.info("blue: model loaded from %s", path)


def run(raw_data: str) -> dict:
    rows = json.loads(raw_data)["data"]
    preds = [
        sum(c * x for c, x in zip(model["coef"], row)) + model["intercept"]
        for row in rows
    ]
    return {"predictions": preds, "version": "blue"}
