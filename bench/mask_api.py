"""One-record JSON mask through auth, policy, audit and response, against a bare JSON
echo route with the same auth dependency, side by side on one served app.

    python bench/mask_api.py [--requests 300] [--quick]

Prints p50, p99 (ms) and requests/s of each and the ratio mask/echo (goal ≥ 0.5), and
writes bench/results/mask_api.json. The two routes are measured in alternating turns so
that both see the same load of a shared machine; the CPU time per request (client and
server, one process) is printed beside them: on a loaded machine it is the steadier view.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Request

from quanguard.api.app import create_app
from quanguard.api.deps import PrincipalDep
from quanguard.auth import create_key
from quanguard.config import load_settings
from quanguard.container import build_container

RECORD = {"姓名": "张三", "联系电话": "13812345678", "编号": 7}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(root: Path) -> tuple[str, str, uvicorn.Server]:
    (root / "var").mkdir()
    settings = load_settings(data_dir=root / "var", key_dir=root / "var" / "keys", es_url=None,
                             db_url=f"sqlite:///{root / 'var' / 'qg.db'}",
                             policy_dir=Path(__file__).resolve().parents[1] / "policies")
    container = build_container(settings)
    with container.session() as s, s.begin():
        key = create_key(s, role="provider", org="市大数据局", name="bench").key
    app = create_app(container)

    @app.post("/bench/echo")
    async def echo(request: Request, caller: PrincipalDep) -> Any:
        return {"records": json.loads(await request.body())["records"], "caller": caller.name}

    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", key, server


def _run(client: httpx.Client, paths: tuple[str, ...], n: int, rounds: int = 10) -> dict[str, dict[str, float]]:
    """``n`` requests to each path, taken in turns of ``n // rounds`` so that both see the
    same machine load (the machine is shared); per path p50, p99 and requests/s (the
    requests over the time spent in that path's turns)."""
    body = {"records": [RECORD]}
    for path in paths:
        for _ in range(10):  # warm-up (models, caches)
            assert client.post(path, json=body).status_code == 200
    times: dict[str, list[float]] = {p: [] for p in paths}
    spent = dict.fromkeys(paths, 0.0)
    cpu = dict.fromkeys(paths, 0.0)  # CPU of the whole process (client and server) per turn
    per = max(1, n // rounds)
    while any(len(t) < n for t in times.values()):
        for path in paths:
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(min(per, n - len(times[path]))):
                t = time.perf_counter()
                resp = client.post(path, json=body)
                times[path].append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
            spent[path] += time.perf_counter() - start
            cpu[path] += time.process_time() - cpu_start
    out = {}
    for path, ts in times.items():
        ts.sort()
        out[path] = {"p50_ms": statistics.median(ts) * 1e3, "p99_ms": ts[int(0.99 * (len(ts) - 1))] * 1e3,
                     "req_s": len(ts) / spent[path], "cpu_ms": cpu[path] / len(ts) * 1e3}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="100 requests each")
    args = ap.parse_args()
    if args.quick:
        args.requests = 100
    with tempfile.TemporaryDirectory() as tmp:
        url, key, server = _serve(Path(tmp))
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
                got = _run(c, ("/bench/echo", "/v1/mask"), args.requests)
                echo, mask = got["/bench/echo"], got["/v1/mask"]
        finally:
            server.should_exit = True
    for name, r in (("echo", echo), ("mask", mask)):
        print(f"{name:5} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  {r['req_s']:8.1f} req/s  "
              f"CPU {r['cpu_ms']:5.2f} ms/request (client + server)")
    ratio = mask["req_s"] / echo["req_s"]
    print(f"ratio mask/echo {ratio:.2f} (goal >= 0.5); CPU ratio echo/mask "
          f"{echo['cpu_ms'] / mask['cpu_ms']:.2f}; load average {os.getloadavg()[0]:.2f}")
    rows = [{"metric": "one-record JSON mask req/s (auth+policy+audit) vs JSON echo with the same auth (ours/anchor)",
             "ours": round(mask["req_s"], 1), "anchor": round(echo["req_s"], 1), "ratio": round(ratio, 3),
             "goal": ">= 0.5", "unit": "req/s", "met": ratio >= 0.5}]
    for name, r in (("mask", mask), ("echo", echo)):
        for q in ("p50", "p99"):
            rows.append({"metric": f"{name} {q} latency", "ours": round(r[f"{q}_ms"], 2), "anchor": None,
                         "ratio": None, "goal": None, "unit": "ms", "met": None})
    rows.append({"metric": "CPU per request, client and server (echo/mask; the ratio a quiet machine tends to)",
                 "ours": round(mask["cpu_ms"], 3), "anchor": round(echo["cpu_ms"], 3),
                 "ratio": round(echo["cpu_ms"] / mask["cpu_ms"], 3), "goal": None, "unit": "ms", "met": None})
    out = Path(__file__).parent / "results" / "mask_api.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"bench": "mask_api", "rows": rows, "notes": (
        f"{args.requests} sequential requests each, in alternating turns, one client, in-process "
        f"uvicorn, SQLite; load average {os.getloadavg()[0]:.2f} at the end")}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
