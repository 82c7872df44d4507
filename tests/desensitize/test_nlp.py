"""``segment`` cuts a text of one block (Han characters, letters, digits) in a function
of its own; its words and tags must be jieba's on the address heads the address
recognizer segments, on random mixtures of every kind of character, and on edge cases."""

from __future__ import annotations

import random

import jieba.posseg
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.nlp import clear_caches, segment
from tests.desensitize.data import pii_gen


def _jieba(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((p.word, p.flag) for p in jieba.posseg.dt.cut(text))


def test_address_heads_are_cut_as_jieba_cuts_them() -> None:
    rng = random.Random(12)
    addresses = [pii_gen.address(rng, full_region=rng.random() < 0.5) for _ in range(300)]
    # what the address recognizer segments: up to 16 characters before a road or place
    heads = {a[max(0, i - n):i] for a in addresses for i in range(1, len(a) + 1) for n in (4, 9, 16)}
    clear_caches()
    assert [segment(h) for h in sorted(heads)] == [_jieba(h) for h in sorted(heads)]


# Han characters inside and outside jieba's block range, letters, digits, the other
# characters of a block (+#&._), spaces and punctuation that end one
_ALPHABET = "经十路舜耕泺源号楼单元室济南市历下区王小明的了在是称家住" "abcXYZ0123456789" "+#&._" " ，。\n" \
            "\u9fd6\u9fef\u3400\u4dbf〇"


@settings(deadline=None, max_examples=400)
@given(st.text(alphabet=_ALPHABET, max_size=20))
def test_any_text_is_cut_as_jieba_cuts_it(text: str) -> None:
    assert segment(text) == _jieba(text)


def test_equal_routes_go_to_the_longer_word_as_in_jieba() -> None:
    """甲|乙 and 甲乙 score the same in this dictionary (2/4 * 2/4 = 1/4, bit for bit):
    jieba's ``max`` over ``(score, end)`` takes the furthest end."""
    from desensitize.nlp import _cut_block

    toy = jieba.Tokenizer()
    toy.FREQ, toy.total, toy.initialized = {"甲": 2, "乙": 2, "甲乙": 1}, 4, True
    tagger = jieba.posseg.POSTokenizer(toy)
    for text in ("甲乙", "甲乙甲", "乙甲乙甲乙"):
        assert _cut_block(tagger, text) == tuple((p.word, p.flag) for p in tagger.cut(text))
    assert _cut_block(tagger, "甲乙")[0][0] == "甲乙"
