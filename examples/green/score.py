"""Scoring script for the 'green' deployment: the same model, rounded answers.

It prints one line per request so that its log shows traffic arriving.
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
    logger.info("green: model loaded, %d coefficients", len(model["coef"]))


def run(raw_data: str) -> dict:
    rows = json.loads(raw_data)["data"]
    print(f"green: scoring {len(rows)} row(s)", flush=True)
    preds = [
        round(sum(c * x for c, x in zip(model["coef"], row)) + model["intercept"], 2)
        for row in rows
    ]
    return {"predictions": preds, "version": "green"}
