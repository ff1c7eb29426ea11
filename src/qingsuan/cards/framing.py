"""Length-prefixed TCP framing for ISO 8583 messages.

Two header formats are supported:

* ``"binary2"``: a 2-byte unsigned big-endian length (payload up to 65535 bytes);
* ``"ascii4"``: 4 ASCII decimal digits, zero padded (payload up to 9999 bytes).

The length counts the payload only, not the header.  A zero-length frame is legal (some
switches use it as a keep-alive) and is returned as ``b""``; the caller decides what to do.

:func:`frame` and :func:`unframe_one` are pure functions; :class:`FrameDecoder` is an
incremental decoder for a byte stream that arrives in arbitrary chunks (partial reads,
several frames per read).  Once it has seen an impossible length header the stream can no
longer be resynchronised, so the decoder stays failed and the connection should be closed.
"""

from __future__ import annotations

from typing import Literal, get_args

FrameFormat = Literal["binary2", "ascii4"]

_HEADER_LEN: dict[str, int] = {"binary2": 2, "ascii4": 4}
_FORMAT_MAX: dict[str, int] = {"binary2": 0xFFFF, "ascii4": 9999}
DEFAULT_MAX_FRAME = 8192


class FramingError(ValueError):
    """An impossible or oversized length header, or an unknown framing format.

    When raised by :meth:`FrameDecoder.feed`, ``frames`` holds the complete frames that
    preceded the bad header in the same call, so none is lost.
    """

    def __init__(self, message: str, frames: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.frames: list[bytes] = list(frames or [])


def _check_format(fmt: str) -> None:
    if fmt not in get_args(FrameFormat):
        raise FramingError(f"unknown framing format {fmt!r}; expected 'binary2' or 'ascii4'")


def header_length(fmt: FrameFormat) -> int:
    """Size of the length header in bytes for ``fmt``."""
    _check_format(fmt)
    return _HEADER_LEN[fmt]


def frame(payload: bytes, fmt: FrameFormat) -> bytes:
    """Prefix ``payload`` with its length header in format ``fmt``."""
    n = len(payload)
    if fmt == "binary2":
        if n <= 0xFFFF:
            return n.to_bytes(2, "big") + payload
    elif fmt == "ascii4":
        if n <= 9999:
            return b"%04d" % n + payload
    else:
        _check_format(fmt)
    raise FramingError(f"payload of {n} bytes does not fit a {fmt} length header")


def parse_length(header: bytes, fmt: FrameFormat) -> int:
    """Decode a length header; raise :class:`FramingError` if it is not a valid one."""
    _check_format(fmt)
    if len(header) != _HEADER_LEN[fmt]:
        raise FramingError(f"{fmt} header must be {_HEADER_LEN[fmt]} bytes, got {len(header)}")
    if fmt == "binary2":
        return int.from_bytes(header, "big")
    if not all(0x30 <= b <= 0x39 for b in header):
        raise FramingError(f"ascii4 length header {header!r} is not 4 ASCII digits")
    return int(header.decode("ascii"))


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get back complete payloads."""

    def __init__(self, fmt: FrameFormat, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        _check_format(fmt)
        if max_frame < 0:
            raise ValueError("max_frame must be >= 0")
        self.fmt: FrameFormat = fmt
        self.max_frame = max_frame
        self._buf = bytearray()
        self.error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` to the stream and return every frame it completes, in order.

        Raises :class:`FramingError` on an impossible length (non-digit ascii4 header, or a
        length above ``max_frame``).  The decoder then stays failed: ``error`` is set and every
        later call raises it again, because the stream position is lost.  Frames completed
        earlier in the same call are attached to the exception as ``frames``.
        """
        if self.error is not None:
            raise self.error
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        hlen = _HEADER_LEN[self.fmt]
        binary = self.fmt == "binary2"
        pos, end = 0, len(buf)
        # Walk the buffer with an offset and cut it once at the end (deleting each frame
        # from the front would move the rest of the buffer every time).
        while end - pos >= hlen:
            if binary:
                n = (buf[pos] << 8) | buf[pos + 1]
            else:
                try:
                    n = parse_length(bytes(buf[pos:pos + hlen]), self.fmt)
                except FramingError as exc:
                    del buf[:pos]
                    self.error = FramingError(str(exc))
                    raise FramingError(str(exc), frames) from None
            if n > self.max_frame:
                del buf[:pos]
                self.error = FramingError(f"frame length {n} exceeds max_frame {self.max_frame}")
                raise FramingError(str(self.error), frames)
            if end - pos - hlen < n:
                break
            frames.append(bytes(buf[pos + hlen:pos + hlen + n]))
            pos += hlen + n
        if pos:
            del buf[:pos]
        return frames
