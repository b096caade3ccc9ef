#!/usr/bin/python3
"""gen_elementwise_golden.py: writes tests/data/elementwise_golden.safetensors,
PyTorch's values and gradients of the unary activations whose C reference is
not obviously equivalent to PyTorch (gelu, gelu tanh, mish, selu, celu,
softplus, log_sigmoid, hard_swish), in f64 and f32, on a fixed grid of inputs
that includes the thresholds and large magnitudes. Run from the repository
root with /usr/bin/python3 (needs torch); the file is committed so the tests
need no PyTorch.

Tensors: "grid.x" (f64) and per case "<case>.y64", ".dy64" (f64), ".y32",
".dy32" (f32), y = op(x) and dy = d sum(op(x)) / dx. Metadata: "cases" (the
case names), "<case>.op" (lam_unary_name of the op) and "<case>.p0".
"""
import torch
import torch.nn.functional as F

from golden_st import Golden

# case name, lamina op name (lam_unary_name), PyTorch function, p0
OPS = [
    ("gelu", "gelu", lambda x: F.gelu(x), 0.0),
    ("gelu_tanh", "gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), 0.0),
    ("mish", "mish", F.mish, 0.0),
    ("selu", "selu", F.selu, 0.0),
    ("celu", "celu", lambda x: F.celu(x, alpha=1.0), 1.0),
    ("celu_a05", "celu", lambda x: F.celu(x, alpha=0.5), 0.5),
    ("softplus", "softplus", F.softplus, 0.0),
    ("log_sigmoid", "log_sigmoid", F.logsigmoid, 0.0),
    ("hard_swish", "hard_swish", F.hardswish, 0.0),
]


def grid():
    xs = [i * 0.25 for i in range(-48, 49)]  # -12 .. 12, includes -3, 0, 3
    xs += [-1e4, -100.0, -30.0, -20.5, -19.5, -2.999, -1e-3, 1e-3, 0.1234, 2.999, 19.5, 20.0,
           20.5, 30.0, 100.0, 1e4]
    return xs


def check_finite(name, vs):
    if not all(abs(float(v)) < float("inf") for v in vs):
        raise ValueError(name + ": non-finite golden value")


def main():
    xs = grid()
    out = Golden()
    out.add("grid.x", torch.tensor(xs, dtype=torch.float64))
    out.meta("cases", [name for name, _, _, _ in OPS])
    for name, op, fn, p0 in OPS:
        for dt, suffix in ((torch.float64, "64"), (torch.float32, "32")):
            x = torch.tensor(xs, dtype=dt, requires_grad=True)
            y = fn(x)
            (dy,) = torch.autograd.grad(y.sum(), x)
            check_finite(name, y.tolist() + dy.tolist())
            out.add(f"{name}.y{suffix}", y)
            out.add(f"{name}.dy{suffix}", dy)
        out.meta(f"{name}.op", op)
        out.meta(f"{name}.p0", p0)
    out.meta("generator", "tools/gen_elementwise_golden.py, torch " + torch.__version__)
    out.save("elementwise_golden.safetensors")


if __name__ == "__main__":
    main()
