"""Government/policy prose with no personal data: the false-name regression set.

``policy_prose()`` returns at least 40,000 characters, all written for this project:
the hand-written paragraphs of ``policy_prose.txt`` (about 5,000 characters), sentences
composed from the phrase banks below (written here too; seeded, reproducible), and the
hand-written clauses recombined into new sentences, which puts clause boundaries next
to words they never touched in the originals.  A PERSON finding anywhere in it is a
false name.
"""

from __future__ import annotations

import random
from pathlib import Path

_HERE = Path(__file__).parent

SUBJECTS = ("各区县、各部门", "市大数据局", "市政府办公厅", "市发展改革委", "市财政局", "市委网信办",
            "市公安局", "市市场监管局", "市卫生健康委", "市民政局", "市教育局", "市住房城乡建设局",
            "市城管局", "市生态环境局", "市应急局", "市农业农村局", "市交通运输局", "市人力资源社会保障局",
            "各街道办事处", "各社区居委会", "市12345热线办公室", "市政务服务中心", "高新区管委会",
            "各级党委和政府", "相关行业主管部门", "市国资委", "市科技局", "市商务局", "市文化和旅游局",
            "市自然资源和规划局", "市水务局", "市审批服务局", "市医保局", "市退役军人事务局")
ADVERBS = ("要", "要切实", "应当", "要进一步", "要认真", "要持续", "要全面", "要加快", "要统筹", "要积极")
VERBS = ("加强", "完善", "推进", "落实", "健全", "深化", "优化", "提升", "规范", "强化", "统筹", "拓展",
         "加快", "推动", "建立", "探索", "组织开展", "持续推进", "全面落实", "扎实推进")
OBJECTS = ("数据共享交换平台建设", "政务服务标准化建设", "智慧社区应用场景", "养老服务设施布局",
           "全流程网上办理", "区块链存证应用", "公共数据分类分级管理", "数据安全风险评估",
           "热线诉求办理闭环管理", "电子证照共享互认", "一件事一次办改革", "营商环境评价",
           "企业开办便利化", "基层网格化治理", "老旧小区改造", "城市更新行动", "背街小巷整治",
           "智慧交通系统", "医养结合服务", "居家社区养老服务", "社区日间照料中心建设",
           "数据中心绿色化改造", "算力基础设施", "工业互联网平台", "人工智能产业集群",
           "政务信息系统整合", "网络安全等级保护", "密码应用安全性评估", "个人信息保护",
           "数据出境安全评估", "公共资源交易平台", "信用信息共享应用", "守信激励和失信惩戒",
           "应急物资储备", "安全生产专项整治", "防汛抗旱准备", "危险化学品监管", "食品药品安全监管",
           "义务教育优质均衡", "职业技能培训", "高校毕业生就业服务", "城乡居民医保",
           "困难群众基本生活保障", "残疾人关爱服务", "未成年人保护", "历史文化街区保护",
           "泉水保护", "黄河流域生态保护", "大气污染联防联控", "河湖长制", "垃圾分类",
           "农村人居环境整治", "高标准农田建设", "乡村特色产业", "村级集体经济",
           "轨道交通建设", "城市路网", "公交线网优化", "停车设施建设", "充电基础设施",
           "保障性租赁住房", "房地产市场平稳健康发展", "政府债务管理", "预算绩效管理",
           "国有资产监管", "科技成果转化", "高新技术企业培育", "人才服务一站式平台",
           "夜间经济", "文旅消费新业态", "自贸试验区制度创新", "跨境贸易便利化")
GOALS = ("确保各项任务落地见效", "切实解决群众急难愁盼问题", "不断提升企业和群众的获得感",
         "形成一批可复制可推广的经验做法", "为高质量发展提供有力支撑", "推动工作取得实质性进展",
         "打通政策落实的堵点和难点", "实现数据多跑路、群众少跑腿", "筑牢安全发展底线",
         "让改革成果更多更公平惠及全体人民民众", "营造市场化法治化国际化一流营商环境",
         "加快建设现代化强省会", "确保按期完成年度目标", "做到接诉即办、未诉先办")
TIMES = ("到2024年年底", "到2025年年底", "2023年", "今年以来", "十四五期间", "下一步", "近年来",
         "截至目前", "到2027年", "年内", "第一季度", "上半年", "明年年底前", "2022年年底前")
RESULTS = ("全市累计建成{n}个示范点", "覆盖率达到{p}%", "办理时限压缩{p}%", "新增就业岗位{n}个",
           "事项网办率达到{p}%", "群众满意率达到{p}%", "荣获全国优秀案例{k}项", "完成投资{n}亿元",
           "惠及群众{n}万人次", "累计归集数据{n}亿条", "培育龙头企业{k}家", "建成便民服务站{n}个")
CONNECT = ("同时", "此外", "与此同时", "在此基础上", "为此", "总体来看", "具体而言", "另外")


def _result(rng: random.Random) -> str:
    return rng.choice(RESULTS).format(n=rng.randint(12, 9800), p=rng.randint(30, 100), k=rng.randint(2, 30))


def _composed(rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    size = 0
    while size < target:
        parts = [(f"{rng.choice(TIMES)}，{rng.choice(SUBJECTS)}{rng.choice(ADVERBS)}"
                  f"{rng.choice(VERBS)}{rng.choice(OBJECTS)}，{rng.choice(VERBS)}{rng.choice(OBJECTS)}，"
                  f"{rng.choice(GOALS)}。")]
        if rng.random() < 0.6:
            parts.append(f"{rng.choice(CONNECT)}，{rng.choice(OBJECTS)}工作{_result(rng)}，"
                         f"{rng.choice(OBJECTS)}{_result(rng)}。")
        para = "".join(parts)
        out.append(para)
        size += len(para)
    return out


def handwritten() -> list[str]:
    text = (_HERE / "policy_prose.txt").read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _recombined(rng: random.Random, paras: list[str], target: int) -> list[str]:
    clauses = [c.strip("。") for p in paras for c in p.replace("。", "，").split("，") if len(c) > 3]
    out: list[str] = []
    size = 0
    while size < target:
        k = rng.randint(2, 4)
        para = "，".join(rng.sample(clauses, k)) + "。"
        out.append(para)
        size += len(para)
    return out


def policy_prose(seed: int = 7) -> list[str]:
    """Paragraphs totalling at least 40,000 characters (see module docstring)."""
    rng = random.Random(seed)
    hand = handwritten()
    return hand + _composed(rng, 22_000) + _recombined(rng, hand, 14_000)
