"""ECDH private set intersection on openmined-psi.

The consumer runs :class:`PsiClient` on its own machine: it blinds its identifiers with a
key that never leaves it and sends only the blinded request. The service answers with
:func:`serve` — a fresh server key per job, the provider's key column (minus withdrawn
subjects) blinded into a Golomb-compressed set, and the re-blinded request. When policy
says ``psi_reveal: count`` the service's PSI server shuffles its answer, so the client
can only learn the size; with ``matches`` it learns which of its own items matched.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import private_set_intersection.python as _psi

from exchange.errors import InvalidQuery, Refused
from gmcrypto import Suite

REVEALS = ("count", "matches")
DEFAULT_FPR = 1e-9


# randomised response is computed for ε reduced by this share, a margin for the Golomb
# set's false-positive rate being an approximation
_RR_MARGIN = 0.9


@dataclass(frozen=True)
class CountNoise:
    """Randomised response on each identifier of a count-only PSI.

    A member is counted with probability ``1 - flip``, a non-member with ``flip``
    (``flip = 1 / (1 + e^ε')``, ε' = 0.9 ε): adding or removing one person of the
    provider changes the chance of any count by at most e^ε. The consumer estimates the
    true size as ``(count - n * flip) / (1 - 2 * flip)``."""

    epsilon: float
    flip: float

    @classmethod
    def for_epsilon(cls, epsilon: float) -> CountNoise:
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise InvalidQuery(f"psi_count_epsilon must be a positive number, got {epsilon!r}")
        return cls(epsilon, 1.0 / (1.0 + math.exp(_RR_MARGIN * epsilon)))

    def estimate(self, count: int, n: int) -> float:
        return (count - n * self.flip) / (1.0 - 2.0 * self.flip)

    def to_json(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "flip": self.flip}


@dataclass(frozen=True)
class PsiAnswer:
    setup: bytes
    response: bytes
    reveal: str
    noise: CountNoise | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of setup || response (the intl suite's result digest)."""
        h = hashlib.sha256()
        h.update(self.setup)
        h.update(self.response)
        return h.hexdigest()

    def digest_with(self, suite: Suite) -> str:
        """The result digest under ``suite`` (SM3 in gm): what the job's receipt names,
        with the receipt's ``hash_alg``. The PSI protocol itself (openmined-psi: P-256
        and SHA-256 inside) is suite-independent; only our record of it follows."""
        return self.digest if suite.hash_alg == "sha256" else suite.hexdigest(
            self.setup + self.response)


def request_size(request: bytes) -> int:
    """Number of blinded client items in a serialized request (raises InvalidQuery).

    Blinding is deterministic, so a repeated element is one identifier sent twice: it
    would pass ``psi_min_set_size`` with a single guess, and under ``psi_count_epsilon``
    its copies are independent randomised responses whose majority undoes the noise.
    A request with repeats is refused (an honest client sends each identifier once)."""
    msg = _psi.Request()
    try:
        msg.ParseFromString(request)
    except Exception as exc:  # protobuf raises DecodeError, a bare Exception subclass
        raise InvalidQuery("PSI request is not a valid openmined-psi Request") from exc
    n = len(msg.encrypted_elements)
    if len(set(msg.encrypted_elements)) != n:
        raise InvalidQuery("PSI request holds duplicate identifiers: send each identifier once")
    return n


def _randomise(response: _psi.Response, setup_fpr_items: int, noise: CountNoise) -> float:
    """Replace each re-blinded identifier by a random curve point with probability
    ``flip / (1 - flip)``; return the per-item false-positive rate the setup must have.

    Together: a member is counted with probability ``1 - q + q·f = 1 - f`` and a non-member
    (or a replaced one) with ``f`` — symmetric randomised response with ``f = flip``."""
    f = noise.flip
    q = f / (1.0 - f)
    elements = list(response.encrypted_elements)
    scale = 1 << 53
    chosen = [i for i in range(len(elements)) if secrets.randbelow(scale) < q * scale]
    if chosen:
        dummy = _psi.client.CreateWithNewKey(False).CreateRequest(
            [secrets.token_hex(16) for _ in chosen])
        for i, point in zip(chosen, dummy.encrypted_elements, strict=True):
            elements[i] = point
        del response.encrypted_elements[:]
        response.encrypted_elements.extend(elements)
    # the Golomb set over n_server hashes in a range of n_server / (rate / n_client) matches
    # a foreign hash with probability ~ 1 - exp(-rate / n_client · ...); ask for -ln(1 - f)
    return -math.log(1.0 - f) * setup_fpr_items


def serve(items: Sequence[str], request: bytes, *, reveal: str, max_client_items: int,
          fpr: float = DEFAULT_FPR, count_epsilon: float | None = None) -> PsiAnswer:
    """Answer one client request over the provider's ``items``; with ``count_epsilon``
    (count-only PSI) every identifier goes through randomised response (:class:`CountNoise`)."""
    if reveal not in REVEALS:
        raise InvalidQuery(f"psi_reveal must be one of {' '.join(REVEALS)}")
    n = request_size(request)
    if n == 0:
        raise InvalidQuery("PSI request holds no identifiers")
    if n > max_client_items:
        raise Refused(f"PSI request holds {n} identifiers; the limit is {max_client_items}")
    req = _psi.Request()
    req.ParseFromString(request)
    if req.reveal_intersection != (reveal == "matches"):
        raise Refused(f"policy allows PSI to reveal only the {reveal}; the request asked otherwise")
    server = _psi.server.CreateWithNewKey(reveal == "matches")
    try:
        response = server.ProcessRequest(req)
    except RuntimeError as exc:  # a blinded element that is not a curve point
        raise InvalidQuery("PSI request holds malformed blinded elements") from exc
    noise = None
    if count_epsilon is not None and reveal == "count":
        noise = CountNoise.for_epsilon(count_epsilon)
        fpr = _randomise(response, n, noise)
    setup = server.CreateSetupMessage(fpr, n, list(items))
    return PsiAnswer(setup.SerializeToString(), response.SerializeToString(), reveal, noise)


@dataclass(frozen=True)
class PsiOutcome:
    intersection_size: int
    matches: tuple[str, ...] | None


class PsiClient:
    """Consumer side. Keep the object between :meth:`request` and :meth:`finish` — or its
    :attr:`key` (secret: it unblinds the answer), to finish an approved request later."""

    def __init__(self, ids: Sequence[str], *, reveal: str, key: bytes | None = None) -> None:
        if reveal not in REVEALS:
            raise InvalidQuery(f"psi_reveal must be one of {' '.join(REVEALS)}")
        self.ids = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
        if not self.ids:
            raise InvalidQuery("no identifiers to intersect")
        self.reveal = reveal
        if key is None:
            self._client = _psi.client.CreateWithNewKey(reveal == "matches")
        else:
            try:
                self._client = _psi.client.CreateFromKey(key, reveal == "matches")
            except RuntimeError as exc:
                raise InvalidQuery("the saved PSI client key is not usable") from exc

    @property
    def key(self) -> bytes:
        return bytes(self._client.GetPrivateKeyBytes())

    def request(self) -> bytes:
        return bytes(self._client.CreateRequest(self.ids).SerializeToString())

    def finish(self, setup: bytes, response: bytes) -> PsiOutcome:
        s = _psi.ServerSetup()
        s.ParseFromString(setup)
        r = _psi.Response()
        r.ParseFromString(response)
        if self.reveal == "matches":
            idx = sorted(self._client.GetIntersection(s, r))
            return PsiOutcome(len(idx), tuple(self.ids[i] for i in idx))
        return PsiOutcome(int(self._client.GetIntersectionSize(s, r)), None)
