"""PSI: N provider ids (default 1,000,000) × M consumer ids (default 10,000), through
the exchange (catalog decrypt, policy obligations, job, receipt, consumer-side client)
vs calling openmined-psi directly on the same sets.

    .venv/bin/python bench/exchange_psi.py [--provider-ids N] [--consumer-ids M]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import private_set_intersection.python as psi
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import parse_sizes
from _exchange_common import NoAudit, make_exchange, write_result

from exchange import PsiClient
from exchange.ports import Caller

FPR = 1e-9


def direct(server_ids: list[str], client_ids: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    server = psi.server.CreateWithNewKey(False)
    client = psi.client.CreateWithNewKey(False)
    setup = server.CreateSetupMessage(FPR, len(client_ids), server_ids)
    resp = server.ProcessRequest(client.CreateRequest(client_ids))
    size = client.GetIntersectionSize(setup, resp)
    return time.perf_counter() - t, int(size)


def result_json(n: int, m: int, t_direct: float, t_ours: float) -> dict[str, object]:
    return {
        "bench": "exchange_psi",
        "rows": [
            {"metric": "PSI wall time through the exchange", "ours": t_ours, "anchor": None,
             "ratio": None, "goal": None, "unit": "s", "met": None},
            {"metric": "PSI overhead: exchange time / openmined-psi direct", "ours": t_ours,
             "anchor": t_direct, "ratio": t_ours / t_direct, "goal": None, "unit": "s",
             "met": None},
        ],
        "notes": f"{n:,} provider ids x {m:,} consumer ids (half overlap), GCS fpr 1e-9, "
                 "count only, fresh server key per job; one run",
    }


def main() -> None:
    args = parse_sizes(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                       {"provider_ids": 50_000, "consumer_ids": 2_000},
                       provider_ids=1_000_000, consumer_ids=10_000)
    n, m = args.provider_ids, args.consumer_ids
    server_ids = [f"3701{i:012d}" for i in range(n)]
    # half of the consumer's ids are the provider's, half are not
    client_ids = [f"3701{(i * 97) % n:012d}" for i in range(m // 2)] + \
                 [f"9999{i:012d}" for i in range(m - m // 2)]
    expected = len(set(client_ids) & set(server_ids))

    t_direct, size_direct = direct(server_ids, client_ids)

    ex, sessions, _ = make_exchange(psi_reveal="count", row_limit=max(m, 1))
    with sessions() as s, s.begin():
        ex.register(s, NoAudit(), Caller("p", "provider", "prov"), name="ids",
                    table=pa.table({"id": server_ids}), key_columns=["id"], computations=["psi"])
    ex.catalog._cache.clear()
    t = time.perf_counter()
    local = PsiClient(client_ids, reveal="count")
    request = local.request()
    with sessions() as s, s.begin():
        _job, answer = ex.delivery.psi(s, NoAudit(), Caller("c", "consumer", "bank"), dataset="ids",
                             request=request)
    assert answer is not None
    outcome = local.finish(answer.setup, answer.response)
    t_ours = time.perf_counter() - t
    assert size_direct == expected, (size_direct, expected)
    assert outcome.intersection_size == expected, (outcome.intersection_size, expected)

    print(f"\n### exchange PSI — {n:,} provider ids × {m:,} consumer ids (count only)\n")
    print("| run | wall seconds | intersection | ratio |\n|---|---:|---:|---:|")
    print(f"| openmined-psi direct | {t_direct:.2f} | {size_direct} | 1.00x |")
    print(f"| exchange (decrypt + policy + job + receipt + client) | {t_ours:.2f} | "
          f"{outcome.intersection_size} | {t_ours / t_direct:.2f}x |")
    path = write_result("exchange_psi", result_json(n, m, t_direct, t_ours))
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
