"""Purposes and consent subjects written another way: withdrawals and deny rules held.

Attack (a consumer who wants the rows of people who said no, a careless provider):

* F1 — a provider recorded that four members withdrew their consent for 营销. The consumer
  asked for the same PSI with the purpose ``"营销 "`` (a trailing space), ``"营销\\u3000"``
  (an ideographic space), ``"营\\u200b销"`` (a zero-width space) — or with no purpose at
  all — and got all ten members back: the registry compared purposes byte for byte, and a
  request without a purpose was held only to withdrawals "for all purposes" (``*``).
* F1b — a withdrawal for all purposes written ``"* "`` was accepted (200, 4 subjects) and
  excluded nobody, for any purpose.
* F2 — a withdrawal listing a resident ID as ``...000x`` (lower-case check character) or
  ``370102-19500101-0003`` excluded nobody: the registry hashed the ID as written, the
  exclusion hashed the dataset's value as stored.
* F7 — an officer's deny rule ``conditions: {purposes: [营销]}`` was evaded by ``"营销 "``,
  ``" 营销"``, ``"营销\\u3000"`` or ``"营\\u200b销"``: the request fell through to a
  lower-priority allow rule.

Guarantee: a purpose is compared in one written form (``exchange.purposes``: NFKC, format
and other default-ignorable characters removed, case folded, whitespace runs collapsed and
trimmed) by the policy engine (both the rule's list and the request) and by the consent
registry (recording and lookup); ``"* "`` is "all purposes"; a request without a purpose
(or with a blank one, or ``*``) is held to every withdrawal of the dataset; consent
subjects and dataset values are hashed in the same normal form (``exchange.family.normalise``
after dropping invisible characters). Withdrawals recorded before (purposes as written,
subjects ``strip()``-ed) still count, and a later grant lifts them.
"""

from __future__ import annotations

import base64
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from exchange import InvalidQuery, PsiClient
from exchange import consent as registry
from exchange.crypto import keyed_hash
from exchange.tables import METADATA, consent
from quanguard.container import Container, build_container
from quanguard.policy import Resource, SubjectRef, load_policy_dir, validate_policy_dir
from tests.conftest import auth, make_settings
from tests.quanguard.test_exchange_flows import csv_bytes, resident_id

REPO = Path(__file__).resolve().parents[2]
PROV, BANK = "市卫健委", "某银行"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = b"k" * 32

# Ways to write 营销 that a reader sees as 营销.
MARKETING = {
    "trailing space": "营销 ",
    "leading space": " 营销",
    "ideographic space": "营销\u3000",
    "zero-width space": "营\u200b销",
    "no-break space": "营销\u00a0",
    "byte-order mark": "\ufeff营销",
    "word joiner": "营\u2060销",
    "soft hyphen": "营\u00ad销",
    "tab and newline": "\t营销\n",
    "right-to-left mark": "营销\u200f",
    "variation selector": "营销\ufe0f",
}
# Ways to write "marketing" (a Latin purpose is compared case-insensitively).
LATIN = {
    "capitalised": "Marketing",
    "upper case": "MARKETING",
    "full-width letters": "ｍａｒｋｅｔｉｎｇ",
    "full-width upper case": "ＭＡＲＫＥＴＩＮＧ",
    "zero-width joiner": "market\u200ding",
    "no-break space": "\u00a0marketing",
}


# -- the one written form -------------------------------------------------------------------

@pytest.mark.parametrize(("written", "plain"), [
    *[(v, "营销") for v in MARKETING.values()],
    *[(v, "marketing") for v in LATIN.values()],
    ("direct   marketing", "direct marketing"),
    ("direct\u3000\u00a0marketing", "direct marketing"),
    ("* ", "*"),
    ("\uff0a", "*"),  # full-width asterisk
    ("\u200b*\u200b", "*"),
    ("科研", "科研"),
])
def test_one_written_form_of_a_purpose(written: str, plain: str) -> None:
    from exchange.purposes import normalise_purpose

    assert normalise_purpose(written) == plain
    assert normalise_purpose(plain) == plain  # idempotent


@pytest.mark.parametrize("blank", [None, "", " ", "\u3000", "\u200b", "\u200b \ufeff\u00a0", "\t\n"])
def test_a_blank_purpose_is_no_purpose(blank: str | None) -> None:
    from exchange.purposes import normalise_purpose

    assert normalise_purpose(blank) is None


