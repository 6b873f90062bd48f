"""The emulator's HTTP endpoint: CodePipeline and SSM of our own, S3 from moto, one port.

Real boto3 clients reach it through ``AWS_ENDPOINT_URL``. A request carrying
``X-Amz-Target`` (awsJson) or the ``smithy-protocol: rpc-v2-cbor`` header is
ours; everything else is S3 and goes to moto's S3 app, after its access is
recorded. Every request meets fault injection first and lands in ``calls``.
"""

from __future__ import annotations

import functools
import io
import json
import re
import secrets
import shutil
import tempfile
import threading
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from moto.s3.models import FakeKey, s3_backends
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request

from worker.local.codepipeline import CodePipelineBackend
from worker.local.faults import FaultHit, Faults
from worker.local.ssm import SsmBackend
from worker.local.wire import (
    CBOR,
    JSON,
    ApiError,
    Service,
    WireResponse,
    decode_request,
    encode_error,
    encode_response,
    load_service,
    response_problems,
    validate_request,
    write_protocol_override,
)

WORKER_ACCESS_KEY_ID = "AKIAEMULATORWORKER01"
"""The worker's own fake credentials (``env()``): never the ones a job hands out."""
WORKER_SECRET_ACCESS_KEY = "emulator-worker-secret-access-key-000000"

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class EmulatorConfig:
    """Timings and strictness of the emulated services.

    ``delivery_delay``: seconds an invocation stays Pending before the fake
    agent starts it. ``list_commands_visibility_delay``: like
    ``invocation_visibility_delay`` but for ListCommands (no source says
    ListCommands lags, so 0 by default). ``require_plugin_name``: the API
    reference says PluginName must be given for a multi-step document; when
    True, GetCommandInvocation without it raises InvalidPluginName.
    ``time_scale``: wall-clock seconds per second of SendCommand's
    TimeoutSeconds and of step timeouts (0.01 makes a 30 s delivery timeout
    0.3 s). ``strict``: ``stop()`` raises EmulatorBug if any request hit an emulator
    bug (an invalid response, an unimplemented operation, an exception).
    """

    region: str = "us-east-1"
    redispatch_after: float = 30.0
    job_timeout: float = 3600.0
    invocation_visibility_delay: float = 0.2
    continuation_delay: float = 0.0
    delivery_delay: float = 0.0
    list_commands_visibility_delay: float = 0.0
    require_plugin_name: bool = True
    time_scale: float = 1.0
    strict: bool = True
    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class ApiCall:
    """One request the emulator handled, with the error code it answered (None: success).

    ``protocol`` is the wire protocol the client used: "json", "smithy-rpc-v2-cbor"
    or, for S3, "rest-xml".
    """

    service: str
    operation: str
    params: dict[str, Any]
    error_code: str | None
    protocol: str


@dataclass(frozen=True)
class S3Access:
    """One S3 request: who (access key id) asked for what, and which byte range."""

    method: str
    bucket: str | None
    key: str | None
    access_key_id: str | None
    range: str | None
    operation: str


class EmulatorBug(AssertionError):
    """The emulator produced something AWS never would; the test run is not trustworthy."""


