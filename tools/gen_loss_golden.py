#!/usr/bin/env python3
"""Makes tests/data/loss_golden.safetensors: PyTorch values and input
gradients for every loss and reduction that tests/test_loss.c checks.

    /usr/bin/python3 tools/gen_loss_golden.py

The inputs are tensors "inputs.<name>" (f64; class targets i32), and for each
case and reduction (mean, sum, none) "<case>.<reduction>.y" holds the loss
values, ".w" the cotangent and ".g<i>" d<w, loss>/d(input i)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)
out = Golden()


def arr(name, t, ctype="double"):
    if "." not in name:
        name = "inputs." + name
    out.add(name, t, "f64" if ctype == "double" else "i32")


def case(name, fn, inputs, grad_idx=(0,)):
    """fn(*inputs, reduction) -> loss. Stores loss and grads of input 0.. per reduction."""
    for red in ("mean", "sum", "none"):
        xs = [t.clone().requires_grad_(i in grad_idx) if t.is_floating_point() else t for i, t in enumerate(inputs)]
        y = fn(*xs, red)
        w = torch.randn_like(y)
        (y * w).sum().backward()
        arr(f"{name}.{red}.y", y)
        arr(f"{name}.{red}.w", w)
        for i in grad_idx:
            arr(f"{name}.{red}.g{i}", xs[i].grad)


logits = torch.randn(6, 5)
tgt = torch.tensor([0, 4, 2, -100, 1, 4])
cw = torch.rand(5) + 0.5
arr("ce_logits", logits)
arr("ce_target", tgt, "int")
arr("ce_target_clamped", tgt.clamp(min=0), "int")  # what the ce_plain case feeds PyTorch
arr("ce_weight", cw)
case("ce_plain", lambda x, t, r: F.cross_entropy(x, t.clamp(min=0), reduction=r), [logits, tgt])
case("ce_full", lambda x, t, r: F.cross_entropy(x, t, weight=cw, ignore_index=-100, label_smoothing=0.2, reduction=r),
     [logits, tgt])
probs = torch.softmax(torch.randn(6, 5), 1)
arr("ce_probs", probs)
case("ce_prob", lambda x, p, r: F.cross_entropy(x, p, label_smoothing=0.1, reduction=r), [logits, probs])
# spatial: [2, 3, 4] logits, [2, 4] targets
sl = torch.randn(2, 3, 4)
st = torch.tensor([[0, 2, 1, 1], [2, 0, -100, 1]])
arr("ce_sp_logits", sl)
arr("ce_sp_target", st, "int")
case("ce_sp", lambda x, t, r: F.cross_entropy(x, t, reduction=r), [sl, st])
lp = torch.log_softmax(torch.randn(6, 5), 1)
arr("nll_logp", lp)
case("nll", lambda x, t, r: F.nll_loss(x, t, weight=cw, reduction=r), [lp, tgt])

x = torch.randn(3, 4) * 3
y01 = torch.rand(3, 4)
arr("bce_x", x)
arr("bce_t", y01)
case("bce_logits", lambda a, t, r: F.binary_cross_entropy_with_logits(a, t, reduction=r), [x, y01])
p = torch.sigmoid(torch.randn(3, 4))
arr("bce_p", p)
case("bce_probs", lambda a, t, r: F.binary_cross_entropy(a, t, reduction=r), [p, y01])

a = torch.randn(3, 5)
b = torch.randn(3, 5)
arr("reg_a", a)
arr("reg_b", b)
case("mse", lambda u, v, r: F.mse_loss(u, v, reduction=r), [a, b])
case("l1", lambda u, v, r: F.l1_loss(u, v, reduction=r), [a, b])
case("smooth_l1", lambda u, v, r: F.smooth_l1_loss(u, v, beta=0.7, reduction=r), [a, b])
case("huber", lambda u, v, r: F.huber_loss(u, v, delta=0.8, reduction=r), [a, b])
sgn = torch.where(torch.randn(3, 5) > 0, 1.0, -1.0)
arr("reg_sign", sgn)
case("hinge", lambda u, s, r: {"mean": torch.mean, "sum": torch.sum, "none": lambda z: z}[r](torch.clamp(1 - u * s, min=0)), [a, sgn])
case("margin_ranking", lambda u, v, s, r: F.margin_ranking_loss(u, v, s, margin=0.3, reduction=r), [a, b, sgn], (0, 1))

logq = torch.log_softmax(torch.randn(4, 3), 1)
pt = torch.softmax(torch.randn(4, 3), 1)
pt[0, 1] = 0.0
arr("kl_input", logq)
arr("kl_target", pt)
for red in ("batchmean",):
    q = logq.clone().requires_grad_(True)
    yy = F.kl_div(q, pt, reduction=red)
    yy.backward()
    arr("kl.batchmean.y", yy)
    arr("kl.batchmean.g0", q.grad)
case("kl", lambda u, t, r: F.kl_div(u, t, reduction=r), [logq, pt])
lt = torch.log_softmax(torch.randn(4, 3), 1)
arr("kl_log_target", lt)
case("kl_log", lambda u, t, r: F.kl_div(u, t, reduction=r, log_target=True), [logq, lt])

an, po, ne = torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6)
arr("tri_a", an)
arr("tri_p", po)
arr("tri_n", ne)
case("triplet", lambda u, v, w, r: F.triplet_margin_loss(u, v, w, margin=1.0, reduction=r), [an, po, ne], (0, 1, 2))
case("triplet_swap", lambda u, v, w, r: F.triplet_margin_loss(u, v, w, margin=2.0, p=1, swap=True, reduction=r), [an, po, ne], (0, 1, 2))
c1, c2 = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
arr("cos_x1", c1)
arr("cos_x2", c2)
case("cos", lambda u, v, r: {"mean": torch.mean, "sum": torch.sum, "none": lambda z: z}[r](F.cosine_similarity(u, v, dim=1, eps=1e-8)), [c1, c2], (0, 1))
mu, tg, var = torch.randn(5, 2), torch.randn(5, 2), torch.rand(5, 2) + 0.1
arr("gnll_mu", mu)
arr("gnll_t", tg)
arr("gnll_var", var)
case("gnll", lambda u, t, v, r: F.gaussian_nll_loss(u, t, v, full=True, reduction=r), [mu, tg, var], (0, 2))

out.meta("generator", "tools/gen_loss_golden.py, torch " + torch.__version__)
out.save("loss_golden.safetensors")
