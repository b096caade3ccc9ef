#!/usr/bin/env python3
"""gen_conv_golden.py: writes tests/data/conv_golden.h, PyTorch golden data
for tests/test_conv.c: conv1d/2d/3d and conv_transpose1d/2d/3d outputs and
the gradients of sum(y * cot) in x, weight and bias, in float64, across
strides, paddings (lamina's same / valid / causal / explicit per side, done
in PyTorch with padding="same", "valid" or F.pad), dilations, groups
(depthwise included), odd spatial sizes (1, 5, 17, 31) and non-square
kernels.

Run: /usr/bin/python3 tools/gen_conv_golden.py  (from the repository root)."""
import os

import torch
import torch.nn.functional as F

SAME, VALID, CAUSAL, EXPLICIT = 0, 1, 2, 3

# (name, transpose, N, C, O, groups, spatial, kernel, stride, dilation,
#  mode (conv) / padding (transpose), pads per side (conv explicit) or
#  output_padding (transpose), bias)
CASES = [
    ("conv1d_explicit", 0, 2, 3, 4, 1, [17], [5], [2], [1], EXPLICIT, [[2, 1]], 1),
    ("conv1d_causal_groups", 0, 1, 2, 2, 2, [31], [3], [1], [2], CAUSAL, None, 1),
    ("conv1d_same_even_kernel", 0, 2, 2, 3, 1, [5], [4], [1], [2], SAME, None, 0),
    ("conv1d_valid_len1", 0, 3, 2, 2, 1, [1], [1], [1], [1], VALID, None, 1),
    ("conv2d_groups_asym", 0, 1, 4, 6, 2, [5, 9], [3, 2], [2, 1], [1, 2], EXPLICIT,
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


def shape5(t):
    return list(t.shape) + [0] * (5 - t.dim())


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "data", "conv_golden.h")
    gen = torch.Generator().manual_seed(1234)
    values = []

    def add(t):
        off = len(values)
        if t is not None:
            values.extend(t.detach().flatten().tolist())
        return off

    rows = []
    for case in CASES:
        r = run_case(case, gen)
        offs = [add(r["x"]), add(r["w"]), add(r["b"]), add(r["cot"]), add(r["y"]),
                add(r["x"].grad), add(r["w"].grad), add(r["b"].grad if r["b"] is not None else None)]
        pads = pad3(r["pads"], [0, 0])
        rows.append('  {"%s", %d, %d, %d, %d, %d, {%s}, {%s}, {%s}, {%s}, {%s}, {%s}, {%s}, %s},'
                    % (r["name"], r["tr"], r["nsp"], r["mode"], r["G"], r["bias"],
                       ", ".join(map(str, pad3(r["s"], 1))), ", ".join(map(str, pad3(r["d"], 1))),
                       ", ".join("{%d, %d}" % tuple(p) for p in pads),
                       ", ".join(map(str, pad3(r["outpad"], 0))),
                       ", ".join(map(str, shape5(r["x"]))), ", ".join(map(str, shape5(r["w"]))),
                       ", ".join(map(str, shape5(r["y"]))), ", ".join(map(str, offs))))
    lines = [
        "/* conv_golden.h: generated by tools/gen_conv_golden.py (torch %s, float64 printed"
        " to 13 digits). Do not edit. */" % torch.__version__,
        "#include <stdint.h>",
        "",
        "typedef struct conv_golden_case {",
        "  const char *name;",
        "  int transpose, nsp, mode, groups, has_bias;",
        "  int stride[3], dilation[3], pad[3][2], output_padding[3];",
        "  int64_t xshape[5], wshape[5], yshape[5];",
        "  int x, w, b, cot, y, gx, gw, gb; /* offsets into conv_golden_values */",
        "} conv_golden_case;",
        "",
        "static const conv_golden_case conv_golden_cases[] = {",
    ] + rows + ["};", "", "static const double conv_golden_values[] = {"]
    for i in range(0, len(values), 6):
        lines.append("  " + ", ".join("%.13g" % v for v in values[i:i + 6]) + ",")
    lines += ["};", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("wrote %s: %d cases, %d values" % (path, len(rows), len(values)))


if __name__ == "__main__":
    main()