@functools.cache
def _moto_s3_app() -> Any:
    """moto's S3 Flask app; its state lives in moto's backends, so one app serves all emulators."""
    return create_backend_app("s3")


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Emulator:
    """CodePipeline job API + SSM Run Command + S3 on one local endpoint; see module docs."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.account_id = "".join(secrets.choice("0123456789") for _ in range(12))
        self.faults = Faults()
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._s3_accesses: list[S3Access] = []
        self._internal_errors: list[str] = []
        self._workdir = Path(tempfile.mkdtemp(prefix="codepipeline-ssm-emulator-"))
        self.codepipeline = CodePipelineBackend(
            region=self.config.region,
            account_id=self.account_id,
            redispatch_after=self.config.redispatch_after,
            job_timeout=self.config.job_timeout,
            continuation_delay=self.config.continuation_delay,
        )
        self.ssm = SsmBackend(
            account_id=self.account_id,
            region=self.config.region,
            workdir=self._workdir / "instances",
            invocation_visibility_delay=self.config.invocation_visibility_delay,
            delivery_delay=self.config.delivery_delay,
            list_commands_visibility_delay=self.config.list_commands_visibility_delay,
            require_plugin_name=self.config.require_plugin_name,
            time_scale=self.config.time_scale,
            report_bug=self._bug,
        )
        codepipeline, ssm = load_service("codepipeline"), load_service("ssm")
        self._services: dict[str, tuple[Service, Any]] = {
            codepipeline.target_prefix: (codepipeline, self.codepipeline),
            ssm.target_prefix: (ssm, self.ssm),
        }
        self._stopping = threading.Event()
        self._stopped = False
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind (127.0.0.1, ephemeral port by default) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = make_server(self.config.host, self.config.port, self, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, kill running commands, drop this emulator's S3 data.

        Raises EmulatorBug afterwards when ``strict`` and a request hit an emulator
        bug. Stopping twice does nothing the second time.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.ssm.stop()
        self._drop_s3_data()
        shutil.rmtree(self._workdir, ignore_errors=True)
        if self.config.strict and self._internal_errors:
            raise EmulatorBug("the emulator hit its own bugs:\n" + "\n".join(self._internal_errors))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.config.host}:{self._server.server_port}"

    def env(self, *, codepipeline_protocol: str | None = None) -> dict[str, str]:
        """Environment for a worker subprocess: endpoint, fake worker credentials, region.

        Shared config files are pointed at nothing so a developer's profile
        cannot leak in. ``codepipeline_protocol`` pins the protocol that
        process's botocore uses for CodePipeline (via ``AWS_DATA_PATH``):
        botocore 1.44 resolves it to "json" although the model lists
        "smithy-rpc-v2-cbor" first; pass "smithy-rpc-v2-cbor" to run the worker
        over CBOR as a future botocore may.
        """
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": WORKER_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": WORKER_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_REGION": self.config.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self._workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self._workdir / "no-aws-credentials"),
        }
        if codepipeline_protocol is not None:
            data_dir = self._workdir / f"botocore-data-{codepipeline_protocol}"
            env["AWS_DATA_PATH"] = str(write_protocol_override("codepipeline", codepipeline_protocol, data_dir))
        return env

    # ------------------------------------------------------------ records

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    @property
    def s3_accesses(self) -> list[S3Access]:
        with self._lock:
            return list(self._s3_accesses)

    @property
    def internal_errors(self) -> list[str]:
        with self._lock:
            return list(self._internal_errors)

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _bug(self, text: str) -> None:
        with self._lock:
            self._internal_errors.append(text)

    # ------------------------------------------------------------ S3 helpers

    def put_artifact(self, bucket: str, key: str, files: Mapping[str, bytes | str]) -> None:
        """Zip ``files`` and store the archive at s3://bucket/key (bucket created if needed)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        self.put_object(bucket, key, buffer.getvalue())

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        """Store raw bytes in moto directly (no request, nothing recorded)."""
        backend = self._s3_backend()
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, self.config.region)
        backend.put_object(bucket, key, body)

    def read_object(self, bucket: str, key: str) -> bytes:
        """The bytes stored at s3://bucket/key, e.g. an output artifact the worker wrote."""
        stored = self._s3_backend().get_object(bucket, key)
        if stored is None:
            raise KeyError(f"s3://{bucket}/{key}")
        return bytes(stored.value)

    def _s3_backend(self) -> Any:
        return s3_backends[self.account_id]["aws"]

    def _drop_s3_data(self) -> None:
        """Free this emulator's buckets: moto's bucket namespace is process-wide."""
        backend = self._s3_backend()
        for bucket in list(backend.buckets.values()):
            for stored in bucket.keys.values():
                if isinstance(stored, FakeKey):
                    stored.dispose()
            s3_backends.bucket_accounts.pop(bucket.name, None)
        backend.buckets.clear()

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        route = self._route(request)
        if route is None:
            foreign = _signing_service(request)
            if foreign not in (None, "s3"):
                return self._unserved(foreign, request, start_response)
            return self._s3(environ, start_response)
        service, backend, operation, protocol = route
        response = self._api(service, backend, operation, protocol, request.get_data())
        headers = [*response.headers.items(), ("Content-Length", str(len(response.body)))]
        start_response(_status_line(response.status), headers)
        return [response.body]

    def _unserved(self, name: str, request: Request, start_response: StartResponse) -> Iterable[bytes]:
        """A request for a service the emulator lacks: the test cannot be trusted, so it is a bug."""
        target = request.headers.get("X-Amz-Target") or request.path
        self._bug(f"request for a service the emulator does not serve: {name} ({target})")
        self._record(ApiCall(name, target, {}, "UnknownServiceException", "unknown"))
        body = json.dumps({"__type": "UnknownServiceException", "message": f"the emulator does not serve {name}"})
        start_response(_status_line(400), [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
        return [body.encode()]

    def _route(self, request: Request) -> tuple[Service, Any, str, str] | None:
        if request.headers.get("smithy-protocol") == "rpc-v2-cbor":
            match = _CBOR_PATH.search(request.path)
            if match and request.method == "POST":
                name = match.group(1).rsplit(".", 1)[-1]
                found = self._services.get(name)
                if found and CBOR in found[0].protocols:
                    return found[0], found[1], match.group(2), CBOR
        target = request.headers.get("X-Amz-Target", "")
        prefix, _, operation = target.partition(".")
        found = self._services.get(prefix)
        if found and JSON in found[0].protocols:
            return found[0], found[1], operation, JSON
        return None

    def _api(self, service: Service, backend: Any, operation: str, protocol: str, body: bytes) -> WireResponse:
        model = service.operation(operation)
        params: dict[str, Any] = {}
        try:
            if model is None:
                self._bug(f"unimplemented operation {service.name} {operation}")
                raise ApiError("UnknownOperationException", f"{service.name} has no operation {operation}")
            params = decode_request(protocol, model, body)
            hit = self._meet_fault(operation, params)
            injected = _injected_error(hit, "InternalFailure")
            if injected is not None and not hit.after:
                raise injected
            validate_request(model, params)
            result = backend.handle(operation, params)
            if hit is not None and hit.after and hit.hook is not None:
                hit.hook()
            problems = response_problems(model, result)
            if problems:
                raise _InvalidResponse(problems)
            if injected is not None:
                raise injected
            response = encode_response(protocol, model, result)
        except ApiError as exc:
            if exc.code == "UnknownOperationException" and model is not None:
                self._bug(f"unimplemented operation {service.name} {operation}")
            self._record(ApiCall(service.name, operation, params, exc.code, protocol))
            return encode_error(protocol, service, exc)
        except Exception as exc:  # noqa: BLE001 - an emulator bug: answer, and fail the run loudly
            self._bug(f"{service.name} {operation} {params!r}:\n{traceback.format_exc()}")
            self._record(ApiCall(service.name, operation, params, "EmulatorBug", protocol))
            return encode_error(protocol, service, ApiError("EmulatorBug", f"{type(exc).__name__}: {exc}"))
        self._record(ApiCall(service.name, operation, params, None, protocol))
        return response

    def _meet_fault(self, operation: str, params: Mapping[str, Any]) -> FaultHit | None:
        """Count the request against injected faults, wait out a delay (cut short by stop), run a receipt hook."""
        hit = self.faults.take(operation, params)
        if hit is not None and hit.delay:
            self._stopping.wait(hit.delay)
        if hit is not None and hit.hook is not None and not hit.after:
            hit.hook()
        return hit

    def _s3(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        bucket, key = _bucket_and_key(request.path)
        operation = _s3_operation(request.method, bucket, key, request.args, request.headers)
        access = S3Access(
            method=request.method,
            bucket=bucket,
            key=key,
            access_key_id=_access_key_id(request.headers.get("Authorization", ""), environ.get("QUERY_STRING", "")),
            range=request.headers.get("Range"),
            operation=operation,
        )
        with self._lock:
            self._s3_accesses.append(access)
        params = {k: v for k, v in (("Bucket", bucket), ("Key", key)) if v is not None}
        hit = self._meet_fault(operation, params)
        injected = _injected_error(hit, "InternalError")
        status, headers, chunks = 0, [], []
        if injected is None or (hit is not None and hit.after):
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
            status, headers, chunks = _call_wsgi(_moto_s3_app(), environ)
            if hit is not None and hit.after and hit.hook is not None:
                hit.hook()
        code = None
        if injected is not None:
            code, status = injected.code, injected.status or _S3_ERROR_STATUS.get(injected.code, 400)
            headers, chunks = [("Content-Type", "application/xml")], [_s3_error_body(injected)]
        elif status >= 300:
            found = re.search(rb"<Code>([^<]+)</Code>", b"".join(chunks))
            code = found.group(1).decode() if found else str(status)
        self._record(ApiCall("s3", operation, params, code, "rest-xml"))
        start_response(_status_line(status), headers)
        return chunks


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _injected_error(hit: FaultHit | None, generic: str) -> ApiError | None:
    code = hit.error_code(generic) if hit is not None else None
    return ApiError(code, hit.message, hit.status) if hit is not None and code is not None else None


def _call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """Run a WSGI app to completion: status, headers, body chunks."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers
        return lambda _: None

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started["status"], started["headers"], chunks


class _InvalidResponse(Exception):
    """The emulator built a response its own service model rejects."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("response does not match the output shape: " + "; ".join(problems))


_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)$")
_S3_ERROR_STATUS = {"SlowDown": 503, "ServiceUnavailable": 503, "InternalError": 500, "AccessDenied": 403, "NoSuchKey": 404}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]+/[^/]+/[^/]+/([^/]+)/")


def _signing_service(request: Request) -> str | None:
    """The service a SigV4 request was signed for: an X-Amz-Target prefix we lack, or the credential scope."""
    if request.headers.get("X-Amz-Target"):
        return request.headers["X-Amz-Target"].partition(".")[0]
    found = _SCOPE_SERVICE.search(request.headers.get("Authorization", ""))
    if found:
        return found.group(1)
    credential = request.args.get("X-Amz-Credential", "")
    parts = credential.split("/")
    return parts[3] if len(parts) > 3 else None


def _access_key_id(authorization: str, query_string: str) -> str | None:
    """The access key id of a SigV4 request: Authorization header or presigned URL."""
    found = _CREDENTIAL.search(authorization)
    if found:
        return found.group(1)
    credential = parse_qs(query_string).get("X-Amz-Credential")
    if credential:
        return credential[0].split("/", 1)[0]
    legacy = parse_qs(query_string).get("AWSAccessKeyId")
    return legacy[0] if legacy else None


def _bucket_and_key(path: str) -> tuple[str | None, str | None]:
    """Path-style addressing, which botocore uses for an IP-address endpoint."""
    parts = path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0]) or None
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    return bucket, key


def _s3_operation(method: str, bucket: str | None, key: str | None, args: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The S3 API operation a REST request stands for (the common ones; enough for faults)."""
    if bucket is None:
        return "ListBuckets"
    if key is None:
        if method == "GET":
            return "ListObjectsV2" if args.get("list-type") == "2" else "ListObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, f"Bucket{method}")
    if method == "PUT":
        if "partNumber" in args:
            return "UploadPart"
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in args else "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in args else "DeleteObject"
    return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, f"Object{method}")


def _s3_error_body(error: ApiError) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
        f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
    ).encode()
