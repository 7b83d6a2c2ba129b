"""modeldeck's scoring host: Azure ML's entry-script contract, served as ``azmlinfsrv`` serves it.

One file, standard library only, Python 3.9+: it runs INSIDE a deployment's own Python
environment (``<env python> host.py ...``), so it imports nothing of modeldeck's and,
at module level, nothing outside the standard library. What the user's script needs
(``inference_schema``, ``flask``/``werkzeug`` for ``@rawhttp``) is imported only when
the script uses it. Local replicas and Kubernetes pods both run this file.

Why one file of 2,000 lines: it is shipped as a single file (a pod's ConfigMap holds
it, the supervisor runs it by path) into environments that do not have modeldeck, and
it must import nothing at start but the standard library. Its sections (HTTP framing,
the Azure request/response shims, the swagger generator, the pod server) are marked
below with ``# ----`` rulers.

The contract, as ``azureml-inference-server-http`` (``azmlinfsrv``) 1.x answers it:

* the scoring script is loaded from its folder (the working directory, and on
  ``sys.path``); ``AZUREML_MODEL_DIR`` and ``AZUREML_ENTRY_SCRIPT`` are set; ``init()`` runs
  once before the socket is listened on (a probe is refused until the model is loaded);
* ``run()`` gets the body as a ``str`` (undecorated), the JSON body's keys as arguments
  (``inference_schema``'s ``@input_schema``), or the request object (``@rawhttp``, with
  ``azureml.contrib.services.aml_request``/``aml_response``: Azure's own modules when the
  environment has ``azureml-inference-server-http``, else faithful shims); a
  ``request_headers`` parameter gets the headers;
* what ``run()`` returns is sent as JSON (``json.dumps``: a ``str`` becomes a JSON
  string, ``None`` becomes ``{}``), an ``AMLResponse``/``flask.Response`` as it is;
  errors are ``{"message": ...}`` with azmlinfsrv's status codes and texts;
* ``GET /`` answers ``Healthy``; ``GET /score`` calls ``run()`` with the query as JSON;
  ``GET /swagger.json[?version=2|3|3.1]`` serves ``swagger2.json``/``swagger3.json`` next
  to the script (app root) or one generated from the ``inference_schema`` decorators;
* ``x-request-id``, ``x-ms-request-id`` and ``x-ms-client-request-id`` are echoed (or
  made up) as azmlinfsrv does; ``x-ms-run-function-failed`` and ``x-ms-run-fn-exec-ms``.

Transport: HTTP/1.1 with keep-alive on asyncio; ``run()`` calls in worker threads, at
most ``--max-concurrency`` at once, so ``GET /`` is answered meanwhile.

Local replica (what the supervisor starts)::

    python host.py --code-dir D --scoring-script score.py --model-dir M --socket PATH \\
        [--max-concurrency 1] [--runtime default|azmlinfsrv] [--status-fd N] [--parent-pid PID]

The socket is 0600 (in the supervisor's 0700 directory): a replica has no auth of its
own, the gateway checks the keys. ``--host``/``--port`` (TCP) are for running one by
hand. ``--status-fd``: a pipe to the supervisor, one JSON object per line,
``{"t": "listening"}``, ``{"t": "ready"}``, ``{"t": "failed", "error": ...}``,
``{"t": "log", "text": ...}``. The host exits when its parent dies.
``--runtime azmlinfsrv`` execs Azure's server on the same socket (systemd socket
activation: fd 3, ``LISTEN_FDS=1``), so it binds nothing else.

Kubernetes pod (no arguments; configured by the environment, see ``pod_main``): TCP on
``PORT`` (5001), keys checked here (``MODELDECK_KEYS_DIR``, the mounted Secret, re-read
when it changes, compared with ``hmac.compare_digest``; ``aml_token`` takes HS256 JWTs:
this file is their one home, minting included, as a pod gets nothing else of modeldeck),
``GET /metrics`` in Prometheus text, ``.../score`` under any prefix, 429 when no worker
frees up within ``MODELDECK_MAX_QUEUE_WAIT_MS``. ``MODELDECK_RUNTIME=azmlinfsrv``:
azmlinfsrv runs on ``127.0.0.1:PORT+1`` behind this host (auth and metrics stay here).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import http
import inspect
import io
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
import types
from concurrent.futures import ThreadPoolExecutor
from random import Random
from typing import Any, Callable, Dict, List, Optional, Tuple

AZMLINFSRV_PACKAGE = "azureml-inference-server-http"
EXIT_INIT_FAILED = 3
EXIT_BAD_SCRIPT = 4
EXIT_RUNTIME_MISSING = 5
EXIT_BIND_FAILED = 6

HEADER_LIMIT = 100  # azmlinfsrv's limit on request-id headers
#: The endpoint's credential when the request comes through the Kubernetes API server's
#: service proxy, which drops ``Authorization`` once it has authenticated the caller
#: (``online-endpoint invoke --via api``); read only when Authorization is absent.
PROXY_AUTH_HEADER = "x-modeldeck-authorization"
MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 30
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUN_FAILED_TEXT = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_TEXT = "An unexpected internal error occurred. Check the logs for more info."
NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
NOT_ALLOWED_TEXT = "The method is not allowed for the requested URL."
ALL_SCHEMA_VERSIONS = ["2.0", "3.0", "3.1"]  # inference_schema's, for undecorated run()

_log = logging.getLogger("azmlinfsrv")
_random = Random()  # request ids need to be unique, not secret: no syscall per request


def new_request_id() -> str:
    """A request id as azmlinfsrv makes one (a uuid4; the gateway makes its own so too),
    spelled without building a ``uuid.UUID`` (a third of the time): version 4, RFC 4122
    variant."""
    h = "%032x" % (_random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID4_CLEAR = 0xFFFFFFFFFFFF0FFF3FFFFFFFFFFFFFFF  # the version nibble, the variant's 2 bits
_UUID4_SET = 0x00000000000040008000000000000000  # version 4, variant 10


Headers = List[Tuple[str, str]]


class ScriptError(Exception):
    """The scoring script cannot be served (missing, no init()/run(), a bad signature)."""


class BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- responses


class Reply:
    """A response: status, headers (Content-Type first), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers) -> None:
        self.status = status
        self.body = body
        self.headers = headers


def json_reply(status: int, value: Any, run_failed: bool = False) -> Reply:
    """azmlinfsrv's ``AMLResponse(value, status, json_str=True)``."""
    body = json.dumps(value).encode("utf-8")
    return Reply(
        status,
        body,
        [("Content-Type", "application/json"), ("x-ms-run-function-failed", str(run_failed))],
    )


def error_reply(status: int, message: str, run_failed: bool = False) -> Reply:
    return json_reply(status, {"message": message}, run_failed)


# --------------------------------------------------------------------------- Azure's modules


def _werkzeug() -> Any:
    try:
        import werkzeug.wrappers

        return werkzeug.wrappers
    except ImportError:
        return None


def install_aml_modules() -> types.ModuleType:
    """``azureml.contrib.services.aml_request``/``aml_response`` for the script to import.

    Azure's own (``azureml_inference_server_http.api``) when the environment has them,
    registered the way azmlinfsrv 1.x registers them; otherwise shims: on werkzeug's
    ``Request``/``Response`` when werkzeug is there, else on the standard library.
    Returns the ``aml_request`` module (its ``_rawHttpRequested`` says ``@rawhttp``).
    """
    try:
        import azureml_inference_server_http.api.aml_request as request_mod
        import azureml_inference_server_http.api.aml_response as response_mod
    except ImportError:
        request_mod, response_mod = _shim_modules()
    sys.modules["azureml.contrib.services.aml_request"] = request_mod
    sys.modules["azureml.contrib.services.aml_response"] = response_mod
    return request_mod


_AML_MODULES = ("azureml.contrib.services.aml_request", "azureml.contrib.services.aml_response")
_AML_PARENTS = ("azureml", "azureml.contrib", "azureml.contrib.services")