def test_the_subject_normal_form_is_pinned() -> None:
    """Consent hashes are stored: a change to this form would void recorded withdrawals
    (the lookup also tries the form older records used, ``strip()``, and nothing else)."""
    from exchange.consent import subject_form

    rid = "37010219500101000X"
    for written in (rid, rid.lower(), "370102-19500101-000x", " 370102 19500101 000X ",
                    "３７０１０２１９５００１０１０００Ｘ", "370102\u200b19500101\u200b000X",
                    "370102.19500101.000X", "370102·19500101·000X"):
        assert subject_form(written) == rid, written
    assert subject_form("M000001") == "M000001"


# -- the consent registry -------------------------------------------------------------------

@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    yield sessionmaker(engine)
    engine.dispose()


def _withdraw(sessions: sessionmaker[Session], subjects: list[str], purpose: str,
              state: str = "withdrawn") -> int:
    with sessions() as s, s.begin():
        return registry.set_consent(s, dataset="d", hash_key=KEY, subjects=subjects,
                                    purpose=purpose, state=state, now=NOW)


def _kept(sessions: sessionmaker[Session], ids: list[str], purpose: str | None) -> list[str]:
    with sessions() as s:
        withdrawn = registry.withdrawn_hashes(s, dataset="d", purpose=purpose)
    table = registry.exclude_withdrawn(pa.table({"id": ids}), key_column="id", hash_key=KEY,
                                       withdrawn=withdrawn)
    kept: list[str] = table.column("id").to_pylist()
    assert registry.filter_ids(ids, hash_key=KEY, withdrawn=withdrawn) == kept
    return kept


IDS = [f"M{i:06d}" for i in range(10)]


@pytest.mark.parametrize("asked", list(MARKETING.values()), ids=list(MARKETING))
def test_a_purpose_written_another_way_is_held_to_the_withdrawal(
        sessions: sessionmaker[Session], asked: str) -> None:
    assert _withdraw(sessions, IDS[:4], "营销") == 4
    assert _kept(sessions, IDS, "营销") == IDS[4:]
    assert _kept(sessions, IDS, asked) == IDS[4:]
    assert _kept(sessions, IDS, "科研") == IDS  # another purpose is not withdrawn


@pytest.mark.parametrize("recorded", list(MARKETING.values()), ids=list(MARKETING))
def test_a_withdrawal_written_another_way_holds_for_the_plain_purpose(
        sessions: sessionmaker[Session], recorded: str) -> None:
    _withdraw(sessions, IDS[:4], recorded)
    assert _kept(sessions, IDS, "营销") == IDS[4:]
    assert _kept(sessions, IDS, "科研") == IDS


@pytest.mark.parametrize("asked", list(LATIN.values()), ids=list(LATIN))
def test_a_latin_purpose_is_compared_without_case_or_width(
        sessions: sessionmaker[Session], asked: str) -> None:
    _withdraw(sessions, IDS[:3], "marketing")
    assert _kept(sessions, IDS, asked) == IDS[3:]


@pytest.mark.parametrize("asked", [None, "", "   ", "\u3000", "\u200b", "*", "* ", "\uff0a"])
def test_a_request_without_a_purpose_is_held_to_every_withdrawal(
        sessions: sessionmaker[Session], asked: str | None) -> None:
    _withdraw(sessions, IDS[:2], "营销")
    _withdraw(sessions, IDS[2:3], "credit")
    _withdraw(sessions, IDS[3:4], "*")
    _withdraw(sessions, IDS[4:5], "营销", state="granted")
    assert _kept(sessions, IDS, asked) == IDS[4:]


@pytest.mark.parametrize("recorded", ["* ", " *", "\uff0a", "\u200b*", "*\u3000"])
def test_a_withdrawal_for_all_purposes_written_with_a_space_means_all(
        sessions: sessionmaker[Session], recorded: str) -> None:
    assert _withdraw(sessions, IDS[:4], recorded) == 4
    for asked in ("科研", "营销", None):
        assert _kept(sessions, IDS, asked) == IDS[4:]


@pytest.mark.parametrize("blank", ["", " ", "\u3000", "\u200b\ufeff", "\t"])
def test_consent_for_a_blank_purpose_is_refused(sessions: sessionmaker[Session], blank: str) -> None:
    with pytest.raises(InvalidQuery, match="purpose"):
        _withdraw(sessions, IDS[:4], blank)


