"""tools/golden_st.py: the golden-data writer shared by the tools/gen_*_golden.py
scripts. Collects named tensors and string metadata and writes them as one
safetensors file, by hand with struct + json as the format spec describes (an
8-byte little-endian header length, the JSON header padded with spaces to a
multiple of 8, then the raw little-endian bytes), so no safetensors package is
needed. The suites read the files with tu_golden_load (tests/testutil.h).

    g = Golden()
    g.add("case0.x", x)              # torch tensor, numpy array or list; dtype kept
    g.add("case0.idx", idx, "i32")   # or forced
    g.meta("case0.stride", [2, 1])   # numbers and lists become "2 1"
    g.save("conv_golden.safetensors")
"""
import json
import os
import struct

import numpy as np

_CODES = {"f64": ("F64", np.float64), "f32": ("F32", np.float32), "f16": ("F16", np.float16),
          "i32": ("I32", np.int32), "u8": ("U8", np.uint8)}
_BY_NP = {np.dtype(v[1]): k for k, v in _CODES.items()}

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def _array(a):
    if hasattr(a, "detach"):  # torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return " ".join(_text(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


class Golden:
    def __init__(self):
        self.tensors = {}
        self.metadata = {}

    def add(self, name, a, dtype=None):
        """Adds tensor `name` (its dtype, or `dtype`: f64, f32, f16, i32, u8)."""
        if name in self.tensors or name == "__metadata__":
            raise ValueError("duplicate or reserved tensor name " + name)
        a = _array(a)
        if dtype is None:
            if a.dtype == np.int64:
                a = a.astype(np.int32)
            elif a.dtype == np.bool_:
                a = a.astype(np.uint8)
            if a.dtype not in _BY_NP:
                raise ValueError(f"{name}: dtype {a.dtype} has no safetensors code here")
            dtype = _BY_NP[a.dtype]
        code, npt = _CODES[dtype]
        b = a.astype(npt)
        if np.issubdtype(npt, np.integer) and not np.array_equal(b, a):
            raise ValueError(f"{name}: values do not fit {dtype}")
        if b.size == 0:
            raise ValueError(f"{name}: lamina cannot hold a zero-sized tensor")
        self.tensors[name] = (code, list(b.shape), np.ascontiguousarray(b).astype(b.dtype.newbyteorder("<")).tobytes())
        return self

    def meta(self, key, value):
        """Adds metadata `key` = value as text (lists space-separated)."""
        self.metadata[key] = _text(value)
        return self

    def save(self, name):
        path = name if os.path.isabs(name) else os.path.join(DATA, name)
        header, blobs, off = {}, [], 0
        if self.metadata:
            header["__metadata__"] = self.metadata
        for k, (code, shape, raw) in self.tensors.items():
            header[k] = {"dtype": code, "shape": shape, "data_offsets": [off, off + len(raw)]}
            blobs.append(raw)
            off += len(raw)
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
        print("wrote", os.path.normpath(path), f"({len(self.tensors)} tensors, {8 + len(h) + off} bytes)")
