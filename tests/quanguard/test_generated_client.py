"""A client generated from the live ``/openapi.json`` with ``openapi-python-client``
works against a running server: the spec and the server agree (issue 14)."""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.served import Served

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# The generator knows JSON, forms and application/octet-stream; the raw bodies (NDJSON,
# CSV, TSV, text) are declared as binary and mapped to octet-stream handling, as the
# README tells integrators to do.
CONFIG = """\
post_hooks: []
content_type_overrides:
  application/x-ndjson: application/octet-stream
  text/csv: application/octet-stream
  text/tab-separated-values: application/octet-stream
  text/plain: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not GENERATOR.exists():
        pytest.fail("openapi-python-client is not installed (dev extra)")
    root = tmp_path_factory.mktemp("genclient")
    served = Served(root / "svc")
    served.start()
    try:
        spec = httpx.get(f"{served.url}/openapi.json", timeout=30).json()
        (root / "openapi.json").write_text(json.dumps(spec), encoding="utf-8")
        (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
        pkg = root / "pkgs"
        run = subprocess.run(
            [str(GENERATOR), "generate", "--path", str(root / "openapi.json"), "--meta", "none",
             "--output-path", str(pkg / "qg_generated"), "--config", str(root / "config.yaml")],
            capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Endpoint will not be generated" not in run.stdout + run.stderr, run.stdout + run.stderr
        sys.path.insert(0, str(pkg))
        try:
            yield served, importlib.import_module("qg_generated")
        finally:
            sys.path.remove(str(pkg))
            for name in [m for m in sys.modules if m == "qg_generated" or m.startswith("qg_generated.")]:
                del sys.modules[name]
    finally:
        served.stop()


def _client(served: Served, gen: Any, role: str) -> Any:
    return gen.AuthenticatedClient(base_url=served.url, token=served.make_key(role), timeout=60.0)


def test_generated_client_masks_json_and_csv(generated: Any) -> None:
    served, gen = generated
    mask = importlib.import_module("qg_generated.api.mask.mask_v1_mask_post")
    models = importlib.import_module("qg_generated.models")
    types = importlib.import_module("qg_generated.types")
    with _client(served, gen, "provider") as client:
        body = models.MaskV1MaskPostJsonBody.from_dict(
            {"records": [{"person": {"name": "张三", "phone": "13812345678"}, "n": 1}]})
        resp = mask.sync_detailed(client=client, body=body)
        assert resp.status_code == 200, resp.content
        out = json.loads(resp.content)["records"][0]
        assert out["n"] == 1 and isinstance(out["person"], dict)
        assert out["person"]["phone"] != "13812345678" and out["person"]["name"] != "张三"
        assert resp.parsed is not None and not isinstance(resp.parsed, models.Error)
        text = "姓名,联系电话\n张三,13812345678\n李四,13900001111\n"
        file = types.File(payload=io.BytesIO(text.encode("gbk")), file_name="客户.csv", mime_type="text/csv")
        # the generator parses only the first declared answer type (JSON): a CSV answer is
        # read raw, the request is the generated one
        resp = client.get_httpx_client().request(**mask._get_kwargs(body=file, profile="共享"))
        assert resp.status_code == 200, resp.content
        assert resp.request.headers["content-type"] == "text/csv"
        charset = resp.headers["content-type"].split("charset=")[1]
        rows = list(csv.reader(io.StringIO(resp.content.decode(charset))))
        assert rows[0] == ["姓名", "联系电话"] and "张三" not in resp.content.decode(charset)
        # the error envelope is what the spec says it is
        bad = mask.sync_detailed(client=client, body=models.MaskV1MaskPostJsonBody.from_dict({"records": []}))
        assert bad.status_code == 400 and isinstance(bad.parsed, models.Error)
        assert bad.parsed.error.kind == "invalid"


def test_generated_client_decides_and_posts_events(generated: Any) -> None:
    served, gen = generated
    decide = importlib.import_module("qg_generated.api.policy.decide_v1_policy_decide_post")
    batch = importlib.import_module("qg_generated.api.audit.post_batch_v1_events_batch_post")
    models = importlib.import_module("qg_generated.models")
    types = importlib.import_module("qg_generated.types")
    with _client(served, gen, "reporter") as client:
        resp = decide.sync_detailed(client=client, body=models.DecideIn.from_dict(
            {"principal": {"role": "consumer", "org": "市人社局"}, "action": "read_masked",
             "resource": {"grade": "L2", "dataset": "户籍人口"}}))
        assert resp.status_code == 200, resp.content
        assert resp.parsed.effect in ("allow", "deny", "approval_required")
        now = datetime.now(UTC).isoformat()
        lines = [{"ts": now, "actor": {"id": f"u{i}", "role": "analyst", "org": "市人社局"},
                  "action": "query", "dataset": "户籍人口", "rows": i} for i in range(3)]
        payload = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
        resp = batch.sync_detailed(client=client, body=types.File(payload=io.BytesIO(payload)))
        assert resp.status_code == 200, resp.content
        assert json.loads(resp.content)["accepted"] == 3
