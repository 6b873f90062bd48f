"""Wire protocols of the emulated services, built on botocore's own codecs and models.

The emulator speaks exactly what botocore speaks: requests are decoded with
botocore's response parsers (the body encodings are symmetric), responses are
encoded with its request serializers, and both are checked against the
operation's shapes from the installed service model. Two protocols are served:
``json`` (awsJson1.1: ``X-Amz-Target``) and ``smithy-rpc-v2-cbor``
(``/service/<Service>/operation/<Op>``), so a botocore upgrade that switches a
service's protocol cannot silently break the tests.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, ShapeResolver
from botocore.parsers import JSONParser, RpcV2CBORParser
from botocore.serialize import JSONSerializer, RpcV2CBORSerializer
from botocore.validate import ParamValidator

JSON = "json"
CBOR = "smithy-rpc-v2-cbor"
CBOR_CONTENT_TYPE = "application/cbor"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


class ApiError(Exception):
    """An AWS error response: the code botocore puts in ``Error.Code`` and its message.

    ``status`` overrides the HTTP status the error shape implies (400 for client
    errors, 500 for faults).
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class SerializationError(ApiError):
    """The request body is not valid for its protocol."""

    def __init__(self, message: str) -> None:
        super().__init__("SerializationException", message)


@dataclass(frozen=True)
class Service:
    """One emulated service: its botocore model and the names it is reached by."""

    name: str
    model: ServiceModel

    @property
    def target_prefix(self) -> str:
        return str(self.model.metadata["targetPrefix"])

    @property
    def protocols(self) -> tuple[str, ...]:
        meta = self.model.metadata
        return tuple(meta.get("protocols") or [meta["protocol"]])

    @property
    def error_namespace(self) -> str:
        return f"com.amazonaws.{self.model.endpoint_prefix}"

    def operation(self, name: str) -> OperationModel | None:
        if name not in self.model.operation_names:
            return None
        return self.model.operation_model(name)


