"""Loading of the recognizers' data tables under ``desensitize/data/``.

Tables are plain text (``#`` comments, whitespace separated) or TSV, read once and
cached.  A missing or malformed file raises :class:`RecognizerDataError`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from desensitize.errors import RecognizerDataError


def _read(name: str) -> list[str]:
    try:
        text = resources.files("desensitize").joinpath("data", name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError) as exc:
        raise RecognizerDataError(f"desensitize/data/{name}: cannot be read ({exc})") from exc
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@cache
def words(name: str) -> frozenset[str]:
    """Every whitespace-separated token of a ``.txt`` table."""
    return frozenset(tok for line in _read(name) for tok in line.split())


@cache
def mapping(name: str) -> dict[str, tuple[str, ...]]:
    """A TSV table ``key<TAB>values...`` as key -> tuple of whitespace-separated values."""
    out: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(_read(name), start=1):
        key, sep, rest = line.partition("\t")
        if not sep or not key.strip():
            raise RecognizerDataError(f"desensitize/data/{name}:{number}: expected key<TAB>values")
        out[key.strip()] = tuple(rest.split())
    return out


@cache
def area_codes() -> frozenset[str]:
    """Landline area codes, ranges such as ``0530-0539`` expanded."""
    codes: set[str] = set()
    for number, line in enumerate(_read("area_codes.txt"), start=1):
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
