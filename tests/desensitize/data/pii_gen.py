"""Generators of valid Chinese PII values and labelled texts (deterministic by seed).

Used by the recognizer tests, ``bench/scan_accuracy.py`` and ``bench/scan_table.py``.
Two disjoint template sets: ``dev`` (tuned against) and ``heldout`` (only measured).
Run ``python tests/desensitize/data/pii_gen.py`` to write the JSONL sets next to it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

from faker import Faker

ID_REGIONS = ["370102", "370103", "370104", "370105", "370112", "370113", "370181", "110105",
              "110108", "310104", "440305", "320106", "510107", "420106", "610113", "330106",
              "370202", "371302", "130102", "410105", "650102", "542621", "230103", "450103"]
ID_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_A = "0123456789ABCDEFGHJKLMNPQRTUWXY"
MOBILE = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
          "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178",
          "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199"]
AREAS = ["0531", "010", "021", "0532", "0533", "0538", "020", "0755", "0536", "0539", "025"]
PROVS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PL = "ABCDEFGHJKLMNPQRSTUVWXYZ"
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯"]
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏宇浩然子涵思雨欣怡梓轩晨阳佳琪博文")
DOT_NAMES = ["买买提·艾力", "阿依古丽·吐尔逊", "古丽娜尔·买买提", "艾尔肯·吾守尔", "迪丽娜·热合曼", "约翰·史密斯"]
ROADS = ["经十路", "经十东路", "解放路", "泉城路", "历山路", "二环南路", "英雄山路", "舜耕路", "花园路",
         "工业南路", "山大路", "文化东路", "和平路", "北园大街", "泺源大街", "共青团路", "旅游路", "奥体中路",
         "工业北路", "济泺路", "纬二路", "经七路", "顺河街", "大明湖路", "燕山路", "朝阳路", "人民路", "中山路"]
PLACES = ["阳光小区", "龙奥金座", "丁豪广场", "鲁能康桥", "山水家园", "金域华府", "泉景花园", "佛山苑",
          "燕子山小区", "舜耕山庄", "绿地国际城", "恒大名都", "和谐广场", "银座花园", "东方新村"]
REGIONS = [("山东省", "济南市", "历下区"), ("山东省", "济南市", "市中区"), ("山东省", "济南市", "槐荫区"),
           ("山东省", "济南市", "天桥区"), ("山东省", "济南市", "历城区"), ("山东省", "青岛市", "市南区"),
           ("山东省", "济南市", "章丘区"), ("北京市", "", "朝阳区"), ("", "济南市", "高新区")]


def luhn_digit(body: str) -> str:
    """The Luhn check digit of ``body``, kept apart from ``desensitize.standards`` on purpose
    (the tests' oracle): from the right, the 1st, 3rd, ... digit counts doubled (digit sum)."""
    doubled = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
    total = sum(int(c) if i % 2 else doubled[int(c)] for i, c in enumerate(reversed(body)))
    return str(-total % 10)


def resident_id(rng: random.Random) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 65))
    body = rng.choice(ID_REGIONS) + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, ID_W)) % 11]


def uscc(rng: random.Random) -> str:
    body = (rng.choice("1599999YAN") + rng.choice("1239") + rng.choice(ID_REGIONS)
            + "".join(rng.choice(USCC_A) for _ in range(9)))
    total = sum(USCC_A.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return body + USCC_A[(31 - total % 31) % 31]


def bank_card(rng: random.Random, spaced: bool | None = None) -> str:
    prefix = rng.choice(["622202", "622848", "621700", "622588", "621226", "622262", "436742", "625965", "621483"])
    length = rng.choice([16, 19])
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - 7))
    num = body + luhn_digit(body)
    if spaced if spaced is not None else rng.random() < 0.3:
        num = " ".join(num[i:i + 4] for i in range(0, len(num), 4))
    return num


def mobile(rng: random.Random, style: int | None = None) -> str:
    n = rng.choice(MOBILE) + "".join(rng.choice("0123456789") for _ in range(8))
    style = rng.choice([0, 0, 0, 1, 2, 3]) if style is None else style
    return [n, f"{n[:3]}-{n[3:7]}-{n[7:]}", f"{n[:3]} {n[3:7]} {n[7:]}", f"+86 {n}"][style]


def landline(rng: random.Random) -> str:
    area = rng.choice(AREAS)
    local = rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(7))
    return rng.choice([f"{area}-{local}", f"({area}){local}", f"{area}{local}"])


def plate(rng: random.Random) -> str:
    p, a = rng.choice(PROVS), rng.choice("ABCDEFGH")
    kind = rng.random()
    if kind < 0.25:
        return f"{p}{a}{rng.choice('DF')}{rng.choice('0123456789ABCDEFGHJK')}{rng.randrange(10000):04d}"
    if kind < 0.35:
        return f"{p}{a}{rng.randrange(100000):05d}{rng.choice('DF')}"
    serial = [rng.choice("0123456789") for _ in range(5)]
    for _ in range(rng.choice([0, 1, 1, 2])):
        serial[rng.randrange(5)] = rng.choice(PL)
    if sum(c.isdigit() for c in serial) < 2:
        serial[0] = serial[1] = "8"
    sep = rng.choice(["", "", "", "·"])
    return f"{p}{a}{sep}{''.join(serial)}"


