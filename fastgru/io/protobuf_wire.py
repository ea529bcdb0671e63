"""A minimal, bounded reader of the protocol-buffer wire format.

The SavedModel loader reads four small messages (keras_metadata.pb's ``SavedMetadata``, the tensor
bundle's ``BundleHeaderProto`` and ``BundleEntryProto``, and the checkpoint's ``TrackableObjectGraph``).
Their few fields are read here, by number, from the wire format itself, instead of depending on the
``protobuf`` package and TensorFlow's generated classes: about a hundred lines, no generated code, and
every length checked against the bytes that hold it, so a damaged file raises :class:`WireError` (turned
into ``ModelFileError`` by the callers) instead of reading past its end or allocating from a size it
claims.

Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. Groups (3, 4) are obsolete and refused.
Unknown fields are skipped, as protobuf does.
"""

from __future__ import annotations

import struct

#: how deep :func:`message` may be nested by the callers (the schemas read here nest 4 levels at most)
MAX_DEPTH = 16


class WireError(ValueError):
    """Bytes that are not a valid protocol-buffer message (truncated, an impossible length, ...)."""


def varint(buf, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``; at most 10 bytes, within ``end``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(buf, start: int = 0, end: int | None = None):
    """Yield ``(field_number, wire_type, value)`` for each field of the message in ``buf[start:end]``.

    ``value``: an int for varint and fixed fields (fixed ones little-endian, unsigned), a ``(start, end)``
    pair of positions in ``buf`` for length-delimited ones (no copy: callers slice what they keep).
    """
    end = len(buf) if end is None else end
    if not 0 <= start <= end <= len(buf):
        raise WireError(f"message bounds {start}..{end} outside the {len(buf)} bytes that hold it")
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == 0:
            value, pos = varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise WireError("truncated fixed64 field")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise WireError("truncated fixed32 field")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        elif wire == 2:
            length, pos = varint(buf, pos, end)
            if length > end - pos:
                raise WireError(f"field {number} claims {length} bytes, {end - pos} remain")
            value = (pos, pos + length)
            pos += length
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def message(buf, start: int = 0, end: int | None = None, depth: int = 0) -> dict[int, list]:
    """The fields of one message, grouped by number (repeated fields keep their order).

    ``depth`` is how deep the caller has nested; past :data:`MAX_DEPTH` the message is refused.
    """
    if depth > MAX_DEPTH:
        raise WireError("messages nested too deeply")
    out: dict[int, list] = {}
    for number, wire, value in fields(buf, start, end):
        out.setdefault(number, []).append((wire, value))
    return out


def get_int(msg: dict, number: int, default: int = 0, signed: bool = False) -> int:
    """The last value of a varint/fixed field (protobuf's rule for repeated scalars), or ``default``."""
    values = msg.get(number)
    if not values:
        return default
    wire, value = values[-1]
    if wire == 2:
        raise WireError(f"field {number}: expected a number, found a length-delimited value")
    if signed and value >= 1 << 63:  # int64 / int32 negatives travel as 64-bit two's complement
        value -= 1 << 64
    return value


def get_bytes(buf, msg: dict, number: int) -> bytes | None:
    """The last value of a length-delimited field as bytes, or None."""
    values = msg.get(number)
    if not values:
        return None
    wire, value = values[-1]
    if wire != 2:
        raise WireError(f"field {number}: expected a length-delimited value, found wire type {wire}")
    return bytes(buf[value[0]:value[1]])


def get_str(buf, msg: dict, number: int, default: str = "") -> str:
    raw = get_bytes(buf, msg, number)
    if raw is None:
        return default
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"field {number}: not UTF-8 text") from None


def get_messages(buf, msg: dict, number: int, depth: int = 0) -> list[dict]:
    """Every value of a repeated (or single) sub-message field, parsed."""
    out = []
    for wire, value in msg.get(number, ()):
        if wire != 2:
            raise WireError(f"field {number}: expected a sub-message, found wire type {wire}")
        out.append(message(buf, value[0], value[1], depth + 1))
    return out


def get_span(msg: dict, number: int) -> tuple[int, int] | None:
    """The (start, end) of the last length-delimited value of a field, or None."""
    values = msg.get(number)
    if not values:
        return None
    wire, value = values[-1]
    if wire != 2:
        raise WireError(f"field {number}: expected a length-delimited value, found wire type {wire}")
    return value
