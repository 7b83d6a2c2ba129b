"""modeldeck's scoring script for MLflow no-code deployments (a ``mlflow_model`` with no
``code_configuration``), answering as the script Azure ML generates for them does.

It runs in the deployment's own environment (built from the model's ``MLmodel`` /
``conda.yaml`` / ``requirements.txt``, plus ``mlflow-skinny``, ``inference-schema`` and
``pandas``), under modeldeck's scoring host or under ``azmlinfsrv``, unchanged.

The contract, as Azure's generated script (``mlflow_score_script.py``) has it:

* the model is ``$AZUREML_MODEL_DIR/$MLFLOW_MODEL_FOLDER`` (without ``MLFLOW_MODEL_FOLDER``:
  the folder in ``AZUREML_MODEL_DIR`` that holds an ``MLmodel``), loaded with
  ``mlflow.pyfunc.load_model``;
* ``run()`` is decorated with ``inference_schema``: the body is ``{"input_data": ...,
  "params": {...}}``; the parameter type comes from the model's input example, else its
  signature (columns: a pandas DataFrame in ``split`` orientation; tensors: numpy), else
  the value is passed through and read as: a list -> a numpy array; a mapping with
  ``columns``, ``index`` and ``data`` -> a DataFrame (``split``); another mapping -> named
  tensors;
* the answer is ``_get_jsonable_obj(prediction, pandas_orient="records")``: a list for an
  array, records for a DataFrame, sent as JSON by the host.

Transformers/LangChain/OpenAI flavours (Azure's LLM branches) are not handled specially.
"""

import inspect
import io
import json
import logging
import os

import numpy as np
from inference_schema.parameter_types.abstract_parameter_type import AbstractParameterType
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema
from mlflow.models import Model
from mlflow.pyfunc import load_model
from mlflow.pyfunc.scoring_server import _get_jsonable_obj

try:
    import pandas as pd
    from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
except ImportError:  # a tensor model may not need pandas
    pd = None  # type: ignore[assignment]

_logger = logging.getLogger(__name__)


class NoSampleParameterType(AbstractParameterType):
    """No example and no signature: the value as sent, an empty object in the swagger."""

    def __init__(self):
        super().__init__(None)

    def deserialize_input(self, input_data):
        return input_data

    def input_to_swagger(self):
        return {"type": "object", "example": {}}


def _model_path():
    """The model's real path: mlflow refuses artifacts that resolve outside the folder it was
    given, which a symlinked model folder (how local replicas get it) would."""
    base = os.environ.get("AZUREML_MODEL_DIR") or "."
    folder = os.environ.get("MLFLOW_MODEL_FOLDER")
    if folder:
        return os.path.realpath(os.path.join(base, folder))
    if os.path.isfile(os.path.join(base, "MLmodel")):
        return os.path.realpath(base)
    found = sorted(
        name for name in os.listdir(base) if os.path.isfile(os.path.join(base, name, "MLmodel"))
    )
    if not found:
        raise RuntimeError(f"no MLmodel file in {base} or in a folder in it")
    return os.path.realpath(os.path.join(base, found[0]))


def _batched(shape):
    """A tensor's shape with a batch dimension (-1) of 1, for a sample."""
    shape = list(shape or ())
    if shape and shape[0] == -1:
        shape[0] = 1
    return tuple(shape)


def _tensor_sample(schema):
    if not schema.has_input_names():
        spec = schema.inputs[0]
        return np.zeros(_batched(spec.shape), dtype=spec.type)
    return {s.name: np.zeros(_batched(s.shape), dtype=s.type) for s in schema.inputs}


def _columns_sample(schema):
    names = schema.input_names()
    frame = pd.DataFrame(columns=names)
    return frame.astype(dtype=dict(zip(names, schema.pandas_types())))


def _example_sample(meta, path):
    info = meta.saved_input_example_info
    if not info:
        return None
    with open(os.path.join(path, info["artifact_path"])) as f:
        loaded = json.load(f)
    if info.get("type") == "dataframe" and pd is not None:
        orient = "split" if "columns" in loaded else "values"
        return pd.read_json(io.StringIO(json.dumps(loaded)), orient=orient, dtype=False)
    if info.get("type") == "ndarray":
        inputs = loaded["inputs"]
        if isinstance(inputs, dict):
            return {k: np.asarray(v) for k, v in inputs.items()}
        return np.asarray(inputs)
    return loaded


