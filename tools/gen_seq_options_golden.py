#!/usr/bin/env python3
"""Makes tests/data/seq_options_golden.safetensors: PyTorch (1.13) outputs and
gradients for the sequence-model options of issue 23, read by
tests/test_dense.c (nn.Embedding padding_idx / max_norm), tests/test_rnn.c
(nn.LSTM proj_size) and tests/test_mha.c (nn.MultiheadAttention add_bias_kv /
add_zero_attn, loaded from its packed state_dict). Run with Debian's
/usr/bin/python3 (python3-torch):

    /usr/bin/python3 tools/gen_seq_options_golden.py

Everything is f64; indices, lengths and masks are i32 / u8. Each case
"<case>" stores "<case>.<field>"; gradients are of sum(y * cot) (plus the
final states' cotangents for the LSTM)."""
import torch

from golden_st import Golden

torch.manual_seed(2323)
torch.set_default_dtype(torch.float64)
out = Golden()


def add(case, **fields):
    for k, v in fields.items():
        out.add(f"{case}.{k}", v)


# ---- embedding ------------------------------------------------------------------
# padding_idx (positive and negative): the padding row gets no gradient.
for case, pad in [("embpad", 2), ("embneg", -1)]:
    emb = torch.nn.Embedding(7, 3, padding_idx=pad)
    with torch.no_grad():
        emb.weight.normal_()  # a nonzero padding row: the output still reads it
    w0 = emb.weight.detach().clone()
    idx = torch.tensor([[2, 0, 6], [6, 2, 2], [1, 5, 0], [3, 4, 2]])
    y = emb(idx)
    cot = torch.randn_like(y)
    (y * cot).sum().backward()
    add(case, w=w0, y=y, cot=cot, gw=emb.weight.grad)
    out.add(f"{case}.idx", idx, "i32")
    out.meta(f"{case}.padding_idx", pad)

# max_norm with norm_type 2, 1 and inf: rows looked up are renormed in place.
for case, mn, p in [("embmn2", 1.5, 2.0), ("embmn1", 2.0, 1.0), ("embmninf", 0.9, float("inf"))]:
    emb = torch.nn.Embedding(9, 5, max_norm=mn, norm_type=p)
    w0 = emb.weight.detach().clone()
    idx = torch.tensor([[1, 4, 1, 8], [0, 4, 7, 3]])  # rows 2, 5, 6 are not looked up
    y = emb(idx)
    cot = torch.randn_like(y)
    (y * cot).sum().backward()
    add(case, w=w0, w_after=emb.weight.detach(), y=y, cot=cot, gw=emb.weight.grad)
    out.add(f"{case}.idx", idx, "i32")
    out.meta(f"{case}.max_norm", mn)
    out.meta(f"{case}.norm_type", p if p != float("inf") else -1)

# ---- LSTM proj_size -----------------------------------------------------------------
lstm_cases = [
    # name, input, hidden, proj, layers, bidirectional, T, B, with h0/c0, lengths
    ("lstmp1", 3, 5, 2, 1, False, 4, 3, True, None),
    ("lstmp2", 4, 6, 3, 2, True, 5, 2, False, [5, 3]),
]
for (case, I, H, P, L, bi, T, B, with0, lengths) in lstm_cases:
    m = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bi, proj_size=P)
    D = 2 if bi else 1
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = torch.randn(L * D, B, P, requires_grad=True) if with0 else None
    c0 = torch.randn(L * D, B, H, requires_grad=True) if with0 else None
    if lengths is None:
        y, (hn, cn) = m(x, (h0, c0)) if with0 else m(x)
    else:
        pk = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        yp, (hn, cn) = m(pk)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=T)
        out.add(f"{case}.lengths", torch.tensor(lengths), "i32")
    cy, ch, cc = torch.randn_like(y), torch.randn_like(hn), torch.randn_like(cn)
    ((y * cy).sum() + (hn * ch).sum() + (cn * cc).sum()).backward()
    add(case, x=x, y=y, hn=hn, cn=cn, cy=cy, ch=ch, cc=cc, gx=x.grad)
    if with0:
        add(case, h0=h0, c0=c0, gh0=h0.grad, gc0=c0.grad)
    names = []
    for name, prm in m.named_parameters():
        out.add(f"{case}.p.{name}", prm)
        out.add(f"{case}.g.{name}", prm.grad)
        names.append(name)
    out.meta(f"{case}.params", names)
    out.meta(f"{case}.dims", [I, H, P, L, D, T, B])

# ---- MultiheadAttention add_bias_kv / add_zero_attn ------------------------------
# batch_first, E 6, 2 heads; "sd.<key>" is the module's packed state_dict.
mha_cases = [
    ("mhakv", True, False, "kpm"),
    ("mhaza", False, True, "attn"),
    ("mhaboth", True, True, "none"),
]
for case, bkv, za, masking in mha_cases:
    E, Hh, B, Lq, S = 6, 2, 2, 3, 4
    m = torch.nn.MultiheadAttention(E, Hh, batch_first=True, add_bias_kv=bkv, add_zero_attn=za)
    with torch.no_grad():
        m.in_proj_bias.uniform_(-0.2, 0.2)
        m.out_proj.bias.uniform_(-0.2, 0.2)
    q = torch.randn(B, Lq, E, requires_grad=True)
    k = torch.randn(B, S, E, requires_grad=True)
    v = torch.randn(B, S, E, requires_grad=True)
    kw = {}
    if masking == "kpm":
        keep = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1]], dtype=torch.bool)
        kw["key_padding_mask"] = ~keep  # torch: True is ignored
        out.add(f"{case}.keep", keep, "u8")
    elif masking == "attn":
        am = torch.randn(Lq, S) * 0.5
        am[0, 1] = float("-inf")
        kw["attn_mask"] = am
        out.add(f"{case}.attn_mask", am)
    y, _ = m(q, k, v, need_weights=False, **kw)
    cot = torch.randn_like(y)
    (y * cot).sum().backward()
    add(case, q=q, k=k, v=v, y=y, cot=cot, gq=q.grad, gk=k.grad, gv=v.grad,
        g_in_proj_weight=m.in_proj_weight.grad, g_in_proj_bias=m.in_proj_bias.grad,
        g_out_proj_weight=m.out_proj.weight.grad)
    if bkv:
        add(case, g_bias_k=m.bias_k.grad, g_bias_v=m.bias_v.grad)
    for key, t in m.state_dict().items():
        out.add(f"{case}.sd.{key}", t)
    out.meta(f"{case}.masking", masking)

out.save("seq_options_golden.safetensors")
