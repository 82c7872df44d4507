"""Loading of the recognizers' data tables under ``desensitize/data/``.

Tables are plain text (``#`` comments, whitespace separated) or TSV, read once and
cached.  A missing or malformed file raises :class:`RecognizerDataError`.
"""

from __future__ import annotations

from functools import cache

from desensitize.datafiles import mapping, read_lines, words
from desensitize.errors import RecognizerDataError

__all__ = ["NEGATIVE_CONTEXT", "area_codes", "context_words", "mapping", "words"]


@cache
def area_codes() -> frozenset[str]:
    """Landline area codes, ranges such as ``0530-0539`` expanded."""
    codes: set[str] = set()
    for number, line in enumerate(read_lines("area_codes.txt"), start=1):
        item = line.strip()
        low, _, high = item.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise RecognizerDataError(f"desensitize/data/area_codes.txt:{number}: bad code {item!r}")
        if not high:
            codes.add(low)
            continue
        width = len(low)
        codes.update(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return frozenset(codes)


def context_words(entity: str) -> list[str]:
    """Positive context words of ``entity`` (``context_words.tsv``)."""
    return list(mapping("context_words.tsv").get(entity, ()))


NEGATIVE_CONTEXT = (
    "订单", "单号", "流水号", "编号", "工单", "序列号", "批次", "文号", "受理号", "案号",
    "条码", "合同号", "发票", "凭证号", "快递单", "运单", "型号", "版本", "项目编码", "备案号",
)
