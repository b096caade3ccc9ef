#!/usr/bin/env python3
"""Makes tests/data/autodiff_mlp_golden.safetensors: a 2-layer MLP's loss and the
gradients of its parameters from PyTorch in float64, used by
tests/test_autodiff_mlp.c to check lamina's tape on a composite built from
raw ops. Run with Debian's /usr/bin/python3 (python3-torch):

    /usr/bin/python3 tools/gen_autodiff_golden.py

Two losses on the same x [8, 5], W1 [7, 5], b1 [7], W2 [3, 7], b2 [3]:
  ce:  cross_entropy(relu(x W1^T + b1) W2^T + b2, y), y i32 [8], mean;
  mse: mean((tanh(x W1^T + b1) W2^T + b2 - t)^2), t [8, 3].
The inputs are f64 tensors "mlp.<name>" (x, w1, b1, w2, b2, t; targets y
as i32); each loss "<ce|mse>" is stored as its value "<loss>.loss" and
d loss / d(W1, b1, W2, b2) as "<loss>.g<param>"; the seed is in the
metadata."""
import torch
import torch.nn.functional as F

from golden_st import Golden

torch.set_default_dtype(torch.float64)
out = Golden()


def emit(name, t):
    out.add(name if "." in name else "mlp." + name, t)


N, D, H, C = 8, 5, 7, 3
# The first seed from 2024 whose relu pre-activations are all clearly away
# from the kink at 0 and where every hidden unit is active for some samples
# and inactive for others, so the relu mask matters in every column.
seed = 2024
while True:
    torch.manual_seed(seed)
    x = torch.randn(N, D)
    W1 = (torch.randn(H, D) * 0.6).requires_grad_()
    b1 = (torch.randn(H) * 0.3).requires_grad_()
    W2 = (torch.randn(C, H) * 0.6).requires_grad_()
    b2 = (torch.randn(C) * 0.3).requires_grad_()
    t = torch.randn(N, C)
    with torch.no_grad():
        pre = x @ W1.T + b1
    active = (pre > 0).sum(0)
    if pre.abs().min().item() > 1e-2 and bool(((active > 0) & (active < N)).all()):
        break
    seed += 1
y = torch.tensor([0, 2, 1, 1, 0, 2, 2, 1])
params = [W1, b1, W2, b2]
out.meta("seed", seed)

for n, v in [("x", x), ("w1", W1), ("b1", b1), ("w2", W2), ("b2", b2), ("t", t)]:
    emit(n, v)
out.add("mlp.y", y, "i32")

ce = F.cross_entropy(F.relu(x @ W1.T + b1) @ W2.T + b2, y)
g = torch.autograd.grad(ce, params)
emit("ce.loss", ce)
for n, v in zip(["w1", "b1", "w2", "b2"], g):
    emit("ce.g" + n, v)

mse = ((torch.tanh(x @ W1.T + b1) @ W2.T + b2 - t) ** 2).mean()
g = torch.autograd.grad(mse, params)
emit("mse.loss", mse)
for n, v in zip(["w1", "b1", "w2", "b2"], g):
    emit("mse.g" + n, v)

out.meta("generator", "tools/gen_autodiff_golden.py, torch " + torch.__version__ + ", float64")
out.save("autodiff_mlp_golden.safetensors")
