"""A byte-reproducible 8-bit grayscale PNG writer.

zlib's output depends on the zlib build (zlib, zlib-ng, Apple's), so the data set would
not be byte-identical across platforms if it went through `zlib.compress`. This writer
emits its own DEFLATE stream: fixed Huffman codes, runs coded as distance-1 matches.
Triangle images are long runs, so this compresses them well, and the bytes depend only
on the pixels.
"""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path

import numpy as np

_LENGTH_BASE = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    13,
    15,
    17,
    19,
    23,
    27,
    31,
    35,
    43,
    51,
    59,
    67,
    83,
    99,
    115,
    131,
    163,
    195,
    227,
    258,
)
_LENGTH_EXTRA = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    4,
    4,
    4,
    4,
    5,
    5,
    5,
    5,
    0,
)


def _reverse(code: int, nbits: int) -> int:
    return int(f"{code:0{nbits}b}"[::-1], 2) if nbits else 0


def _fixed_litlen(symbol: int) -> tuple[int, int]:
    """(bit-reversed code, length) of a literal/length symbol in the fixed Huffman table."""
    if symbol < 144:
        code, n = 0x30 + symbol, 8
    elif symbol < 256:
        code, n = 0x190 + symbol - 144, 9
    elif symbol < 280:
        code, n = symbol - 256, 7
    else:
        code, n = 0xC0 + symbol - 280, 8
    return _reverse(code, n), n


_LITLEN = [_fixed_litlen(s) for s in range(288)]
# Match lengths 3..258 → (bits, nbits) with the symbol code and its extra bits packed LSB-first.
_MATCH = {}
for _length in range(3, 259):
    _i = max(i for i, base in enumerate(_LENGTH_BASE) if base <= _length)
    if _length == 258:
        _i = 28
    _code, _n = _LITLEN[257 + _i]
    _MATCH[_length] = (_code | ((_length - _LENGTH_BASE[_i]) << _n), _n + _LENGTH_EXTRA[_i])
_DIST1 = (0, 5)  # distance code 0 (distance 1), 5 bits, no extra bits


_MAX_CODE_BITS = 16  # the longest code written: a match's 8 bits + 5 extra bits


@functools.lru_cache(maxsize=65536)
def _repeats(left: int, value: int) -> tuple[tuple[int, int], ...]:
    """The codes of `left` more bytes of `value` after its literal: distance-1 matches of at
    most 258 bytes, never leaving a 1–2 byte tail that a match cannot cover, then literals."""
    codes = []
    while left >= 3:
        take = min(258, left) if left - min(258, left) not in (1, 2) else left - 3
        codes += [_MATCH[take], _DIST1]
        left -= take
    return (*codes, *[_LITLEN[value]] * left)


def _pack(codes: list[tuple[int, int]], chunk: int = 1 << 20) -> bytes:
    """Codes (bits, nbits) as one LSB-first bit stream, zero-padded to a whole byte; `chunk`
    codes at a time, so memory stays a few bytes a code."""
    positions = np.arange(_MAX_CODE_BITS, dtype=np.uint32)
    parts = []
    for start in range(0, len(codes), chunk):
        bits, nbits = np.array(codes[start : start + chunk], dtype=np.uint32).reshape(-1, 2).T
        stream = ((bits[:, None] >> positions) & 1).astype(np.uint8)
        parts.append(stream[positions < nbits[:, None]])  # code by code, low bit first
    return np.packbits(np.concatenate(parts), bitorder="little").tobytes()


def deflate_runs(data: bytes) -> bytes:
    """A zlib stream of `data`: one fixed-Huffman block; runs as a literal + distance-1 matches."""
    arr = np.frombuffer(data, dtype=np.uint8)
    codes = [(0b011, 3)]  # BFINAL=1, BTYPE=01 (fixed Huffman)
    if arr.size:
        starts = np.flatnonzero(np.r_[True, arr[1:] != arr[:-1]])
        lengths = np.diff(np.r_[starts, arr.size])
        for value, run in zip(arr[starts].tolist(), lengths.tolist(), strict=True):
            codes.append(_LITLEN[value])
            codes += _repeats(run - 1, value)
    codes.append(_LITLEN[256])  # end of block
    return b"\x78\x01" + _pack(codes) + struct.pack(">I", zlib.adler32(data))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_gray_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a 2-D uint8 array (color type 0, bit depth 8, no filtering, no metadata)."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 array")
    height, width = pixels.shape
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # filter byte 0 on every row
    raw[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", deflate_runs(raw.tobytes()))
        + _chunk(b"IEND", b"")
    )


def write_gray_png(path: Path, pixels: np.ndarray) -> None:
    """Write `pixels` as a reproducible grayscale PNG."""
    path.write_bytes(encode_gray_png(pixels))
