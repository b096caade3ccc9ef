"""tools/gen_pool_golden.py: PyTorch golden data for tests/test_pool_extra.c,
written to tests/data/pool_golden.safetensors (run with torch 1.13:
/usr/bin/python3 tools/gen_pool_golden.py).

Cases (tensors <group>.<name>.{x, cot, y, gx, ...}, the rest metadata):
  maxidx.*   max_pool1d/2d/3d and adaptive_max_pool1d/2d/3d with
             return_indices=True (idx as i32; torch's are int64)
  unpool.*   max_unpool1d/2d/3d of a max pool's output and indices, with and
             without output_size
  divisor.*  avg_pool2d/3d with divisor_override
  lp.*       lp_pool1d/2d (torch's functional form) and lp_pool3d by the same
             formula (torch 1.13 has none), p = 2 on signed inputs, 1.5 and 3
             on positive ones
  frac.*     fractional_max_pool2d/3d with explicit _random_samples, in f32
             and f64 (the window starts are computed in the input's dtype)
  lrn.*      local_response_norm on 3-, 4- and 5-dim inputs
Shapes are small and odd; gradients are of sum(y * cot)."""
import torch
import torch.nn.functional as F

from golden_st import Golden


def rand(shape, gen, lo=-1.0, hi=1.0, dtype=torch.float64):
    return torch.empty(shape, dtype=torch.float64).uniform_(lo, hi, generator=gen).to(dtype)


def backward(x, y, gen):
    cot = rand(y.shape, gen, dtype=y.dtype)
    (y * cot).sum().backward()
    return cot


def pad3(v, fill):
    return list(v) + [fill] * (3 - len(v))


# (name, adaptive, N, C, spatial, k, s, p, d, ceil, out)
MAXIDX = [
    ("max1d", 0, 2, 3, [11], [3], [2], [1], [1], 0, None),
    ("max1d_dil_ceil", 0, 1, 2, [13], [3], [2], [1], [2], 1, None),
    ("max2d", 0, 2, 2, [7, 9], [3, 2], [2, 1], [1, 0], [1, 1], 0, None),
    ("max2d_ceil_dil", 0, 1, 3, [9, 8], [3, 3], [2, 3], [1, 1], [2, 1], 1, None),
    ("max3d", 0, 1, 2, [5, 6, 7], [2, 3, 2], [2, 2, 1], [1, 1, 0], [1, 1, 2], 1, None),
    ("amax1d", 1, 2, 2, [13], None, None, None, None, 0, [5]),
    ("amax2d", 1, 1, 3, [7, 5], None, None, None, None, 0, [3, 4]),
    ("amax3d", 1, 1, 2, [5, 4, 7], None, None, None, None, 0, [2, 3, 4]),
]


def write_maxidx(g, gen):
    g.meta("maxidx.cases", [c[0] for c in MAXIDX])
    for name, ad, N, C, sp, k, s, p, d, ceil, out in MAXIDX:
        nsp = len(sp)
        x = rand([N, C] + sp, gen).requires_grad_(True)
        if ad:
            y, idx = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][nsp - 1](
                x, out, return_indices=True)
        else:
            y, idx = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nsp - 1](
                x, k, s, p, dilation=d, ceil_mode=bool(ceil), return_indices=True)
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            g.add(f"maxidx.{name}.{f}", t)
        g.add(f"maxidx.{name}.idx", idx, "i32")
        z = [0] * nsp
        for key, v in (("adaptive", ad), ("k", pad3(k or z, 0)), ("s", pad3(s or z, 0)),
                       ("p", pad3(p or z, 0)), ("d", pad3(d or z, 1)), ("ceil", ceil),
                       ("out", pad3(out or z, 0))):
            g.meta(f"maxidx.{name}.{key}", v)


