#!/usr/bin/python3
"""gen_attention_golden.py: writes PyTorch golden data for the attention family.

tests/data/attention_golden.safetensors holds, for each case, PyTorch's outputs
and gradients (float64 math on float32-exact inputs, stored as f32 tensors):

  sdpa<k>.*   scaled dot-product attention. torch 1.13 (the one installed here)
              has no F.scaled_dot_product_attention, so this is the reference
              implementation from PyTorch's documentation of that function
              (bias from is_causal / bool or float attn_mask, repeat_interleave
              of K/V heads for GQA, softmax, attn_weight @ value).
  mha<k>.*    torch.nn.MultiheadAttention (batch_first), its packed
              in_proj_weight / in_proj_bias mapped to q_proj / k_proj / v_proj
              as Hugging Face names them; key_padding_mask (True = ignore) is
              given to lamina as attention_mask = not key_padding_mask.
  rope<k>.*   rotary embeddings as Hugging Face applies them: rotate_half
              (GPT-NeoX / Llama, split halves) and rotate_every_two (GPT-J,
              interleaved pairs), with partial rotary dims, an offset and a
              position scale.

Inputs are not stored: both sides draw them from the same integer hash
(tests/attention_common.h, ag_gen()), so only results are written. Large
tensors are sampled: entry j of a stored vector is element
floor(j * numel / n) of the tensor (n = min(numel, SAMPLES)). Each record is
a 1-D tensor "<case>.<name>"; "<case>.cfg" holds the case's configuration
(see the put_cfg calls). Run from the repository root:
/usr/bin/python3 tools/gen_attention_golden.py. Deterministic."""
import math

import numpy as np
import torch

from golden_st import Golden

SAMPLES = 256
M32 = 0xFFFFFFFF


def gen(seed, n, lo=-1.0, hi=1.0):
    """Values lo + (hi - lo) * u, u = (fmix32(i * 0x9E3779B1 + seed * 0x85EBCA77 + 1) >> 8) / 2^24
    (exactly the C twin in tests/attention_common.h)."""
    u64 = np.uint64
    m = u64(M32)
    i = np.arange(n, dtype=np.uint64)
    h = (i * u64(0x9E3779B1) + u64(seed) * u64(0x85EBCA77) + u64(1)) & m
    h ^= h >> u64(16)
    h = (h * u64(0x85EBCA6B)) & m
    h ^= h >> u64(13)
    h = (h * u64(0xC2B2AE35)) & m
    h ^= h >> u64(16)
    u = (h >> u64(8)).astype(np.float64) / float(1 << 24)
    v = (lo + (hi - lo) * u).astype(np.float32)  # what the f32 test sees
    return torch.from_numpy(v.astype(np.float64))


def t(seed, shape, lo=-1.0, hi=1.0):
    return gen(seed, int(np.prod(shape)), lo, hi).reshape(shape)


records = []


