#!/usr/bin/python3
"""gen_optim_golden.py: golden data for lamina's training suites.

Writes, under tests/data/ (safetensors files written by hand with struct +
json, the way the format spec describes, so no safetensors package is
needed):

  optim_golden.safetensors      initial params, 10 fixed gradient steps and the
                                params after 10 steps of each PyTorch optimizer
                                configuration (f32 and f64 runs); Lion is the
                                lucidrains/lion-pytorch update written out here
  schedules_golden.safetensors  50 learning rates from PyTorch's schedulers
  clip_golden.safetensors       torch.nn.utils.clip_grad_norm_ results
  st_python.safetensors         every dtype lamina reads (F32, F64, F16, BF16,
                                I32, U8, BOOL), a 0-dim tensor, nested names
                                and __metadata__, with F64 "expect.*" copies

The optimizer table below must match the one in tests/test_optim.c.
Run: /usr/bin/python3 tools/gen_optim_golden.py  (torch 1.13+, numpy)
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")

ST_DTYPES = {
    np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
    np.dtype("int32"): "I32", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw little-endian bytes).
    Data is ordered by element size (largest first) then name, as the
    reference writer does; the header is padded with spaces to 8 bytes."""
    size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "BOOL": 1}
    order = sorted(tensors, key=lambda t: (-size[t[1]], t[0]))
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    pos = 0
    offsets = {}
    for name, dt, shape, raw in order:
        assert len(raw) == size[dt] * int(np.prod(shape, dtype=np.int64)), name
        offsets[name] = (pos, pos + len(raw))
        pos += len(raw)
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": list(offsets[name])}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, dt, shape, raw in order:
            f.write(raw)
    print(f"wrote {path}: {os.path.getsize(path)} bytes, {len(tensors)} tensors")


def np_entry(name, a):
    a = np.array(a, order="C", copy=True)  # (ascontiguousarray makes 0-dim arrays 1-dim)
    return (name, ST_DTYPES[a.dtype], a.shape, a.astype(a.dtype.newbyteorder("<")).tobytes())


def bf16_entry(name, t):
    t = t.to(torch.bfloat16).contiguous()
    raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
    return (name, "BF16", tuple(t.shape), raw)


# ---- optimizers --------------------------------------------------------------

SHAPES = {"w": (5, 7), "b": (33,)}
STEPS = 10

# name, constructor, kwargs (must match tests/test_optim.c)
COMBOS = [
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_nesterov_wd", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_damp_max", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_amsgrad_wd", "adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05,
                                     amsgrad=True)),
    ("adamw", "adamw", dict(lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad_max", "adamw", dict(lr=0.02, amsgrad=True, maximize=True)),
    ("rmsprop", "rmsprop", dict(lr=0.01)),
    ("rmsprop_centered_mom", "rmsprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                            weight_decay=0.01)),
    ("adagrad", "adagrad", dict(lr=0.1)),
    ("adagrad_decay_wd", "adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02,
                                        initial_accumulator_value=0.1)),
    ("lion", "lion", dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)),
    ("lion_default", "lion", dict(lr=1e-3)),
]


def lion_run(params, grads_seq, lr, betas=(0.9, 0.99), weight_decay=0.0):
    """lucidrains/lion-pytorch update_fn, written out."""
    beta1, beta2 = betas
    exp_avg = {k: torch.zeros_like(p) for k, p in params.items()}
    for grads in grads_seq:
        for k, p in params.items():
            g = grads[k]
            p.mul_(1 - lr * weight_decay)
            update = exp_avg[k].clone().mul_(beta1).add(g, alpha=1 - beta1).sign_()
            p.add_(update, alpha=-lr)
            exp_avg[k].mul_(beta2).add_(g, alpha=1 - beta2)
    return params


def torch_run(kind, kw, init, grads_seq, dtype):
    params = {k: torch.tensor(v, dtype=dtype) for k, v in init.items()}
    gseq = [{k: torch.tensor(v, dtype=dtype) for k, v in g.items()} for g in grads_seq]
    if kind == "lion":
        with torch.no_grad():
            return lion_run(params, gseq, **kw)
    for p in params.values():
        p.requires_grad_(True)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[kind]
    opt = cls(list(params.values()), foreach=False, **kw)
    for g in gseq:
        for k, p in params.items():
            p.grad = g[k].clone()
        opt.step()
    return {k: p.detach() for k, p in params.items()}