class _AmlModules:
    """A meta path finder: :func:`install_aml_modules` on the first import of either module.

    Importing Azure's own modules costs about half a second (they import flask); only a
    script that imports them pays it. At the front of ``sys.meta_path`` for the two modules;
    a second instance at the end (``parents=True``) makes their parent packages when no
    installed distribution has them.
    """

    def __init__(self, parents: bool = False) -> None:
        self.names = _AML_PARENTS if parents else _AML_MODULES
        self._specs: Dict[str, Any] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.names:
            return None
        import importlib.machinery

        # No import here: a module that is in sys.modules when find_spec returns is loaded
        # again from its own __spec__ (a second copy, whose @rawhttp flag nobody reads).
        return importlib.machinery.ModuleSpec(name, self, is_package=self.names is _AML_PARENTS)

    def create_module(self, spec: Any) -> Optional[types.ModuleType]:
        if spec.name not in _AML_MODULES:
            return None  # a parent package: an empty one
        if spec.name not in sys.modules:
            install_aml_modules()  # both modules, Azure's or the shims
        module = sys.modules[spec.name]
        self._specs[spec.name] = getattr(module, "__spec__", None)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        name = getattr(getattr(module, "__spec__", None), "name", None)
        if name in self._specs:  # importlib set our spec on Azure's module: give its own back
            module.__spec__ = self._specs.pop(name)


def lazy_aml_modules() -> None:
    """Make ``azureml.contrib.services.aml_request``/``aml_response`` importable, loaded
    only when imported (see :class:`_AmlModules`)."""
    if not any(isinstance(f, _AmlModules) for f in sys.meta_path):
        sys.meta_path.insert(0, _AmlModules())
        sys.meta_path.append(_AmlModules(parents=True))


def _shim_modules() -> Tuple[types.ModuleType, types.ModuleType]:
    request_mod = types.ModuleType("azureml.contrib.services.aml_request")
    response_mod = types.ModuleType("azureml.contrib.services.aml_response")
    request_mod._rawHttpRequested = False  # type: ignore[attr-defined]

    def rawhttp(func: Callable) -> Callable:
        """Attribute applied to run() function in score.py to request raw HTTP access"""
        request_mod._rawHttpRequested = True  # type: ignore[attr-defined]
        return func

    wz = _werkzeug()
    base_request = wz.Request if wz is not None else StdRequest
    base_response = wz.Response if wz is not None else StdResponse

    class AMLRequest(base_request):  # type: ignore[misc,valid-type]
        """AMLRequest class used by score.py that needs raw HTTP access"""

    class AMLResponse(base_response):  # type: ignore[misc,valid-type]
        """AMLResponse class used by score.py that needs raw HTTP access"""

        def __init__(
            self,
            message: Any,
            status_code: int,
            response_headers: Optional[Dict[str, str]] = None,
            json_str: bool = False,
            run_function_failed: bool = False,
        ) -> None:
            response_headers = response_headers or {}
            if message is not None:
                if json_str:
                    super().__init__(
                        json.dumps(message), status=status_code, mimetype="application/json"
                    )
                else:
                    super().__init__(message, status=status_code)
                    if "Content-Type" in response_headers:
                        self.headers.remove("Content-Type")
            else:
                super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
            self.headers["x-ms-run-function-failed"] = str(run_function_failed)
            for header, value in response_headers.items():
                for v in value.split(","):
                    self.headers.add_header(header, v.strip())

    request_mod.rawhttp = rawhttp  # type: ignore[attr-defined]
    request_mod.AMLRequest = AMLRequest  # type: ignore[attr-defined]
    response_mod.AMLResponse = AMLResponse  # type: ignore[attr-defined]
    return request_mod, response_mod


class _MultiDict(dict):
    """werkzeug's MultiDict, as far as scoring scripts use it: the first value, or all."""

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, key)[0]

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:
        if key not in self:
            return default
        value = self[key]
        return type(value) if type is not None else value

    def getlist(self, key: str) -> List[Any]:
        return list(dict.get(self, key, []))

    def add(self, key: str, value: Any) -> None:
        self.setdefault(key, []).append(value)

    def items(self, multi: bool = False) -> Any:  # type: ignore[override]
        for key, values in dict.items(self):
            if multi:
                for v in values:
                    yield key, v
            else:
                yield key, values[0]

    def values(self) -> Any:  # type: ignore[override]
        return [v[0] for v in dict.values(self)]