def passport(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return "E" + f"{rng.randrange(10**8):08d}"
    if kind < 0.8:
        return "E" + rng.choice(PL) + f"{rng.randrange(10**7):07d}"
    return "G" + f"{rng.randrange(10**8):08d}"


def person(rng: random.Random, fake: Faker) -> str:
    r = rng.random()
    if r < 0.08:
        return rng.choice(COMPOUND) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
    if r < 0.12:
        return rng.choice(DOT_NAMES)
    return fake.name()


def address(rng: random.Random, *, full_region: bool | None = None) -> str:
    prov, city, dist = rng.choice(REGIONS)
    r = rng.random() if full_region is None else (0.1 if full_region else 0.9)
    prefix = (prov + city + dist) if r < 0.3 else (city + dist) if r < 0.6 else dist if r < 0.85 else ""
    road = rng.choice(ROADS) + f"{rng.randrange(1, 3000)}号"
    tail = ""
    t = rng.random()
    if t < 0.4:
        tail = rng.choice(PLACES) + f"{rng.randrange(1, 30)}号楼{rng.randrange(1, 6)}单元{rng.randrange(1, 30)}{rng.randrange(1, 4):02d}室"
    elif t < 0.55:
        tail = f"{rng.randrange(1, 20)}号楼{rng.randrange(1, 30)}{rng.randrange(1, 4):02d}室"
    if rng.random() < 0.15 and not tail:
        return prefix + rng.choice(PLACES) + f"{rng.randrange(1, 30)}号楼{rng.randrange(1, 6)}单元{rng.randrange(1, 30)}01室"
    return prefix + road + tail


def email(rng: random.Random, fake: Faker) -> str:
    if rng.random() < 0.5:
        return fake.email()
    user = rng.choice(["zhangwei", "li.na", "wangjg", "sdjn_2021", "liuyang88", str(rng.randrange(10**8, 10**10))])
    return user + "@" + rng.choice(["163.com", "qq.com", "126.com", "jinan.gov.cn", "sina.com", "foxmail.com"])


def ip(rng: random.Random, fake: Faker) -> str:
    return fake.ipv6() if rng.random() < 0.25 else fake.ipv4()


# -- labelled texts ----------------------------------------------------------------------

def _filler(rng: random.Random, fake: Faker) -> dict[str, object]:
    return {
        "PERSON": lambda: person(rng, fake), "PHONE_NUMBER": lambda: mobile(rng) if rng.random() < 0.8 else landline(rng),
        "CN_RESIDENT_ID": lambda: resident_id(rng), "LOCATION": lambda: address(rng),
        "EMAIL_ADDRESS": lambda: email(rng, fake), "IP_ADDRESS": lambda: ip(rng, fake),
        "CN_BANK_CARD": lambda: bank_card(rng), "CN_USCC": lambda: uscc(rng),
        "CN_LICENSE_PLATE": lambda: plate(rng), "CN_PASSPORT": lambda: passport(rng),
    }


SLOT_NAMES = {"P": "PERSON", "T": "PHONE_NUMBER", "I": "CN_RESIDENT_ID", "A": "LOCATION", "E": "EMAIL_ADDRESS",
              "IP": "IP_ADDRESS", "B": "CN_BANK_CARD", "U": "CN_USCC", "C": "CN_LICENSE_PLATE", "H": "CN_PASSPORT"}


def fill(template: str, rng: random.Random, fake: Faker) -> dict[str, object]:
    """Replace ``{P}``-style slots with generated values; return text and gold spans."""
    import re

    makers = _filler(rng, fake)
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\{(P|T|I|A|E|IP|B|U|C|H)\}", template):
        out.append(template[pos:m.start()])
        start = sum(len(s) for s in out)
        entity = SLOT_NAMES[m.group(1)]
        value = makers[entity]()  # type: ignore[operator]
        out.append(value)
        spans.append([start, start + len(value), entity])
        pos = m.end()
    out.append(template[pos:])
    return {"text": "".join(out), "spans": spans}


def templates(split: str) -> tuple[list[str], list[str]]:
    """(templates with slots, prose without personal data) of ``split``."""
    here = Path(__file__).parent
    data = json.loads((here / "templates.json").read_text(encoding="utf-8"))
    return data[split]["templates"], data[split]["prose"]


def labelled(split: str, n: int, seed: int = 7) -> list[dict[str, object]]:
    """``n`` labelled records of ``split`` (templates cycled), prose records included once."""
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    tpls, prose = templates(split)
    records = [fill(tpls[i % len(tpls)], rng, fake) for i in range(n)]
    records += [{"text": p, "spans": []} for p in prose]
    return records


if __name__ == "__main__":
    here = Path(__file__).parent
    for split, n in (("dev", 400), ("heldout", 400)):
        with (here / f"labelled_{split}.jsonl").open("w", encoding="utf-8") as fh:
            for rec in labelled(split, n):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    sys.stdout.write("written\n")
