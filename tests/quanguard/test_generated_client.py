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


def _models_and_types() -> tuple[Any, Any]:
    """The generated client's ``models`` and ``types`` modules."""
    return importlib.import_module("qg_generated.models"), importlib.import_module("qg_generated.types")


def _client(served: Served, gen: Any, role: str) -> Any:
    return gen.AuthenticatedClient(base_url=served.url, token=served.make_key(role), timeout=60.0)


def test_generated_client_masks_json_and_csv(generated: Any) -> None:
    served, gen = generated
    mask = importlib.import_module("qg_generated.api.mask.mask_v1_mask_post")
    models, types = _models_and_types()
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
    models, types = _models_and_types()
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


def test_generated_client_scans_text_and_an_upload(generated: Any) -> None:
    served, gen = generated
    scan = importlib.import_module("qg_generated.api.scan.scan_v1_scan_post")
    models, types = _models_and_types()
    with _client(served, gen, "provider") as client:
        resp = scan.sync_detailed(client=client, body=models.ScanV1ScanPostJsonBody.from_dict(
            {"text": "张三的手机号是13812345678"}))
        assert resp.status_code == 200, resp.content
        parsed = resp.parsed
        assert not isinstance(parsed, models.Error)
        assert "PHONE_NUMBER" in {f.entity for f in parsed.findings} and isinstance(parsed.grade, str)
        resp = scan.sync_detailed(client=client, body=models.ScanV1ScanPostJsonBody.from_dict(
            {"texts": ["联系电话13812345678", "无"]}))
        assert resp.status_code == 200, resp.content
        assert [len(r.findings) > 0 for r in resp.parsed.results] == [True, False]
        csv_text = "姓名,联系电话\n" + "".join(f"张{c},1381234{i:04d}\n" for i, c in enumerate("一二三四五六七八九十"))
        upload = models.ScanV1ScanPostFilesBody(
            file=types.File(payload=io.BytesIO(csv_text.encode()), file_name="客户.csv", mime_type="text/csv"),
            dataset="客户")
        resp = scan.sync_detailed(client=client, body=upload)
        assert resp.status_code == 200, resp.content
        report = resp.parsed
        assert report.dataset == "客户" and report.asset_id and report.version == 1
        assert {c.name: c.entity for c in report.columns}["联系电话"] == "PHONE_NUMBER"
        bad = scan.sync_detailed(client=client, body=models.ScanV1ScanPostJsonBody.from_dict({"texts": "x"}))
        assert bad.status_code == 400 and isinstance(bad.parsed, models.Error)
        # a body the route does not take: 415 with the accepted types, as the spec says
        raw = client.get_httpx_client().post("/v1/scan", content=csv_text.encode(),
                                             headers={"Content-Type": "text/csv"})
        assert raw.status_code == 415
        err = models.Error.from_dict(raw.json())
        assert err.error.kind == "unsupported_media"
        assert set(err.error.additional_properties.get("accepted", err.error.accepted or [])) == {
            "application/json", "multipart/form-data"}


def _members(n: int, phone: bool = False) -> bytes:
    rows = ["member,sex,income" + (",phone" if phone else "")]
    for i in range(n):
        rows.append(f"M{i:06d},{'男女'[i % 2]},{(i * 37) % 30000}" + (f",13{i:09d}" if phone else ""))
    return ("\n".join(rows) + "\n").encode()


def test_generated_client_registers_and_aggregates(generated: Any) -> None:
    served, gen = generated
    register = importlib.import_module("qg_generated.api.exchange.register_v1_exchange_datasets_post")
    aggregate = importlib.import_module("qg_generated.api.exchange.aggregate_v1_exchange_aggregate_post")
    models, types = _models_and_types()
    prov = gen.AuthenticatedClient(base_url=served.url, token=served.make_key("provider", org="市卫健委"),
                                   timeout=60.0)
    bank = gen.AuthenticatedClient(base_url=served.url, token=served.make_key("consumer", org="某银行"),
                                   timeout=60.0)
    with prov, bank:
        for name, phone in (("members", False), ("contacts", True)):
            resp = register.sync_detailed(client=prov, body=models.RegisterV1ExchangeDatasetsPostBody(
                name=name, key_column=["member"], bounds=["income=0:30000"],
                file=types.File(payload=io.BytesIO(_members(400, phone)), file_name=f"{name}.csv",
                                mime_type="text/csv")))
            assert resp.status_code == 201, resp.content
        body = models.AggregateBody(dataset="members", agg="mean", column="income", by=["sex"], epsilon=1.0)
        resp = aggregate.sync_detailed(client=bank, body=body)
        assert resp.status_code == 200, resp.content
        job = resp.parsed
        assert isinstance(job, models.Job) and job.status == "done" and job.dataset == "members"
        assert {g["group"]["sex"] for g in job.result} == {"男", "女"}
        assert job.additional_properties["epsilon_spent"] == 1.0
        # an L3 dataset waits for a manager: 202 with the job, declared as such
        resp = aggregate.sync_detailed(client=bank, body=models.AggregateBody(
            dataset="contacts", agg="count", by=["sex"], epsilon=0.5))
        assert resp.status_code == 202, resp.content
        assert isinstance(resp.parsed, models.Job) and resp.parsed.status == "pending_approval"
        get_job = importlib.import_module("qg_generated.api.exchange.get_job_v1_exchange_jobs_job_id_get")
        again = get_job.sync_detailed(resp.parsed.job, client=bank)
        assert again.status_code == 200 and isinstance(again.parsed, models.Job)
        assert again.parsed.status == "pending_approval" and again.parsed.dataset == "contacts"
        # refused by policy: the error envelope
        resp = aggregate.sync_detailed(client=bank, body=models.AggregateBody(
            dataset="members", agg="count", by=["member"]))
        assert resp.status_code == 403 and isinstance(resp.parsed, models.Error)
        assert resp.parsed.error.kind == "forbidden" and "M000" not in resp.content.decode()
