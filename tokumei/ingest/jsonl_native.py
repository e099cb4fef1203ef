"""The native one-parse pass over a chunk of JSON lines (``csrc/jsonl/jsonl.c``, built by ``make venv``).

Why (docs/adr/0009-native-jsonl-reader.md): DuckDB's JSON functions parse each line three
times; this C pass parses it once with yyjson and hands the values over as Arrow string
columns, without a copy. It accepts only lines whose verdict and values it knows to be the
DuckDB query's; the rest are returned for that query (481 of the 1,000,000 lines of a generated
events file, where the generator plants malformed lines on purpose). Without
the built library, or with ``TOKUMEI_NATIVE_JSONL=0``, :func:`available` is False and the
typed read uses the query alone: the same output, ~1.5 CPU-s more per 1M lines.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from tokumei.anonymize.policy import SourcePolicy

#: The library ``make venv`` builds (``Makefile``: ``NATIVE``).
LIBRARY = Path(__file__).with_name("_jsonl.so")

#: Keys a line may carry (the C pass keeps a bit per key).
MAX_KEYS = 64

#: Per policy type, what the C pass accepts as a value (``csrc/jsonl/jsonl.c``, "Kinds").
KINDS = {"string": 0, "timestamp": 0, "date": 0, "int": 1, "float": 2, "bool": 3}
NOT_EXTRACTED = -1

log = logging.getLogger(__name__)


class _Col(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 - ctypes' own declaration style
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_int64),
        ("cap", ctypes.c_int64),
    ]


@cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("TOKUMEI_NATIVE_JSONL", "1") == "0":
        return None
    if not LIBRARY.exists():
        log.warning(
            "native JSON Lines reader not built (%s; `make venv` builds it): landing files "
            "are typed by DuckDB alone, same output, ~1.5 CPU-s more per 1M lines",
            LIBRARY.name,
        )
        return None
    lib = ctypes.CDLL(str(LIBRARY))
    lib.tk_jsonl_parse.restype = ctypes.c_int64
    ptr = ctypes.c_void_p
    # buf, starts, lens, n, keys, klens, kinds, nkeys, status, accepted, offsets, valid, cols
    lib.tk_jsonl_parse.argtypes = [ptr, ptr, ptr, ctypes.c_int64, ptr, ptr, ptr, ctypes.c_int32]
    lib.tk_jsonl_parse.argtypes += [ptr] * 5
    lib.tk_free.argtypes = [ctypes.c_void_p]
    return lib


def available() -> bool:
    """Whether the C pass is built and not switched off (``TOKUMEI_NATIVE_JSONL=0``)."""
    return _library() is not None


class _Owned:
    """Frees a C buffer when the last Arrow array over it is gone."""

    def __init__(self, lib: ctypes.CDLL, address: int) -> None:
        self._lib, self.address = lib, address

    def __del__(self) -> None:
        self._lib.tk_free(self.address)


#: A key that DuckDB's JSON path ``$.<key>`` reads as itself (no dots, brackets or quotes).
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Keys:
    """The policy's keys as the C pass takes them: every key a line may carry, in policy
    order, each with its kind (``NOT_EXTRACTED`` for keys that are never read)."""

    names: tuple[str, ...]
    kinds: tuple[int, ...]

    def extracted(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k != NOT_EXTRACTED]

    @classmethod
    def of(cls, policy: SourcePolicy) -> Keys | None:
        """The keys of ``policy``, or None when the C pass cannot stand in for the query: more
        than :data:`MAX_KEYS` keys, or a key that is not a plain name."""
        readable = policy.readable().columns
        if len(policy.columns) > MAX_KEYS:
            return None
        if not all(_PLAIN_KEY.fullmatch(name) for name in policy.columns):
            return None
        kinds = []
        for name, col in policy.columns.items():
            if name not in readable:
                kinds.append(NOT_EXTRACTED)
            elif col.allowed is not None:  # compared as text: only strings are taken as they are
                kinds.append(KINDS["string"])
            else:
                kinds.append(KINDS[col.type])
        return cls(tuple(policy.columns), tuple(kinds))


@dataclass
class Parsed:
    """One chunk after the C pass: the accepted lines' values, and the lines left over."""

    table: pa.Table  # _line, then one string column _v<i> per extracted key, in order
    rest: np.ndarray  # indices (in the chunk) of the lines for the DuckDB query


def parse(
    data: memoryview, starts: np.ndarray, sizes: np.ndarray, first: int, keys: Keys
) -> Parsed:
    """Run the C pass over one chunk (``starts``/``sizes``: each line's bytes in ``data``,
    without its newline; ``first``: the number of its first line in the file)."""
    lib = _library()
    if lib is None:  # pragma: no cover - callers check available()
        raise RuntimeError("the native JSON Lines reader is not available")
    n = len(sizes)
    nkeys = len(keys.names)
    buf = np.frombuffer(data, np.uint8)
    starts = np.ascontiguousarray(starts, np.int64)
    sizes = np.ascontiguousarray(sizes, np.int64)
    names = (ctypes.c_char_p * nkeys)(*[k.encode() for k in keys.names])
    klens = np.array([len(k.encode()) for k in keys.names], np.int64)
    kinds = np.array(keys.kinds, np.int8)
    status = np.empty(n, np.int8)
    accepted = np.empty(n, np.int64)
    wanted = keys.extracted()
    offsets = {k: np.empty(n + 1, np.int64) for k in wanted}
    valid = {k: np.empty(n, np.uint8) for k in wanted}
    offp = (ctypes.c_void_p * nkeys)(
        *[offsets[k].ctypes.data if k in offsets else None for k in range(nkeys)]
    )
    validp = (ctypes.c_void_p * nkeys)(
        *[valid[k].ctypes.data if k in valid else None for k in range(nkeys)]
    )
    cols = (_Col * nkeys)()
    try:
        got = lib.tk_jsonl_parse(
            buf.ctypes.data,
            starts.ctypes.data,
            sizes.ctypes.data,
            n,
            ctypes.cast(names, ctypes.c_void_p),
            klens.ctypes.data,
            kinds.ctypes.data,
            nkeys,
            status.ctypes.data,
            accepted.ctypes.data,
            ctypes.cast(offp, ctypes.c_void_p),
            ctypes.cast(validp, ctypes.c_void_p),
            ctypes.cast(cols, ctypes.c_void_p),
        )
        if got < 0:
            raise MemoryError("native JSON Lines reader: out of memory")
        arrays: dict[str, pa.Array] = {
            "_line": pa.array(accepted[:got] + first, pa.int64()),
        }
        for j, k in enumerate(wanted):
            address, size = cols[k].data, int(cols[k].len)
            if address:
                cols[k].data = None  # the Arrow buffer owns it from here
                body = pa.foreign_buffer(address, size, base=_Owned(lib, address))
            else:
                body = pa.py_buffer(b"")
            present = valid[k][:got]
            bitmap = None
            if not present.all():
                bitmap = pa.py_buffer(np.packbits(present, bitorder="little"))
            arrays[f"_v{j}"] = pa.LargeStringArray.from_buffers(
                got, pa.py_buffer(offsets[k][: got + 1]), body, bitmap
            )
    finally:
        for k in range(nkeys):
            if cols[k].data:
                lib.tk_free(cols[k].data)
    return Parsed(pa.table(arrays), np.flatnonzero(status != 0))
