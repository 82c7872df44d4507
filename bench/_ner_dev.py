"""Person-name development data for ``bench/scan_accuracy.py`` and the candidate bench.

The public NER splits live outside the project, in ``../shared/data/ner/`` relative to
the project root, or in ``$QUANGUARD_NER_DIR`` (see that folder's README: they are used to measure and tune, never
shipped).  Each loader returns ``[(sentence, [(start, end), ...])]`` with the PERSON
spans of the sentence.  ``everyday()`` builds sentences from Faker ``zh_CN`` names in
everyday templates written for this project (seeded, reproducible).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# QUANGUARD_NER_DIR overrides the location (a worktree checked out elsewhere).
NER = Path(os.environ.get("QUANGUARD_NER_DIR") or ROOT.parent / "shared" / "data" / "ner")

Sample = tuple[str, list[tuple[int, int]]]


def _blocks(path: Path) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if cur:
                out.append(cur)
            cur = []
            continue
        if len(parts) < 2:
            continue
        cur.append((parts[0], parts[-1]))
    if cur:
        out.append(cur)
    return out


def _spans_bio(tags: list[str], person: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, tag in enumerate(tags + ["O"]):
        prefix, _, typ = tag.partition("-")
        inside = typ == person and prefix in ("I", "M", "E")
        if start is not None and not inside:
            spans.append((start, i))
            start = None
        if typ == person and prefix in ("B", "S") or (typ == person and prefix == "I" and start is None):
            if start is not None:
                spans.append((start, i))
            start = i
        if typ == person and prefix in ("S", "E") and start is not None:
            spans.append((start, i + 1))
            start = None
    return spans


def _load(path: Path, person: str, *, strip_digits: bool = False) -> list[Sample]:
    out = []
    for block in _blocks(path):
        chars = [c.rstrip("0123456789") if strip_digits and len(c) > 1 else c for c, _ in block]
        chars = [c if c else "0" for c in chars]
        text = "".join(chars)
        if len(text) != len(block):  # a multi-character token: keep offsets honest
            continue
        out.append((text, _spans_bio([t for _, t in block], person)))
    return out


SETS = {
    "resume dev": ("resume/dev.char.bmes", "NAME", False),
    "resume train (dev use)": ("resume/train.char.bmes", "NAME", False),
    "news dev (People's Daily)": ("peoples_daily/example.dev", "PER", False),
    "weibo dev": ("weibo/weiboNER_2nd_conll.dev", "PER.NAM", True),
    "weibo train (dev use)": ("weibo/weiboNER_2nd_conll.train", "PER.NAM", True),
}


def available() -> bool:
    return NER.is_dir()


def load(name: str) -> list[Sample]:
    rel, person, strip = SETS[name]
    return _load(NER / rel, person, strip_digits=strip)


_TEMPLATES = (
    "{n}：男，1975年出生，现任街道办事处主任。",
    "联系不上{n}，电话一直无人接听。",
    "请{n}于本周五前提交年度考核材料。",
    "{n}的邮箱是{e}，有事可以发邮件。",
    "昨天下午{n}来电反映小区供暖不热。",
    "社区网格员{n}上门登记了老人的情况。",
    "{n}说他明天上午九点到窗口办理。",
    "我和{n}是大学同学，毕业后一直有联系。",
    "据{n}介绍，今年新增就业岗位三百多个。",
    "经办人：{n}　复核人：{m}",
    "{n}、{m}两位同志负责本次检查。",
    "感谢{n}老师这一年来的耐心指导！",
    "{n}心里很不服气，又去找了物业。",
    "快递员把包裹交给了{n}。",
    "{n}今年六十八岁，独自居住在老城区。",
    "会议由{n}主持，{m}作总结发言。",
    "值班人员{n}及时发现并上报了险情。",
    "这件事{n}已经跟我们说过好几次了。",
    "请转告{n}，材料已经审核通过。",
    "患者{n}，女，于3月5日入院治疗。",
    "{n}同学在市级比赛中获得一等奖。",
    "明天让{n}去一趟税务局。",
    "{n}把钥匙落在了办公室。",
    "我们找到{n}的时候，他正在田里干活。",
    "被申请人{n}未按期履行调解协议。",
    "{n}，你的快递到了，请到门口取一下。",
    "{n}和{m}一起去了医院看望病人。",
    "听{n}讲，那条路下个月就能通车。",
    "村支书{n}带着大家修好了水渠。",
    "有位姓{s}的大姐，叫{n}，每天都来锻炼。",
)


def everyday(count: int = 600, seed: int = 12) -> list[Sample]:
    """Faker ``zh_CN`` names in the everyday templates above."""
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out: list[Sample] = []
    for i in range(count):
        tpl = _TEMPLATES[i % len(_TEMPLATES)] if i < len(_TEMPLATES) else rng.choice(_TEMPLATES)
        n, m = fake.name(), fake.name()
        while m == n:
            m = fake.name()
        text, spans, pos = "", [], 0
        rest = tpl
        while rest:
            k = rest.find("{")
            if k < 0:
                text += rest
                break
            text += rest[:k]
            key = rest[k + 1]
            rest = rest[k + 3:]
            value = {"n": n, "m": m, "e": fake.email(), "s": n[0]}[key]
            if key in "nm":
                spans.append((len(text), len(text) + len(value)))
            text += value
        del pos
        out.append((text, spans))
    return out
