"""The vectorised HMM pass (``desensitize.pos_hmm``) must cut and tag every run exactly
as jieba's own Viterbi search does: on the runs of real texts, on random strings, and on
small models full of ties and dead ends, where the tie-break decides the path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jieba.posseg
from hypothesis import given, settings
from hypothesis import strategies as st
from jieba.posseg.viterbi import viterbi

from desensitize.nlp import segment
from desensitize.pos_hmm import Model, hmm_cut
from tests.desensitize.data import prose_gen

DATA = Path(__file__).parent / "data"


def _jieba_cut(run: str) -> tuple[tuple[str, str], ...]:
    segment("")  # jieba loaded
    cut = jieba.posseg.POSTokenizer._POSTokenizer__cut
    return tuple((p.word, p.flag) for p in cut(jieba.posseg.dt, run))


def _runs() -> list[str]:
    texts = [json.loads(line)["text"] for path in sorted(DATA.glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts.append("\n".join(prose_gen.policy_prose())[:6000])
    runs: dict[str, None] = {}
    for text in texts:
        for block in jieba.posseg.re_han_detail.findall(text):
            for i in range(0, len(block), 5):
                for n in (2, 5):
                    runs[block[i:i + n]] = None
    return list(runs)


def test_every_run_of_the_labelled_texts_is_cut_as_jieba_cuts_it() -> None:
    runs = _runs()
    assert len(runs) > 1500
    assert [hmm_cut(r) for r in runs] == [_jieba_cut(r) for r in runs]


# common characters, surname and place characters, and rare ones jieba's table does not list
_CHARS = "的了在是我有和人这中大为上个国王李张刘陈杨经十路号区市省山东济南舜耕泺纬二丁豪龙奥金座" \
         "\u9fa0\u9fb0\u9fc0\u9fd0\u4dff\u3400"


@settings(deadline=None, max_examples=300)
@given(st.text(alphabet=_CHARS, min_size=1, max_size=14))
def test_random_runs_are_cut_as_jieba_cuts_them(run: str) -> None:
    assert hmm_cut(run) == _jieba_cut(run)


_STATES = [(p, t) for p in "BEMS" for t in ("x", "y", "z")]
_VALUES = st.sampled_from([-1.0, -2.0, -2.0, -3.14e100])


@st.composite
def _toy(draw: Any) -> tuple[dict[Any, float], dict[Any, dict[Any, float]], dict[Any, dict[str, float]],
                             dict[str, tuple[Any, ...]], str]:
    start = {s: draw(_VALUES) for s in _STATES}
    trans = {s: {y: draw(_VALUES) for y in draw(st.lists(st.sampled_from(_STATES), max_size=5, unique=True))}
             for s in _STATES}
    emit = {s: {c: draw(_VALUES) for c in draw(st.lists(st.sampled_from("abcd"), max_size=3, unique=True))}
            for s in _STATES}
    tab = {c: tuple(draw(st.lists(st.sampled_from(_STATES), min_size=1, max_size=6, unique=True)))
           for c in draw(st.lists(st.sampled_from("abc"), max_size=3, unique=True))}
    obs = draw(st.text(alphabet="abcde", min_size=1, max_size=6))
    return start, trans, emit, tab, obs


@settings(deadline=None, max_examples=200)
@given(_toy())
def test_ties_and_dead_ends_go_as_in_jieba(toy: Any) -> None:
    """Equal scores everywhere (the greatest previous state wins), -inf transitions, states
    with no successor (jieba's search raises there; ours answers None)."""
    start, trans, emit, tab, obs = toy
    try:
        _prob, expected = viterbi(obs, tab, start, trans, emit)
    except ValueError:
        expected = None
    assert Model(start, trans, emit, tab).viterbi(obs) == expected


def test_a_dead_end_is_left_to_jieba() -> None:
    dead, live = ("S", "x"), ("B", "x")
    start = {dead: -1.0, live: -math.inf}
    trans: dict[Any, dict[Any, float]] = {dead: {}, live: {dead: -1.0}}
    emit: dict[Any, dict[str, float]] = {dead: {"a": -1.0}, live: {}}
    tab = {"a": (dead,)}
    model = Model(start, trans, emit, tab)
    assert model.viterbi("a") == [dead]
    assert model.viterbi("aa") is None and hmm_cut("aa", model) is None


def test_a_character_no_state_of_which_can_follow_takes_the_states_that_can() -> None:
    first, follower, other = ("B", "x"), ("E", "x"), ("S", "x")
    start = {first: -1.0, follower: -1.0, other: -1.0}
    trans: dict[Any, dict[Any, float]] = {first: {follower: -math.inf}, follower: {}, other: {}}
    emit: dict[Any, dict[str, float]] = {first: {"a": -1.0}, follower: {}, other: {"b": -1.0}}
    tab = {"a": (first,), "b": (other,)}
    assert viterbi("ab", tab, start, trans, emit)[1] == [first, follower]
    assert Model(start, trans, emit, tab).viterbi("ab") == [first, follower]