def put(name, x):
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    n = x.numel()
    if n > SAMPLES:
        idx = torch.tensor([j * n // SAMPLES for j in range(SAMPLES)], dtype=torch.long)
        x = x[idx]
    records.append((name, x.numpy().astype(np.float32)))


def put_cfg(name, vals):
    records.append((name, np.array(vals, dtype=np.float32)))


def sdpa_reference(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch's documented reference for F.scaled_dot_product_attention (enable_gqa)."""
    L, S = q.size(-2), k.size(-2)
    scale_factor = 1 / math.sqrt(q.size(-1)) if scale is None else scale
    attn_bias = torch.zeros(L, S, dtype=q.dtype)
    if is_causal:
        temp_mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
        attn_bias = attn_bias.masked_fill(temp_mask.logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_bias = attn_bias.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            attn_bias = attn_mask + attn_bias
    k = k.repeat_interleave(q.size(-3) // k.size(-3), -3)
    v = v.repeat_interleave(q.size(-3) // v.size(-3), -3)
    attn_weight = q @ k.transpose(-2, -1) * scale_factor
    attn_weight = attn_weight + attn_bias
    attn_weight = torch.softmax(attn_weight, dim=-1)
    return attn_weight @ v


# mask kinds: 0 none, 1 key padding [B, Sk] (bool), 2 float bias [B, 1, Sq, Sk],
# 3 bool mask [Sq, Sk], 4 float bias [H, Sq, Sk] (per head)
SDPA = [
    # B, H, Hkv, Sq, Sk, D, causal, mask, scale (0: default)
    (2, 4, 4, 7, 7, 32, 0, 0, 0.0),
    (1, 4, 4, 64, 64, 64, 1, 0, 0.0),
    (2, 2, 2, 1, 7, 32, 0, 0, 0.0),
    (1, 4, 2, 7, 64, 80, 0, 1, 0.0),
    (1, 2, 2, 257, 257, 128, 1, 0, 0.0),
    (1, 4, 1, 64, 257, 64, 0, 2, 0.0),
    (2, 2, 2, 64, 64, 80, 0, 3, 0.0),
    (1, 2, 2, 257, 64, 32, 1, 0, 0.3),
    (1, 8, 2, 7, 7, 128, 1, 0, 0.0),
    (1, 2, 2, 1, 1, 64, 0, 0, 0.0),
    (1, 2, 2, 257, 1, 80, 0, 0, 0.0),
    (2, 4, 2, 64, 7, 128, 1, 4, 0.0),
    (2, 2, 1, 257, 257, 64, 0, 1, 0.0),
]


def sdpa_case(idx, B, H, Hkv, Sq, Sk, D, causal, mkind, scale):
    base = 1000 * (idx + 1)
    q = t(base + 1, (B, H, Sq, D)).requires_grad_()
    k = t(base + 2, (B, Hkv, Sk, D)).requires_grad_()
    v = t(base + 3, (B, Hkv, Sk, D)).requires_grad_()
    w = t(base + 4, (B, H, Sq, D))
    mask = None
    leaf = None
    if mkind == 1:  # keep where u >= 0.25, but key 0 always (no fully masked rows)
        keep = t(base + 5, (B, Sk), 0.0, 1.0) >= 0.25
        keep[:, 0] = True
        mask = keep.reshape(B, 1, 1, Sk)
    elif mkind == 2:
        leaf = t(base + 5, (B, 1, Sq, Sk), -2.0, 2.0).requires_grad_()
        mask = leaf
    elif mkind == 3:
        keep = t(base + 5, (Sq, Sk), 0.0, 1.0) >= 0.3
        keep[:, 0] = True
        mask = keep
    elif mkind == 4:
        leaf = t(base + 5, (H, Sq, Sk), -2.0, 2.0).requires_grad_()
        mask = leaf
    out = sdpa_reference(q, k, v, mask, bool(causal), scale if scale else None)
    (out * w).sum().backward()
    name = "sdpa%d" % idx
    put_cfg(name + ".cfg", [B, H, Hkv, Sq, Sk, D, causal, mkind, scale, base])
    put(name + ".out", out.detach())
    put(name + ".dq", q.grad)
    put(name + ".dk", k.grad)
    put(name + ".dv", v.grad)
    if leaf is not None:
        put(name + ".dmask", leaf.grad)


# E, H, B, Sq, Sk, kdim, vdim, bias, causal, key padding
MHA = [
    (32, 4, 2, 7, 7, 0, 0, 1, 0, 0),
    (32, 4, 2, 9, 9, 0, 0, 1, 1, 1),
    (16, 2, 2, 5, 11, 12, 20, 0, 0, 0),
    (64, 8, 1, 33, 33, 0, 0, 1, 1, 0),
]


def mha_case(idx, E, H, B, Sq, Sk, kdim, vdim, bias, causal, kpm):
    base = 50000 + 1000 * idx
    kd = kdim or E
    vd = vdim or E
    m = torch.nn.MultiheadAttention(E, H, bias=bool(bias), batch_first=True, kdim=kd, vdim=vd,
                                    dtype=torch.float64)
    # Parameters drawn like the C side: q/k/v/out weights seeds base+10..13, biases base+20..23.
    Wq = t(base + 10, (E, E), -0.3, 0.3)
    Wk = t(base + 11, (E, kd), -0.3, 0.3)
    Wv = t(base + 12, (E, vd), -0.3, 0.3)
    Wo = t(base + 13, (E, E), -0.3, 0.3)
    with torch.no_grad():
        if m._qkv_same_embed_dim:
            m.in_proj_weight.copy_(torch.cat([Wq, Wk, Wv], 0))
        else:
            m.q_proj_weight.copy_(Wq)
            m.k_proj_weight.copy_(Wk)
            m.v_proj_weight.copy_(Wv)
        m.out_proj.weight.copy_(Wo)
        if bias:
            m.in_proj_bias.copy_(torch.cat([t(base + 20, (E,), -0.1, 0.1), t(base + 21, (E,), -0.1, 0.1),
                                            t(base + 22, (E,), -0.1, 0.1)]))
            m.out_proj.bias.copy_(t(base + 23, (E,), -0.1, 0.1))
    cross = Sq != Sk or kdim or vdim
    xq = t(base + 1, (B, Sq, E)).requires_grad_()
    if cross:
        xk = t(base + 2, (B, Sk, kd)).requires_grad_()
        xv = t(base + 3, (B, Sk, vd)).requires_grad_()
    else:
        xk = xv = xq
    w = t(base + 4, (B, Sq, E))
    kpm_t = None
    if kpm:  # True = ignore; keep key 0 so no row is fully masked
        kpm_t = t(base + 5, (B, Sk), 0.0, 1.0) < 0.3
        kpm_t[:, 0] = False
    attn_mask = None
    if causal:
        attn_mask = torch.ones(Sq, Sk, dtype=torch.bool).triu(1)  # True = not allowed
    out, _ = m(xq, xk, xv, key_padding_mask=kpm_t, attn_mask=attn_mask, need_weights=False)
    (out * w).sum().backward()
    name = "mha%d" % idx
    put_cfg(name + ".cfg", [E, H, B, Sq, Sk, kdim, vdim, bias, causal, kpm, base])
    put(name + ".out", out.detach())
    put(name + ".dx", xq.grad)
    if cross:
        put(name + ".dkey", xk.grad)
        put(name + ".dvalue", xv.grad)
    if m._qkv_same_embed_dim:
        g = m.in_proj_weight.grad
        gq, gk, gv = g[:E], g[E:2 * E], g[2 * E:]
    else:
        gq, gk, gv = m.q_proj_weight.grad, m.k_proj_weight.grad, m.v_proj_weight.grad
    put(name + ".dq_proj.weight", gq)
    put(name + ".dk_proj.weight", gk)
    put(name + ".dv_proj.weight", gv)
    put(name + ".dout_proj.weight", m.out_proj.weight.grad)
    if bias:
        gb = m.in_proj_bias.grad
        put(name + ".dq_proj.bias", gb[:E])
        put(name + ".dk_proj.bias", gb[E:2 * E])
        put(name + ".dv_proj.bias", gb[2 * E:])
        put(name + ".dout_proj.bias", m.out_proj.bias.grad)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


# B, H, S, D, rotary dims, traditional, theta, offset, scale
ROPE = [
    (2, 3, 7, 32, 32, 0, 10000.0, 0, 1.0),
    (1, 4, 64, 64, 64, 1, 10000.0, 0, 1.0),
    (2, 2, 9, 80, 40, 0, 500000.0, 5, 1.0),
    (1, 2, 33, 128, 128, 0, 10000.0, 100, 0.25),
    (1, 1, 257, 64, 16, 1, 10000.0, 3, 1.0),
]


def rope_case(idx, B, H, S, D, dims, trad, theta, offset, scale):
    base = 90000 + 1000 * idx
    x = t(base + 1, (B, H, S, D))
    inv_freq = 1.0 / (theta ** (torch.arange(0, dims, 2, dtype=torch.float64) / dims))
    pos = (torch.arange(S, dtype=torch.float64) + offset) * scale
    freqs = torch.outer(pos, inv_freq)  # [S, dims/2]
    rot, rest = x[..., :dims], x[..., dims:]
    if trad:
        cos = freqs.cos().repeat_interleave(2, -1)
        sin = freqs.sin().repeat_interleave(2, -1)
        r = rot * cos + rotate_every_two(rot) * sin
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
        r = rot * emb.cos() + rotate_half(rot) * emb.sin()
    y = torch.cat((r, rest), dim=-1)
    name = "rope%d" % idx
    put_cfg(name + ".cfg", [B, H, S, D, dims, trad, theta, offset, scale, base])
    put(name + ".out", y)


def main():
    torch.set_default_dtype(torch.float64)
    for i, c in enumerate(SDPA):
        sdpa_case(i, *c)
    for i, c in enumerate(MHA):
        mha_case(i, *c)
    for i, c in enumerate(ROPE):
        rope_case(i, *c)
    out = Golden()
    for name, arr in records:
        out.add(name, arr, "f32")
    out.meta("generator", "tools/gen_attention_golden.py, torch " + torch.__version__)
    out.save("attention_golden.safetensors")


if __name__ == "__main__":
    main()
