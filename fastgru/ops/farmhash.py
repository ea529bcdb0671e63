"""TensorFlow's ``Fingerprint64`` of a string (FarmHash's 64-bit "na" hash of its bytes, little-endian), the hash
behind ``tf.strings.to_hash_bucket_fast``, which Keras's ``Hashing`` layer and its lookups' out-of-vocabulary
buckets use: ``fingerprint64(data) % buckets``. Plain Python integers, each result reduced modulo 2**64."""

from __future__ import annotations

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F


def _rot(value: int, shift: int) -> int:
    return value if shift == 0 else ((value >> shift) | (value << (64 - shift))) & _MASK


def _mix(value: int) -> int:
    return value ^ (value >> 47)


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _pair_hash(u: int, v: int, mul: int) -> int:
    """Two words to one (Murmur-style, with the multiplier ``mul``)."""
    a = _mix(((u ^ v) * mul) & _MASK)
    b = _mix(((v ^ a) * mul) & _MASK)
    return (b * mul) & _MASK


def _short(data: bytes) -> int:
    n = len(data)
    if n >= 8:
        mul = _K2 + n * 2
        a = (_u64(data, 0) + _K2) & _MASK
        b = _u64(data, n - 8)
        c = (_rot(b, 37) * mul + a) & _MASK
        d = ((_rot(a, 25) + b) * mul) & _MASK
        return _pair_hash(c, d, mul)
    if n >= 4:
        mul = _K2 + n * 2
        return _pair_hash((n + (_u32(data, 0) << 3)) & _MASK, _u32(data, n - 4), mul)
    if n > 0:
        y = (data[0] + (data[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (data[n - 1] << 2)) & 0xFFFFFFFF
        return (_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _head(data: bytes, a_mul: int) -> tuple[int, int, int, int]:
    """What the 17-to-32 and 33-to-64-byte hashes begin with: (mul, a, and two mixed words of the first and last
    16 bytes)."""
    n = len(data)
    mul = _K2 + n * 2
    a = (_u64(data, 0) * a_mul) & _MASK
    b = _u64(data, 8)
    c = (_u64(data, n - 8) * mul) & _MASK
    d = (_u64(data, n - 16) * _K2) & _MASK
    return (mul, a, (_rot((a + b) & _MASK, 43) + _rot(c, 30) + d) & _MASK,
            (a + _rot((b + _K2) & _MASK, 18) + c) & _MASK)


def _medium(data: bytes) -> int:
    """17 to 32 bytes."""
    mul, _, u, v = _head(data, _K1)
    return _pair_hash(u, v, mul)


def _long(data: bytes) -> int:
    """33 to 64 bytes."""
    n = len(data)
    mul, a, y, v = _head(data, _K2)
    z = _pair_hash(y, v, mul)
    e = (_u64(data, 16) * mul) & _MASK
    f = _u64(data, 24)
    g = ((y + _u64(data, n - 32)) * mul) & _MASK
    h = ((z + _u64(data, n - 24)) * mul) & _MASK
    return _pair_hash((_rot((e + f) & _MASK, 43) + _rot(g, 30) + h) & _MASK,
                      (e + _rot((f + a) & _MASK, 18) + g) & _MASK, mul)


def _weak32(data: bytes, at: int, a: int, b: int) -> tuple[int, int]:
    """A 16-byte hash of 32 bytes at ``at`` and two seeds."""
    w, x, y, z = (_u64(data, at + 8 * i) for i in range(4))
    a = (a + w) & _MASK
    b = _rot((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rot(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(data: bytes) -> int:
    """TensorFlow's ``Fingerprint64`` of ``data`` (an unsigned 64-bit integer)."""
    n = len(data)
    if n <= 16:
        return _short(data)
    if n <= 32:
        return _medium(data)
    if n <= 64:
        return _long(data)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v = w = (0, 0)
    x = (x * _K2 + _u64(data, 0)) & _MASK
    end = ((n - 1) // 64) * 64
    last = n - 64
    at = 0
    while True:  # (64 bytes a round, until 1 to 64 are left)
        x = (_rot((x + y + v[0] + _u64(data, at + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rot((y + v[1] + _u64(data, at + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _u64(data, at + 40)) & _MASK
        z = (_rot((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak32(data, at, (v[1] * _K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak32(data, at + 32, (z + w[1]) & _MASK, (y + _u64(data, at + 16)) & _MASK)
        z, x = x, z
        at += 64
        if at == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    w = ((w[0] + ((n - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rot((x + y + v[0] + _u64(data, last + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rot((y + v[1] + _u64(data, last + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _u64(data, last + 40)) & _MASK
    z = (_rot((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak32(data, last, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak32(data, last + 32, (z + w[1]) & _MASK, (y + _u64(data, last + 16)) & _MASK)
    z, x = x, z
    return _pair_hash((_pair_hash(v[0], w[0], mul) + _mix(y) * _K0 + z) & _MASK,
                      (_pair_hash(v[1], w[1], mul) + x) & _MASK, mul)


def hash_buckets(values: list, buckets: int) -> list[int]:
    """``tf.strings.to_hash_bucket_fast``: each string's (UTF-8) fingerprint modulo ``buckets``."""
    return [fingerprint64(s.encode("utf-8") if isinstance(s, str) else s) % buckets for s in values]
