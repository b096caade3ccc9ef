#!/usr/bin/python3
"""gen_reduce_golden.py: writes PyTorch golden data for the reduce family to
tests/data/reduce_golden.safetensors (f64 tensors):

reduce.<k>.x, .y    torch.var (several corrections) and torch.logsumexp over
                    axes sets, incl. +-1e4 (tests/test_reduce.c); metadata
                    reduce.<k>.op (var or logsumexp), .axes (empty: all),
                    .keep, .corr
softmax.<k>.x, .y, .ly  torch.softmax / torch.log_softmax along several axes,
                    incl. +-1e4 inputs (tests/test_softmax.c); metadata
                    softmax.<k>.axis
reduce.cases and softmax.cases list the k.

Inputs are drawn as float32 and computed in float64, so the f32 and f64
tests see the same values. Run: /usr/bin/python3 tools/gen_reduce_golden.py
(from the repository root). Deterministic (fixed seed)."""
import torch

from golden_st import Golden

torch.manual_seed(1234)
out = Golden()


def rand(shape, scale=1.0, big=False):
    x = torch.randn(*shape, dtype=torch.float32) * scale
    if big:  # +-1e4 entries: exp would overflow without max subtraction
        sign = torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0)
        x = (sign * 1e4 + torch.randn(*shape) * 3).to(torch.float32)
    return x.to(torch.float64)


def reduce_cases():
    # (op 0 = var / 1 = logsumexp, shape, axes (None = all), keepdims, correction, big)
    spec = [
        (0, [5, 7], [1], 0, 1.0, False),
        (0, [3, 4, 5], [0, 2], 1, 0.0, False),
        (0, [33], None, 0, 1.0, False),
        (0, [2, 3, 4, 5], [-1, 1], 0, 0.0, False),
        (0, [4, 6], None, 1, 2.0, False),
        (0, [3, 7, 2], [1], 0, 3.0, False),
        (1, [5, 7], [1], 0, 0.0, False),
        (1, [3, 4, 5], [0, 2], 1, 0.0, False),
        (1, [2, 3, 4, 5], None, 0, 0.0, False),
        (1, [4, 9], [-1], 0, 0.0, True),
        (1, [6, 5], [0], 1, 0.0, True),
        (1, [2, 3, 4], [2, 0], 0, 0.0, True),
    ]
    out = []
    for k, (op, shape, axes, keep, corr, big) in enumerate(spec):
        x = rand(shape, 2.0, big)
        dims = list(range(len(shape))) if axes is None else axes
        if op == 0:
            y = torch.var(x, dim=dims, correction=int(corr), keepdim=bool(keep))
        else:
            y = torch.logsumexp(x, dim=dims, keepdim=bool(keep))
        out.append((k, op, shape, axes or [], keep, corr, x, y))
    return out


def write_reduce():
    cases = reduce_cases()
    out.meta("reduce.cases", [k for k, *_ in cases])
    for k, op, shape, axes, keep, corr, x, y in cases:
        out.add(f"reduce.{k}.x", x)
        out.add(f"reduce.{k}.y", y)
        out.meta(f"reduce.{k}.op", ["var", "logsumexp"][op])
        out.meta(f"reduce.{k}.axes", axes)
        out.meta(f"reduce.{k}.keep", keep)
        out.meta(f"reduce.{k}.corr", float(corr))


def write_softmax():
    spec = [([4, 9], -1, False), ([3, 5, 7], 1, False), ([2, 3, 4], 0, False),
            ([3, 6], -1, True), ([5, 4, 3], -2, True), ([7], 0, False), ([2, 300], 1, False)]
    out.meta("softmax.cases", list(range(len(spec))))
    for k, (shape, axis, big) in enumerate(spec):
        x = rand(shape, 3.0, big)
        out.add(f"softmax.{k}.x", x)
        out.add(f"softmax.{k}.y", torch.softmax(x, axis))
        out.add(f"softmax.{k}.ly", torch.log_softmax(x, axis))
        out.meta(f"softmax.{k}.axis", axis)


if __name__ == "__main__":
    write_reduce()
    write_softmax()
    out.meta("generator", "tools/gen_reduce_golden.py, torch " + torch.__version__)
    out.save("reduce_golden.safetensors")