# (name, N, C, spatial of the pooled input, k, s, p, output_size or None)
UNPOOLS = [
    ("unpool1d", 2, 2, [11], [3], [2], [1], None),
    ("unpool1d_size", 1, 3, [10], [2], [2], [0], [11]),
    ("unpool2d", 2, 2, [6, 7], [2, 3], [2, 2], [0, 1], None),
    ("unpool2d_overlap", 1, 2, [7, 7], [3, 3], [1, 1], [1, 1], None),
    ("unpool2d_size", 1, 2, [9, 7], [3, 2], [2, 2], [1, 0], [10, 7]),
    ("unpool3d", 1, 2, [4, 6, 5], [2, 2, 3], [2, 2, 2], [0, 1, 1], None),
]


def write_unpools(g, gen):
    g.meta("unpool.cases", [c[0] for c in UNPOOLS])
    for name, N, C, sp, k, s, p, size in UNPOOLS:
        nsp = len(sp)
        src = rand([N, C] + sp, gen)
        pooled, idx = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nsp - 1](
            src, k, s, p, return_indices=True)
        x = rand(pooled.shape, gen).requires_grad_(True)
        y = [F.max_unpool1d, F.max_unpool2d, F.max_unpool3d][nsp - 1](
            x, idx, k, s, p, output_size=size)
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            g.add(f"unpool.{name}.{f}", t)
        g.add(f"unpool.{name}.idx", idx, "i32")
        for key, v in (("k", pad3(k, 0)), ("s", pad3(s, 0)), ("p", pad3(p, 0)),
                       ("size", pad3(size or [0] * nsp, 0))):
            g.meta(f"unpool.{name}.{key}", v)


# (name, N, C, spatial, k, s, p, ceil, count_include_pad, divisor)
DIVISORS = [
    ("div2d", 2, 2, [7, 6], [3, 2], [2, 2], [1, 0], 0, 1, 5),
    ("div2d_ceil_excl", 1, 3, [8, 7], [3, 3], [2, 2], [1, 1], 1, 0, 2),
    ("div3d", 1, 2, [5, 4, 6], [2, 3, 2], [1, 2, 2], [1, 1, 0], 1, 1, 7),
]


def write_divisors(g, gen):
    g.meta("divisor.cases", [c[0] for c in DIVISORS])
    for name, N, C, sp, k, s, p, ceil, incl, div in DIVISORS:
        nsp = len(sp)
        x = rand([N, C] + sp, gen).requires_grad_(True)
        y = [None, F.avg_pool2d, F.avg_pool3d][nsp - 1](
            x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(incl), divisor_override=div)
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            g.add(f"divisor.{name}.{f}", t)
        for key, v in (("k", pad3(k, 0)), ("s", pad3(s, 0)), ("p", pad3(p, 0)), ("ceil", ceil),
                       ("exclude", 1 - incl), ("divisor", div)):
            g.meta(f"divisor.{name}.{key}", v)


def lp_pool3d(x, p, k, s, ceil):
    # torch >= 2.0's F.lp_pool3d, the formula of lp_pool1d/2d
    kd, kh, kw = k
    out = F.avg_pool3d(x.pow(p), k, s, 0, ceil)
    return (torch.sign(out) * F.relu(torch.abs(out))).mul(kd * kh * kw).pow(1.0 / p)


# (name, N, C, spatial, p, k, s or None, ceil, positive inputs)
LPS = [
    ("lp1d_p2", 2, 2, [11], 2.0, [3], None, 0, 0),
    ("lp1d_p3_ceil", 1, 3, [10], 3.0, [3], [2], 1, 1),
    ("lp2d_p2", 2, 2, [7, 8], 2.0, [2, 3], [2, 2], 0, 0),
    ("lp2d_p15_ceil", 1, 2, [7, 7], 1.5, [3, 2], [2, 2], 1, 1),
    ("lp3d_p2", 1, 2, [5, 6, 5], 2.0, [2, 2, 3], [1, 2, 2], 1, 0),
]


