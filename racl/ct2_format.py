"""A reader for CTranslate2's ``model.bin``, written from the format's definition (no ctranslate2 needed).

The file is CTranslate2's model-spec serialisation (``ModelSpec._serialize`` in its Python package,
read back by ``models::Model::load`` in C++), all integers little-endian:

    uint32 binary_version                      # 1..6
    string spec_name, uint32 spec_revision     # binary_version >= 2 (e.g. "WhisperSpec", 3)
    uint32 n_variables, then per variable:
        string name, uint8 rank, uint32 dims[rank],
        uint8 dtype_id, uint32 n_bytes         # binary_version >= 4; before: uint8 item size, uint32 n_items
        n_bytes of row-major data
    uint32 n_aliases, then (string alias, string target) pairs   # binary_version >= 3

where ``string`` is a uint16 length (terminating NUL included), the UTF-8 bytes, then NUL. Quantised
weights (int8 per output row, int16 per tensor) come with a float ``<name>_scale`` such that
``float = stored / scale``; an alias also stands for the target's ``_scale``. See docs/design.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import torch

CURRENT_BINARY_VERSION = 6

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h); bfloat16 is read as raw uint16.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_NUMPY = {"float32": np.float32, "int8": np.int8, "int16": np.int16, "int32": np.int32,
          "float16": np.float16, "bfloat16": np.uint16}
_ITEM_SIZE_DTYPES = {4: "float32", 2: "int16", 1: "int8"}  # binary_version < 4 stored only the width


class CT2FormatError(ValueError):
    """A ``model.bin`` that cannot be read; the message is one line naming the file and the problem."""


@dataclass
class CT2Model:
    """The variables of one ``model.bin``, as stored (quantised ones still quantised), aliases resolved."""

    spec_name: str
    spec_revision: int
    binary_version: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str] = field(default_factory=dict)

    def dequantized(self) -> dict[str, torch.Tensor]:
        """Every variable in a float dtype: int8/int16 weights divided by their ``_scale`` (which are dropped)."""
        out = {}
        for name, value in self.variables.items():
            if name.endswith("_scale") and name[: -len("_scale")] in self.variables:
                continue
            if value.dtype in (torch.int8, torch.int16) and value.dim() > 0:
                scale = self.variables.get(name + "_scale")
                if scale is None:
                    raise CT2FormatError(f"quantised variable {name} ({value.dtype}) has no {name}_scale")
                scale = scale.float()
                if scale.dim() == 1:  # one scale per output row (int8); conv weights too, over flattened rows
                    scale = scale.reshape(-1, *([1] * (value.dim() - 1)))
                value = value.float() / scale
            out[name] = value
        return out


class _Cursor:
    """Bounds-checked little-endian reads over one buffer, so a truncated file is a clear error, not garbage."""

    def __init__(self, data: memoryview, source: str):
        self.data, self.source, self.pos = data, source, 0

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise CT2FormatError(f"{self.source}: truncated at byte {len(self.data)} while reading {what} "
                                 f"(needs {self.pos + n} bytes)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uint(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        length = self.uint("H", what)
        raw = bytes(self.take(length, what))
        if length == 0 or raw[-1] != 0:
            raise CT2FormatError(f"{self.source}: corrupt {what} at byte {self.pos - length} (not a NUL-terminated string)")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise CT2FormatError(f"{self.source}: corrupt {what} at byte {self.pos - length} (not UTF-8)") from None


def _tensor(raw: memoryview, dtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    # Copy: the buffer may be a read-only bytes object or a mapping that outlives nothing here.
    array = np.frombuffer(raw, dtype=np.dtype(_NUMPY[dtype]).newbyteorder("<")).astype(_NUMPY[dtype], copy=True)
    tensor = torch.from_numpy(array.reshape(shape))
    return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor


def read_model_bin(data: bytes | bytearray | memoryview, source: str = "model.bin") -> CT2Model:
    """Parse a whole ``model.bin`` held in memory; any inconsistency raises :class:`CT2FormatError`."""
    cur = _Cursor(memoryview(data).cast("B"), source)
    version = cur.uint("I", "the binary version")
    if not 1 <= version <= CURRENT_BINARY_VERSION:
        raise CT2FormatError(f"{source}: not a CTranslate2 model.bin (binary version {version}; "
                             f"this reader knows 1..{CURRENT_BINARY_VERSION})")
    spec_name, revision = "", 1
    if version >= 2:
        spec_name = cur.string("the model spec name")
        revision = cur.uint("I", "the spec revision")

    variables: dict[str, torch.Tensor] = {}
    for index in range(cur.uint("I", "the variable count")):
        name = cur.string(f"the name of variable #{index}")
        rank = cur.uint("B", f"the rank of {name}")
        shape = tuple(cur.uint("I", f"the shape of {name}") for _ in range(rank))
        if version >= 4:
            type_id = cur.uint("B", f"the dtype of {name}")
            if type_id >= len(_DTYPES):
                raise CT2FormatError(f"{source}: variable {name} has unknown dtype id {type_id}")
            dtype = _DTYPES[type_id]
            n_bytes = cur.uint("I", f"the size of {name}")
        else:
            item_size = cur.uint("B", f"the item size of {name}")
            if item_size not in _ITEM_SIZE_DTYPES:
                raise CT2FormatError(f"{source}: variable {name} has unknown item size {item_size}")
            dtype = _ITEM_SIZE_DTYPES[item_size]
            n_bytes = cur.uint("I", f"the size of {name}") * item_size
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NUMPY[dtype]).itemsize
        if n_bytes != expected:
            raise CT2FormatError(f"{source}: variable {name} declares {n_bytes} bytes, but shape {list(shape)} "
                                 f"of {dtype} needs {expected}")
        if name in variables:
            raise CT2FormatError(f"{source}: variable {name} is stored twice")
        variables[name] = _tensor(cur.take(n_bytes, f"the data of {name}"), dtype, shape)

    aliases: dict[str, str] = {}
    if version >= 3:
        for index in range(cur.uint("I", "the alias count")):
            alias = cur.string(f"alias #{index}")
            aliases[alias] = cur.string(f"the target of alias {alias}")
    if cur.pos != len(cur.data):
        raise CT2FormatError(f"{source}: {len(cur.data) - cur.pos} unexpected bytes after the last "
                             f"{'alias' if version >= 3 else 'variable'} (corrupt or not a model.bin)")

    for alias, target in aliases.items():
        seen = {alias}
        while target in aliases and target not in variables:  # an alias of an alias: follow it
            if target in seen:
                raise CT2FormatError(f"{source}: alias {alias} is part of a cycle")
            seen.add(target)
            target = aliases[target]
        if target not in variables:
            raise CT2FormatError(f"{source}: alias {alias} points to {target}, which the file does not hold")
        if alias in variables:
            raise CT2FormatError(f"{source}: {alias} is both a variable and an alias")
        variables[alias] = variables[target]
        if target + "_scale" in variables:  # as the C++ loader does: the alias shares the quantisation scale
            variables.setdefault(alias + "_scale", variables[target + "_scale"])
    return CT2Model(spec_name, revision, version, variables, aliases)


def read_model_bin_parts(parts: list[bytes], source: str = "model.bin") -> CT2Model:
    """A ``model.bin`` split into ``model.bin.part1``, ``part2``, ... (in that order) is their concatenation."""
    return read_model_bin(b"".join(parts), source)


__all__ = ["CT2FormatError", "CT2Model", "CURRENT_BINARY_VERSION", "read_model_bin", "read_model_bin_parts"]