class _Headers:
    """Case-insensitive headers, in order (werkzeug's Headers, as far as scripts use it)."""

    def __init__(self, items: Optional[Headers] = None) -> None:
        self._items: Headers = list(items or [])

    def get(self, name: str, default: Any = None) -> Any:
        low = name.lower()
        for k, v in self._items:
            if k.lower() == low:
                return v
        return default

    def getlist(self, name: str) -> List[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __setitem__(self, name: str, value: Any) -> None:
        self.remove(name)
        self._items.append((name, str(value)))

    def remove(self, name: str) -> None:
        low = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]

    __delitem__ = remove

    def add(self, name: str, value: Any) -> None:
        self._items.append((name, str(value)))

    add_header = add

    def items(self) -> Headers:
        return list(self._items)

    def keys(self) -> List[str]:
        return [k for k, _ in self._items]

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _FileStorage:
    def __init__(self, name: str, filename: Optional[str], content_type: str, data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.mimetype = content_type.split(";")[0].strip().lower()
        self.stream = io.BytesIO(data)

    def read(self, *args: Any) -> bytes:
        return self.stream.read(*args)

    def save(self, dst: Any) -> None:
        if isinstance(dst, (str, os.PathLike)):
            with open(dst, "wb") as f:
                f.write(self.stream.getvalue())
        else:
            dst.write(self.stream.getvalue())


def _mimetype(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


class StdRequest:
    """The request ``@rawhttp`` scripts get when the environment has no werkzeug."""

    def __init__(self, environ: Dict[str, Any]) -> None:
        from urllib.parse import parse_qsl

        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ["PATH_INFO"]
        self.query_string = environ["QUERY_STRING"].encode("latin-1")
        self.full_path = self.path + "?" + environ["QUERY_STRING"]
        self.headers = _Headers(environ["modeldeck.headers"])
        self.args = _MultiDict()
        for k, v in parse_qsl(environ["QUERY_STRING"], keep_blank_values=True):
            self.args.add(k, v)
        self.data = environ["modeldeck.body"]
        self.content_type = self.headers.get("Content-Type")
        self.mimetype = _mimetype(self.content_type or "")
        self.content_length = len(self.data)
        self.remote_addr = environ.get("REMOTE_ADDR")
        self._form: Optional[_MultiDict] = None
        self._files: Optional[_MultiDict] = None

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    @property
    def is_json(self) -> bool:
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("Content-Type is not application/json")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()

    def _parse_form(self) -> None:
        self._form, self._files = _MultiDict(), _MultiDict()
        if self.mimetype == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            for k, v in parse_qsl(self.data.decode("utf-8", "replace"), keep_blank_values=True):
                self._form.add(k, v)
        elif self.mimetype == "multipart/form-data":
            from email.parser import BytesParser
            from email.policy import HTTP

            head = f"Content-Type: {self.content_type}\r\n\r\n".encode("latin-1")
            message = BytesParser(policy=HTTP).parsebytes(head + self.data)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name is None:
                    continue
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    ctype = part.get("Content-Type", "application/octet-stream")
                    self._files.add(name, _FileStorage(name, filename, ctype, payload))
                else:
                    charset = part.get_content_charset() or "utf-8"
                    self._form.add(name, payload.decode(charset, "replace"))

    def _parsed_form(self) -> Tuple[_MultiDict, _MultiDict]:
        """(form, files), the body parsed on first use."""
        if self._form is None or self._files is None:
            self._parse_form()
        assert self._form is not None and self._files is not None
        return self._form, self._files

    @property
    def form(self) -> _MultiDict:
        return self._parsed_form()[0]

    @property
    def files(self) -> _MultiDict:
        return self._parsed_form()[1]

    @property
    def values(self) -> _MultiDict:
        merged = _MultiDict()
        for source in (self.args, self.form):
            for k, v in source.items(multi=True):
                merged.add(k, v)
        return merged


class StdResponse:
    """werkzeug's Response, as far as scoring scripts use it."""

    default_mimetype = "text/html"

    def __init__(
        self,
        response: Any = None,
        status: Optional[int] = None,
        headers: Any = None,
        mimetype: Optional[str] = None,
        content_type: Optional[str] = None,
    ) -> None:
        self.headers = _Headers(list(headers.items()) if isinstance(headers, dict) else headers)
        self.status_code = int(status or 200)
        if content_type is None:
            content_type = _with_charset(mimetype or self.default_mimetype)
        if "Content-Type" not in self.headers:
            self.headers["Content-Type"] = content_type
        self.set_data(response if response is not None else b"")

    def set_data(self, value: Any) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, (bytes, bytearray)):
            value = b"".join(v.encode("utf-8") if isinstance(v, str) else v for v in value)
        self._data = bytes(value)

    def get_data(self, as_text: bool = False) -> Any:
        return self._data.decode("utf-8") if as_text else self._data

    data = property(get_data, set_data)

    @property
    def mimetype(self) -> str:
        return _mimetype(self.headers.get("Content-Type", ""))

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        self.headers["Content-Type"] = _with_charset(value)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["Content-Type"] = value

    @property
    def status(self) -> str:
        try:
            return f"{self.status_code} {http.HTTPStatus(self.status_code).phrase.upper()}"
        except ValueError:
            return f"{self.status_code} UNKNOWN"


def _with_charset(mimetype: str) -> str:
    """werkzeug's ``get_content_type``: text types (and a few others) get ``charset=utf-8``."""
    if "charset" in mimetype:
        return mimetype
    if (
        mimetype.startswith("text/")
        or mimetype in ("application/ecmascript", "application/javascript", "application/sql")
        or mimetype
        in ("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity")
        or (mimetype.startswith("application/") and mimetype.endswith("+xml"))
    ):
        return mimetype + "; charset=utf-8"
    return mimetype


def _environ(
    method: str, path: str, query: str, headers: Headers, body: bytes, peer: str
) -> Dict[str, Any]:
    env: Dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": peer,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "modeldeck.headers": headers,
        "modeldeck.body": body,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            env["CONTENT_TYPE"] = value
        elif key == "CONTENT_LENGTH":
            continue
        elif key == "HOST":
            env["HTTP_HOST"] = value
            env["SERVER_NAME"] = value.split(":")[0]
        else:
            key = "HTTP_" + key
            env[key] = env[key] + "," + value if key in env else value
    return env


# --------------------------------------------------------------------------- the script


def _print_script_traceback(exc: BaseException, script: str) -> None:
    """The traceback from the scoring script's first frame on (not this host's)."""
    text = _script_traceback(exc, script)
    sys.stderr.write(text)
    sys.stderr.flush()


def _script_traceback(exc: BaseException, script: str) -> str:
    tb = exc.__traceback__
    frame = tb
    while frame is not None and frame.tb_frame.f_code.co_filename != script:
        frame = frame.tb_next
    return "".join(traceback.format_exception(type(exc), exc, frame or tb))


class Script:
    """The user's scoring script, loaded and analysed as azmlinfsrv's ``UserScript`` does."""

    def __init__(self, path: str, app_root: str) -> None:
        self.path = path
        self.app_root = app_root
        self.module: Any = None
        self.run: Callable = None  # type: ignore[assignment]
        self.wants_headers = False
        self.parser = "json"  # "json" (a str), "object" (inference_schema), "raw" (@rawhttp)
        self.param = ""
        self.params: List[inspect.Parameter] = []
        self.aml_request: Any = None
        self.request_class: Any = None
        self.response_classes: Tuple[type, ...] = ()
        self.swagger: Dict[str, Any] = {}
        self.swagger_versions: List[str] = []

    def load(self) -> None:
        """Import the script and check its functions. ``ScriptError`` for a bad script; the
        script's own exception (``BaseException``) when its import fails."""
        import importlib.util

        if not os.path.isfile(self.path):
            raise ScriptError(f"scoring script {self.path} does not exist")
        lazy_aml_modules()
        spec = importlib.util.spec_from_file_location("entry_module", self.path)
        if spec is None or spec.loader is None:
            raise ScriptError(f"scoring script {self.path} cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module = module
        missing = [n for n in ("init", "run") if not callable(getattr(module, n, None))]
        if missing:
            names = " and ".join(f"{n}()" for n in missing)
            raise ScriptError(
                f"scoring script {self.path} has no {names} function: the Azure ML entry-script "
                "contract needs init() (run once at start) and run(raw_data) (run per request)"
            )
        driver = getattr(module, "driver_module", None)
        if isinstance(driver, types.ModuleType) and hasattr(driver, "run"):
            self.run = driver.run
        else:
            self.run = module.run
        self._analyze_run()

    def _analyze_run(self) -> None:
        params = list(inspect.signature(self.run).parameters.values())
        allowed = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if any(p.kind not in allowed for p in params):
            raise ScriptError("run() cannot accept positional-only arguments, *args, or **kwargs.")
        self.wants_headers = any(p.name == "request_headers" for p in params)
        params = [p for p in params if p.name != "request_headers"]
        if not params:
            if self.wants_headers:
                raise ScriptError('run() needs to accept an argument other than "request_headers".')
            raise ScriptError("run() needs to accept an argument for input data.")
        self.aml_request = sys.modules.get(_AML_MODULES[0])  # None: the script never imported it
        raw = bool(getattr(self.aml_request, "_rawHttpRequested", False))
        decorated = self._schema_decorated()
        if raw and decorated:
            raise ScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
        self.param = params[0].name
        self.params = params
        if raw:
            self.parser = "raw"
            self._request_classes()
        elif decorated:
            self.parser = "object"
        else:
            self.parser = "json"

    def _schema_decorated(self) -> bool:
        if "inference_schema" not in sys.modules:  # the script did not import it
            return False
        from inference_schema.schema_util import is_schema_decorated

        return bool(is_schema_decorated(self.run))

    def _request_classes(self) -> None:
        """What ``@rawhttp``'s run() gets and may return: flask's classes as azmlinfsrv uses
        them when it is installed, werkzeug's, or the standard-library shims."""
        response_mod = sys.modules["azureml.contrib.services.aml_response"]
        aml_response = response_mod.AMLResponse
        try:
            import flask

            self.request_class = flask.Request
            self.response_classes = (flask.Response, aml_response)
            return
        except ImportError:
            pass
        wz = _werkzeug()
        if wz is not None:
            self.request_class = wz.Request
            self.response_classes = (wz.Response, aml_response)
        else:
            self.request_class = StdRequest
            self.response_classes = (StdResponse, aml_response)

    def init(self) -> None:
        self.module.init()
        self._prepare_swagger()

    # ------------------------------------------------------------------ swagger

    def _prepare_swagger(self) -> None:
        """The specs by version alias, as azmlinfsrv's ``Swagger`` prepares them after init()."""
        builders = (("2", ("2", "2.0")), ("3", ("3", "3.0")), ("3.1", ("3.1",)))
        for version, aliases in builders:
            spec = self._user_swagger(version)
            if spec is None:
                spec = self._generated_swagger(version, aliases)
            if spec is not None:
                for alias in aliases:
                    self.swagger[alias] = spec
                self.swagger_versions.append(version)
        self.swagger_versions.sort()

    def _read_json(self, name: str) -> Any:
        path = os.path.join(self.app_root, name)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _user_swagger(self, version: str) -> Any:
        if version == "2":
            found = self._read_json("swagger.json")
            if found:
                return found
        return self._read_json(f"swagger{version}.json")

    def _generated_swagger(self, version: str, aliases: Tuple[str, ...]) -> Any:
        decorated = self._schema_decorated()
        if "inference_schema" in sys.modules:
            from inference_schema.schema_util import get_supported_versions

            supported = get_supported_versions(self.run)
        else:
            supported = ALL_SCHEMA_VERSIONS
        if all(alias not in supported for alias in aliases):
            return None
        if decorated:
            from inference_schema.schema_util import get_input_schema, get_output_schema

            input_schema = get_input_schema(self.run)
            output_schema = get_output_schema(self.run)
        else:
            input_schema = output_schema = {"type": "object", "example": {}}
        name = os.environ.get("SERVICE_NAME", "ML service")
        service_version = os.environ.get("SERVICE_VERSION", "1.0")
        prefix = os.environ.get("SERVICE_PATH_PREFIX", "")
        prefix = f"/{prefix.strip('/')}" if prefix else ""
        template = swagger_template(version, name, service_version, prefix)
        if version == "2":
            template["definitions"]["ServiceInput"] = input_schema
            template["definitions"]["ServiceOutput"] = output_schema
        else:
            template["components"]["schemas"]["ServiceInput"] = input_schema
            template["components"]["schemas"]["ServiceOutput"] = output_schema
            if version == "3.1":
                template["openapi"] = "3.1.0"
        return template

    def swagger_reply(self, query: str) -> Reply:
        from urllib.parse import parse_qs

        version = (parse_qs(query).get("version") or ["2"])[0]
        valid = {"2", "2.0", "3", "3.0", "3.1"}
        listed = ", ".join(sorted(self.swagger_versions))
        if version not in valid:
            message = f"Swagger version [{version}] is not valid. Supported versions: [{listed}]."
            return error_reply(404, message)
        spec = self.swagger.get(version)
        if not spec:
            return error_reply(
                404,
                f"Swagger version [{version}] is not supported for the scoring script. "
                f"Supported swagger versions: [{listed}].",
            )
        return json_reply(200, spec)

    # ------------------------------------------------------------------ scoring

    def arguments(
        self, method: str, query: str, headers: Headers, body: bytes, peer: str, path: str
    ) -> Dict[str, Any]:
        """run()'s keyword arguments from the request (azmlinfsrv's input parsers)."""
        if self.parser == "raw":
            environ = _environ(method, path, query, headers, body, peer)
            return {self.param: self.request_class(environ)}
        if method == "GET":
            parsed = _query_as_json(query)
            if self.parser == "json":
                return {self.param: json.dumps(parsed)}
            return self._extract(parsed)
        if method != "POST":
            raise BadInput(405, "Method not allowed")
        if self.parser == "json":
            try:
                return {self.param: str(body, "utf-8")}
            except UnicodeDecodeError as exc:
                raise BadInput(400, f"Input cannot be decoded as UTF-8: {exc}") from None
        ctype = _mimetype(_header(headers, "content-type") or "")
        if not (
            ctype == "application/json"
            or (ctype.startswith("application/") and ctype.endswith("+json"))
        ):
            raise BadInput(415, "Expects Content-Type to be application/json")
        try:
            value = json.loads(body)
        except ValueError as exc:
            if body:
                raise BadInput(400, f"POST body could not be decoded as JSON: {exc}") from None
            raise BadInput(400, "POST body is empty. Expecting a JSON dictionary.") from None
        if not isinstance(value, dict):
            raise BadInput(400, "POST body should be a JSON dictionary.")
        return self._extract(value)

    def _extract(self, body: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for p in self.params:
            value = body.get(p.name, p.default)
            if value is inspect.Parameter.empty:
                raise BadInput(400, f"A value is not provided for the {p.name!r} parameter.")
            out[p.name] = value
        return out

    def call(self, kwargs: Dict[str, Any], headers: Headers) -> Any:
        if self.wants_headers:
            kwargs["request_headers"] = _headers_dict(headers)
        return self.run(**kwargs)

    def encode(self, result: Any, elapsed_ms: float) -> Reply:
        """run()'s result as azmlinfsrv sends it."""
        if self.response_classes and isinstance(result, self.response_classes):
            reply = _from_response(result)
            if reply.status >= 500:
                _set_header(reply.headers, "x-ms-run-function-failed", "True")
        else:
            try:
                reply = json_reply(200, {} if result is None else result)  # AMLResponse(None)
            except (TypeError, ValueError):
                _log.error(
                    "Encountered Exception: %s(run() returned %s, which azmlinfsrv too answers "
                    "with a 500: return what json.dumps takes, or from a @rawhttp run() an "
                    "AMLResponse)",
                    traceback.format_exc(),
                    type(result).__name__,
                )
                return error_reply(500, INTERNAL_TEXT)
        reply.headers.append(("x-ms-run-fn-exec-ms", f"{elapsed_ms:.3f}"))
        return reply


def _from_response(response: Any) -> Reply:
    """An ``AMLResponse``/``flask.Response`` (werkzeug or shim) as a Reply."""
    body = response.get_data()
    headers = [(k, str(v)) for k, v in response.headers.items() if k.lower() != "content-length"]
    return Reply(int(response.status_code), body, headers)


def _set_header(headers: Headers, name: str, value: str) -> None:
    low = name.lower()
    for i, (k, _) in enumerate(headers):
        if k.lower() == low:
            headers[i] = (k, value)
            return
    headers.append((name, value))


def _header(headers: Headers, name: str) -> Optional[str]:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _credential(headers: Headers) -> str:
    """The request's ``Authorization``, else what the API server's proxy let through."""
    return _header(headers, "authorization") or _header(headers, PROXY_AUTH_HEADER) or ""


def _headers_dict(headers: Headers) -> Dict[str, str]:
    """``dict(flask.request.headers)``: werkzeug's capitalised names, repeated ones joined."""
    out: Dict[str, str] = {}
    for k, v in headers:
        name = "-".join(part.capitalize() for part in k.split("-"))
        out[name] = out[name] + "," + v if name in out else v
    return out


def _query_as_json(query: str) -> Dict[str, Any]:
    from urllib.parse import parse_qsl

    values: Dict[str, List[str]] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        values.setdefault(k, []).append(v)

    def parse(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    return {k: parse(v[0]) if len(v) == 1 else [parse(x) for x in v] for k, v in values.items()}


def swagger_template(version: str, name: str, service_version: str, prefix: str) -> Dict[str, Any]:
    """azmlinfsrv's swagger templates (2.0 and 3.0.3) with the service's values filled in."""
    info = {
        "title": name,
        "description": f"API specification for the Azure Machine Learning service {name}",
        "version": service_version,
    }
    error = {"type": "object", "properties": {"message": {"type": "string"}}}
    service_input = {
        "type": "object",
        "properties": {"param": {"type": "object", "additionalProperties": {"type": "object"}}},
    }
    service_output = {"type": "object", "additionalProperties": {"type": "object"}}
    bearer = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    }
    failed = "The service failed to execute due to an error."
    healthy = (
        "If service is up and running, this response will be returned with the content 'Healthy'"
    )
    health_desc = "Simple health check endpoint to ensure the service is up at any given point."
    score_desc = "Run web service's model and get the prediction output"
    payload_desc = "The input payload for executing the real-time machine learning service."
    ok_desc = (
        "The service processed the input correctly and provided a result prediction, if applicable."
    )
    if version == "2":
        err_ref = {"description": failed, "schema": {"$ref": "#/definitions/ErrorResponse"}}
        return {
            "swagger": "2.0",
            "info": info,
            "schemes": ["https"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": bearer},
            "paths": {
                f"{prefix}/": {
                    "get": {
                        "operationId": "ServiceHealthCheck",
                        "description": health_desc,
                        "responses": {
                            "200": {
                                "description": healthy,
                                "schema": {"type": "string"},
                                "examples": {"application/json": "Healthy"},
                            },
                            "default": dict(err_ref),
                        },
                    }
                },
                f"{prefix}/score": {
                    "post": {
                        "operationId": "RunMLService",
                        "description": score_desc,
                        "security": [{"Bearer": []}],
                        "parameters": [
                            {
                                "name": "serviceInputPayload",
                                "in": "body",
                                "description": payload_desc,
                                "schema": {"$ref": "#/definitions/ServiceInput"},
                            }
                        ],
                        "responses": {
                            "200": {
                                "description": ok_desc,
                                "schema": {"$ref": "#/definitions/ServiceOutput"},
                            },
                            "default": dict(err_ref),
                        },
                    }
                },
                f"{prefix}/swagger.json": {
                    "get": {
                        "operationId": "GetSwaggerSpec",
                        "description": "Get the Swagger specification.",
                        "parameters": [
                            {
                                "name": "version",
                                "in": "query",
                                "required": False,
                                "type": "integer",
                                "enum": [2, 3],
                            }
                        ],
                        "responses": {
                            "200": {
                                "description": "The Swagger specification.",
                                "schema": {"type": "string"},
                            },
                            "default": dict(err_ref),
                        },
                    }
                },
            },
            "definitions": {
                "ServiceInput": service_input,
                "ServiceOutput": service_output,
                "ErrorResponse": error,
            },
        }

    def err3() -> Dict[str, Any]:
        return {
            "description": failed,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }

    return {
        "openapi": "3.0.3",
        "info": info,
        "security": [{"Bearer": []}],
        "paths": {
            f"{prefix}/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": health_desc,
                    "responses": {
                        "200": {
                            "description": healthy,
                            "content": {
                                "text/plain": {"schema": {"type": "string", "example": "Healthy"}}
                            },
                        },
                        "default": err3(),
                    },
                }
            },
            f"{prefix}/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": score_desc,
                    "security": [{"Bearer": []}],
                    "requestBody": {
                        "description": payload_desc,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ServiceInput"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": ok_desc,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ServiceOutput"}
                                }
                            },
                        },
                        "default": err3(),
                    },
                }
            },
            f"{prefix}/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "parameters": [
                        {
                            "name": "version",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "enum": [2, 3]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "default": err3(),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ServiceInput": service_input,
                "ServiceOutput": service_output,
                "ErrorResponse": error,
            },
            "securitySchemes": {"Bearer": bearer},
        },
    }


