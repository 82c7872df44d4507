"""Accuracy floor on the held-out labelled set (templates never tuned against) and on
fresh hand-written cases; ordinary policy prose yields no findings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from desensitize.text_scan import TextScanner

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("scan_accuracy", Path(__file__).parents[2] / "bench" / "scan_accuracy.py")
bench = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

FRESH = [
    ("2024年3月12日，李秀英（女，身份证号37010519820315442X）来电称其母亲住在天桥区北园大街398号2号楼3单元602室，联系电话0531-86123456。",
     [("李秀英", "PERSON"), ("37010519820315442X", "CN_RESIDENT_ID"),
      ("天桥区北园大街398号2号楼3单元602室", "LOCATION"), ("0531-86123456", "PHONE_NUMBER")]),
    ("经办人 孙建军 联系电话 13905318888", [("孙建军", "PERSON"), ("13905318888", "PHONE_NUMBER")]),
    ("车主赵刚驾驶鲁A88E66小型轿车在花园路与二环东路交叉口发生剐蹭。", [("赵刚", "PERSON"), ("鲁A88E66", "CN_LICENSE_PLATE")]),
    ("市大数据局副局长王强出席会议并讲话。", [("王强", "PERSON")]),
    ("来访人员登记：马丽，护照EJ1234567，国籍中国。", [("马丽", "PERSON"), ("EJ1234567", "CN_PASSPORT")]),
    ("联系人：高建国（13705310001），地址：章丘区明水街道汇泉路1616号。",
     [("高建国", "PERSON"), ("13705310001", "PHONE_NUMBER"), ("章丘区明水街道汇泉路1616号", "LOCATION")]),
    ("居民钱文华家住槐荫区张庄路街道幸福小区7号楼1单元301室，反映楼道灯损坏。",
     [("钱文华", "PERSON"), ("槐荫区张庄路街道幸福小区7号楼1单元301室", "LOCATION")]),
    ("请将发票寄往济南市历下区龙奥北路1577号龙奥大厦B座。", [("济南市历下区龙奥北路1577号龙奥大厦B座", "LOCATION")]),
    ("服务器地址2001:da8:8000:1::80，端口443。", [("2001:da8:8000:1::80", "IP_ADDRESS")]),
    ("截至目前，济南市共有A级旅游景区87家，其中5A级2家、4A级29家。", []),
    ("许可证编号：JY13701020012345，有效期至2026年12月31日。", []),
    ("研究建立权威、中立、客观的数据资产评估体系，高新区管委会张贴通知。", []),

 ("来电人：刘芳，联系方式：0531 86061234，反映长清区大学路2688号附近路灯不亮。", [("刘芳","PERSON"),("0531 86061234","PHONE_NUMBER"),("长清区大学路2688号","LOCATION")]),
 ("申请人马晓东的手机号为13953112345，身份证号为370102198506123517。", [("马晓东","PERSON"),("13953112345","PHONE_NUMBER"),("370102198506123517","CN_RESIDENT_ID")]),
 ("经查，当事人司马南于2023年在市中区七里山路35号经营一家餐馆。", [("司马南","PERSON"),("市中区七里山路35号","LOCATION")]),
 ("全市共设立12345热线分中心16个，坐席480个，日均接听量3.2万件。", []),
 ("《济南市公共数据管理办法》第二十条规定，公共数据应当依法分类分级。", []),
 ("请于2024年6月30日前将材料报送至市大数据局数据资源处，联系电话：0531-51705678。", [("0531-51705678","PHONE_NUMBER")]),
 ("王女士反映：她家住在历下区甸柳庄小区12号楼，楼下商铺油烟扰民。", [("王女士","PERSON"),("历下区甸柳庄小区12号楼","LOCATION")]),
 ("赵建华、孙丽、周建明三人为本次评审专家。", [("赵建华","PERSON"),("孙丽","PERSON"),("周建明","PERSON")]),
 ("该企业统一社会信用代码为91370102MA3N1Q2W8E，注册资本500万元。", []),
 ("如有疑问请发送邮件至 sjj_zwgk@jinan.gov.cn 或拨打0531-12345。", [("sjj_zwgk@jinan.gov.cn","EMAIL_ADDRESS")]),
 ("入境人员阿布都热西提·买买提，护照号码E98765432，入住天桥区堤口路88号。", [("阿布都热西提·买买提","PERSON"),("E98765432","CN_PASSPORT"),("天桥区堤口路88号","LOCATION")]),
 ("2023年全市一般公共预算收入1085.6亿元，增长3.1%；税收收入占比76.4%。", []),
 ("车辆信息：鲁A·5B2C8，车主孟凡强。", [("鲁A·5B2C8","CN_LICENSE_PLATE"),("孟凡强","PERSON")]),
 ("监测发现192.168.10.25向外部地址45.77.12.9大量发送数据。", [("192.168.10.25","IP_ADDRESS"),("45.77.12.9","IP_ADDRESS")]),
 ("市长于海田主持召开市政府常务会议。", [("于海田","PERSON")]),
 ("本项目由山东浪潮云服务信息科技有限公司承建，合同金额2380万元。", []),
]

PROSE = [
 "依据GB/T 35273-2020《信息安全技术 个人信息安全规范》和JR/T 0171-2020开展评估。",
 "办公时间为工作日9:00-17:00，咨询热线0531-12345或400-8888-123。",
 "高质量发展取得新成效，王牌产业持续壮大，金融服务实体经济能力增强。",
 "方案提出，到2025年，全市数字经济核心产业增加值占GDP比重达到12%左右。",
 "于是，项目组周密部署，向各区县下发通知，和平推进各项工作。",
 "ISBN 978-7-111-12345-6，定价68.00元，2022年9月第1版。",
 "黄金、石油等大宗商品价格波动，江北片区安全生产形势总体向好。",
 "第一批试点单位包括市中区、槐荫区、天桥区、历城区和长清区。",
 "全年完成固定资产投资增长6.2%，其中高技术产业投资增长18.4%。",
 "根据国务院办公厅印发的国办发〔2022〕14号文件精神，制定本实施方案。",
 "浪潮集团、齐鲁制药、重汽集团等龙头企业带动作用明显。",
 "平台已汇聚52个部门的数据共计28.6亿条，日均交换量1200万条。",
 "合同编号HT-2023-0815-003，采购单位：济南市大数据局。",
 "数据中心机柜数量达到3.5万架，服务器超过25万台，IPv6流量占比达到60%。",
 "市民可通过爱山东APP、泉城办APP或拨打12345热线进行咨询。",
 "各区县要在10个工作日内完成自查，并于12月15日前报送市数据局。",
 "张家口、秦皇岛、周口、马鞍山等城市代表参加交流活动。",
 "高新区、历下区、市中区分别排名前三位，得分为96.5分、94.2分和93.8分。",
 "常住人口941.5万人，城镇化率74.2%，人均可支配收入5.2万元。",
]


def test_heldout_micro_f1_floor(scanner: TextScanner) -> None:
    records = bench.load("heldout")
    result = bench.evaluate(records, scanner)
    assert result["micro"]["f1"] >= 0.95, result["micro"]
    for entity, row in result["entities"].items():
        assert row["f1"] >= 0.9, (entity, row)
    assert result["prose_false_positives"] <= 1


@pytest.mark.parametrize("text,gold", FRESH)
def test_fresh_cases(scanner: TextScanner, text: str, gold: list[tuple[str, str]]) -> None:
    want = {(text.index(v), text.index(v) + len(v), e) for v, e in gold}
    got = {(f.start, f.end, f.entity) for f in scanner.scan(text)}
    assert got == want


@pytest.mark.parametrize("text", PROSE)
def test_policy_prose_is_clean(scanner: TextScanner, text: str) -> None:
    assert scanner.scan(text) == []


def test_labelled_prose_is_clean(scanner: TextScanner) -> None:
    prose = [json.loads(line) for line in (DATA / "labelled_dev.jsonl").read_text(encoding="utf-8").splitlines()]
    text = "\n".join(r["text"] for r in prose if not r["spans"])
    assert scanner.scan(text) == []
