"""Ed25519 (RFC 8032, pure, no prehash) in plain Python for the tap's MicroPython board, used
through tap.ed25519 when the board has no native module (tap/native).

Points are extended coordinates (X, Y, Z, T) over GF(2**255 - 19), integers throughout. Signing
multiplies the base point by a secret scalar through a fixed-base table (for k in 0..15 and j in
1..8 the affine point j * 16**(4k) * B, 8 KiB): 64 additions and 12 doublings instead of ~250
doublings and ~125 additions. The table is a file beside this module (ed25519_table.bin, written
by tools/tap_table.py), read one 64-byte entry at a time: held in the heap it took 9 KiB of the
96 KiB a tap has, and 64 small reads from flash cost far less than one signature's arithmetic.

Not constant-time: Python integers cannot be. A tap's key signs charges of its own fixed amount and
sits in a box in a park; an attacker who can time its signatures to the microsecond has the box.
"""

from tap import sha512
from tap.errors import BadSignature

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
D2 = 2 * D % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
_POINT_BYTES = 64  # a table entry: affine x, y, 32 bytes each, little-endian
TABLE_PATH = __file__.rsplit("/", 1)[0] + "/ed25519_table.bin"
_entry = bytearray(_POINT_BYTES)


# Every product here is of two numbers below 2**257, reduced before it meets a third: a product of
# three (770 bits) needs a 98-byte block for its digits, which a fragmented 96 KiB heap often lacks
# when a dozen 64-byte ones are free. The residues are the same.
def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 % P * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p1):
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = (h - (x1 + y1) * (x1 + y1)) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _add_affine(p1, x2, y2):
    """p1 + (x2, y2) where the second point has Z = 1 (a table entry): three multiplications fewer."""
    x1, y1, z1, t1 = p1
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 % P * (x2 * y2 % P) % P
    d = 2 * z1
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


_ZERO = (0, 1, 1, 0)


def _recover_x(y, sign):
    """The x with this y and sign bit, or None when there is none (not a point)."""
    if y >= P:
        return None
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = u * pow(v, 3, P) % P * pow(u * pow(v, 7, P) % P, (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * SQRT_M1 % P
        if (v * x * x - u) % P:
            return None
    if x == 0 and sign:
        return None
    return P - x if (x & 1) != sign else x


def encode_point(point):
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode_point(data):
    value = int.from_bytes(data, "little")
    y = value & ((1 << 255) - 1)
    x = _recover_x(y, value >> 255)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _table_point(table, k, j):
    """j * 16**(4k) * B from the open table file, affine (x, y); j in 1..8."""
    table.seek(((k * 8) + j - 1) * _POINT_BYTES)
    if table.readinto(_entry) != _POINT_BYTES:
        raise OSError("the Ed25519 table " + TABLE_PATH + " is short")
    return int.from_bytes(_entry[:32], "little"), int.from_bytes(_entry[32:], "little")


def _signed_nibbles(scalar):
    """Radix-16 digits of ``scalar`` (< 2**253: reduced mod L) in -8..8, lowest first: 64 of
    them, each stored plus 8 in a bytearray. Read from the scalar's bytes: shifting the scalar
    instead made 64 big integers, and a list of 64 took ten times the bytes."""
    raw = scalar.to_bytes(32, "little")
    digits = bytearray(64)
    carry = 0
    for i in range(64):
        digit = ((raw[i >> 1] >> (4 * (i & 1))) & 15) + carry
        carry = (digit + 8) >> 4
        digits[i] = digit - (carry << 4) + 8
    return digits


def base_multiply(scalar):
    """scalar * B. With signed radix-16 digits e_i, scalar = sum over r in 0..3 of 16**r * S_r,
    S_r = sum over k of e_(4k+r) * 16**(4k): each S_r from the table, then Horner in r."""
    digits = _signed_nibbles(scalar % L)
    with open(TABLE_PATH, "rb") as table:
        return _sum_table_points(digits, table)


def _sum_table_points(digits, table):
    result = _ZERO
    for r in range(3, -1, -1):
        if r != 3:
            for _ in range(4):
                result = _double(result)
        for k in range(16):
            digit = digits[4 * k + r] - 8
            if digit == 0:
                continue
            x, y = _table_point(table, k, digit if digit > 0 else -digit)
            result = _add_affine(result, P - x if digit < 0 else x, y)
    return result


def _multiply(scalar, point):
    """scalar * point, signed 4-bit window (verification only: its scalars are public). The
    multiples 1..8 of the point, negated for a negative digit: half the 16 a plain window keeps,
    4 KiB less at the heap's fullest moment on a 64-bit port."""
    multiples = [point]
    for _ in range(7):
        multiples.append(_add(multiples[-1], point))
    digits = _signed_nibbles(scalar)
    result = _ZERO
    for i in range(63, -1, -1):
        result = _double(_double(_double(_double(result))))
        digit = digits[i] - 8
        if digit > 0:
            result = _add(result, multiples[digit - 1])
        elif digit < 0:
            result = _add(result, _negate(multiples[-digit - 1]))
    return result


def _negate(point):
    x, y, z, t = point
    return (P - x, y, z, P - t)


def _hash_scalar(*parts):
    return int.from_bytes(sha512.digest(parts), "little") % L  # the parts hashed in place, not joined


class SigningKey:
    """An Ed25519 key from its 32-byte seed (the bundle's ``signing_seed``)."""

    def __init__(self, seed):
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        h = sha512.digest(seed)
        a = int.from_bytes(h[:32], "little")
        a &= (1 << 254) - 8
        a |= 1 << 254
        self._scalar = a
        self._prefix = h[32:]
        self.public_key = encode_point(base_multiply(a))

    def sign(self, message):
        """The 64-byte signature of ``message``."""
        r = _hash_scalar(self._prefix, message)
        big_r = encode_point(base_multiply(r))
        k = _hash_scalar(big_r, self.public_key, message)
        s = (r + k * self._scalar) % L
        return big_r + s.to_bytes(32, "little")


class VerifyKey:
    """An Ed25519 public key (32 bytes). Decoded once: each verification saves a square root."""

    def __init__(self, public_key):
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self.public_key = bytes(public_key)
        self._negated = None
        point = decode_point(public_key)
        if point is not None:
            self._negated = _negate(point)

    def verify(self, message, signature):
        """Raise BadSignature unless ``signature`` is this key's over ``message``: bytes, or a
        tuple of parts signed as if joined (hashed in place)."""
        if len(signature) != 64 or self._negated is None:
            raise BadSignature()
        s = int.from_bytes(signature[32:], "little")
        if s >= L:
            raise BadSignature()
        k = _hash_scalar(signature[:32], self.public_key, *(message if type(message) is tuple else (message,)))
        check = _multiply(k, self._negated)  # first: its table of multiples is gone before the next
        check = _add(base_multiply(s), check)
        if encode_point(check) != bytes(signature[:32]):
            raise BadSignature()