def test_consent_for_an_overlong_purpose_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidQuery, match="purpose"):
        _withdraw(sessions, IDS[:1], "用途" * 101)


def test_a_withdrawal_names_the_subject_in_any_spelling(sessions: sessionmaker[Session]) -> None:
    ids = [resident_id(i) for i in range(300)]
    xs = [i for i in ids if i.endswith("X")][:3]
    others = [i for i in ids if not i.endswith("X")][:4]
    spelled = ([x.lower() for x in xs] + [f"{others[0][:6]}-{others[0][6:14]}-{others[0][14:]}",
               f" {others[1][:6]} {others[1][6:]}\u3000",
               others[2].translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
               f"{others[3][:9]}\u200b{others[3][9:]}"])
    assert _withdraw(sessions, spelled, "*") == 7
    assert not set(xs + others) & set(_kept(sessions, ids, "科研"))
    assert len(_kept(sessions, ids, "科研")) == 300 - 7


def test_a_dataset_spelling_is_matched_by_a_plain_withdrawal(sessions: sessionmaker[Session]) -> None:
    """The other side: the dataset holds the odd spellings, the withdrawal the plain IDs."""
    plain = [resident_id(i) for i in range(20)]
    stored = [f"{r[:6]}-{r[6:14]}-{r[14:]}".lower() for r in plain]
    _withdraw(sessions, plain[:5], "营销")
    assert _kept(sessions, stored, "营销 ") == stored[5:]


def test_withdrawals_recorded_before_still_count_and_a_grant_lifts_them(
        sessions: sessionmaker[Session]) -> None:
    """Rows the earlier code wrote: the purpose as typed, the subject ``strip()``-ed."""
    ids = ["m-1", "M000002", "M000003", "M000004"]
    with sessions() as s, s.begin():
        for subject, purpose in (("m-1", "营销 "), ("M000002", "营销\u3000"), ("M000003", "* ")):
            s.execute(consent.insert().values(dataset="d", subject_hash=keyed_hash(KEY, subject),
                                              purpose=purpose, state="withdrawn", updated_at=NOW))
    assert _kept(sessions, ids, "营销") == ["M000004"]
    assert _kept(sessions, ids, "科研") == ["m-1", "M000002", "M000004"]
    assert _kept(sessions, ids, None) == ["M000004"]
    # the provider grants again, in the plain spelling: the old rows follow
    _withdraw(sessions, ["m-1", "M000002"], "营销", state="granted")
    _withdraw(sessions, ["M000003"], "*", state="granted")
    assert _kept(sessions, ids, "营销") == ids
    assert _kept(sessions, ids, None) == ids


# -- the policy engine ----------------------------------------------------------------------

DENY_MARKETING = """
  - id: zz-no-marketing
    description: 使用方不得以营销为目的使用交换数据
    priority: 950
    roles: [consumer]
    actions: [psi, aggregate, extract]
    conditions: {purposes: [营销, Marketing]}
    effect: deny
"""


