"""pytest plugin: real object-store servers on this machine, for the remote-storage tests.

Load it with ``pytest_plugins = ["object_store_servers"]`` in a test module. Fixtures:

- ``aws_test_env`` (module): for the test module, dummy credentials in the environment
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` = ``TEST_SECRET``, ``AWS_REGION`` =
  us-east-1) and no AWS profile, config file or endpoint override; put back after the module, so
  other modules never see them. Every fixture below that talks to S3 uses it; a module whose
  tests read S3 themselves marks them ``pytest.mark.usefixtures("aws_test_env")``.
- ``s3_server`` (session): a moto S3 server (``moto[server]``) in a child process on a free port
  of 127.0.0.1, stopped by its pid at the end of the session. moto accepts any signed
  credentials and needs path-style addressing.
- ``s3_bucket`` (function): a fresh, empty bucket on ``s3_server``, named after the test.
- ``s3_auth_server`` (session): a second moto server that checks credentials (moto's IAM): the
  session's credentials are unknown to it and denied; ``.access_key`` / ``.secret_key`` are a user
  allowed ``s3:*``, and the bucket ``.bucket`` holds what tests put there with them.
- ``http_server`` (session): a folder served over HTTP by a child process, with Range requests
  (206, ``Content-Range``, 416) and 404 for folders and missing files.
- ``http_server_without_ranges`` (session): the same, ignoring Range headers (every GET answers
  200 and the whole file), as plain ``http.server`` and some static servers do.

The processes themselves are started by ``scripts/object_store_servers.py`` (also used by
``benches/bench_s3.py``). A server that cannot start fails the tests: nothing is skipped.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "object_store_servers.py"

REGION = "us-east-1"
TEST_ACCESS_KEY = "testing"
# Distinctive, so that tests can assert it never ends up in a spec, a pickle or a repr.
TEST_SECRET = "testing-secret-9f3c2a7e51d04b68"

# Variables that would point a client at other credentials, profiles or endpoints.
_CLEARED_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "AWS_ALLOW_HTTP",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_S3_ADDRESSING_STYLE",
                "AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "AWS_SKIP_SIGNATURE")
_bucket_numbers = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    """Dummy credentials for the whole session (unless the environment has some): processes
    started from a forkserver inherit the forkserver's environment, and the forkserver is
    started once per session, perhaps by a test module that runs before the remote tests, so
    setting them per module (``aws_test_env``) would leave those workers without any."""
    for name, value in {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
                        "AWS_REGION": REGION}.items():
        os.environ.setdefault(name, value)


def load_servers_script() -> ModuleType:
    """scripts/object_store_servers.py as a module (scripts/ is not a package)."""
    name = "bioimage_py_object_store_servers_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None, SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def bucket_name(hint: str) -> str:
    """A valid, unique S3 bucket name (3-63 of ``a-z0-9-``) derived from ``hint``."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    return f"b{next(_bucket_numbers):04d}-{slug or 'bucket'}"[:63].rstrip("-")


@dataclasses.dataclass
class S3Server:
    """A running moto S3 server.

    Attributes:
        endpoint_url: ``http://127.0.0.1:PORT``.
        region: the region every client uses.
        pid: the server child's process id.
    """

    endpoint_url: str
    region: str
    pid: int

    @property
    def storage_options(self) -> dict[str, Any]:
        """The keyword arguments of ``open_source``/``create_array`` that reach this server."""
        return {"endpoint_url": self.endpoint_url, "region": self.region}

    def client(self, **credentials: str) -> Any:
        """A boto3 S3 client of this server (the test credentials unless given)."""
        import boto3

        credentials = credentials or {"aws_access_key_id": TEST_ACCESS_KEY,
                                      "aws_secret_access_key": TEST_SECRET}
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            **credentials)

    def new_bucket(self, hint: str = "bucket", **credentials: str) -> str:
        """Create a fresh bucket (named after ``hint``) and return its name."""
        name = bucket_name(hint)
        self.client(**credentials).create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in ``bucket`` under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        keys = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        return sorted(keys)

    def put(self, bucket: str, key: str, value: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=value)

    def make_public(self, bucket: str) -> None:
        """Let anyone (unsigned requests too) list ``bucket`` and read its objects; moto,
        like S3, denies anonymous requests to a private bucket. (moto checks a HEAD of an object
        against the action ``s3:HeadObject``, where S3 checks ``s3:GetObject``: both allowed.)"""
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*",
            "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


