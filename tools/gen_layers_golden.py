#!/usr/bin/env python3
"""Makes tests/data/layers_golden.safetensors: PyTorch outputs and gradients
for the dense layers (linear, bilinear, embedding, prelu, glu), used by
tests/test_dense.c. Run with Debian's /usr/bin/python3 (python3-torch):

    /usr/bin/python3 tools/gen_layers_golden.py

Each case "<case>" stores inputs, parameters, a cotangent w and the results
of y = layer(x) and d<w, y>/d(everything) as f64 tensors "<case>.<field>"
(embedding indices as i32)."""
import torch

from golden_st import Golden

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)
out = Golden()


def emit(name, t):
    case, field = name.split("_", 1)
    out.add(f"{case}.{field}", t)


def grads(y, *tensors):
    w = torch.randn_like(y)
    (y * w).sum().backward()
    return w, [t.grad for t in tensors]


# linear: 5 -> 3 on [4, 5]
lin = torch.nn.Linear(5, 3)
x = torch.randn(4, 5, requires_grad=True)
y = lin(x)
w, (gx, gw, gb) = grads(y, x, lin.weight, lin.bias)
for n, t in [("lin_x", x), ("lin_w", lin.weight), ("lin_b", lin.bias), ("lin_y", y), ("lin_cot", w),
             ("lin_gx", gx), ("lin_gw", gw), ("lin_gb", gb)]:
    emit(n, t)

# linear on a rank-3 input without bias: 4 -> 2 on [2, 3, 4]
lin2 = torch.nn.Linear(4, 2, bias=False)
x = torch.randn(2, 3, 4, requires_grad=True)
y = lin2(x)
w, (gx, gw) = grads(y, x, lin2.weight)
for n, t in [("lin3_x", x), ("lin3_w", lin2.weight), ("lin3_y", y), ("lin3_cot", w), ("lin3_gx", gx),
             ("lin3_gw", gw)]:
    emit(n, t)

# bilinear: (3, 4) -> 2 on [5, 3] and [5, 4]
bil = torch.nn.Bilinear(3, 4, 2)
x1 = torch.randn(5, 3, requires_grad=True)
x2 = torch.randn(5, 4, requires_grad=True)
y = bil(x1, x2)
w, (g1, g2, gw, gb) = grads(y, x1, x2, bil.weight, bil.bias)
for n, t in [("bil_x1", x1), ("bil_x2", x2), ("bil_w", bil.weight), ("bil_b", bil.bias), ("bil_y", y),
             ("bil_cot", w), ("bil_g1", g1), ("bil_g2", g2), ("bil_gw", gw), ("bil_gb", gb)]:
    emit(n, t)

# embedding: vocab 7, dim 4, indices [2, 3] with a repeat; lamina scales by sqrt(dim) by default
emb = torch.nn.Embedding(7, 4)
idx = torch.tensor([[1, 5, 1], [0, 6, 3]])
y = emb(idx) * 2.0
w, (gw,) = grads(y, emb.weight)
out.add("emb.idx", idx, "i32")
for n, t in [("emb_w", emb.weight), ("emb_y", y), ("emb_cot", w), ("emb_gw", gw)]:
    emit(n, t)

# prelu with 3 channels on [2, 3, 4]
pr = torch.nn.PReLU(3)
with torch.no_grad():
    pr.weight.copy_(torch.tensor([0.25, -0.1, 0.7]))
x = torch.randn(2, 3, 4, requires_grad=True)
y = pr(x)
w, (gx, gw) = grads(y, x, pr.weight)
for n, t in [("prelu_x", x), ("prelu_w", pr.weight), ("prelu_y", y), ("prelu_cot", w), ("prelu_gx", gx),
             ("prelu_gw", gw)]:
    emit(n, t)

# glu along the last axis on [2, 6]
x = torch.randn(2, 6, requires_grad=True)
y = torch.nn.functional.glu(x, -1)
w, (gx,) = grads(y, x)
for n, t in [("glu_x", x), ("glu_y", y), ("glu_cot", w), ("glu_gx", gx)]:
    emit(n, t)

out.meta("generator", "tools/gen_layers_golden.py, torch " + torch.__version__)
out.save("layers_golden.safetensors")
