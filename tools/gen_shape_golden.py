#!/usr/bin/env python3
"""gen_shape_golden.py: writes tests/data/shape_golden.safetensors, golden data
for tests/test_shape.c made by Python itself (slice semantics) and PyTorch
(torch.nn.functional.pad in its four modes).

Slices ("slices", f64 [rows, 8]): for every (n, start, stop, step) in a grid
of corner cases (None, negative, out-of-range and INT64 extremes), the row
n, start, stop, step, has_start, has_stop, len, first: the length and first
element of range(n)[start:stop:step] (a slice of a range is a range with the
same step, so length + first element + step give every index). lamina
tensors hold no int64, so the table is f64: INT64_MIN is exact there and
INT64_MAX reads as 2^63, which the test maps back to INT64_MAX.

Pads ("pad.<i>.want", f64, the output's shape): small arange inputs padded by
F.pad; metadata pad.<i>.shape, .pads (lamina's before, after per axis from
axis 0), .mode (constant, reflect, replicate or circular) and .value; "pad.cases"
lists the i.

Run: /usr/bin/python3 tools/gen_shape_golden.py  (from the repository root)."""
import sys

import torch
import torch.nn.functional as F

from golden_st import Golden

I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1


def slices():
    vals = [None, I64_MIN, -10, -7, -3, -1, 0, 1, 2, 6, 7, 10, I64_MAX]
    rows = []
    for n in (1, 3, 7):
        for start in vals:
            for stop in vals:
                for step in (-10, -2, -1, 1, 2, 10):
                    r = range(n)[slice(start, stop, step)]
                    assert r.step == step
                    rows.append((n, 0 if start is None else start, 0 if stop is None else stop, step,
                                 start is not None, stop is not None, len(r), r[0] if len(r) else -1))
    return rows


def pads():
    x3 = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    x4 = torch.arange(48, dtype=torch.float64).reshape(2, 3, 4, 2)
    cases = [
        # (x, lamina pads per axis from axis 0, mode, value)
        (x3, [1, 2, 0, 1, 2, 0], "constant", 0.5),
        (x3, [0, 0, 0, 0, 3, 2], "reflect", 0),
        (x3, [0, 0, 1, 2, 3, 1], "reflect", 0),
        (x3, [0, 0, 4, 0, 2, 5], "replicate", 0),
        (x4, [0, 0, 1, 2, 2, 1, 1, 0], "reflect", 0),
        (x4, [0, 0, 0, 3, 2, 0, 1, 1], "replicate", 0),
        (x3, [0, 0, 3, 1, 2, 4], "circular", 0),
        (x4, [0, 0, 1, 2, 0, 4, 2, 1], "circular", 0),
    ]
    out = []
    for x, p, mode, value in cases:
        nd = x.dim()
        k = 0
        while k < nd and p[2 * k] == 0 and p[2 * k + 1] == 0:
            k += 1
        tp = []  # torch order: last axis first, only the padded trailing axes
        for d in range(nd - 1, k - 1, -1):
            tp += [p[2 * d], p[2 * d + 1]]
        if mode == "constant":
            y = F.pad(x, tp, mode=mode, value=value)
        else:
            y = F.pad(x, tp, mode=mode)
        out.append((list(x.shape), p, mode, value, list(y.shape), y.flatten().tolist()))
    return out


def main():
    out = Golden()
    out.add("slices", torch.tensor([[float(v) for v in r] for r in slices()], dtype=torch.float64))
    pcs = pads()
    out.meta("pad.cases", list(range(len(pcs))))
    for i, (shape, p, mode, value, oshape, y) in enumerate(pcs):
        out.add(f"pad.{i}.want", torch.tensor(y, dtype=torch.float64).reshape(oshape))
        out.meta(f"pad.{i}.shape", shape)
        out.meta(f"pad.{i}.pads", p)
        out.meta(f"pad.{i}.mode", mode)
        out.meta(f"pad.{i}.value", float(value))
    out.meta("generator", "tools/gen_shape_golden.py, Python %s slices, torch %s F.pad" % (
        ".".join(map(str, sys.version_info[:3])), torch.__version__))
    out.save("shape_golden.safetensors")


if __name__ == "__main__":
    main()