@functools.cache
def load_service(name: str) -> Service:
    """The installed botocore's model of a service; cached, models are immutable."""
    return Service(name, botocore.session.get_session().get_service_model(name))


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class _ConstraintCheck:
    """Constraints the service enforces and botocore's client-side validator skips.

    botocore only checks types, required members and minimums; the service also
    rejects values over ``max``, outside an ``enum`` or not matching ``pattern``.
    Patterns are Smithy patterns: not anchored, so ``re.search``. A pattern that
    Python's ``re`` cannot compile (``\\p{..}`` classes) is not checked.
    """

    problems: list[str]

    def walk(self, value: Any, shape: Shape, path: str) -> None:
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            for key, member in value.items():
                if key in shape.members:
                    self.walk(member, shape.members[key], f"{path}.{key}" if path else key)
        elif kind == "list":
            self._bounds(len(value), meta, path, "have length")
            for index, item in enumerate(value):
                self.walk(item, shape.member, f"{path}.{index + 1}")
        elif kind == "map":
            self._bounds(len(value), meta, path, "have length")
            for key, item in value.items():
                self.walk(key, shape.key, f"{path}.key")
                self.walk(item, shape.value, f"{path}.{key}")
        elif kind == "string":
            self._string(value, meta, path)
        elif kind in ("integer", "long", "double", "float"):
            self._bounds(value, meta, path, "have value", check_min=True)

    def _bounds(self, value: float, meta: Mapping[str, Any], path: str, what: str, *, check_min: bool = False) -> None:
        if "max" in meta and value > meta["max"]:
            self._fail(path, value, f"Member must {what} less than or equal to {meta['max']}")
        if check_min and "min" in meta and value < meta["min"]:
            self._fail(path, value, f"Member must {what} greater than or equal to {meta['min']}")

    def _string(self, value: str, meta: Mapping[str, Any], path: str) -> None:
        if "max" in meta and len(value) > meta["max"]:
            self._fail(path, value, f"Member must have length less than or equal to {meta['max']}")
        enum = meta.get("enum")
        if enum and value not in enum:
            self._fail(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = _compiled(meta.get("pattern"))
        if pattern is not None and not pattern.search(value):
            self._fail(path, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")

    def _fail(self, path: str, value: Any, constraint: str) -> None:
        shown = value if len(str(value)) <= 80 else str(value)[:77] + "..."
        self.problems.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}")


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def shape_problems(value: Any, shape: Shape | None) -> list[str]:
    """Every way ``value`` breaks ``shape``: botocore's checks, then the service-side ones."""
    if shape is None:
        return [] if not value else [f"no members expected, got {sorted(value)}"]
    report = ParamValidator().validate(value, shape)
    if report.has_errors():
        return report.generate_report().splitlines()
    check = _ConstraintCheck([])
    check.walk(value, shape, "")
    return check.problems


def validate_request(operation: OperationModel, params: Mapping[str, Any]) -> None:
    """Reject a request the way the service does: ValidationException listing each problem."""
    problems = shape_problems(dict(params), operation.input_shape)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ApiError("ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems))


def response_problems(operation: OperationModel, result: Mapping[str, Any]) -> list[str]:
    """Ways a response the emulator built breaks the output shape: each one is an emulator bug."""
    return shape_problems(dict(result), operation.output_shape)


# ---------------------------------------------------------------- codecs


def decode_request(protocol: str, operation: OperationModel, body: bytes) -> dict[str, Any]:
    """Request body → botocore-style params (datetimes, ints), using botocore's parsers."""
    shape = operation.input_shape
    if shape is None or not body:
        return {}
    if protocol == JSON:
        parser: JSONParser | RpcV2CBORParser = JSONParser()
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise SerializationError(f"request body is not JSON: {exc}") from exc
    else:
        parser = RpcV2CBORParser()
        try:
            raw = parser._initial_body_parse(body)
        except Exception as exc:  # botocore raises several types for malformed CBOR
            raise SerializationError(f"request body is not CBOR: {exc}") from exc
    if not isinstance(raw, dict):
        raise SerializationError("request body must be an object")
    try:
        return dict(parser._parse_shape(shape, raw))
    except (AttributeError, TypeError, ValueError) as exc:
        raise SerializationError(f"request body does not match {shape.name}: {exc}") from exc


@dataclass(frozen=True)
class WireResponse:
    """An HTTP response ready to send."""

    status: int
    headers: dict[str, str]
    body: bytes


def _headers(protocol: str, has_body: bool) -> dict[str, str]:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if protocol == CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        if has_body:
            headers["Content-Type"] = CBOR_CONTENT_TYPE
    else:
        headers["Content-Type"] = JSON_CONTENT_TYPE
    return headers


def encode_response(protocol: str, operation: OperationModel, result: Mapping[str, Any]) -> WireResponse:
    """Params → response body, using botocore's serializers for the output shape."""
    shape = operation.output_shape
    if protocol == JSON:
        body: dict[str, Any] = {}
        if shape is not None:
            JSONSerializer()._serialize(body, dict(result), shape)
        return WireResponse(200, _headers(JSON, True), json.dumps(body).encode())
    if shape is None:
        return WireResponse(200, _headers(CBOR, False), b"")
    buffer = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(buffer, dict(result), shape)
    return WireResponse(200, _headers(CBOR, True), bytes(buffer))


def error_status(service: Service, code: str) -> int:
    """HTTP status of an error: the shape's httpStatusCode, 500 for faults, else 400."""
    if code not in service.model.shape_names:  # unmodeled, such as ThrottlingException
        return 400
    shape = service.model.shape_for(code)
    error = shape.metadata.get("error") or {}
    if "httpStatusCode" in error:
        return int(error["httpStatusCode"])
    return 500 if shape.metadata.get("fault") else 400


def encode_error(protocol: str, service: Service, error: ApiError) -> WireResponse:
    """An error in the protocol's shape so botocore reports ``error.code``.

    json: ``{"__type": code, "message": ...}``. rpcv2Cbor: a CBOR map whose
    ``__type`` is the error's absolute shape id (Smithy RPC v2 CBOR spec,
    "Operation error serialization").
    """
    status = error.status or error_status(service, error.code)
    fields: dict[str, Any] = {"message": error.message}
    if _has_member(service, error.code, "Message"):
        fields["Message"] = error.message
    if protocol == JSON:
        body = json.dumps({"__type": error.code, **fields}).encode()
        return WireResponse(status, _headers(JSON, True), body)
    error_map = {"__type": f"{service.error_namespace}#{error.code}", **fields}
    buffer = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(buffer, error_map, _ERROR_BODY_SHAPE)
    return WireResponse(status, _headers(CBOR, True), bytes(buffer))


def _has_member(service: Service, code: str, member: str) -> bool:
    return code in service.model.shape_names and member in service.model.shape_for(code).members


_ERROR_BODY_SHAPE = ShapeResolver(
    {
        "ErrorBody": {
            "type": "structure",
            "members": {
                "__type": {"shape": "String"},
                "message": {"shape": "String"},
                "Message": {"shape": "String"},
            },
        },
        "String": {"type": "string"},
    }
).get_shape_by_name("ErrorBody")


# ---------------------------------------------------------------- protocol override for clients


def write_protocol_override(service_name: str, protocol: str, data_dir: Path) -> Path:
    """Write a copy of a service model that resolves to ``protocol`` under ``data_dir``.

    Point ``AWS_DATA_PATH`` (for a subprocess) or a botocore session's loader
    search path at ``data_dir`` and every client of that service uses the given
    protocol, e.g. CodePipeline over ``json`` although botocore now prefers CBOR.
    """
    loader = botocore.loaders.create_loader()
    api_version = loader.determine_latest_version(service_name, "service-2")
    model = loader.load_service_model(service_name, "service-2", api_version)
    if protocol not in model["metadata"].get("protocols", [model["metadata"]["protocol"]]):
        raise ValueError(f"{service_name} does not support protocol {protocol}")
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    target = data_dir / service_name / api_version
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return data_dir


def session_with_protocol(service_name: str, protocol: str, data_dir: Path) -> botocore.session.Session:
    """A botocore session whose ``service_name`` clients use ``protocol``."""
    write_protocol_override(service_name, protocol, data_dir)
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(data_dir))
    return session
