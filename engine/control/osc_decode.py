"""OSC datagrams -> flat list of messages with their bundle times.

python-osc parses the messages; the bundles are walked here, because
python-osc's own bundle parsing recurses without a depth limit and logs a
warning for every element it does not recognise (a flood of junk would flood
the log), and its server sleeps on the receive thread until a timetag is due.
Here nothing waits: a bundle's timetag travels with each message as Unix
seconds and the dispatcher turns it into a due time.

Limits (`MAX_DEPTH`, `MAX_MESSAGES`, `MAX_MESSAGE_BYTES`, `MAX_ARGS`) keep the
cost of one datagram small whatever a sender puts in it: no message this
engine understands is longer than a few hundred bytes, so a 64 KB string is
refused before it is parsed character by character, nor has more than one
argument (2,000 type tags in a 2 KB message took over 1 ms to parse).

Pure module: no sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pythonosc import osc_message
from pythonosc.parsing import osc_types

BUNDLE_PREFIX = b"#bundle\x00"
MAX_DEPTH = 8  # nested bundles
MAX_MESSAGES = 1024  # messages in one datagram
MAX_MESSAGE_BYTES = 2048  # one message (address + type tags + arguments)
MAX_ARGS = 64  # type tags in one message: every address here takes one argument at most
# Type tags python-osc decodes; anything else it would log and skip.
_KNOWN_TAGS = frozenset(b"ihfdsbrmtTFN[]")
_FIXED_SIZE = {ord("i"): 4, ord("f"): 4, ord("r"): 4, ord("m"): 4, ord("h"): 8, ord("d"): 8, ord("t"): 8}


class Malformed(ValueError):
    """A datagram that cannot be decoded; the message says why (for the log)."""


@dataclass(slots=True)
class Decoded:
    """One OSC message. `wall` is its bundle's timetag in Unix seconds, None
    for a bare message or an "immediately" bundle."""

    address: str
    args: list[Any]
    wall: float | None = None


def decode(dgram: bytes) -> list[Decoded]:
    """Every message in a datagram (a message or nested bundles), in packet order.

    Raises `Malformed` for anything that is not a complete, valid OSC packet
    within the limits above.
    """
    out: list[Decoded] = []
    if dgram.startswith(BUNDLE_PREFIX):
        _walk_bundle(dgram, None, 1, out)
    elif dgram.startswith(b"/"):
        out.append(_message(dgram, None))
    else:
        raise Malformed("not an OSC message or bundle")
    return out


def _walk_bundle(dgram: bytes, outer: float | None, depth: int, out: list[Decoded]) -> None:
    if depth > MAX_DEPTH:
        raise Malformed(f"bundles nested deeper than {MAX_DEPTH}")
    if len(dgram) < 16:
        raise Malformed("bundle too short for its timetag")
    try:
        tag, index = osc_types.get_date(dgram, len(BUNDLE_PREFIX))
    except (osc_types.ParseError, ValueError, OverflowError, struct.error) as e:
        raise Malformed(f"bad bundle timetag: {e}") from None
    wall = outer if tag == osc_types.IMMEDIATELY else max(tag, outer or tag)
    end = len(dgram)
    while index < end:
        if end - index < 4:
            raise Malformed("truncated bundle element size")
        (size,) = struct.unpack_from(">i", dgram, index)
        index += 4
        if size <= 0 or size % 4 or index + size > end:
            raise Malformed(f"bad bundle element size {size}")
        element = dgram[index : index + size]
        index += size
        if element.startswith(BUNDLE_PREFIX):
            _walk_bundle(element, wall, depth + 1, out)
        elif element.startswith(b"/"):
            if len(out) >= MAX_MESSAGES:
                raise Malformed(f"more than {MAX_MESSAGES} messages in one datagram")
            out.append(_message(element, wall))
        else:
            raise Malformed("bundle element is neither a message nor a bundle")


def _message(dgram: bytes, wall: float | None) -> Decoded:
    if len(dgram) > MAX_MESSAGE_BYTES:
        raise Malformed(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    if len(dgram) % 4:
        # OSC 1.0: every message is a multiple of 4 bytes. python-osc would pad a
        # short trailing float with zeros, turning a truncated packet into a value.
        raise Malformed("message size is not a multiple of 4 bytes (truncated?)")
    _check_type_tags(dgram)
    try:
        msg = osc_message.OscMessage(dgram)
        return Decoded(msg.address, msg.params, wall)
    except (
        osc_message.ParseError,
        osc_types.ParseError,
        ValueError,
        IndexError,
        TypeError,
        OverflowError,
        struct.error,
    ) as e:  # UnicodeDecodeError is a ValueError
        raise Malformed(f"cannot parse message: {e}") from None


def _check_type_tags(dgram: bytes) -> None:
    """Check the layout before python-osc parses it: known type tags only (it
    would log each unknown one), and every argument's bytes present (it would
    pad a missing float or int with zeros and hand back a value)."""
    end = dgram.find(b"\x00")
    if end < 0:
        raise Malformed("address not terminated")
    start = _pad4(end + 1)
    if start >= len(dgram):
        return  # no type tag string: an argument-less message (old senders)
    if dgram[start] != ord(","):
        raise Malformed("type tag string does not start with ','")
    stop = dgram.find(b"\x00", start)
    if stop < 0:
        raise Malformed("type tag string not terminated")
    tags = dgram[start + 1 : stop]
    if len(tags) > MAX_ARGS:
        raise Malformed(f"more than {MAX_ARGS} arguments (type tags)")
    if not _KNOWN_TAGS.issuperset(tags):
        raise Malformed("unknown type tag")
    index = _pad4(stop + 1)
    for tag in tags:
        index = _skip(dgram, index, tag)
    if index > len(dgram):
        raise Malformed("arguments missing (truncated?)")


def _skip(dgram: bytes, index: int, tag: int) -> int:
    """Index after one argument of type `tag` starting at `index`."""
    size = _FIXED_SIZE.get(tag)
    if size is not None:
        return index + size
    if tag == ord("s"):
        end = dgram.find(b"\x00", index)
        return _pad4(end + 1) if end >= 0 else len(dgram) + 1
    if tag == ord("b"):
        if index + 4 > len(dgram):
            return index + 4
        (n,) = struct.unpack_from(">i", dgram, index)
        return index + 4 + _pad4(max(n, 0)) if n >= 0 else len(dgram) + 1
    return index  # T, F, N, [ and ] carry no bytes


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4