def gen_optim():
    rng = np.random.default_rng(1234)
    init = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    grads = []
    for t in range(STEPS):
        scale = 2.0 if t < 3 else 0.1  # shrinking gradients exercise amsgrad's max
        g = {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in SHAPES.items()}
        g["b"][:3] = 0.0  # exact zeros: sign(0) in Lion, zero updates elsewhere
        grads.append(g)
    tensors = []
    for k in SHAPES:
        tensors.append(np_entry(f"init.{k}", init[k]))
        for t in range(STEPS):
            tensors.append(np_entry(f"grad.{t}.{k}", grads[t][k]))
    for name, kind, kw in COMBOS:
        f32 = torch_run(kind, kw, init, grads, torch.float32)
        f64 = torch_run(kind, kw, init, grads, torch.float64)
        for k in SHAPES:
            tensors.append(np_entry(f"{name}.final32.{k}", f32[k].numpy()))
            tensors.append(np_entry(f"{name}.final64.{k}", f64[k].numpy()))
    write_safetensors(os.path.join(OUT, "optim_golden.safetensors"), tensors,
                      {"generator": "tools/gen_optim_golden.py", "torch": torch.__version__})


# ---- schedules -------------------------------------------------------------------

def lrs(make, n=50, base=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out, dtype=np.float64)


def gen_schedules():
    S = torch.optim.lr_scheduler
    tensors = [
        np_entry("step", lrs(lambda o: S.StepLR(o, step_size=7, gamma=0.5))),
        np_entry("exponential", lrs(lambda o: S.ExponentialLR(o, gamma=0.95))),
        np_entry("cosine", lrs(lambda o: S.CosineAnnealingLR(o, T_max=40, eta_min=0.001))),
        np_entry("linear", lrs(lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0,
                                                    total_iters=10))),
        np_entry("warmup_cosine", lrs(lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=5),
                S.CosineAnnealingLR(o, T_max=45, eta_min=1e-4)], milestones=[5]))),
    ]
    write_safetensors(os.path.join(OUT, "schedules_golden.safetensors"), tensors)


# ---- clip_grad_norm ----------------------------------------------------------------

def gen_clip():
    rng = np.random.default_rng(99)
    tensors = []
    for case, max_norm, scale in [("clip", 1.0, 3.0), ("noclip", 100.0, 0.5)]:
        g = {"a": (rng.standard_normal((4, 5)) * scale).astype(np.float32),
             "b": (rng.standard_normal(17) * scale).astype(np.float32)}
        tg = [torch.tensor(g["a"]), torch.tensor(g["b"])]
        params = [torch.nn.Parameter(torch.zeros_like(t)) for t in tg]
        for p, t in zip(params, tg):
            p.grad = t.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        tensors += [np_entry(f"{case}.in.a", g["a"]), np_entry(f"{case}.in.b", g["b"]),
                    np_entry(f"{case}.out.a", params[0].grad.numpy()),
                    np_entry(f"{case}.out.b", params[1].grad.numpy()),
                    np_entry(f"{case}.total", np.array([float(total)], dtype=np.float64)),
                    np_entry(f"{case}.max_norm", np.array([max_norm], dtype=np.float64))]
    write_safetensors(os.path.join(OUT, "clip_golden.safetensors"), tensors)


# ---- a file from a Python writer ------------------------------------------------------

def gen_st_python():
    f16 = np.array([1.0, -2.5, 0.1, 65504.0, 6.1e-5, -0.0], dtype=np.float16)
    bf = torch.tensor([[1.0, -3.140625], [1e30, 0.0078125]])
    f32 = np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.25) - np.float32(0.5)
    f64 = np.array([1.0 / 3.0, -1e300, 2.5], dtype=np.float64)
    i32 = np.array([-2147483648, -1, 0, 7, 2147483647], dtype=np.int32)
    u8 = np.array([0, 128, 255], dtype=np.uint8)
    bl = np.array([True, False], dtype=np.bool_)
    scalar = np.array(3.5, dtype=np.float32)
    nested = np.array([[1, 2], [3, 4]], dtype=np.float32)
    tensors = [
        np_entry("f32", f32), np_entry("f64", f64), np_entry("f16", f16), bf16_entry("bf16", bf),
        np_entry("i32", i32), np_entry("u8", u8), np_entry("bool", bl), np_entry("scalar", scalar),
        np_entry("nested.layer.0.weight", nested),
        np_entry("expect.f16", f16.astype(np.float64)),
        np_entry("expect.bf16", bf.to(torch.bfloat16).to(torch.float64).numpy()),
    ]
    write_safetensors(os.path.join(OUT, "st_python.safetensors"), tensors,
                      {"format": "pt", "note": 'hello "world" \u00e9'})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen_optim()
    gen_schedules()
    gen_clip()
    gen_st_python()