def _param_types(meta, path):
    sample_in = sample_out = sample_params = None
    try:
        sample_in = _example_sample(meta, path)
    except Exception as exc:  # as Azure: fall back to the signature
        _logger.warning("cannot read the model's input example (%s); using its signature", exc)
    sig = meta.signature
    if sig is not None:
        if sample_in is None and sig.inputs:
            if sig.inputs.is_tensor_spec():
                sample_in = _tensor_sample(sig.inputs)
            elif pd is not None:
                sample_in = _columns_sample(sig.inputs)
        if sig.outputs:
            if sig.outputs.is_tensor_spec():
                sample_out = _tensor_sample(sig.outputs)
            elif pd is not None:
                sample_out = _columns_sample(sig.outputs)
        params = getattr(sig, "params", None)
        if params is not None:
            sample_params = {p.name: p.default for p in params.params}
    if isinstance(sample_in, np.ndarray):
        in_type = NumpyParameterType(sample_in, enforce_shape=False)
    elif pd is not None and isinstance(sample_in, pd.DataFrame):
        in_type = PandasParameterType(sample_in, enforce_shape=False, orient="split")
    elif isinstance(sample_in, dict) and sample_in:
        in_type = StandardPythonParameterType(
            {k: NumpyParameterType(v, enforce_shape=False) for k, v in sample_in.items()}
        )
    else:
        in_type = NoSampleParameterType()
    if isinstance(sample_out, np.ndarray):
        out_type = NumpyParameterType(sample_out, enforce_shape=False)
    elif isinstance(sample_out, dict):
        out_type = StandardPythonParameterType(
            {k: NumpyParameterType(v, enforce_shape=False) for k, v in sample_out.items()}
        )
    elif sample_out is not None:
        out_type = PandasParameterType(sample_out, enforce_shape=False, orient="records")
    else:
        out_type = NoSampleParameterType()
    if sample_params is None:
        params_type = NoSampleParameterType()
    else:
        params_type = StandardPythonParameterType(sample_params)
    return in_type, out_type, params_type


model_path = _model_path()
input_param, output_param, params_param = _param_types(Model.load(model_path), model_path)
model = load_model(model_path)
_takes_params = "params" in inspect.signature(model.predict).parameters
collectors = None


def init():
    """Azure's data collectors when ``azureml-ai-monitoring`` is installed."""
    global collectors
    try:
        from azureml.ai.monitoring import Collector

        collectors = (Collector(name="model_inputs"), Collector(name="model_outputs"))
    except Exception as exc:
        _logger.info("model data collection off (%s)", exc)


def _as_model_input(data):
    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, dict) and "input_data" in data:
        data = data["input_data"]
    if isinstance(data, list):
        return np.asarray(data)
    if isinstance(data, dict) and {"columns", "index", "data"} <= set(data):
        return pd.read_json(io.StringIO(json.dumps(data)), orient="split", dtype=False)
    return {name: np.asarray(value) for name, value in data.items()}


def _parsed(data):
    if isinstance(data, np.ndarray) or (pd is not None and isinstance(data, pd.DataFrame)):
        return data
    if isinstance(data, dict) and data and isinstance(next(iter(data.values())), np.ndarray):
        return data
    return _as_model_input(data)


@input_schema("input_data", input_param)
@input_schema("params", params_param, optional=True)
@output_schema(output_param)
def run(input_data, params=None):
    data = _parsed(input_data)
    context = None
    if collectors is not None:
        try:
            context = collectors[0].collect(data)
        except Exception as exc:
            _logger.error("cannot collect the model's input: %s", exc)
    result = model.predict(data, params=params) if _takes_params else model.predict(data)
    if collectors is not None and pd is not None:
        try:
            collectors[1].collect(pd.DataFrame(result), context)
        except Exception as exc:
            _logger.error("cannot collect the model's output: %s", exc)
    return _get_jsonable_obj(result, pandas_orient="records")
