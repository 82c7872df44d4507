"""FF1 format-preserving encryption, NIST SP 800-38G (rev. 1), on AES from ``cryptography``.

``block="sm4"`` runs the same construction with SM4 (GB/T 32907, also a 128-bit block) as
its block cipher: the ``ff1-sm4`` operator of the gm crypto suite. NIST approves FF1 with
AES only; FF1-SM4 is tested for round-trips, not against published vectors (there are none).

FF3/FF3-1 are withdrawn; FF1 is the mode we use.  Numerals are integers in
``[0, radix)``; strings are mapped to numerals by the caller's alphabet.

Invariants (checked by tests against the NIST sample vectors, Samples 1–9):
    decrypt(encrypt(x, T), T) == x, len(encrypt(x)) == len(x), every output
    numeral < radix.

Raises :class:`desensitize.errors.DomainTooSmall` when ``radix ** n`` is below
:data:`MIN_DOMAIN` (1,000,000: SP 800-38G rev. 1 §5.2 requires radix^minlen >= 10^6),
:class:`desensitize.errors.OperatorError` for a bad key, radix or numeral.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from desensitize.errors import DomainTooSmall, OperatorError

MIN_DOMAIN = 1_000_000
MAX_LEN = 2**16  # far below the spec's 2^32 maximum; longer values are not identifiers


class FF1:
    """An FF1 cipher for one key and radix.  Thread-compatible, not thread-safe."""

    def __init__(self, key: bytes, radix: int, *, block: str = "aes") -> None:
        if block not in ("aes", "sm4"):
            raise OperatorError(f"FF1 block cipher must be aes or sm4, got {block!r}")
        if block == "sm4" and len(key) != 16:
            raise OperatorError(f"FF1-SM4 key must be 16 bytes, got {len(key)}")
        if len(key) not in (16, 24, 32):
            raise OperatorError(f"FF1 key must be 16, 24 or 32 bytes, got {len(key)}")
        if not 2 <= radix <= 2**16:
            raise OperatorError(f"FF1 radix must be in [2, 65536], got {radix}")
        self.radix = radix
        cipher = algorithms.SM4(key) if block == "sm4" else algorithms.AES(key)
        self._ecb = Cipher(cipher, modes.ECB()).encryptor()

    def _ciph(self, block: bytes) -> bytes:
        return self._ecb.update(block)

    def _prf(self, data: bytes) -> bytes:
        # CBC-MAC with a zero IV over 16-byte blocks (SP 800-38G, Algorithm 6).
        y = bytes(16)
        for j in range(0, len(data), 16):
            x = int.from_bytes(y, "big") ^ int.from_bytes(data[j : j + 16], "big")
            y = self._ciph(x.to_bytes(16, "big"))
        return y

    def _check(self, n: int) -> None:
        if n < 2 or n > MAX_LEN:
            raise OperatorError(f"FF1 input length must be in [2, {MAX_LEN}], got {n}")
        if self.radix**n < MIN_DOMAIN:
            raise DomainTooSmall(
                f"FF1 domain {self.radix}^{n} = {self.radix**n} is below {MIN_DOMAIN:,} values; "
                "format-preserving encryption would be guessable — use hash or encrypt"
            )

    def _num(self, xs: Sequence[int]) -> int:
        r = self.radix
        value = 0
        for x in xs:
            value = value * r + x
        return value

    def _str(self, value: int, m: int) -> list[int]:
        out = [0] * m
        r = self.radix
        for i in range(m - 1, -1, -1):
            value, out[i] = divmod(value, r)
        return out

    def _round_key(self, tweak: bytes, n: int, u: int, v: int) -> tuple[bytes, int, int]:
        radix = self.radix
        b = ((radix**v - 1).bit_length() + 7) // 8  # ceil(ceil(v*log2(radix))/8)
        d = 4 * ((b + 3) // 4) + 4
        p = (
            bytes([1, 2, 1])
            + radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + len(tweak).to_bytes(4, "big")
        )
        return p, b, d

    def _y(self, p: bytes, tweak: bytes, i: int, num: int, b: int, d: int) -> int:
        pad = bytes((-len(tweak) - b - 1) % 16)
        q = tweak + pad + bytes([i]) + num.to_bytes(b, "big")
        r = self._prf(p + q)
        s = r
        j = 1
        while len(s) < d:  # extend R by CIPH(R xor [j]^16) blocks
            s += self._ciph((int.from_bytes(r, "big") ^ j).to_bytes(16, "big"))
            j += 1
        return int.from_bytes(s[:d], "big")

    def encrypt(self, numerals: Sequence[int], tweak: bytes = b"") -> list[int]:
        """FF1.Encrypt (Algorithm 7)."""
        return self._crypt(numerals, tweak, decrypt=False)

    def decrypt(self, numerals: Sequence[int], tweak: bytes = b"") -> list[int]:
        """FF1.Decrypt (Algorithm 8)."""
        return self._crypt(numerals, tweak, decrypt=True)

    def _crypt(self, numerals: Sequence[int], tweak: bytes, *, decrypt: bool) -> list[int]:
        n = len(numerals)
        self._check(n)
        if any(not 0 <= x < self.radix for x in numerals):
            raise OperatorError(f"FF1 numeral out of range for radix {self.radix}")
        # 1-2. split; 3-5. round constants; 6. ten Feistel rounds.
        u = n // 2
        v = n - u
        p, b, d = self._round_key(tweak, n, u, v)
        radix = self.radix
        a = self._num(numerals[:u])
        bb = self._num(numerals[u:])
        mod_u, mod_v = radix**u, radix**v
        if not decrypt:
            for i in range(10):
                y = self._y(p, tweak, i, bb, b, d)
                mod = mod_u if i % 2 == 0 else mod_v
                a, bb = bb, (a + y) % mod
        else:
            for i in range(9, -1, -1):
                y = self._y(p, tweak, i, a, b, d)
                mod = mod_u if i % 2 == 0 else mod_v
                a, bb = (bb - y) % mod, a
        return self._str(a, u) + self._str(bb, v)

    def crypt_many(
        self, values: Sequence[int], n: int, tweaks: Sequence[bytes], *, decrypt: bool = False
    ) -> list[int]:
        """FF1 over many integers (each written with ``n`` numerals) at once.

        Same result as :meth:`encrypt_int` / :meth:`decrypt_int` per value; when the
        round block Q fits in one AES block (tweak + NUM bytes < 16) the AES calls
        of one round are made for all values together (ECB over the batch), which
        is where the time goes.  Otherwise it falls back to the one-by-one path.
        """
        self._check(n)
        u = n // 2
        v = n - u
        radix = self.radix
        mod_u, mod_v = radix**u, radix**v
        b = ((radix**v - 1).bit_length() + 7) // 8
        d = 4 * ((b + 3) // 4) + 4
        if any(not 0 <= x < radix**n for x in values):
            raise OperatorError(f"FF1 value out of range for {n} numerals of radix {radix}")
        if d > 16 or any(len(t) + b + 1 > 16 for t in tweaks):
            step = self.decrypt_int if decrypt else self.encrypt_int
            return [step(x, n, t) for x, t in zip(values, tweaks, strict=True)]
        if d == 8 and radix**n < 2**62 and values:
            return self._crypt_np(values, n, tweaks, decrypt=decrypt)
        heads = {}
        for t in set(tweaks):
            p = self._round_key(t, n, u, v)[0]
            y0 = int.from_bytes(self._prf(p), "big")  # CBC-MAC state after the P block
            heads[t] = (y0, t + bytes((-len(t) - b - 1) % 16))
        state = [(heads[t][0], heads[t][1], x // mod_v, x % mod_v) for x, t in zip(values, tweaks, strict=True)]
        a = [s[2] for s in state]
        bb = [s[3] for s in state]
        rounds = range(9, -1, -1) if decrypt else range(10)
        shift = 16 - d
        for i in rounds:
            ib = bytes([i])
            src = a if decrypt else bb
            blocks = b"".join(
                (y0 ^ int.from_bytes(pre + ib + x.to_bytes(b, "big"), "big")).to_bytes(16, "big")
                for (y0, pre, _, _), x in zip(state, src, strict=True)
            )
            r = self._ciph(blocks)
            mod = mod_u if i % 2 == 0 else mod_v
            ys = [int.from_bytes(r[j : j + 16], "big") >> (8 * shift) for j in range(0, len(r), 16)]
            if decrypt:
                a, bb = [(x - y) % mod for x, y in zip(bb, ys, strict=True)], a
            else:
                a, bb = bb, [(x + y) % mod for x, y in zip(a, ys, strict=True)]
        return [x * mod_v + y for x, y in zip(a, bb, strict=True)]

    def _crypt_np(
        self, values: Sequence[int], n: int, tweaks: Sequence[bytes], *, decrypt: bool
    ) -> list[int]:
        """The batch rounds with numpy: every quantity fits in 64 bits (d = 8, radix^n < 2^62)."""
        import numpy as np

        u = n // 2
        v = n - u
        radix = self.radix
        mod_u, mod_v = radix**u, radix**v
        b = ((radix**v - 1).bit_length() + 7) // 8
        index: dict[bytes, int] = {}
        heads: list[bytes] = []
        for t in tweaks:
            if t not in index:
                index[t] = len(heads)
                p = self._round_key(t, n, u, v)[0]
                pre = (t + bytes((-len(t) - b - 1) % 16)).ljust(16, b"\0")
                y0 = self._prf(p)
                heads.append(bytes(x ^ y for x, y in zip(y0, pre, strict=True)))
        table = np.frombuffer(b"".join(heads), dtype=np.uint8).reshape(-1, 16)
        base = table[np.fromiter((index[t] for t in tweaks), dtype=np.int64, count=len(tweaks))]
        x = np.fromiter(values, dtype=np.uint64, count=len(values))
        a, bb = x // np.uint64(mod_v), x % np.uint64(mod_v)
        pos_i = 15 - b
        for i in (range(9, -1, -1) if decrypt else range(10)):
            blk = base.copy()
            blk[:, pos_i] ^= np.uint8(i)
            src = a if decrypt else bb
            for k in range(b):
                blk[:, 15 - k] ^= ((src >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
            r = np.frombuffer(self._ciph(blk.tobytes()), dtype=np.uint8).reshape(-1, 16)
            y = np.ascontiguousarray(r[:, :8]).view(">u8").ravel().astype(np.uint64)
            mod = np.uint64(mod_u if i % 2 == 0 else mod_v)
            ym = y % mod
            if decrypt:
                a, bb = (bb + mod - ym) % mod, a
            else:
                a, bb = bb, (a + ym) % mod
        return [int(z) for z in (a * np.uint64(mod_v) + bb)]

    def encrypt_int(self, value: int, length: int, tweak: bytes = b"") -> int:
        """Encrypt an integer written with ``length`` numerals."""
        return self._num(self.encrypt(self._str(value, length), tweak))

    def decrypt_int(self, value: int, length: int, tweak: bytes = b"") -> int:
        return self._num(self.decrypt(self._str(value, length), tweak))
