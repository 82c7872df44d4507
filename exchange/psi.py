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
from collections.abc import Sequence
from dataclasses import dataclass

import private_set_intersection.python as _psi

from exchange.errors import InvalidQuery, Refused

REVEALS = ("count", "matches")
DEFAULT_FPR = 1e-9


@dataclass(frozen=True)
class PsiAnswer:
    setup: bytes
    response: bytes
    reveal: str

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(self.setup)
        h.update(self.response)
        return h.hexdigest()


def request_size(request: bytes) -> int:
    """Number of blinded client items in a serialized request (raises InvalidQuery)."""
    msg = _psi.Request()
    try:
        msg.ParseFromString(request)
    except Exception as exc:  # protobuf raises DecodeError, a bare Exception subclass
        raise InvalidQuery("PSI request is not a valid openmined-psi Request") from exc
    return len(msg.encrypted_elements)


def serve(items: Sequence[str], request: bytes, *, reveal: str, max_client_items: int,
          fpr: float = DEFAULT_FPR) -> PsiAnswer:
    """Answer one client request over the provider's ``items``."""
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
    setup = server.CreateSetupMessage(fpr, n, list(items))
    return PsiAnswer(setup.SerializeToString(), response.SerializeToString(), reveal)


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