@pytest.fixture
def pol(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _add_rule(pol: Path, text: str) -> None:
    roles = pol / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8") + text, encoding="utf-8")


@pytest.mark.parametrize("asked", ["营销", *MARKETING.values(), "marketing", *LATIN.values()],
                         ids=["plain", *MARKETING, "lower case", *(f"latin {k}" for k in LATIN)])
def test_a_deny_rule_on_a_purpose_holds_for_every_spelling(pol: Path, asked: str) -> None:
    _add_rule(pol, DENY_MARKETING)
    policy = load_policy_dir(pol)
    who = SubjectRef(role="consumer", org=BANK)
    for action in ("aggregate", "psi"):
        d = policy.decide(who, action, Resource(grade="L2", dataset="members", owner_org=PROV,
                                                purpose=asked))
        assert (d.effect, d.rule_id) == ("deny", "zz-no-marketing"), d.reason
    other = policy.decide(who, "aggregate", Resource(grade="L2", owner_org=PROV, purpose="科研"))
    assert other.rule_id != "zz-no-marketing"


@pytest.mark.parametrize("asked", [None, "", "   ", "\u200b"], ids=["none", "empty", "blank", "zwsp"])
def test_a_deny_rule_on_a_purpose_holds_when_no_purpose_is_stated(pol: Path, asked: str | None) -> None:
    """Leaving the purpose out cannot rule out a forbidden one: a deny on purposes holds; an
    allow on purposes does not (it admits only the purposes it lists)."""
    _add_rule(pol, DENY_MARKETING)
    policy = load_policy_dir(pol)
    who = SubjectRef(role="consumer", org=BANK)
    d = policy.decide(who, "aggregate", Resource(grade="L2", dataset="members", owner_org=PROV,
                                                 purpose=asked))
    assert (d.effect, d.rule_id) == ("deny", "zz-no-marketing"), d.reason
    _add_rule(pol, DENY_MARKETING.replace("zz-no-marketing", "zz-only-research").replace(
        "effect: deny", "effect: allow").replace("[营销, Marketing]", "[科研]").replace(
        "priority: 950", "priority: 940"))
    policy = load_policy_dir(pol)
    d = policy.decide(who, "aggregate", Resource(grade="L2", dataset="members", owner_org=PROV,
                                                 purpose="科研"))
    assert d.rule_id == "zz-only-research", d.reason
    d = policy.decide(who, "aggregate", Resource(grade="L2", dataset="members", owner_org=PROV,
                                                 purpose=asked))
    assert d.rule_id == "zz-no-marketing", d.reason  # not the allow that lists a purpose


def test_a_rule_listing_a_purpose_written_oddly_holds_for_the_plain_one(pol: Path) -> None:
    _add_rule(pol, DENY_MARKETING.replace("[营销, Marketing]", '["营销\\u3000", "营\\u200b销 "]'))
    policy = load_policy_dir(pol)
    d = policy.decide(SubjectRef(role="consumer", org=BANK), "aggregate",
                      Resource(grade="L2", owner_org=PROV, purpose="营销"))
    assert d.rule_id == "zz-no-marketing"


def test_a_rule_built_in_code_is_compared_in_the_same_form() -> None:
    from quanguard.policy import PolicySet, Rule
    from quanguard.policy.model import Grade

    rule = Rule(id="no-mkt", priority=10, roles=frozenset({"consumer"}),
                actions=frozenset({"aggregate"}), grades=None, effect="deny",
                conditions=(("purposes", frozenset({"营销 ", "ＭＫＴ"})),))
    allow = Rule(id="ok", priority=1, roles=frozenset({"consumer"}),
                 actions=frozenset({"aggregate"}), grades=None, effect="allow", order=1)
    policy = PolicySet(version="v", files=(), grades=[Grade("L1", "L1")], categories=(),
                       default_grade="L1", rules=[rule, allow])
    who = SubjectRef(role="consumer", org=BANK)
    for asked in ("营销", "营\u200b销", "mkt", "Mkt "):
        assert policy.decide(who, "aggregate", Resource(purpose=asked)).rule_id == "no-mkt", asked
    assert policy.decide(who, "aggregate", Resource(purpose="科研")).rule_id == "ok"


@pytest.mark.parametrize(("listed", "fragment"), [
    ('["*"]', "not a wildcard"),
    ('["\\u200b"]', "no purpose"),
    ('["\\u3000\\u200b"]', "no purpose"),
])
def test_a_purpose_list_that_cannot_mean_what_it_says_is_refused(pol: Path, listed: str,
                                                                 fragment: str) -> None:
    _add_rule(pol, DENY_MARKETING.replace("[营销, Marketing]", listed))
    problems = validate_policy_dir(pol)
    assert any("zz-no-marketing" in p.message and fragment in p.message for p in problems), problems


# -- over HTTP, end to end ------------------------------------------------------------------

@pytest.fixture
def http(tmp_path: Path, pol: Path) -> Iterator[tuple[TestClient, Container]]:
    from quanguard.api.app import create_app

    _add_rule(pol, DENY_MARKETING)
    c = build_container(make_settings(tmp_path, policy_dir=pol))
    try:
        with TestClient(create_app(c)) as client:
            yield client, c
    finally:
        c.close()


@pytest.fixture
def keys(http: tuple[TestClient, Container]) -> dict[str, str]:
    from quanguard.auth import create_key

    _, c = http

    def key(role: str, org: str) -> str:
        with c.session() as s, s.begin():
            return create_key(s, role=role, org=org, name=f"{role}-seam").key

    return {"prov": key("provider", PROV), "bank": key("consumer", BANK)}


def _members(n: int = 400) -> bytes:
    rnd = random.Random(3)
    return csv_bytes({"member": [f"M{i:06d}" for i in range(n)],
                      "district": [rnd.choice(["历下区", "市中区", "槐荫区"]) for _ in range(n)],
                      "income": [rnd.randint(0, 30_000) for _ in range(n)]})


def _register(client: TestClient, key: str, name: str, body: bytes, **data: object) -> None:
    r = client.post("/v1/exchange/datasets", headers=auth(key), data={"name": name, **data},
                    files={"file": (f"{name}.csv", body, "text/csv")})
    assert r.status_code == 201, r.text


def _consent(client: TestClient, key: str, name: str, subjects: list[str], purpose: str) -> int:
    r = client.post(f"/v1/exchange/datasets/{name}/consent", headers=auth(key),
                    json={"subjects": subjects, "purpose": purpose, "state": "withdrawn"})
    assert r.status_code == 200, r.text
    return int(r.json()["subjects"])


def _psi(client: TestClient, key: str, ids: list[str], **extra: object) -> int:
    local = PsiClient(ids, reveal="matches")  # members is L2: consumer-psi reveals matches
    r = client.post("/v1/exchange/psi", headers=auth(key), json={
        "dataset": "members", "request": base64.b64encode(local.request()).decode(), **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    return local.finish(base64.b64decode(body["setup"]), base64.b64decode(body["response"])).intersection_size


def test_F1_psi_with_a_purpose_variant_or_none_honours_the_withdrawal(
        http: tuple[TestClient, Container], keys: dict[str, str]) -> None:
    client, _ = http
    _register(client, keys["prov"], "members", _members(), key_column="member")
    mine = IDS
    assert _consent(client, keys["prov"], "members", mine[:4], "科研") == 4
    assert _psi(client, keys["bank"], mine, purpose="科研") == 6
    assert _psi(client, keys["bank"], mine, purpose="科研 ") == 6
    assert _psi(client, keys["bank"], mine, purpose="科\u200b研\u3000") == 6
    # no purpose: held to every withdrawal (test_a_request_without_a_purpose_is_held_...);
    # here the marketing deny of this policy holds first, as no purpose cannot rule it out
    local = PsiClient(mine, reveal="matches")
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json={
        "dataset": "members", "request": base64.b64encode(local.request()).decode()})
    assert r.status_code == 403 and r.json()["error"]["rule_id"] == "zz-no-marketing", r.text
    assert _psi(client, keys["bank"], mine, purpose="反欺诈") == 10


def test_F1b_all_purposes_written_with_a_space(http: tuple[TestClient, Container],
                                                keys: dict[str, str]) -> None:
    client, _ = http
    _register(client, keys["prov"], "members", _members(), key_column="member")
    assert _consent(client, keys["prov"], "members", IDS[:4], "* ") == 4
    assert _psi(client, keys["bank"], IDS, purpose="科研") == 6
    r = client.post("/v1/exchange/datasets/members/consent", headers=auth(keys["prov"]),
                    json={"subjects": IDS[:4], "purpose": "\u200b \u3000", "state": "withdrawn"})
    assert r.status_code == 400, r.text


def test_F2_withdrawal_in_another_spelling_over_http(http: tuple[TestClient, Container],
                                                     keys: dict[str, str]) -> None:
    client, c = http
    ids = [resident_id(i) for i in range(300)]
    xs = [i for i in ids if i.endswith("X")][:3]
    others = [i for i in ids if not i.endswith("X")][:3]
    _register(client, keys["prov"], "res", csv_bytes({"rid": ids, "n": list(range(300))}),
              key_column="rid")
    spelled = [x.lower() for x in xs] + [f"{o[:6]}-{o[6:14]}-{o[14:]}" for o in others]
    assert _consent(client, keys["prov"], "res", spelled, "*") == 6
    ex = c.exchange
    with c.session() as s:
        left = set(ex.table(s, ex.catalog.get(s, "res"), "科研").column("rid").to_pylist())
    assert not set(xs + others) & left and len(left) == 294


@pytest.mark.parametrize("asked", ["营销 ", " 营销", "营销\u3000", "营\u200b销", "ＭＡＲＫＥＴＩＮＧ"])
def test_F7_deny_rule_on_a_purpose_over_http(http: tuple[TestClient, Container],
                                            keys: dict[str, str], asked: str) -> None:
    client, _ = http
    _register(client, keys["prov"], "members", _members(), key_column="member",
              bounds="income=0:30000")
    q = {"dataset": "members", "agg": "count", "epsilon": 0.1}
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]), json={**q, "purpose": asked})
    assert r.status_code == 403, r.text
    assert client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                       json={**q, "purpose": "科研"}).status_code == 200

