"""Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzipped.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
The reader checks the header against the payload size so that a truncated or foreign file
is refused with a :class:`~semprobe.errors.DataError` naming it, never misread.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from semprobe.errors import DataError

#: IDX type code -> big-endian numpy dtype of the values.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read the IDX file at ``path`` (gzipped or not) into a writable native-endian array.

    ``expected_magic`` (for example ``0x803`` for an image file of uint8 with three
    dimensions, ``0x801`` for a label file) makes a file of another kind an error.
    Raises :class:`DataError` naming the file when it is unreadable, truncated, padded or
    not IDX at all.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}; replace it with an intact copy") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); replace it with an intact copy")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{path} has IDX magic number {magic:#06x}, expected {expected_magic:#06x}; "
            "check that the file is the one its name says"
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path} is truncated inside its IDX header; replace it with an intact copy")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[raw[2]]
    expected_size = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected_size:
        raise DataError(
            f"{path} holds {len(raw)} bytes but its IDX header {shape} needs {expected_size}; "
            "replace it with an intact copy"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=True)