def write_lps(g, gen):
    g.meta("lp.cases", [c[0] for c in LPS])
    for name, N, C, sp, p, k, s, ceil, pos in LPS:
        nsp = len(sp)
        x = rand([N, C] + sp, gen, 0.05 if pos else -1.0, 1.0).requires_grad_(True)
        if nsp == 1:
            y = F.lp_pool1d(x, p, k[0], s[0] if s else None, bool(ceil))
        elif nsp == 2:
            y = F.lp_pool2d(x, p, k, s, bool(ceil))
        else:
            y = lp_pool3d(x, p, k, s or k, bool(ceil))
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            g.add(f"lp.{name}.{f}", t)
        for key, v in (("p", p), ("k", pad3(k, 0)), ("s", pad3(s or [0] * nsp, 0)), ("ceil", ceil)):
            g.meta(f"lp.{name}.{key}", v)


# (name, N, C, spatial, k, output_size or None, output_ratio or None, dtype)
FRACS = [
    ("frac2d_size", 2, 2, [9, 11], [2, 3], [4, 5], None, "f64"),
    ("frac2d_ratio", 1, 3, [12, 10], [3, 2], None, [0.5, 0.7], "f64"),
    ("frac2d_f32", 2, 3, [13, 17], [2, 2], [6, 7], None, "f32"),
    ("frac2d_ratio_f32", 1, 2, [25, 19], [3, 3], None, [0.37, 0.61], "f32"),
    ("frac3d_size", 1, 2, [7, 8, 9], [2, 3, 2], [3, 4, 5], None, "f64"),
    ("frac3d_f32", 2, 2, [9, 7, 11], [2, 2, 3], None, [0.6, 0.5, 0.7], "f32"),
]


def write_fracs(g, gen):
    g.meta("frac.cases", [c[0] for c in FRACS])
    for name, N, C, sp, k, size, ratio, dt in FRACS:
        nsp = len(sp)
        dtype = torch.float32 if dt == "f32" else torch.float64
        x = rand([N, C] + sp, gen, dtype=dtype).requires_grad_(True)
        samples = rand([N, C, nsp], gen, 0.0, 1.0, dtype=dtype)
        fn = F.fractional_max_pool2d if nsp == 2 else F.fractional_max_pool3d
        y, idx = fn(x, k, output_size=size, output_ratio=ratio, return_indices=True,
                    _random_samples=samples)
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad), ("samples", samples)):
            g.add(f"frac.{name}.{f}", t.double())
        g.add(f"frac.{name}.idx", idx, "i32")
        for key, v in (("k", pad3(k, 0)), ("size", pad3(size or [0] * nsp, 0)),
                       ("ratio", [float(r) for r in pad3(ratio or [0.0] * nsp, 0.0)]),
                       ("dtype", dt)):
            g.meta(f"frac.{name}.{key}", v)


# (name, shape, size, alpha, beta, k)
LRNS = [
    ("lrn3d", [2, 7, 5], 3, 1e-4, 0.75, 1.0),
    ("lrn4d_even", [2, 6, 3, 4], 4, 0.5, 0.75, 1.0),
    ("lrn4d_big", [1, 5, 3, 3], 7, 2.0, 0.6, 2.0),
    ("lrn5d", [1, 9, 2, 3, 2], 5, 0.3, 1.2, 0.5),
]


def write_lrns(g, gen):
    g.meta("lrn.cases", [c[0] for c in LRNS])
    for name, shape, size, alpha, beta, k in LRNS:
        x = rand(shape, gen, -2.0, 2.0).requires_grad_(True)
        y = F.local_response_norm(x, size, alpha, beta, k)
        cot = backward(x, y, gen)
        for f, t in (("x", x), ("cot", cot), ("y", y), ("gx", x.grad)):
            g.add(f"lrn.{name}.{f}", t)
        for key, v in (("size", size), ("alpha", alpha), ("beta", beta), ("k", k)):
            g.meta(f"lrn.{name}.{key}", v)


def main():
    g = Golden()
    write_maxidx(g, torch.Generator().manual_seed(501))
    write_unpools(g, torch.Generator().manual_seed(502))
    write_divisors(g, torch.Generator().manual_seed(503))
    write_lps(g, torch.Generator().manual_seed(504))
    write_fracs(g, torch.Generator().manual_seed(505))
    write_lrns(g, torch.Generator().manual_seed(506))
    g.save("pool_golden.safetensors")


if __name__ == "__main__":
    main()
