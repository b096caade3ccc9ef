#!/usr/bin/env python3
"""gen_conv_golden.py: writes PyTorch golden data for lamina's convolution
family to tests/data/conv_golden.safetensors: conv.* (tests/test_conv.c),
pool.* (tests/test_pool.c) and upsample.* (tests/test_upsample.c).

Convolutions: conv1d/2d/3d and conv_transpose1d/2d/3d outputs and
the gradients of sum(y * cot) in x, weight and bias, in float64, across
strides, paddings (lamina's same / valid / causal / explicit per side, done
in PyTorch with padding="same", "valid" or F.pad), dilations, groups
(depthwise included), odd spatial sizes (1, 5, 17, 31) and non-square
kernels.

Pools: max/avg pool 1-D to 3-D (kernel, stride, padding, dilation,
ceil_mode, count_include_pad) and adaptive max/avg pools (outputs smaller
and larger than the input), with the gradient of sum(y * cot) in x.

Upsampling: interpolate in nearest and linear/bilinear modes, by scale
factor (including non-integer ones) or output size, align_corners on and
off, with the gradient in x.

Every case "<family>.<name>" stores f64 tensors: the input x, the
cotangent cot, the output y and gx = d sum(y * cot) / dx (conv: also w, b,
gw, gb; b and gb only with a bias). Its configuration is metadata
"<family>.<name>.<key>" (lists space-separated, 3-D values padded as the
suites expect), and "<family>.cases" lists the names in order. Case names
hold no dots (they are ptree paths): 1.5 is written 1p5.

Run: /usr/bin/python3 tools/gen_conv_golden.py  (from the repository root)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

MODE_NAMES = ["same", "valid", "causal", "explicit"]  # lam_conv_padding
POOL_KINDS = ["max", "avg", "adaptive_max", "adaptive_avg"]

SAME, VALID, CAUSAL, EXPLICIT = 0, 1, 2, 3

# (name, transpose, N, C, O, groups, spatial, kernel, stride, dilation,
#  mode (conv) / padding (transpose), pads per side (conv explicit) or
#  output_padding (transpose), bias)
CASES = [
    ("conv1d_explicit", 0, 2, 3, 4, 1, [17], [5], [2], [1], EXPLICIT, [[2, 1]], 1),
    ("conv1d_causal_groups", 0, 1, 2, 2, 2, [31], [3], [1], [2], CAUSAL, None, 1),
    ("conv1d_same_even_kernel", 0, 2, 2, 3, 1, [5], [4], [1], [2], SAME, None, 0),
    ("conv1d_valid_len1", 0, 3, 2, 2, 1, [1], [1], [1], [1], VALID, None, 1),
    ("conv2d_groups_asym", 0, 1, 4, 4, 2, [5, 9], [3, 2], [2, 1], [1, 2], EXPLICIT,
     [[1, 0], [2, 1]], 1),
    ("conv2d_same_1xk", 0, 1, 3, 4, 1, [1, 31], [1, 3], [1, 1], [1, 1], SAME, None, 1),
    ("conv2d_depthwise", 0, 2, 4, 4, 4, [5, 5], [3, 3], [2, 2], [1, 1], VALID, None, 1),
    ("conv2d_depthwise_mult2", 0, 1, 3, 6, 3, [5, 4], [3, 3], [1, 1], [1, 1], SAME, None, 0),
    ("conv2d_1x1_stride2", 0, 2, 4, 3, 1, [5, 5], [1, 1], [2, 2], [1, 1], VALID, None, 0),
    ("conv2d_stem_7x7", 0, 1, 1, 2, 1, [17, 17], [7, 7], [2, 2], [1, 1], EXPLICIT,
     [[3, 3], [3, 3]], 1),
    ("conv3d_explicit", 0, 1, 2, 3, 1, [5, 5, 1], [2, 3, 1], [1, 2, 1], [1, 1, 1], EXPLICIT,
     [[1, 0], [1, 1], [0, 0]], 1),
    ("conv3d_same", 0, 1, 2, 2, 2, [3, 5, 4], [3, 1, 2], [1, 1, 1], [2, 1, 1], SAME, None, 1),
    ("conv_transpose1d", 1, 2, 3, 4, 1, [5], [3], [2], [1], [1], [1], 1),
    ("conv_transpose1d_groups_dil", 1, 1, 4, 2, 2, [17], [4], [3], [2], [2], [2], 0),
    ("conv_transpose2d", 1, 1, 4, 6, 2, [5, 1], [3, 2], [2, 1], [1, 2], [1, 0], [1, 0], 1),
    ("conv_transpose2d_k4s2", 1, 1, 3, 2, 1, [5, 5], [4, 4], [2, 2], [1, 1], [1, 1], [0, 0], 1),
    ("conv_transpose3d", 1, 1, 2, 2, 1, [3, 1, 5], [2, 1, 3], [1, 1, 2], [1, 1, 1], [0, 0, 1],
     [0, 0, 1], 1),
]


def run_case(case, gen):
    name, tr, N, C, O, G, sp, k, s, d, mode, extra, bias = case
    nsp = len(sp)
    x = torch.empty([N, C] + sp, dtype=torch.float64).uniform_(-1, 1, generator=gen)
    wshape = [C, O // G] + k if tr else [O, C // G] + k
    w = torch.empty(wshape, dtype=torch.float64).uniform_(-1, 1, generator=gen)
    b = torch.empty([O], dtype=torch.float64).uniform_(-1, 1, generator=gen) if bias else None
    x.requires_grad_(True)
    w.requires_grad_(True)
    if b is not None:
        b.requires_grad_(True)
    pads = [[0, 0]] * nsp
    if tr:
        fn = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][nsp - 1]
        y = fn(x, w, b, stride=s, padding=mode, output_padding=extra, groups=G, dilation=d)
        pads = [[p, 0] for p in mode]
        outpad = extra
        lmode = 0
    else:
        fn = [F.conv1d, F.conv2d, F.conv3d][nsp - 1]
        outpad = [0] * nsp
        lmode = mode
        if mode == SAME:
            assert all(v == 1 for v in s)
            y = fn(x, w, b, stride=s, padding="same", dilation=d, groups=G)
        elif mode == VALID:
            y = fn(x, w, b, stride=s, padding="valid", dilation=d, groups=G)
        else:
            if mode == CAUSAL:
                pads = [[d[0] * (k[0] - 1), 0]]
            else:
                pads = extra
            tp = []
            for i in range(nsp - 1, -1, -1):
                tp += [pads[i][0], pads[i][1]]
            y = fn(F.pad(x, tp), w, b, stride=s, dilation=d, groups=G)
    cot = torch.empty(y.shape, dtype=torch.float64).uniform_(-1, 1, generator=gen)
    (y * cot).sum().backward()
    return dict(name=name, tr=tr, nsp=nsp, mode=lmode, G=G, bias=bias, s=s, d=d, pads=pads,
                outpad=outpad, x=x, w=w, b=b, cot=cot, y=y.detach())


def pad3(v, fill):
    return list(v) + [fill] * (3 - len(v))


# (name, kind 0 max / 1 avg / 2 adaptive max / 3 adaptive avg, N, C, spatial,
#  kernel, stride, padding, dilation, adaptive output, ceil_mode, exclude_pad)
POOLS = [
    ("max1d_pad_stride", 0, 2, 2, [17], [3], [2], [1], [1], None, 0, 0),
    ("max1d_ceil_dil", 0, 1, 1, [31], [3], [2], [1], [2], None, 1, 0),
    ("max2d_nonsquare", 0, 1, 2, [5, 17], [3, 2], [2, 1], [1, 1], [1, 2], None, 1, 0),
    ("max2d_ties", 0, 1, 2, [5, 5], [2, 2], [1, 1], [0, 0], [1, 1], None, 0, 0),
    ("max3d", 0, 1, 2, [5, 4, 3], [2, 2, 3], [1, 2, 1], [1, 0, 1], [1, 1, 1], None, 0, 0),
    ("avg1d_incl", 0 + 1, 2, 2, [17], [4], [3], [2], [1], None, 1, 0),
    ("avg1d_excl", 1, 2, 2, [5], [3], [2], [1], [1], None, 1, 1),
    ("avg2d_excl_ceil", 1, 1, 1, [5, 17], [3, 2], [2, 2], [1, 1], [1, 1], None, 1, 1),
    ("avg2d_incl", 1, 2, 2, [31, 1], [3, 1], [3, 1], [1, 0], [1, 1], None, 0, 0),
    ("avg3d", 1, 1, 2, [4, 5, 3], [2, 3, 2], [2, 1, 1], [1, 1, 0], [1, 1, 1], None, 1, 1),
    ("amax1d_down", 2, 2, 2, [17], None, None, None, None, [5], 0, 0),
    ("amax1d_up", 2, 1, 2, [5], None, None, None, None, [7], 0, 0),
    ("amax2d", 2, 1, 1, [5, 17], None, None, None, None, [3, 4], 0, 0),
    ("aavg1d", 3, 2, 2, [31], None, None, None, None, [4], 0, 0),
    ("aavg2d_mixed", 3, 1, 2, [4, 5], None, None, None, None, [7, 2], 0, 0),
    ("aavg2d_global", 3, 2, 3, [5, 5], None, None, None, None, [1, 1], 0, 0),
    ("amax3d", 2, 1, 2, [5, 4, 3], None, None, None, None, [2, 3, 5], 0, 0),
]


def run_pool(case, gen):
    name, kind, N, C, sp, k, s, p, d, out, ceil, excl = case
    nsp = len(sp)
    if name.endswith("ties"):
        x = torch.randint(0, 3, [N, C] + sp, generator=gen).to(torch.float64)
    else:
        x = torch.empty([N, C] + sp, dtype=torch.float64).uniform_(-1, 1, generator=gen)
    x.requires_grad_(True)
    if kind == 0:
        y = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nsp - 1](
            x, k, s, p, dilation=d, ceil_mode=bool(ceil))
    elif kind == 1:
        y = [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d][nsp - 1](
            x, k, s, p, ceil_mode=bool(ceil), count_include_pad=not excl)
    elif kind == 2:
        y = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][nsp - 1](x, out)
    else:
        y = [F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d][nsp - 1](x, out)
    cot = torch.empty(y.shape, dtype=torch.float64).uniform_(-1, 1, generator=gen)
    (y * cot).sum().backward()
    return x, y.detach(), cot


def write_pools(out, gen):
    out.meta("pool.cases", [case[0] for case in POOLS])
    for case in POOLS:
        name, kind, N, C, sp, k, s, p, d, ad, ceil, excl = case
        x, y, cot = run_pool(case, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            out.add(f"pool.{name}.{f}", t)
        z = [0] * len(sp)
        for key, v in (("kind", POOL_KINDS[kind]), ("k", pad3(k or z, 0)), ("s", pad3(s or z, 0)),
                       ("p", pad3(p or z, 0)), ("d", pad3(d or z, 0)), ("out", pad3(ad or z, 0)),
                       ("ceil", ceil), ("exclude", excl)):
            out.meta(f"pool.{name}.{key}", v)


# (name, N, C, spatial, mode 0 nearest / 1 linear, size or None, scale or None, align)
UPSAMPLES = [
    ("nearest1d_x2", 2, 2, [5], 0, None, [2.0], 0),
    ("nearest1d_x1p5", 1, 2, [5], 0, None, [1.5], 0),
    ("nearest1d_size17", 1, 2, [5], 0, [17], None, 0),
    ("nearest1d_down", 1, 2, [17], 0, [5], None, 0),
    ("nearest1d_x0p5", 1, 1, [5], 0, None, [0.5], 0),
    ("linear1d_x2", 2, 2, [5], 1, None, [2.0], 0),
    ("linear1d_x2p5_align", 1, 2, [5], 1, None, [2.5], 1),
    ("linear1d_size31", 1, 1, [17], 1, [31], None, 0),
    ("linear1d_down_align", 1, 2, [17], 1, [5], None, 1),
    ("linear1d_size1", 1, 2, [5], 1, [1], None, 0),
    ("nearest2d_x2x3", 1, 2, [5, 4], 0, None, [2.0, 3.0], 0),
    ("nearest2d_size", 1, 1, [5, 17], 0, [7, 31], None, 0),
    ("bilinear2d_x2", 1, 2, [5, 5], 1, None, [2.0, 2.0], 0),
    ("bilinear2d_x2_align", 1, 2, [5, 4], 1, None, [2.0, 2.0], 1),
    ("bilinear2d_size_down", 1, 2, [5, 17], 1, [3, 4], None, 0),
    ("bilinear2d_x1p7", 1, 1, [4, 5], 1, None, [1.7, 1.3], 0),
    ("bilinear2d_1x1_to_3x5", 1, 2, [1, 1], 1, [3, 5], None, 0),
]


def write_upsamples(out, gen):
    out.meta("upsample.cases", [u[0] for u in UPSAMPLES])
    for name, N, C, sp, mode, size, scale, align in UPSAMPLES:
        x = torch.empty([N, C] + sp, dtype=torch.float64).uniform_(-1, 1, generator=gen)
        x.requires_grad_(True)
        tmode = "nearest" if mode == 0 else ("linear" if len(sp) == 1 else "bilinear")
        kw = dict(mode=tmode)
        if mode == 1:
            kw["align_corners"] = bool(align)
        if size is not None:
            y = F.interpolate(x, size=size, **kw)
        else:
            y = F.interpolate(x, scale_factor=scale, **kw)
        cot = torch.empty(y.shape, dtype=torch.float64).uniform_(-1, 1, generator=gen)
        (y * cot).sum().backward()
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            out.add(f"upsample.{name}.{f}", t)
        sz = size or [0] * len(sp)
        sc = scale or [0.0] * len(sp)
        out.meta(f"upsample.{name}.mode", ["nearest", "linear"][mode])
        out.meta(f"upsample.{name}.size", sz + [0] * (2 - len(sp)))
        out.meta(f"upsample.{name}.scale", [float(v) for v in sc + [0.0] * (2 - len(sp))])
        out.meta(f"upsample.{name}.align", align)


def main():
    out = Golden()
    write_pools(out, torch.Generator().manual_seed(99))
    write_upsamples(out, torch.Generator().manual_seed(77))
    gen = torch.Generator().manual_seed(1234)
    out.meta("conv.cases", [case[0] for case in CASES])
    for case in CASES:
        r = run_case(case, gen)
        name = r["name"]
        tensors = [("x", r["x"]), ("w", r["w"]), ("b", r["b"]), ("cot", r["cot"]), ("y", r["y"]),
                   ("gx", r["x"].grad), ("gw", r["w"].grad), ("gb", r["b"].grad if r["b"] is not None else None)]
        for f, t in tensors:
            if t is not None:
                out.add(f"conv.{name}.{f}", t)
        pads = pad3(r["pads"], [0, 0])
        for key, v in (("transpose", r["tr"]), ("mode", MODE_NAMES[r["mode"]]), ("groups", r["G"]),
                       ("bias", r["bias"]), ("stride", pad3(r["s"], 1)), ("dilation", pad3(r["d"], 1)),
                       ("pad", [v for p in pads for v in p]), ("output_padding", pad3(r["outpad"], 0))):
            out.meta(f"conv.{name}.{key}", v)
    out.meta("generator", "tools/gen_conv_golden.py, torch " + torch.__version__ + ", float64")
    out.save("conv_golden.safetensors")


if __name__ == "__main__":
    main()
