#!/usr/bin/env python3
"""gen_upsample_golden.py: writes PyTorch golden data for the upsampling modes
beyond tools/gen_conv_golden.py to tests/data/upsample_golden.safetensors
(read by tests/test_upsample.c in the same format): F.interpolate in
"nearest-exact" (1-D to 3-D), "bicubic" (align_corners on and off, up and
down, non-integer factors, a 1x1 input), 3-D "nearest" and "trilinear", and
the scale-factor-versus-size rule (a factor of 1.7 maps coordinates by 1/1.7,
a size of the same output by in/out; recompute_scale_factor=True equals
giving the size), each with the gradient of sum(y * cot) in x.

Every case "upsample.<name>" stores f64 x, cot, y and gx; metadata
"upsample.<name>.mode" (nearest, linear, nearest-exact, cubic), ".size" and
".scale" (3 entries, 0 where unused; a size of 0 means "from the scale"),
".align", and ".grad" (0 where torch's gx is not the adjoint of its y: its
bicubic backward copies the gradient when the sizes are equal, while its
forward still resamples by a given factor; lamina's gradient is the adjoint,
so the suite compares only y there); "upsample.cases" lists the names. Names
hold no dots (1p5 is 1.5).

Run: /usr/bin/python3 tools/gen_upsample_golden.py  (from the repository root)."""
import torch
import torch.nn.functional as F

from golden_st import Golden

# (name, N, C, spatial, torch mode, size or None, scale or None, align, recompute)
CASES = [
    ("nexact1d_x2", 2, 2, [5], "nearest-exact", None, [2.0], 0, 0),
    ("nexact1d_x1p5", 1, 2, [5], "nearest-exact", None, [1.5], 0, 0),
    ("nexact1d_down", 1, 2, [17], "nearest-exact", [5], None, 0, 0),
    ("nexact2d_size", 1, 2, [5, 4], "nearest-exact", [7, 9], None, 0, 0),
    ("nexact2d_x0p7", 1, 1, [17, 5], "nearest-exact", None, [0.7, 3.0], 0, 0),
    ("nexact3d_mixed", 1, 2, [3, 4, 5], "nearest-exact", [5, 2, 7], None, 0, 0),
    ("bicubic_x2", 1, 2, [5, 4], "bicubic", None, [2.0, 2.0], 0, 0),
    ("bicubic_x2_align", 2, 1, [5, 4], "bicubic", None, [2.0, 2.0], 1, 0),
    ("bicubic_size_up", 1, 2, [3, 5], "bicubic", [8, 11], None, 0, 0),
    ("bicubic_size_down", 1, 2, [17, 9], "bicubic", [5, 4], None, 0, 0),
    ("bicubic_down_align", 1, 1, [17, 9], "bicubic", [5, 4], None, 1, 0),
    ("bicubic_x1p7", 1, 1, [4, 5], "bicubic", None, [1.7, 1.3], 0, 0),
    ("bicubic_x1p1_same", 1, 1, [5, 5], "bicubic", None, [1.1, 1.0], 0, 0),
    ("bicubic_1x1", 1, 2, [1, 1], "bicubic", [3, 5], None, 0, 0),
    ("bicubic_2x1_align", 1, 1, [2, 1], "bicubic", [5, 3], None, 1, 0),
    ("nearest3d_x2", 1, 2, [3, 4, 5], "nearest", None, [2.0, 2.0, 2.0], 0, 0),
    ("nearest3d_x1p5", 1, 1, [3, 5, 4], "nearest", None, [1.5, 0.5, 2.5], 0, 0),
    ("nearest3d_size", 2, 1, [2, 3, 5], "nearest", [5, 3, 17], None, 0, 0),
    ("trilinear_x2", 1, 2, [3, 4, 5], "trilinear", None, [2.0, 2.0, 2.0], 0, 0),
    ("trilinear_x2_align", 1, 1, [3, 4, 2], "trilinear", None, [2.0, 2.0, 2.0], 1, 0),
    ("trilinear_size_mixed", 1, 2, [4, 3, 5], "trilinear", [2, 7, 5], None, 0, 0),
    ("trilinear_x1p7", 1, 1, [3, 4, 5], "trilinear", None, [1.7, 1.3, 0.6], 0, 0),
    ("trilinear_size1_align", 1, 1, [3, 1, 5], "trilinear", [1, 3, 4], None, 1, 0),
    # scale factor vs size: the same output size, different coordinate maps
    ("linear1d_x1p7", 1, 2, [5], "linear", None, [1.7], 0, 0),
    ("linear1d_size8", 1, 2, [5], "linear", [8], None, 0, 0),
    ("nearest1d_x1p7", 1, 2, [5], "nearest", None, [1.7], 0, 0),
    ("nearest1d_size8", 1, 2, [5], "nearest", [8], None, 0, 0),
    # recompute_scale_factor=True: torch maps by in/out, i.e. lamina's size
    ("bilinear_x1p7_recompute", 1, 1, [4, 5], "bilinear", None, [1.7, 1.3], 0, 1),
    ("bicubic_x1p7_recompute", 1, 1, [4, 5], "bicubic", None, [1.7, 1.3], 0, 1),
]

LAMINA_MODE = {"nearest": "nearest", "nearest-exact": "nearest-exact", "linear": "linear",
               "bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}


def main():
    out = Golden()
    gen = torch.Generator().manual_seed(4242)
    out.meta("upsample.cases", [c[0] for c in CASES])
    for name, N, C, sp, mode, size, scale, align, recompute in CASES:
        x = torch.empty([N, C] + sp, dtype=torch.float64).uniform_(-1, 1, generator=gen)
        x.requires_grad_(True)
        kw = dict(mode=mode)
        if mode in ("linear", "bilinear", "trilinear", "bicubic"):
            kw["align_corners"] = bool(align)
        if size is not None:
            y = F.interpolate(x, size=size, **kw)
        else:
            y = F.interpolate(x, scale_factor=scale, recompute_scale_factor=bool(recompute), **kw)
        cot = torch.empty(y.shape, dtype=torch.float64).uniform_(-1, 1, generator=gen)
        (y * cot).sum().backward()
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            out.add(f"upsample.{name}.{f}", t.detach())
        if recompute:  # lamina: the output size, not the factor
            size, scale = list(y.shape[2:]), None
        sz = size or [0] * len(sp)
        sc = scale or [0.0] * len(sp)
        out.meta(f"upsample.{name}.mode", LAMINA_MODE[mode])
        out.meta(f"upsample.{name}.size", sz + [0] * (3 - len(sp)))
        out.meta(f"upsample.{name}.scale", [float(v) for v in sc + [0.0] * (3 - len(sp))])
        out.meta(f"upsample.{name}.align", align)
        out.meta(f"upsample.{name}.grad", 0 if mode == "bicubic" and list(y.shape) == list(x.shape)
                 else 1)
    out.meta("generator", "tools/gen_upsample_golden.py, torch " + torch.__version__ + ", float64")
    out.save("upsample_golden.safetensors")


if __name__ == "__main__":
    main()
