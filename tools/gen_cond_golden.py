#!/usr/bin/python3
"""gen_cond_golden.py: writes the conditioning golden data of the norm and
reduce suites: inputs whose mean is large compared with their spread (std
0.1, mean 0, 0.1, 10, 1e3, 1e4: |mean|/std from 0 to 1e5), the float64
answer on the same float32 values, and PyTorch's own float32 error against
it, which is the bar lamina's float32 result must meet.

tests/data/norm_cond_golden.safetensors: case k is "cond.<k>.<x|w|b|dy>"
    (float32 inputs; w/b absent for RMS norm's bias) and
    "cond.<k>.<y|dx|dw|db>" (float64 answers: outputs and gradients for the
    cotangent dy), with metadata cond.<k>.op (layer, rms, group, instance,
    channel_ln, batch_train), .nd (layer/rms: normalized ndim), .groups,
    .mean (the offset), .pshape and .terr: PyTorch float32's max absolute
    error of y, dx, dw, db (0 where absent); "cond.cases" lists the k.
tests/data/reduce_cond_golden.safetensors: case k is "var.<k>.<x|dy>"
    (float32) and "var.<k>.<y|dx>" (float64: torch.var with correction 1 and
    its input gradient for the cotangent dy), metadata var.<k>.axes, .mean
    and .terr (PyTorch float32's max absolute error of y and dx);
    "var.cases" lists the k.

Errors are max |f32 result - f64 answer| over the elements. Run:
/usr/bin/python3 tools/gen_cond_golden.py (from the repository root).
Deterministic (fixed seed)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

torch.manual_seed(2323)

MEANS = [0.0, 0.1, 10.0, 1e3, 1e4]
STD = 0.1
EPS = 1e-5


def rms_norm(x, nd, w, eps):
    dims = list(range(x.dim() - nd, x.dim()))
    y = x * torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + eps)
    return y * w if w is not None else y


def channel_ln(x, w, b, eps):
    perm = [0] + list(range(2, x.dim())) + [1]
    inv = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
    return F.layer_norm(x.permute(*perm), (x.shape[1],), w, b, eps).permute(*inv)


def run(op, x, w, b, nd, groups):
    if op == "layer":
        return F.layer_norm(x, tuple(x.shape[x.dim() - nd:]), w, b, EPS)
    if op == "rms":
        return rms_norm(x, nd, w, EPS)
    if op == "group":
        return F.group_norm(x, groups, w, b, EPS)
    if op == "instance":
        return F.instance_norm(x, None, None, w, b, True, 0.1, EPS)
    if op == "channel_ln":
        return channel_ln(x, w, b, EPS)
    return F.batch_norm(x, None, None, w, b, True, 0.1, EPS)


def err(a, ref):
    return float((a.double() - ref).abs().max()) if a is not None else 0.0


def f32(shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale + offset).to(torch.float32)


NORMS = [  # op, shape, nd, groups
    ("batch_train", [8, 3, 5, 5], 0, 0),
    ("batch_train", [64, 5], 0, 0),
    ("batch_train", [2, 4, 130], 0, 0),
    ("layer", [6, 300], 1, 0),
    ("layer", [40, 7], 1, 0),
    ("group", [4, 6, 5, 5], 0, 3),
    ("instance", [2, 3, 7, 9], 0, 0),
    ("channel_ln", [2, 6, 4, 4], 0, 0),
    ("rms", [5, 64], 1, 0),
]

g = Golden()
k = 0
for op, shape, nd, groups in NORMS:
    pshape = shape[len(shape) - nd:] if op in ("layer", "rms") else [shape[1]]
    for mean in MEANS:
        x32 = f32(shape, STD, mean)
        w32 = f32(pshape, 0.5, 1.0)
        b32 = f32(pshape, 0.5) if op != "rms" else None
        dy32 = f32(shape)
        outs = {}
        for dt in (torch.float64, torch.float32):
            x = x32.to(dt).requires_grad_(True)
            w = w32.to(dt).requires_grad_(True)
            b = b32.to(dt).requires_grad_(True) if b32 is not None else None
            y = run(op, x, w, b, nd, groups)
            ins = [x, w] + ([b] if b is not None else [])
            gr = torch.autograd.grad(y, ins, dy32.to(dt))
            outs[dt] = [y.detach()] + [t.detach() for t in gr] + ([None] if b is None else [])
        ref, t32 = outs[torch.float64], outs[torch.float32]
        p = f"cond.{k}."
        g.add(p + "x", x32).add(p + "w", w32).add(p + "dy", dy32)
        if b32 is not None:
            g.add(p + "b", b32)
        for name, r in zip(("y", "dx", "dw", "db"), ref):
            if r is not None:
                g.add(p + name, r)
        g.meta(p + "op", op).meta(p + "nd", nd).meta(p + "groups", groups).meta(p + "mean", mean)
        g.meta(p + "pshape", list(pshape))
        g.meta(p + "terr", [err(a, r) if r is not None else 0.0 for a, r in zip(t32, ref)])
        k += 1
g.meta("cond.cases", list(range(k)))
g.save("norm_cond_golden.safetensors")

VARS = [  # shape, axes
    ([6, 300], [1]),
    ([300, 20], [0]),
    ([9000], [0]),
    ([4, 6, 50], [0, 2]),
]
g = Golden()
k = 0
for shape, axes in VARS:
    for mean in MEANS:
        x32 = f32(shape, STD, mean)
        oshape = [s for d, s in enumerate(shape) if d not in axes]
        dy32 = f32(oshape if oshape else [1])  # a full reduction: stored as [1]
        outs = {}
        for dt in (torch.float64, torch.float32):
            x = x32.to(dt).requires_grad_(True)
            y = torch.var(x, dim=axes, unbiased=True)
            (dx,) = torch.autograd.grad(y, (x,), dy32.to(dt).reshape(y.shape))
            outs[dt] = (y.detach(), dx)
        p = f"var.{k}."
        g.add(p + "x", x32).add(p + "dy", dy32)
        g.add(p + "y", outs[torch.float64][0].reshape(dy32.shape))
        g.add(p + "dx", outs[torch.float64][1])
        g.meta(p + "axes", axes).meta(p + "mean", mean)
        g.meta(p + "terr", [err(a, r) for a, r in zip(outs[torch.float32], outs[torch.float64])])
        k += 1
g.meta("var.cases", list(range(k)))
g.save("reduce_cond_golden.safetensors")
