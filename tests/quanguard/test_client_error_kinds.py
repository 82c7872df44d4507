"""The CLI's HTTP client turns every error reply into the service's own error, whose kind
(and so exit code) is the server's: from the error body, or from the status alone when a
proxy or a crash answered without one; a kind nobody here defined is ``unavailable``."""

from __future__ import annotations

import httpx
import pytest

from quanguard.cli.client import ServiceClient
from quanguard.errors import ERROR_TABLE, ErrorKind, ServiceError, classify


def _client(status: int, body: bytes, content_type: str = "application/json") -> ServiceClient:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return ServiceClient(httpx.Client(transport=httpx.MockTransport(answer)), base="http://qg")


def _raised(client: ServiceClient) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        client.get("/v1/whoami")
    return caught.value


@pytest.mark.parametrize("kind", sorted(ERROR_TABLE))
def test_every_kind_in_an_error_body_comes_back_as_itself(kind: ErrorKind) -> None:
    status, exit_code = ERROR_TABLE[kind]
    body = f'{{"error": {{"kind": "{kind}", "message": "from the server"}}}}'.encode()
    exc = _raised(_client(status, body))
    info = classify(exc)
    assert info is not None and info.kind == kind and info.exit_code == exit_code
    assert exc.message == "from the server"


@pytest.mark.parametrize("kind", sorted(k for k in ERROR_TABLE if k != "integrity"))
def test_a_status_without_our_body_is_read_by_the_error_table(kind: ErrorKind) -> None:
    status, _ = ERROR_TABLE[kind]
    exc = _raised(_client(status, b"<html>Bad Gateway</html>", "text/html"))
    info = classify(exc)
    assert info is not None and info.kind == kind and f"HTTP {status}" in exc.message


@pytest.mark.parametrize("body", [
    b'{"error": {"kind": "forbidden\\u0000", "message": "x"}}',
    b'{"error": {"kind": "__class__", "message": "x"}}',
    b'{"error": "forbidden"}', b'["error"]', b"\xff\xfe", b"",
])
def test_an_error_body_nobody_here_wrote_is_unavailable_or_the_status(body: bytes) -> None:
    info = classify(_raised(_client(502, body)))
    assert info is not None and info.kind == "unavailable"
