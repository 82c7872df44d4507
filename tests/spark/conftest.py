"""One local[2] SparkSession for the whole test session (Spark starts in ~10 s) and a
small synthetic government table shared by the Spark tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from desensitize.operators.fpe import id_check_char, provinces

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红梅玉海燕志文博子涵浩然欣怡")
DISTRICTS = ["历下区", "市中区", "槐荫区", "天桥区", "历城区", "长清区", "章丘区", "济阳区"]


def make_people(rows: int, seed: int = 15) -> pa.Table:
    """编号, 姓名, 身份证号, 手机号, 邮箱, 性别, 年龄, 区县, 收入, 备注 — valid IDs and phones."""
    rng = np.random.default_rng(seed)
    names = [SURNAMES[a] + GIVEN[b] + (GIVEN[c] if c % 3 else "")
             for a, b, c in zip(rng.integers(0, len(SURNAMES), rows), rng.integers(0, len(GIVEN), rows),
                                rng.integers(0, len(GIVEN), rows), strict=True)]
    provs = provinces()
    ids = []
    for i in range(rows):
        body = (f"{provs[int(rng.integers(0, len(provs)))]}0102"
                f"{int(rng.integers(1950, 2005))}{int(rng.integers(1, 13)):02d}"
                f"{int(rng.integers(1, 29)):02d}{int(rng.integers(0, 1000)):03d}")
        ids.append(body + id_check_char(body))
    phones = [f"1{p}{int(n):08d}" for p, n in zip(rng.choice(["38", "39", "58", "86", "77"], rows),
                                                   rng.integers(0, 10**8, rows), strict=True)]
    emails = [f"user{i}@example.cn" for i in range(rows)]
    gender = rng.choice(["男", "女"], rows).tolist()
    age = [str(a) for a in rng.integers(18, 80, rows)]
    district = rng.choice(DISTRICTS, rows).tolist()
    income = [f"{v:.2f}" for v in rng.uniform(2000, 30000, rows)]
    remark = ["" if i % 7 == 0 else "按期办理" for i in range(rows)]  # empty cells on purpose
    return pa.table({
        "编号": [f"R{i:07d}" for i in range(rows)], "姓名": names, "身份证号": ids,
        "手机号": phones, "邮箱": emails, "性别": gender, "年龄": age, "区县": district,
        "收入": income, "备注": remark,
    })


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from quanguard.spark import get_session

    session = get_session("local[2]", app_name="quanguard-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def people_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark-data") / "people.csv"
    pacsv.write_csv(make_people(3_000), path)
    return path
