#!/usr/bin/python3
"""gen_norm_golden.py: writes PyTorch golden data for the norm family.

tests/data/norm_golden.safetensors: outputs and gradients (for a random cotangent dy)
                           of F.layer_norm, RMS norm (the formula of
                           nn.RMSNorm, absent from this PyTorch), F.group_norm,
                           F.instance_norm (with a running-stat update),
                           channel layer norm (F.layer_norm over axis 1),
                           F.batch_norm in training (with running stats) and
                           evaluation, on ranks 2-5, odd sizes, batch size 1,
                           with and without affine params, and inputs far from
                           zero (mean 1e3); plus nn.BatchNorm2d's running
                           statistics after 3 training steps and its
                           evaluation output afterwards.

Case k is "norm.<k>.<x|w|b|rm|rv|dy|y|dx|dw|db|nrm|nrv>" (absent when the
case has none; inputs f32, results f64) with metadata norm.<k>.op (layer,
rms, group, instance, channel_ln, batch_train, batch_eval), .nd (layer/rms:
normalized ndim), .groups, .eps, .momentum and .pshape (the params' shape);
"norm.cases" lists the k. The BatchNorm2d run is "bn3.*".

Inputs are drawn as float32 and computed in float64, so the f32 and f64
tests see the same values. Run: /usr/bin/python3 tools/gen_norm_golden.py
(from the repository root). Deterministic (fixed seed)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

torch.manual_seed(4321)


def rand(shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale + offset).to(torch.float32).to(torch.float64)


def rms_norm(x, nd, w, eps):
    dims = list(range(x.dim() - nd, x.dim()))
    y = x * torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + eps)
    return y * w if w is not None else y


def channel_ln(x, w, b, eps):
    perm = [0] + list(range(2, x.dim())) + [1]
    inv = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
    y = F.layer_norm(x.permute(*perm), (x.shape[1],), w, b, eps)
    return y.permute(*inv)


def case(op, shape, nd=0, groups=0, has_w=True, has_b=True, eps=1e-5, momentum=0.1,
         offset=0.0, running=False):
    if op == "rms":
        has_b = False  # RMS norm has no bias
    x = rand(shape, 2.0, offset).requires_grad_(True)
    if op in ("layer", "rms"):
        pshape = list(shape[len(shape) - nd:])
    else:
        pshape = [shape[1]]
    w = (rand(pshape, 0.5, 1.0).requires_grad_(True)) if has_w else None
    b = (rand(pshape, 0.5).requires_grad_(True)) if has_b else None
    rm = rv = None
    if running or op == "batch_eval":
        rm = rand([shape[1]], 0.5, offset)
        rv = (torch.rand(shape[1], dtype=torch.float32) + 0.5).to(torch.float64)
    nrm = rm.clone() if rm is not None else None
    nrv = rv.clone() if rv is not None else None
    if op == "layer":
        y = F.layer_norm(x, pshape, w, b, eps)
    elif op == "rms":
        y = rms_norm(x, nd, w, eps)
    elif op == "group":
        y = F.group_norm(x, groups, w, b, eps)
    elif op == "instance":
        y = F.instance_norm(x, nrm, nrv, w, b, True, momentum, eps)
    elif op == "channel_ln":
        y = channel_ln(x, w, b, eps)
    elif op == "batch_train":
        y = F.batch_norm(x, nrm, nrv, w, b, True, momentum, eps)
    else:
        y = F.batch_norm(x, nrm, nrv, w, b, False, momentum, eps)
    dy = rand(list(y.shape))
    y.backward(dy)
    return dict(op=op, shape=shape, nd=nd, groups=groups, eps=eps, momentum=momentum,
                x=x.detach(), w=None if w is None else w.detach(), b=None if b is None else b.detach(),
                rm=rm, rv=rv, dy=dy, y=y.detach(), dx=x.grad,
                dw=None if w is None else w.grad, db=None if b is None else b.grad,
                nrm=nrm if running and op != "batch_eval" else None,
                nrv=nrv if running and op != "batch_eval" else None, np=len(pshape), pshape=pshape)


def cases():
    return [
        case("layer", [5, 7], 1),
        case("layer", [1, 3, 33], 1, has_b=False),
        case("layer", [2, 3, 4, 5], 2),
        case("layer", [3, 1, 2, 3, 5], 3, has_w=False, has_b=False),
        case("layer", [2, 257], 1),
        case("layer", [3, 9], 1, offset=1000.0),
        case("rms", [5, 7], 1),
        case("rms", [2, 3, 9], 2, eps=1e-6),
        case("rms", [1, 129], 1, has_w=False),
        case("group", [2, 6, 5], 0, 3),
        case("group", [1, 4, 3, 3], 0, 2),
        case("group", [3, 6], 0, 2),
        case("group", [2, 4, 2, 3, 2], 0, 4, has_w=False, has_b=False),
        case("group", [2, 8, 17], 0, 1),
        case("instance", [2, 3, 7], 0),
        case("instance", [1, 2, 3, 5], 0, has_w=False, has_b=False),
        case("instance", [2, 3, 2, 2, 3], 0),
        case("instance", [3, 4, 5], 0, running=True),
        case("channel_ln", [2, 3, 4, 5], 0),
        case("channel_ln", [1, 5, 7], 0),
        case("channel_ln", [3, 4], 0, has_b=False),
        case("batch_train", [5, 3], 0, running=True),
        case("batch_train", [1, 3, 7], 0, running=True),
        case("batch_train", [2, 3, 4, 5], 0, running=True, momentum=0.3),
        case("batch_train", [2, 2, 3, 2, 3], 0, has_w=False, has_b=False),
        case("batch_train", [4, 6, 1, 1], 0, running=True),
        case("batch_train", [3, 2, 40], 0, running=True, offset=1000.0),
        case("batch_eval", [2, 3, 4, 5], 0),
        case("batch_eval", [3, 5], 0, has_b=False),
    ]


def bn_steps():
    """nn.BatchNorm2d(3) trained on 3 batches, then evaluated on a 4th."""
    torch.manual_seed(99)
    bn = torch.nn.BatchNorm2d(3).to(torch.float64)
    with torch.no_grad():
        bn.weight.copy_(rand([3], 0.5, 1.0))
        bn.bias.copy_(rand([3], 0.5))
    xs = [rand([2, 3, 4, 5], 1.5, 0.5) for _ in range(4)]
    bn.train()
    for x in xs[:3]:
        bn(x)
    bn.eval()
    y = bn(xs[3]).detach()
    return bn, xs, y


def main():
    cs = cases()
    out = Golden()
    INPUTS = ("x", "w", "b", "rm", "rv", "dy")  # float32 values
    names = ["x", "w", "b", "rm", "rv", "dy", "y", "dx", "dw", "db", "nrm", "nrv"]
    out.meta("norm.cases", list(range(len(cs))))
    for k, c in enumerate(cs):
        for n in names:
            if c[n] is not None:
                out.add("norm.%d.%s" % (k, n), c[n], "f32" if n in INPUTS else "f64")
        out.meta("norm.%d.op" % k, c["op"])
        out.meta("norm.%d.nd" % k, c["nd"])
        out.meta("norm.%d.groups" % k, c["groups"])
        out.meta("norm.%d.eps" % k, c["eps"])
        out.meta("norm.%d.momentum" % k, c["momentum"])
        out.meta("norm.%d.pshape" % k, c["pshape"])
    bn, xs, y = bn_steps()
    # nn.BatchNorm2d(3), momentum 0.1, eps 1e-5: 3 training steps on x0..x2, then eval on x3.
    out.add("bn3.weight", bn.weight)
    out.add("bn3.bias", bn.bias)
    for i, x in enumerate(xs):
        out.add("bn3.x%d" % i, x, "f32")
    out.add("bn3.running_mean", bn.running_mean)
    out.add("bn3.running_var", bn.running_var)
    out.add("bn3.num_batches_tracked", bn.num_batches_tracked, "i32")
    out.add("bn3.y", y)
    out.meta("generator", "tools/gen_norm_golden.py, torch " + torch.__version__)
    out.save("norm_golden.safetensors")


if __name__ == "__main__":
    main()
