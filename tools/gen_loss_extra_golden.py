#!/usr/bin/env python3
"""Makes tests/data/loss_extra_golden.safetensors: PyTorch values and input
gradients of the losses added for issue 23 (BCE with pos_weight, poisson_nll,
cosine_embedding, hinge_embedding, soft_margin, multi_margin,
multilabel_margin, multilabel_soft_margin, ctc), every reduction, that
tests/test_loss_extra.c checks.

    /usr/bin/python3 tools/gen_loss_extra_golden.py

Metadata "cases" lists the cases; for case c, "c.kind" names the loss, "c.nin"
its float inputs "c.in<i>" (f64, their shapes kept), "c.grads" which of them
have golden gradients, and options as "c.<field>" (margin, p, eps, full,
no_log_input, blank, zero_infinity, log_softmax; 0 for the default). Integer targets and lengths
are "c.target", "c.il", "c.tl" (i32), weights "c.weight" / "c.pos_weight".
Per reduction r (mean, sum, none): "c.r.y" the loss, "c.r.w" the cotangent,
"c.r.g<i>" d<w, loss>/d(in i). CTC cases with log_softmax = 1 take logits as
in0 (the loss is on log_softmax(in0, -1), so the gradient is torch's through
log_softmax) and also store "c.r.glp", torch's gradient with respect to the
log-probabilities as a leaf (which adds exp(log_probs) on t < input length)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

torch.manual_seed(23)
torch.set_default_dtype(torch.float64)
out = Golden()
cases = []


def case(name, kind, fn, inputs, grads=(0,), ints=None, extra=None, opts=None, glp=None):
    """fn(*inputs, reduction) -> loss; inputs are float tensors; ints: name -> int tensor."""
    cases.append(name)
    out.meta(f"{name}.kind", kind)
    out.meta(f"{name}.nin", len(inputs))
    out.meta(f"{name}.grads", list(grads))
    every = {"margin": 0, "p": 0, "eps": 0, "full": 0, "no_log_input": 0, "blank": 0, "zero_infinity": 0,
             "log_softmax": 0}
    every.update(opts or {})
    for k, v in every.items():
        out.meta(f"{name}.{k}", v)
    for i, t in enumerate(inputs):
        out.add(f"{name}.in{i}", t, "f64")
    for k, t in (ints or {}).items():
        out.add(f"{name}.{k}", t, "i32")
    for k, t in (extra or {}).items():
        out.add(f"{name}.{k}", t, "f64")
    for red in ("mean", "sum", "none"):
        xs = [t.clone().requires_grad_(i in grads) for i, t in enumerate(inputs)]
        y = fn(*xs, red)
        w = torch.randn_like(y)
        (y * w).sum().backward()
        out.add(f"{name}.{red}.y", y)
        out.add(f"{name}.{red}.w", w)
        for i in grads:
            out.add(f"{name}.{red}.g{i}", xs[i].grad)
        if glp is not None:
            lp = glp(inputs[0]).detach().requires_grad_(True)
            yl = glp.loss(lp, red)
            (yl * w).sum().backward()
            out.add(f"{name}.{red}.glp", lp.grad)


# BCE with logits and pos_weight (a [C] vector broadcast over [N, C]; one [N, 1]).
x = torch.randn(4, 5) * 2
t = torch.rand(4, 5)
pw = torch.rand(5) * 2 + 0.3
case("bce_pw", "bce", lambda a, b, r: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw, reduction=r),
     [x, t], extra={"pos_weight": pw})
pw2 = torch.rand(4, 1) * 3 + 0.1
wt = torch.rand(4, 5) + 0.5
case("bce_pw_w", "bce", lambda a, b, r: F.binary_cross_entropy_with_logits(a, b, weight=wt, pos_weight=pw2,
                                                                         reduction=r),
     [x, t], extra={"pos_weight": pw2, "weight": wt})

# Poisson NLL: targets with zeros, values <= 1 and > 1.
xl = torch.randn(3, 5)
tp = torch.tensor([[0., 1., 2., 3., 0.5], [4., 0., 1.5, 7., 1.], [2., 2., 0., 5., 9.]])
case("poisson_log", "poisson_nll", lambda a, b, r: F.poisson_nll_loss(a, b, reduction=r), [xl, tp])
case("poisson_log_full", "poisson_nll", lambda a, b, r: F.poisson_nll_loss(a, b, full=True, reduction=r), [xl, tp],
     opts={"full": 1})
xr = torch.rand(3, 5) * 3 + 0.05
case("poisson_rate", "poisson_nll", lambda a, b, r: F.poisson_nll_loss(a, b, log_input=False, reduction=r), [xr, tp],
     opts={"no_log_input": 1})
case("poisson_rate_full", "poisson_nll",
     lambda a, b, r: F.poisson_nll_loss(a, b, log_input=False, full=True, eps=1e-3, reduction=r), [xr, tp],
     opts={"no_log_input": 1, "full": 1, "eps": 1e-3})

# Cosine embedding: [5, 7] and one unbatched [7] pair.
c1, c2 = torch.randn(5, 7), torch.randn(5, 7)
cy = torch.tensor([1., -1., -1., 1., -1.])
case("cos_emb", "cosine_embedding", lambda a, b, y, r: F.cosine_embedding_loss(a, b, y, reduction=r), [c1, c2, cy],
     grads=(0, 1))
case("cos_emb_margin", "cosine_embedding",
     lambda a, b, y, r: F.cosine_embedding_loss(a, b, y, margin=-0.2, reduction=r), [c1, c2, cy], grads=(0, 1),
     opts={"margin": -0.2})
u1, u2 = torch.randn(7), torch.randn(7)
case("cos_emb_1d", "cosine_embedding",
     lambda a, b, y, r: F.cosine_embedding_loss(a, b, y, margin=0.1, reduction=r), [u1, u2, torch.tensor(-1.)],
     grads=(0, 1), opts={"margin": 0.1})

# Hinge embedding and soft margin: [3, 5] with +-1 targets.
hx = torch.randn(3, 5) * 1.5
hs = torch.where(torch.randn(3, 5) > 0, 1.0, -1.0)
case("hinge_emb", "hinge_embedding", lambda a, y, r: F.hinge_embedding_loss(a, y, reduction=r), [hx, hs])
case("hinge_emb_margin", "hinge_embedding", lambda a, y, r: F.hinge_embedding_loss(a, y, margin=0.7, reduction=r),
     [hx, hs], opts={"margin": 0.7})
case("soft_margin", "soft_margin", lambda a, y, r: F.soft_margin_loss(a, y, reduction=r), [hx, hs])

# Multi margin: [6, 5], p 1 and 2, margin, class weights; one unbatched [5].
mx = torch.randn(6, 5)
mt = torch.tensor([0, 4, 2, 2, 1, 3])
mw = torch.rand(5) + 0.5
case("multi_margin", "multi_margin", lambda a, r: F.multi_margin_loss(a, mt, reduction=r), [mx], ints={"target": mt})
case("multi_margin_p2", "multi_margin",
     lambda a, r: F.multi_margin_loss(a, mt, p=2, margin=0.7, weight=mw, reduction=r), [mx], ints={"target": mt},
     extra={"weight": mw}, opts={"p": 2, "margin": 0.7})
case("multi_margin_1d", "multi_margin", lambda a, r: F.multi_margin_loss(a, torch.tensor(3), reduction=r),
     [torch.randn(5)], ints={"target": torch.tensor(3)})

# Multilabel margin: lists ended by -1, one full row, one empty, a repeat.
lx = torch.randn(5, 5)
lt = torch.tensor([[3, 0, -1, 1, 2], [1, -1, 4, 4, 4], [0, 1, 2, 3, 4], [-1, 2, 3, 0, 0], [2, 2, -1, 0, 0]])
case("multilabel_margin", "multilabel_margin", lambda a, r: F.multilabel_margin_loss(a, lt, reduction=r), [lx],
     ints={"target": lt})
lt1 = torch.tensor([3, 1, -1, 0])
case("multilabel_margin_1d", "multilabel_margin", lambda a, r: F.multilabel_margin_loss(a, lt1, reduction=r),
     [torch.randn(4)], ints={"target": lt1})

# Multilabel soft margin: [4, 5] with class weights.
sx, st = torch.randn(4, 5) * 2, torch.rand(4, 5)
sw = torch.rand(5) + 0.5
case("multilabel_soft_margin", "multilabel_soft_margin",
     lambda a, b, r: F.multilabel_soft_margin_loss(a, b, reduction=r), [sx, st])
case("multilabel_soft_margin_w", "multilabel_soft_margin",
     lambda a, b, r: F.multilabel_soft_margin_loss(a, b, weight=sw, reduction=r), [sx, st], extra={"weight": sw})


# CTC: logits [T, N, C] through log_softmax.
class Ctc:
    def __init__(self, tg, il, tl, **kw):
        self.tg, self.il, self.tl, self.kw = tg, il, tl, kw

    def __call__(self, logits):
        return logits.log_softmax(-1)

    def loss(self, lp, red):
        return F.ctc_loss(lp, self.tg, self.il, self.tl, reduction=red, **self.kw)


def ctc_case(name, logits, tg, il, tl, opts=None, **kw):
    c = Ctc(tg, il, tl, **kw)
    case(name, "ctc", lambda a, r: c.loss(a.log_softmax(-1), r), [logits],
         ints={"target": tg, "il": il, "tl": tl}, opts=dict(log_softmax=1, **(opts or {})), glp=c)


T, N, C = 9, 4, 6
lg = torch.randn(T, N, C)
tg = torch.tensor([[1, 1, 2, 5], [3, 4, 3, 0], [2, 0, 0, 0], [5, 5, 5, 1]])  # repeats need a blank between
il = torch.tensor([9, 7, 5, 9])
tl = torch.tensor([3, 3, 1, 4])
ctc_case("ctc", lg, tg, il, tl)
# An empty target, blank 3, concatenated targets.
tgc = torch.tensor([1, 2, 1, 5, 5, 0, 4])
ctc_case("ctc_concat_blank3", lg, tgc, torch.tensor([8, 9, 6, 3]), torch.tensor([3, 0, 2, 2]),
         opts={"blank": 3}, blank=3)
# An impossible sample (input 3 for 3 repeated labels): inf, NaN gradients; zero_infinity gives 0.
tgi = torch.tensor([[1, 1, 1], [2, 3, 4], [4, 0, 0], [2, 2, 0]])
ili, tli = torch.tensor([3, 9, 4, 6]), torch.tensor([3, 3, 1, 2])
ctc_case("ctc_inf", lg, tgi, ili, tli)
ctc_case("ctc_zero_inf", lg, tgi, ili, tli, opts={"zero_infinity": 1}, zero_infinity=True)
# Unbatched [T, C].
ctc_case("ctc_1d", torch.randn(7, 5), torch.tensor([1, 4, 4]), torch.tensor(7), torch.tensor(3))
# A longer one: several work-items per group stride over the extended labels.
T2, N2, C2, S2 = 40, 3, 7, 19
lg2 = torch.randn(T2, N2, C2)
tg2 = torch.randint(1, C2, (N2, S2))
ctc_case("ctc_long", lg2, tg2, torch.tensor([40, 33, 38]), torch.tensor([19, 12, 15]))

out.meta("cases", cases)
out.meta("generator", "tools/gen_loss_extra_golden.py, torch " + torch.__version__)
out.save("loss_extra_golden.safetensors")
