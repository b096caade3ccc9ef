#!/usr/bin/env python3
"""gen_conv_modes_golden.py: writes PyTorch golden data for the convolution
options beyond tools/gen_conv_golden.py to tests/data/conv_modes_golden.safetensors
(read by tests/test_conv.c in the same format):

- padding_mode: torch.nn.Conv1d/2d/3d(padding_mode="reflect" | "replicate" |
  "circular") with explicit symmetric padding (torch's int padding),
  padding="same" (stride 1) and asymmetric padding done as F.pad in that mode
  + a valid convolution (what ConvNd does itself), with strides, dilation,
  groups and odd sizes, including pads equal to the input size (circular) and
  one less than it (reflect);
- output_size: torch.nn.ConvTranspose1d/2d/3d.forward(x, output_size=...)
  at each end of the valid range [min, min + stride - 1].

Each case "conv.<name>" stores f64 x, w, (b), cot, y, gx, gw, (gb) (the
gradients of sum(y * cot)) and the metadata keys of gen_conv_golden.py plus
"padding_mode" (zeros, reflect, replicate, circular) and "output_size"
(requested transposed output sizes, 0 where none, padded to 3).

Run: /usr/bin/python3 tools/gen_conv_modes_golden.py  (from the repository root)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

SAME, EXPLICIT = "same", "explicit"

# (name, N, C, O, groups, spatial, kernel, stride, dilation, padding kind,
#  pads per dim (before, after), padding_mode, bias)
CONVS = [
    ("reflect1d_sym", 2, 3, 2, 1, [5], [3], [1], [1], EXPLICIT, [[2, 2]], "reflect", 1),
    ("reflect1d_same_dil", 1, 2, 2, 2, [17], [4], [1], [2], SAME, None, "reflect", 0),
    ("replicate1d_asym_s2", 1, 2, 3, 1, [5], [3], [2], [1], EXPLICIT, [[4, 1]], "replicate", 1),
    ("circular1d_full", 2, 1, 2, 1, [5], [3], [1], [1], EXPLICIT, [[5, 5]], "circular", 1),
    ("circular2d_same", 1, 2, 3, 1, [5, 4], [3, 2], [1, 1], [1, 1], SAME, None, "circular", 1),
    ("reflect2d_asym", 1, 4, 4, 2, [5, 17], [3, 3], [2, 1], [1, 2], EXPLICIT,
     [[4, 1], [2, 3]], "reflect", 1),
    ("replicate2d_sym", 2, 3, 2, 1, [5, 5], [5, 3], [1, 2], [1, 1], EXPLICIT,
     [[2, 2], [1, 1]], "replicate", 0),
    ("circular2d_dw", 1, 3, 3, 3, [4, 5], [3, 3], [1, 1], [2, 1], EXPLICIT,
     [[2, 2], [1, 1]], "circular", 1),
    ("reflect3d_sym", 1, 2, 2, 1, [3, 5, 4], [3, 3, 2], [1, 2, 1], [1, 1, 1], EXPLICIT,
     [[1, 1], [2, 2], [1, 1]], "reflect", 1),
    ("circular3d_same", 1, 2, 2, 2, [3, 4, 5], [2, 3, 3], [1, 1, 1], [1, 1, 1], SAME, None,
     "circular", 0),
    ("replicate3d_asym", 1, 1, 2, 1, [2, 3, 5], [2, 2, 3], [1, 1, 2], [1, 1, 1], EXPLICIT,
     [[3, 0], [0, 2], [1, 4]], "replicate", 1),
]

# (name, N, C, O, groups, spatial, kernel, stride, dilation, padding, output_size, bias)
TRANSPOSES = [
    ("tr1d_size_max", 2, 3, 2, 1, [5], [3], [3], [1], [1], [15], 1),
    ("tr1d_size_min", 1, 2, 2, 2, [4], [2], [2], [2], [0], [9], 0),
    ("tr2d_size_mixed", 1, 2, 3, 1, [5, 3], [3, 4], [2, 3], [1, 1], [1, 0], [10, 10], 1),
    ("tr3d_size", 1, 2, 2, 1, [2, 3, 4], [2, 3, 2], [2, 1, 3], [1, 1, 1], [0, 1, 1], [5, 3, 11], 1),
]


def pad3(v, fill):
    return list(v) + [fill] * (3 - len(v))


def rand(shape, gen):
    return torch.empty(shape, dtype=torch.float64).uniform_(-1, 1, generator=gen)


def conv_case(case, gen):
    name, N, C, O, G, sp, k, s, d, kind, pads, pmode, bias = case
    nsp = len(sp)
    x = rand([N, C] + sp, gen).requires_grad_(True)
    w = rand([O, C // G] + k, gen).requires_grad_(True)
    b = rand([O], gen).requires_grad_(True) if bias else None
    mod = [torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d][nsp - 1]
    if kind == SAME:
        m = mod(C, O, k, stride=s, padding="same", dilation=d, groups=G, bias=bool(bias),
                padding_mode=pmode).double()
        rp = m._reversed_padding_repeated_twice  # torch order: last dim first
        pads = [[rp[2 * (nsp - 1 - i)], rp[2 * (nsp - 1 - i) + 1]] for i in range(nsp)]
    elif all(p[0] == p[1] for p in pads):
        m = mod(C, O, k, stride=s, padding=[p[0] for p in pads], dilation=d, groups=G,
                bias=bool(bias), padding_mode=pmode).double()
    else:
        m = None
    if m is not None:
        with torch.no_grad():
            m.weight.copy_(w)
            if bias:
                m.bias.copy_(b)
        m.weight = torch.nn.Parameter(w)  # gradients land on w / b themselves
        if bias:
            m.bias = torch.nn.Parameter(b)
        y = m(x)
    else:
        tp = []
        for i in range(nsp - 1, -1, -1):
            tp += pads[i]
        fn = [F.conv1d, F.conv2d, F.conv3d][nsp - 1]
        y = fn(F.pad(x, tp, mode=pmode), w, b, stride=s, dilation=d, groups=G)
    cot = rand(list(y.shape), gen)
    (y * cot).sum().backward()
    gx, gw = x.grad, (m.weight.grad if m is not None else w.grad)
    gb = (m.bias.grad if m is not None else b.grad) if bias else None
    return dict(name=name, tr=0, mode=kind, G=G, bias=bias, s=s, d=d, pads=pads, outpad=[0] * nsp,
                pmode=pmode, osize=[0] * nsp, x=x, w=w, b=b, cot=cot, y=y.detach(), gx=gx, gw=gw,
                gb=gb)


def transpose_case(case, gen):
    name, N, C, O, G, sp, k, s, d, p, osize, bias = case
    nsp = len(sp)
    x = rand([N, C] + sp, gen).requires_grad_(True)
    mod = [torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d][nsp - 1]
    m = mod(C, O, k, stride=s, padding=p, dilation=d, groups=G, bias=bool(bias)).double()
    with torch.no_grad():
        m.weight.uniform_(-1, 1, generator=gen)
        if bias:
            m.bias.uniform_(-1, 1, generator=gen)
    y = m(x, output_size=osize)
    assert list(y.shape[2:]) == osize, (name, y.shape)
    cot = rand(list(y.shape), gen)
    (y * cot).sum().backward()
    return dict(name=name, tr=1, mode=EXPLICIT, G=G, bias=bias, s=s, d=d,
                pads=[[v, 0] for v in p], outpad=[0] * nsp, pmode="zeros", osize=osize, x=x,
                w=m.weight, b=m.bias if bias else None, cot=cot, y=y.detach(), gx=x.grad,
                gw=m.weight.grad, gb=m.bias.grad if bias else None)


def main():
    out = Golden()
    gen = torch.Generator().manual_seed(2323)
    rows = [conv_case(c, gen) for c in CONVS] + [transpose_case(c, gen) for c in TRANSPOSES]
    out.meta("conv.cases", [r["name"] for r in rows])
    for r in rows:
        name = r["name"]
        for f in ("x", "w", "b", "cot", "y", "gx", "gw", "gb"):
            if r[f] is not None:
                out.add(f"conv.{name}.{f}", r[f].detach())
        pads = pad3(r["pads"], [0, 0])
        for key, v in (("transpose", r["tr"]), ("mode", r["mode"]), ("groups", r["G"]),
                       ("bias", r["bias"]), ("stride", pad3(r["s"], 1)),
                       ("dilation", pad3(r["d"], 1)), ("pad", [v for p in pads for v in p]),
                       ("output_padding", pad3(r["outpad"], 0)),
                       ("padding_mode", r["pmode"]), ("output_size", pad3(r["osize"], 0))):
            out.meta(f"conv.{name}.{key}", v)
    out.meta("generator", "tools/gen_conv_modes_golden.py, torch " + torch.__version__ +
             ", float64")
    out.save("conv_modes_golden.safetensors")


if __name__ == "__main__":
    main()