@dataclasses.dataclass
class S3AuthServer(S3Server):
    """A moto S3 server that checks credentials; ``access_key``/``secret_key`` are allowed
    everything, the session's environment credentials nothing. ``bucket`` exists."""

    access_key: str = ""
    secret_key: str = ""
    bucket: str = ""

    @property
    def credentials(self) -> dict[str, str]:
        """boto3 keyword arguments of the allowed user."""
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables holding the allowed user's credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self, **credentials: str) -> Any:
        return super().client(**(credentials or self.credentials))


@dataclasses.dataclass
class HttpServer:
    """A running HTTP server of ``directory`` (with Range support).

    Attributes:
        base_url: ``http://127.0.0.1:PORT`` (no trailing slash): ``directory`` is its root.
        directory: the served folder; files written there are served at once.
        pid: the server child's process id.
    """

    base_url: str
    directory: Path
    pid: int

    def new_folder(self, hint: str) -> tuple[Path, str]:
        """A fresh empty folder inside ``directory`` and its URL."""
        name = bucket_name(hint)
        path = self.directory / name
        path.mkdir()
        return path, f"{self.base_url}/{name}"

    def url_of(self, path: str | os.PathLike[str]) -> str:
        """The URL of a file or folder inside ``directory``."""
        relative = Path(path).resolve().relative_to(self.directory.resolve())
        return f"{self.base_url}/{relative.as_posix()}"


@pytest.fixture(scope="session")
def object_store_servers_script() -> ModuleType:
    """scripts/object_store_servers.py as a module (to start private servers)."""
    return load_servers_script()


@pytest.fixture(scope="module")
def aws_test_env() -> Iterator[dict[str, str]]:
    """Dummy credentials and region in the environment for the test module; no profile, config
    file or endpoint override (all put back afterwards). Yields the variables set."""
    values = {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
              "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
              # no ~/.aws files: an empty config, so the chain ends at the environment
              "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
              # and no instance-metadata lookups (boto3, the AWS C SDK of tensorstore)
              "AWS_EC2_METADATA_DISABLED": "true"}
    with pytest.MonkeyPatch.context() as mp:
        for name in _CLEARED_ENV:
            mp.delenv(name, raising=False)
        for name, value in values.items():
            mp.setenv(name, value)
        yield values


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server in a child process (see the module docstring)."""
    script = load_servers_script()
    try:
        process = script.start_s3_server()
    except script.ServerError as exc:
        pytest.fail(f"the moto S3 server did not start: {exc}", pytrace=False)
    try:
        yield S3Server(endpoint_url=process.url, region=REGION, pid=process.pid)
    finally:
        process.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, aws_test_env: dict[str, str],
              request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket on ``s3_server``, named after the test."""
    return s3_server.new_bucket(request.node.name)


@pytest.fixture(scope="session")
def s3_auth_server() -> Iterator[S3AuthServer]:
    """A moto S3 server that denies the session's credentials (see the module docstring)."""
    import boto3

    script = load_servers_script()
    setup_requests = 3  # create the user, give it s3:*, create its access key
    try:
        process = script.start_s3_server(authenticate_after=setup_requests)
    except script.ServerError as exc:
        pytest.fail(f"the authenticating moto S3 server did not start: {exc}", pytrace=False)
    try:
        iam = boto3.client("iam", endpoint_url=process.url, region_name=REGION,
                           aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET)
        iam.create_user(UserName="allowed")
        iam.put_user_policy(UserName="allowed", PolicyName="s3-all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="allowed")["AccessKey"]
        server = S3AuthServer(endpoint_url=process.url, region=REGION, pid=process.pid,
                              access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
        server.bucket = server.new_bucket("locked")
        yield server
    finally:
        process.stop()


def _http_server(tmp_path_factory: pytest.TempPathFactory, ranges: bool) -> Iterator[HttpServer]:
    script = load_servers_script()
    directory = tmp_path_factory.mktemp("http_root" if ranges else "http_root_no_ranges")
    try:
        process = script.start_http_server(directory, ranges=ranges)
    except script.ServerError as exc:
        pytest.fail(f"the HTTP server did not start: {exc}", pytrace=False)
    try:
        yield HttpServer(base_url=process.url, directory=directory, pid=process.pid)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A folder served over HTTP with Range support by a child process."""
    yield from _http_server(tmp_path_factory, ranges=True)


@pytest.fixture(scope="session")
def http_server_without_ranges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A folder served over HTTP by a child process that ignores Range headers."""
    yield from _http_server(tmp_path_factory, ranges=False)
