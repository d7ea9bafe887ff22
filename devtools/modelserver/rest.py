"""TF Serving's REST API on aiohttp: model status, metadata, predict/classify/regress, and the Prometheus page.

Routing follows TF Serving's regular expressions (http_rest_api_util.cc); every answer is JSON, errors are
``{"error": "<message>"}`` with TF Serving's HTTP status for the canonical code.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from croupier.modelserver.errors import Code, ServingError, invalid_argument
from croupier.modelserver.manager import ModelRequest, VersionStatus
from croupier.modelserver.metrics import ServingMetrics
from croupier.modelserver.restjson import (
    parse_body,
    request_examples,
    request_inputs,
    response_body,
    signature_name,
)
from croupier.modelserver.service import Metadata, ModelService

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)


def status_json(statuses: list[VersionStatus]) -> str:
    """GetModelStatusResponse printed as TF Serving prints it (proto field names, defaults included)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
        entry = response.model_version_status.add()
        entry.version = status.version
        entry.state = int(status.state)
        entry.status.error_code = int(status.error.code) if status.error else 0
        entry.status.error_message = status.error.message if status.error else ""
    return str(
        json_format.MessageToJson(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=1
        )
    )


def metadata_json(metadata: Metadata) -> str:
    """GetModelMetadataResponse as TF Serving's REST API writes it: model_spec, then metadata.signature_def."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = metadata.name
    response.model_spec.version.value = metadata.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in metadata.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(signature)

    def dump(message: Any) -> str:
        return str(
            json_format.MessageToJson(
                message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=1
            )
        )

    return (
        f'{{\n"model_spec":{dump(response.model_spec)},\n"metadata": {{"signature_def": {dump(signature_map)}}}\n}}\n'
    )


def _decode(value: str, what: str) -> str:
    try:
        return urllib.parse.unquote(value, errors="strict")
    except UnicodeDecodeError as error:
        raise invalid_argument(f"Failed to decode {what}:{value}") from error


class RestApi:
    def __init__(
        self,
        service: ModelService,
        metrics: ServingMetrics,
        *,
        executor: Executor | None,
        timeout_seconds: float,
        prometheus_path: str | None,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.executor = executor
        self.timeout = timeout_seconds
        self.prometheus_path = prometheus_path

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if self.prometheus_path is not None and request.method == "GET" and request.path == self.prometheus_path:
            return web.Response(text=self.metrics.render(), content_type="text/plain")
        start = time.perf_counter()
        body = await request.read()
        context: dict[str, str] = {"model_name": "", "method": ""}
        try:
            text = await self._dispatch(request.method, request.raw_path.split("?", 1)[0], body, context)
            code = Code.OK
            status = 200
        except ServingError as error:
            code = error.code
            status = error.http_status
            text = json.dumps({"error": error.message}, indent=1)
        except Exception as error:  # a defect of this server: answer TF Serving's shape, keep the trace in the log
            traceback.print_exc()
            code, status = Code.INTERNAL, 500
            text = json.dumps({"error": f"{type(error).__name__}: {error}"}, indent=1)
        self.metrics.record(context["model_name"], context["method"], "REST", code, (time.perf_counter() - start) * 1e6)
        return web.Response(status=status, text=text, content_type="application/json")

    async def _dispatch(self, method: str, path: str, body: bytes, context: dict[str, str]) -> str:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = PREDICTION_PATH.fullmatch(path)
        elif method == "GET":
            match = STATUS_PATH.fullmatch(path)
        else:
            raise malformed
        if match is None:
            raise malformed
        name = _decode(match.group(1) or "", "model name")
        context["model_name"] = name
        version_text, label = match.group(2), match.group(3)
        version = None
        if version_text:
            try:
                version = int(version_text)
            except ValueError as error:
                raise invalid_argument(f"Failed to convert version: {version_text} to numeric.") from error
        if label is not None:
            label = _decode(label, "model version label")
        if method == "GET":
            if match.group(4):
                if not name:
                    raise invalid_argument("Missing model name in request.")
                spec = ModelRequest(name, version, label)
                return metadata_json(self.service.metadata(self._checked(spec), ["signature_def"]))
            if version is not None and label is not None:
                self._checked(ModelRequest(name, version, label))
            return status_json(self.service.status(name, version))
        verb = match.group(4).lower()
        context["method"] = verb
        spec = self._checked(ModelRequest(name, version, label))
        document = parse_body(body)
        signature = signature_name(document)
        if verb in ("classify", "regress"):
            examples = request_examples(document, verb)

            def inference() -> str:
                if verb == "classify":
                    classes = self.service.classify(spec, signature, examples).results
                    return json.dumps({"results": [[[label, score] for label, score in row] for row in classes]})
                return json.dumps({"results": self.service.regress(spec, signature, examples).values})

            return await self._blocking(inference)

        def predict() -> str:
            infos = self.service.signature_inputs(spec, signature)
            inputs, row = request_inputs(document, sorted(infos))
            prediction = self.service.predict(spec, signature, inputs)
            return json.dumps(response_body(prediction.outputs, row), indent=1)

        return await self._blocking(predict)

    @staticmethod
    def _checked(spec: ModelRequest) -> ModelRequest:
        if spec.version is not None and spec.label is not None:
            raise invalid_argument(
                f"Both model version ({spec.version}) and model version label ({spec.label}) cannot be supplied."
            )
        return spec

    async def _blocking(self, call: Callable[[], str]) -> str:
        """Run TensorFlow off the event loop; ``--rest_api_timeout_in_ms`` bounds the wait (DEADLINE_EXCEEDED)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, call)
        try:
            return await asyncio.wait_for(future, timeout=self.timeout)
        except TimeoutError as error:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from error