# --------------------------------------------------------------------------- auth and metrics (pods)


class Keys:
    """The endpoint's keys from the mounted Secret, re-read when a file changes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._stamp: tuple = ()
        self.mode = "key"
        self.primary = ""
        self.secondary = ""
        self.token_secret = ""

    def _read(self, name: str) -> str:
        try:
            with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return ""

    def refresh(self) -> None:
        stamp = []
        for name in ("auth-mode", "primary-key", "secondary-key", "token-secret"):
            try:
                st = os.stat(os.path.join(self.directory, name))
                stamp.append((name, st.st_mtime_ns, st.st_ino))
            except OSError:
                stamp.append((name, 0, 0))
        if tuple(stamp) == self._stamp:
            return
        self._stamp = tuple(stamp)
        self.mode = self._read("auth-mode") or "key"
        self.primary = self._read("primary-key")
        self.secondary = self._read("secondary-key")
        self.token_secret = self._read("token-secret")

    def check(self, header: str, endpoint: str) -> Optional[str]:
        """None when the request may pass, else why not (no secret in the text)."""
        self.refresh()
        if self.mode == "none":
            return None
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return "missing Authorization: Bearer header"
        given = value.strip().encode()
        if self.mode == "key":
            ok = False
            for key in (self.primary, self.secondary):  # both, whatever the first gave
                if key and hmac.compare_digest(given, key.encode()):
                    ok = True
            return None if ok else "invalid key"
        if not self.token_secret:
            return "malformed token"
        try:
            verify_token(self.token_secret, given.decode(), endpoint)
        except TokenError as exc:
            return exc.pod_reason
        return None


# --------------------------------------------------------------------------- HS256 tokens
# The access tokens of ``aml_token`` endpoints: JWTs (HS256) signed with the endpoint's
# token secret. Their one home is here, not in a module of the control plane's: pods verify
# them and this file is all a pod gets. The control plane mints them (``get-credentials``),
# the gateway and the pods verify them.

TOKEN_ISSUER = "modeldeck"


class TokenError(Exception):
    """Why a token is refused; the message is safe to send back (it holds no secret).
    ``pod_reason``: the shorter text a pod answers with."""

    def __init__(self, message: str, pod_reason: str) -> None:
        super().__init__(message)
        self.pod_reason = pod_reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_TOKEN_HEADER_B64 = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def _sign(secret: str, signing_input: bytes) -> bytes:
    return hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()


def encode_token(secret: str, claims: Dict[str, Any]) -> str:
    """A signed JWT for ``claims`` (no check of their content)."""
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{_TOKEN_HEADER_B64}.{payload}".encode("ascii")
    return f"{_TOKEN_HEADER_B64}.{payload}.{_b64(_sign(secret, signing_input))}"


def mint_token(
    secret: str, endpoint: str, ttl_s: float = 3600.0, *, now: Optional[float] = None
) -> Tuple[str, float, float]:
    """Return ``(token, expiry, refresh_after)``, both times in epoch seconds.

    ``refresh_after`` is half way through the token's life, as Azure ML gives it:
    a client that refreshes then never presents an expired token.
    """
    issued = time.time() if now is None else now
    expiry = issued + ttl_s
    claims = {
        "iss": TOKEN_ISSUER,
        "aud": endpoint,
        "iat": int(issued),
        "exp": expiry,
        "jti": secrets.token_urlsafe(8),
    }
    return encode_token(secret, claims), expiry, issued + ttl_s / 2


def verify_token(
    secret: str, token: str, endpoint: str, *, now: Optional[float] = None
) -> Dict[str, Any]:
    """The token's claims when it is valid for ``endpoint``; raises :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(
            "malformed token: expected a JWT (three dot-separated parts)", "malformed token"
        )
    header_b64, payload_b64, sig_b64 = parts
    if not token.isascii():  # base64url is ASCII (the gateway refuses others before this)
        raise TokenError("malformed token: not base64url JSON", "malformed token")
    try:
        signature = _unb64(sig_b64)
        header = json.loads(_unb64(header_b64))
    except ValueError as exc:  # binascii.Error and JSON errors are ValueErrors
        raise TokenError("malformed token: not base64url JSON", "malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        only = "malformed token: only HS256 tokens are accepted"
        raise TokenError(only, only)
    expected = _sign(secret, f"{header_b64}.{payload_b64}".encode("ascii"))
    if not hmac.compare_digest(signature, expected):
        raise TokenError(
            "invalid token: bad signature (it was not issued for this endpoint)", "invalid token"
        )
    elsewhere = "invalid token: issued for another endpoint"
    try:
        claims = json.loads(_unb64(payload_b64))
    except ValueError as exc:
        raise TokenError(
            "malformed token: payload is not base64url JSON", "malformed token"
        ) from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed token: payload is not a JSON object", elsewhere)
    if claims.get("aud") != endpoint:
        raise TokenError("invalid token: it was issued for another endpoint", elsewhere)
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise TokenError("malformed token: no exp claim", "token expired")
    current = time.time() if now is None else now
    if current >= exp:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        raise TokenError(
            f"token expired at {stamp}; get a new one with: "
            f"modeldeck online-endpoint get-credentials -n {endpoint}",
            "token expired",
        )
    return claims


class Stats:
    """Counters and a latency histogram, printed as Prometheus text: the families the
    gateway writes (``services/prometheus.py`` holds the format for the rest of modeldeck;
    this file imports nothing of modeldeck's) and the Kubernetes driver reads back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: Dict[str, int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.total = 0.0

    def record(self, code: int, seconds: float) -> None:
        with self.lock:
            key = str(code)
            self.codes[key] = self.codes.get(key, 0) + 1
            self.count += 1
            self.total += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1

    def text(self, deployment: str) -> str:
        with self.lock:
            lab = f'deployment="{deployment}"'
            out = [
                "# HELP modeldeck_requests_total Scoring requests by status code.",
                "# TYPE modeldeck_requests_total counter",
            ]
            for code, n in sorted(self.codes.items()):
                out.append(f'modeldeck_requests_total{{{lab},code="{code}"}} {n}')
            errors = sum(n for c, n in self.codes.items() if c.startswith("5"))
            out += [
                "# HELP modeldeck_request_errors_total Scoring requests answered 5xx.",
                "# TYPE modeldeck_request_errors_total counter",
                f"modeldeck_request_errors_total{{{lab}}} {errors}",
                "# HELP modeldeck_request_duration_seconds Scoring latency.",
                "# TYPE modeldeck_request_duration_seconds histogram",
            ]
            for le, n in zip(BUCKETS, self.buckets):
                out.append(f'modeldeck_request_duration_seconds_bucket{{{lab},le="{le:g}"}} {n}')
            out.append(f'modeldeck_request_duration_seconds_bucket{{{lab},le="+Inf"}} {self.count}')
            out.append(f"modeldeck_request_duration_seconds_sum{{{lab}}} {self.total:f}")
            out.append(f"modeldeck_request_duration_seconds_count{{{lab}}} {self.count}")
            return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the application


class Request:
    __slots__ = ("body", "headers", "method", "path", "peer", "query", "version")

    def __init__(
        self, method: str, path: str, query: str, version: str, headers: Headers, body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.peer = ""


class App:
    """Routes a request to the script, with azmlinfsrv's request-id headers; in a pod also
    auth, ``/metrics`` and an upstream azmlinfsrv."""

    def __init__(
        self,
        script: Optional[Script],
        max_concurrency: int,
        pod: bool = False,
        queue_wait: Optional[float] = None,
    ) -> None:
        self.script = script
        self.pod = pod
        self.workers = max(1, max_concurrency)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="run")
        self.slots: Optional[asyncio.Semaphore] = None
        self.queue_wait = queue_wait
        self.timeout_s = int(os.environ.get("SCORING_TIMEOUT_MS", "3600000") or 3600000) / 1000
        self.endpoint = os.environ.get("MODELDECK_ENDPOINT", "")
        self.deployment = os.environ.get("MODELDECK_DEPLOYMENT", "")
        self.keys = (
            Keys(os.environ.get("MODELDECK_KEYS_DIR", "/var/modeldeck/keys")) if pod else None
        )
        self.stats = Stats()
        self.upstream: Optional[Tuple[str, int]] = None
        self.server_version = os.environ.get("HTTP_X_MS_SERVER_VERSION", "")

    @property
    def direct(self) -> bool:
        """Scoring requests go straight to the workers (:meth:`submit`): a local replica,
        where the gateway does auth, queueing and metrics. A pod takes :meth:`handle`."""
        return not self.pod and self.upstream is None and self.script is not None

    def submit(self, req: Request, done: Callable[[Reply], None]) -> None:
        """``GET``/``POST /score`` without a task per request: run() in a worker (the pool
        has ``max_concurrency`` threads, so that is the bound, the rest wait in its queue),
        ``done(reply)`` called in the event loop; past ``SCORING_TIMEOUT_MS`` azmlinfsrv's
        500 (the run() goes on in its thread, holding the worker)."""
        early, ids = self._ids(req)
        if early is not None:
            done(self._with_ids(req, early, ids))
            return
        loop = asyncio.get_running_loop()
        finished = False

        def finish(reply: Reply) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            timer.cancel()
            done(self._with_ids(req, reply, ids))

        def work() -> None:
            try:
                reply = self._invoke(req)
            except BaseException:
                _log.error("Encountered Exception: %s", traceback.format_exc())
                reply = error_reply(500, INTERNAL_TEXT)
            loop.call_soon_threadsafe(finish, reply)

        def expire() -> None:
            timeout_ms = int(self.timeout_s * 1000)
            _log.error("Encountered Exception: scoring timeout after %d ms", timeout_ms)
            finish(error_reply(500, f"Scoring timeout after {timeout_ms} ms", run_failed=True))

        timer = loop.call_later(self.timeout_s, expire)
        try:
            self.pool.submit(work)
        except RuntimeError:  # shutting down
            finish(error_reply(503, "Service Unavailable"))

    async def handle(self, req: Request) -> Reply:
        path = req.path
        if self.pod and path == "/metrics" and req.method in ("GET", "HEAD"):
            return Reply(
                200,
                self.stats.text(self.deployment).encode(),
                [("Content-Type", "text/plain; version=0.0.4")],
            )
        if self.pod and path != "/score" and path.endswith("/score"):
            path = "/score"  # a gateway need not rewrite /api/v1/endpoint/NAME/score
        elif self.pod and path != "/swagger.json" and path.endswith("/swagger.json"):
            path = "/swagger.json"  # nor .../swagger.json (the endpoint's openapi_uri)
        if path == "/score":
            started = time.monotonic()
            reply = await self._score(req)
            if self.pod:
                self.stats.record(reply.status, time.monotonic() - started)
            return reply
        if path == "/" and req.method in ("GET", "HEAD"):
            if self.upstream is not None:
                return await self._forward(req, "/")
            return self._with_ids(
                req, Reply(200, b"Healthy", [("Content-Type", "text/html; charset=utf-8")])
            )
        if path == "/swagger.json" and req.method in ("GET", "HEAD"):
            if self.pod:
                why = self.keys.check(_credential(req.headers), self.endpoint)  # type: ignore[union-attr]
                if why is not None:
                    return json_reply(401, {"error": why})
            if self.upstream is not None:
                return await self._forward(req, "/swagger.json")
            assert self.script is not None
            return self._with_ids(req, self.script.swagger_reply(req.query))
        if path in ("/", "/swagger.json"):
            reply = error_reply(405, NOT_ALLOWED_TEXT)
            reply.headers.append(("Allow", "GET, HEAD, OPTIONS"))
            return reply
        return error_reply(404, NOT_FOUND_TEXT)

    def _ids(self, req: Request) -> Tuple[Optional[Reply], Headers]:
        """azmlinfsrv's request-id headers, or a 431 when one is too long."""
        request_id = _header(req.headers, "x-request-id")
        if request_id is None:
            request_id = new_request_id()
        if len(request_id) > HEADER_LIMIT:
            return error_reply(431, f"x-request-id must not exceed {HEADER_LIMIT} characters"), []
        legacy = _header(req.headers, "x-ms-request-id") or ""
        client = _header(req.headers, "x-ms-client-request-id") or ""
        if legacy:
            if not client:
                client = legacy
        else:
            legacy = client or request_id
        out = [("x-request-id", request_id)]
        if len(legacy) > HEADER_LIMIT or len(client) > HEADER_LIMIT:
            message = (
                f"x-ms-request-id and x-ms-client-request-id must not exceed {HEADER_LIMIT} "
                "characters"
            )
            return error_reply(431, message), out
        out.append(("x-ms-request-id", legacy))
        if client:
            out.append(("x-ms-client-request-id", client))
        return None, out

    def _with_ids(self, req: Request, reply: Reply, ids: Optional[Headers] = None) -> Reply:
        if ids is None:
            early, ids = self._ids(req)
            if early is not None:
                reply = early
        if self.server_version:
            reply.headers.append(("x-ms-server-version", self.server_version))
        for name, value in ids:
            _set_header(reply.headers, name, value)
        trace = _header(req.headers, "traceid")
        if trace is not None:
            reply.headers.append(("TraceId", trace))
        return reply

    async def _score(self, req: Request) -> Reply:
        if req.method not in ("GET", "POST", "OPTIONS"):
            reply = error_reply(405, NOT_ALLOWED_TEXT)
            reply.headers.append(("Allow", "GET, OPTIONS, POST"))
            return reply
        if self.pod:
            why = self.keys.check(_credential(req.headers), self.endpoint)  # type: ignore[union-attr]
            if why is not None:
                return json_reply(401, {"error": why})
        if self.upstream is not None:
            return await self._forward(req, "/score")
        early, ids = self._ids(req)
        if early is not None:
            return self._with_ids(req, early, ids)
        script = self.script
        assert script is not None
        if req.method == "OPTIONS" and script.parser != "raw":
            return self._with_ids(
                req, Reply(200, b"", [("Content-Type", "text/html; charset=utf-8")]), ids
            )
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.workers)
        try:
            if self.queue_wait is None:
                await self.slots.acquire()
            else:
                await asyncio.wait_for(self.slots.acquire(), self.queue_wait)
        except asyncio.TimeoutError:
            return json_reply(429, {"error": "too many concurrent requests"})
        loop = asyncio.get_running_loop()
        slots = self.slots
        future = loop.run_in_executor(self.pool, self._invoke, req)
        future.add_done_callback(lambda _f: slots.release())
        try:
            reply = await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except asyncio.TimeoutError:
            _log.error("Encountered Exception: scoring timeout after %d ms", self.timeout_s * 1000)
            reply = error_reply(
                500, f"Scoring timeout after {int(self.timeout_s * 1000)} ms", run_failed=True
            )
        return self._with_ids(req, reply, ids)

    def _invoke(self, req: Request) -> Reply:
        """In a worker thread: parse, run(), encode."""
        script = self.script
        assert script is not None
        try:
            kwargs = script.arguments(
                req.method, req.query, req.headers, req.body, req.peer, req.path
            )
        except BadInput as exc:
            if exc.status == 405 and req.method == "OPTIONS":
                return Reply(200, b"", [("Content-Type", "text/html; charset=utf-8")])
            return error_reply(exc.status, exc.message)
        started = time.perf_counter()
        try:
            result = script.call(kwargs, req.headers)
        except Exception as exc:
            _log.error("Encountered Exception: %s", _script_traceback(exc, script.path))
            return error_reply(500, RUN_FAILED_TEXT, run_failed=True)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            return script.encode(result, elapsed_ms)
        except Exception:
            _log.error("Encountered Exception: %s", traceback.format_exc())
            return error_reply(500, INTERNAL_TEXT)

    async def _forward(self, req: Request, path: str) -> Reply:
        """To azmlinfsrv on 127.0.0.1 (a pod's ``runtime: azmlinfsrv``), one connection a call."""
        assert self.upstream is not None
        host, port = self.upstream
        reader, writer = await asyncio.open_connection(host, port)
        try:
            target = path + ("?" + req.query if req.query else "")
            head = [f"{req.method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
            for k, v in req.headers:
                if k.lower() not in (
                    "host",
                    "connection",
                    "content-length",
                    "transfer-encoding",
                    "authorization",
                    PROXY_AUTH_HEADER,
                ):
                    head.append(f"{k}: {v}")
            head.append(f"Content-Length: {len(req.body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
            data = await reader.read()
        finally:
            writer.close()
        head_end = data.find(b"\r\n\r\n")
        lines = data[:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: Headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.lower() not in (
                "content-length",
                "connection",
                "transfer-encoding",
                "date",
                "server",
                "keep-alive",
            ):
                headers.append((k.strip(), v.strip()))
        body = data[head_end + 4 :]
        if b"chunked" in data[:head_end].lower():
            body = _dechunk(body)
        return Reply(status, body, headers)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("incomplete chunked body")
        size = int(data[pos:end].split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += data[pos : pos + size]
        pos += size + 2


# --------------------------------------------------------------------------- HTTP/1.1


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1, keep-alive, requests answered in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.busy = False
        self.closing = False
        self.continued = False
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else "127.0.0.1"

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.server.connections.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()
        elif len(self.buf) > MAX_HEAD and self.transport is not None:
            self.transport.pause_reading()  # pipelined ahead of a request in flight: wait

    def _fail(self, status: int, message: str) -> None:
        self._write(
            Request("GET", "/", "", "HTTP/1.1", [], b""), error_reply(status, message), close=True
        )

    def _next(self) -> None:
        while not self.busy and not self.closing and self.buf:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._fail(431, "Request header fields too large")
                return
            try:
                lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
                while lines and not lines[0]:
                    lines.pop(0)  # stray CRLF between requests
                method, target, version = lines[0].split(" ")
                headers: Headers = []
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep or not name or name != name.strip():
                        raise ValueError(line)
                    headers.append((name, value.strip()))
            except ValueError:
                self._fail(400, "Bad request syntax")
                return
            chunked = (_header(headers, "transfer-encoding") or "").lower() == "chunked"
            start = end + 4
            if chunked:
                body, used = _parse_chunked(self.buf, start)
                if body is None:
                    self._maybe_continue(headers)
                    if len(self.buf) > MAX_BODY:
                        self._fail(413, "Request entity too large")
                    return
                consumed = used
            else:
                try:
                    length = int(_header(headers, "content-length") or 0)
                except ValueError:
                    self._fail(400, "Bad Content-Length")
                    return
                if length < 0 or length > MAX_BODY:
                    self._fail(413, "Request entity too large")
                    return
                if len(self.buf) < start + length:
                    self._maybe_continue(headers)
                    return
                body = bytes(self.buf[start : start + length])
                consumed = start + length
            del self.buf[:consumed]
            self.continued = False
            path, _, query = target.partition("?")
            req = Request(method, path, query, version, headers, body)
            req.peer = self.peer
            self.busy = True
            app = self.server.app
            if app.direct and (path == "/score" and method in ("GET", "POST")):
                app.submit(req, lambda reply, r=req: self._answer(r, reply))
            else:
                task = asyncio.ensure_future(app.handle(req))
                task.add_done_callback(lambda t, r=req: self._done(r, t))

    def _maybe_continue(self, headers: Headers) -> None:
        if not self.continued and (_header(headers, "expect") or "").lower() == "100-continue":
            self.continued = True
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _done(self, req: Request, task: asyncio.Future) -> None:
        try:
            reply = task.result()
        except Exception:
            _log.error("Encountered Exception: %s", traceback.format_exc())
            reply = error_reply(500, INTERNAL_TEXT)
        self._answer(req, reply)

    def _answer(self, req: Request, reply: Reply) -> None:
        conn = (_header(req.headers, "connection") or "").lower()
        close = conn == "close" or (req.version == "HTTP/1.0" and conn != "keep-alive")
        self._write(req, reply, close or self.server.stopping)
        self.busy = False
        if not self.closing:
            if self.transport is not None and not self.transport.is_reading():
                self.transport.resume_reading()
            self._next()

    def _write(self, req: Request, reply: Reply, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        out = [f"HTTP/1.1 {reply.status} {_reason(reply.status)}"]
        has_type = False
        for k, v in reply.headers:
            if k.lower() == "content-type":
                has_type = True
            out.append(f"{k}: {v}")
        if not has_type:
            out.append("Content-Type: text/html; charset=utf-8")
        if self.server.deployment:
            out.append(f"azureml-model-deployment: {self.server.deployment}")
        out.append(f"Content-Length: {len(reply.body)}")
        if close:
            out.append("Connection: close")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head if req.method == "HEAD" else head + reply.body)
        if close:
            self.closing = True
            self.transport.close()


def _parse_chunked(buf: bytearray, pos: int) -> Tuple[Optional[bytes], int]:
    """(body, bytes used) of a complete chunked body at ``pos``, else (None, 0)."""
    out = bytearray()
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None, 0
        try:
            size = int(bytes(buf[pos:end]).split(b";")[0].strip(), 16)
        except ValueError:
            return None, 0
        pos = end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end >= 0 and trailer_end != pos:  # skip trailers
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None, 0
            return bytes(out), pos + 2
        if len(buf) < pos + size + 2:
            return None, 0
        out += buf[pos : pos + size]
        pos += size + 2


class HttpServer:
    def __init__(self, app: App, deployment: str = "") -> None:
        self.app = app
        self.deployment = deployment
        self.connections: set = set()
        self.stopping = False
        self.server: Optional[asyncio.AbstractServer] = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            self.server = await loop.create_unix_server(
                lambda: _Connection(self), sock=sock, backlog=1024
            )
        else:
            self.server = await loop.create_server(
                lambda: _Connection(self), sock=sock, backlog=1024
            )

    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening; let the requests in flight finish (up to ``grace``), close the rest."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        deadline = time.monotonic() + grace
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()


# --------------------------------------------------------------------------- process


class Status:
    """The pipe to the supervisor (or nothing)."""

    def __init__(self, fd: Optional[int]) -> None:
        self.fd = fd

    def send(self, kind: str, **fields: Any) -> None:
        if self.fd is None:
            return
        data = (json.dumps({"t": kind, **fields}) + "\n").encode()
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError:
            self.fd = None


class _StatusLogHandler(logging.Handler):
    def __init__(self, status: Status) -> None:
        super().__init__(logging.INFO)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not kill run()
            text = str(record.msg)
        self.status.send("log", text=text)


def _watch_parent(parent_pid: Optional[int]) -> None:
    """Die with the parent: PR_SET_PDEATHSIG on Linux; the serve loop also polls getppid."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(0)


def _fail(status: Status, message: str, code: int) -> None:
    print(message, file=sys.stderr, flush=True)
    status.send("failed", error=message)
    sys.exit(code)


def _bind_unix(path: str, status: Status) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a previous run of this replica
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # 0600 from the moment it exists
    try:
        sock.bind(path)
    except OSError as exc:
        _fail(status, f"cannot bind the replica socket: {exc.strerror}", EXIT_BIND_FAILED)
    finally:
        os.umask(old_umask)
    return sock


def _bind_tcp(host: str, port: int, status: Status) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        _fail(status, f"cannot bind {host}:{port}: {exc.strerror}", EXIT_BIND_FAILED)
    return sock


def _use_code_dir(code_dir: str) -> None:
    """The script's folder first on ``sys.path`` (this host's own folder off it), and the cwd."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    os.chdir(code_dir)


def load_script(path: str, status: Status) -> Script:
    """Import the script and run init(); on failure, its traceback and an exit code."""
    code_dir = os.path.dirname(path)
    _use_code_dir(code_dir)
    os.environ["AZUREML_ENTRY_SCRIPT"] = path
    app_root = os.environ.get("AML_APP_ROOT") or code_dir
    script = Script(path, app_root)
    try:
        script.load()
    except ScriptError as exc:
        _fail(status, str(exc), EXIT_BAD_SCRIPT)
    except BaseException as exc:  # the script's import itself failed
        _print_script_traceback(exc, path)
        _fail(status, f"importing {path} failed: {type(exc).__name__}: {exc}", EXIT_BAD_SCRIPT)
    try:
        script.init()
    except BaseException as exc:
        _print_script_traceback(exc, path)
        _fail(status, f"init() failed: {type(exc).__name__}: {exc}", EXIT_INIT_FAILED)
    return script


async def serve(
    sock: socket.socket,
    app: App,
    status: Status,
    parent_pid: Optional[int],
    on_listening: Optional[Callable[[], None]] = None,
) -> None:
    loop = asyncio.get_running_loop()
    server = HttpServer(app, app.deployment if app.pod else "")
    await server.start(sock)
    if on_listening is not None:
        on_listening()
    status.send("ready")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            if parent_pid and os.getppid() != parent_pid:
                stop.set()

    watcher = asyncio.ensure_future(watch_parent())
    await stop.wait()
    watcher.cancel()
    await server.stop()
    app.pool.shutdown(wait=False)


def _exec_azmlinfsrv(args: argparse.Namespace, status: Status) -> None:
    """``runtime: azmlinfsrv`` on a local replica: Azure's server on the replica's socket."""
    import shutil

    exe = shutil.which("azmlinfsrv")
    if exe is None:
        _fail(
            status,
            f"runtime azmlinfsrv needs Azure's inference server, package {AZMLINFSRV_PACKAGE}, "
            f"which is not installed; install it (pip install {AZMLINFSRV_PACKAGE}) "
            "or use runtime: default",
            EXIT_RUNTIME_MISSING,
        )
    if not args.socket:
        # azmlinfsrv binds 0.0.0.0:PORT by itself: any user (and any machine) could score
        _fail(
            status,
            "runtime azmlinfsrv needs --socket: left alone, azmlinfsrv listens on 0.0.0.0",
            EXIT_BIND_FAILED,
        )
    sock = _bind_unix(args.socket, status)
    # systemd socket activation, which gunicorn (azmlinfsrv's server) honours: it serves
    # fd 3 and binds none of its own addresses. exec keeps the pid, so LISTEN_PID holds.
    if status.fd == 3:
        status.fd = os.dup(3)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3)
        sock.close()
    os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ.pop("LISTEN_FDNAMES", None)
    entry = os.path.join(os.path.abspath(args.code_dir), args.scoring_script)
    os.chdir(args.code_dir)
    status.send("listening")
    os.execv(exe, [exe, "--entry_script", entry])


def main(argv: Optional[List[str]] = None) -> None:
    """A local replica (see the module's docstring)."""
    parser = argparse.ArgumentParser(
        prog="modeldeck-scoring-host", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--scoring-script", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument(
        "--socket", default=None, help="Unix socket path (what the supervisor uses)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--runtime", default="default", choices=["default", "azmlinfsrv"])
    parser.add_argument("--status-fd", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)

    status = Status(args.status_fd)
    _watch_parent(args.parent_pid)
    os.environ["AZUREML_MODEL_DIR"] = os.path.abspath(args.model_dir)

    if args.runtime == "azmlinfsrv":
        _exec_azmlinfsrv(args, status)
        return

    # Bind now, listen only once init() succeeded.
    sock = (
        _bind_unix(args.socket, status) if args.socket else _bind_tcp(args.host, args.port, status)
    )
    status.send("listening")

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler: logging.Handler = (
        _StatusLogHandler(status) if status.fd is not None else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)

    code_dir = os.path.abspath(args.code_dir)
    script = load_script(os.path.join(code_dir, args.scoring_script), status)
    if not args.socket:
        print(f"listening on {args.host}:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    app = App(script, args.max_concurrency)
    asyncio.run(serve(sock, app, status, args.parent_pid))


# --------------------------------------------------------------------------- in a pod

#: the socket at fd argv[1] becomes fd 3 of the program argv[2:], as systemd passes it
_SOCKET_ACTIVATION = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.set_inheritable(3, True)\n"
    "os.environ['LISTEN_FDS'] = '1'\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def start_upstream(script: str, port: int, wait_s: float) -> Any:
    """Run ``azmlinfsrv`` on 127.0.0.1:``port`` only; wait until it answers ``GET /``."""
    import subprocess
    import urllib.error
    import urllib.request

    folder = os.path.dirname(os.path.abspath(script))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    fd = listener.fileno()
    cmd = [sys.executable, "-c", _SOCKET_ACTIVATION, str(fd), "azmlinfsrv"]
    cmd += ["--entry_script", script, "--port", str(port)]
    try:
        child = subprocess.Popen(cmd, cwd=folder, pass_fds=(fd,))
    finally:
        listener.close()  # the child holds it
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"azmlinfsrv exited with code {child.returncode}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as resp:
                if resp.status == 200:
                    return child
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    child.terminate()
    raise RuntimeError(f"azmlinfsrv did not answer on {url} within {wait_s:g} s")


class _Stop(Exception):
    """SIGTERM (the kubelet stopping the pod) before serving."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stop()


def pod_main() -> int:
    """In a Kubernetes pod. Environment: ``MODELDECK_ENTRY_SCRIPT``, ``PORT`` (5001, as
    azmlinfsrv), ``MODELDECK_KEYS_DIR``, ``MODELDECK_ENDPOINT``, ``MODELDECK_DEPLOYMENT``,
    ``MODELDECK_MAX_CONCURRENCY``, ``MODELDECK_MAX_QUEUE_WAIT_MS`` (500),
    ``MODELDECK_RUNTIME`` (``azmlinfsrv``: Azure's server behind this host),
    ``MODELDECK_UPSTREAM_PORT`` (PORT+1), ``MODELDECK_UPSTREAM_WAIT_S`` (600)."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    path = os.path.abspath(os.environ.get("MODELDECK_ENTRY_SCRIPT", ""))
    port = int(os.environ.get("PORT", "5001"))
    concurrency = max(1, int(os.environ.get("MODELDECK_MAX_CONCURRENCY", "1") or 1))
    queue_wait = float(os.environ.get("MODELDECK_MAX_QUEUE_WAIT_MS", "500")) / 1000
    status = Status(None)
    print(f"modeldeck podserver: loading {path}", flush=True)
    child = None
    try:
        try:
            if os.environ.get("MODELDECK_RUNTIME") == "azmlinfsrv":
                wait = float(os.environ.get("MODELDECK_UPSTREAM_WAIT_S", "600"))
                upstream_port = int(os.environ.get("MODELDECK_UPSTREAM_PORT") or (port + 1))
                child = start_upstream(path, upstream_port, wait)
                app = App(None, concurrency, pod=True, queue_wait=queue_wait)
                app.upstream = ("127.0.0.1", upstream_port)
            else:
                app = App(load_script(path, status), concurrency, pod=True, queue_wait=queue_wait)
        except _Stop:
            return 0
        except SystemExit as exc:  # load_script printed why
            return int(exc.code or 0)
        except Exception:
            print(f"init() failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return EXIT_INIT_FAILED
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sock = _bind_tcp("0.0.0.0", port, status)

        def listening() -> None:
            print(f"modeldeck podserver: listening on port {sock.getsockname()[1]}", flush=True)

        asyncio.run(serve(sock, app, status, None, listening))
        return 0
    finally:
        if child is not None:
            child.terminate()
            with contextlib.suppress(Exception):
                child.wait(10)


if __name__ == "__main__":
    if len(sys.argv) == 1 and "MODELDECK_ENTRY_SCRIPT" in os.environ:
        sys.exit(pod_main())
    main()
