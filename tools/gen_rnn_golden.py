#!/usr/bin/env python3
"""Makes tests/data/rnn_golden.safetensors: PyTorch outputs, final states and
gradients of nn.RNN (tanh, relu), nn.LSTM, nn.GRU and their cells, used by
tests/test_rnn.c and tests/test_rnn_cells.c. Run with Debian's
/usr/bin/python3 (python3-torch):

    /usr/bin/python3 tools/gen_rnn_golden.py

To keep the file small, inputs are not stored: every case draws them from
the tests' splitmix64 generator (tests/testutil.c: tu_rng_make(seed),
tu_uniform), reproduced here bit for bit, in this order:
  x [T, B, I] (time-major) in U(-1, 1);
  the parameters in state_dict order (per layer, forward then reverse:
  weight_ih, weight_hh, bias_ih, bias_hh) in U(-0.7, 0.7);
  h0 [L*D, B, H] then (LSTM) c0 in U(-1, 1), when the case has them;
  the cotangents of y [T, B, D*H], h_n and (LSTM) c_n in U(-1, 1).
Cells (layers == 0) draw x [B, I], the parameters, h [B, H], (LSTM) c, and
the cotangents of h' and (LSTM) c'. Stored per case: y, h_n, c_n and the
gradients of <cot, outputs> with respect to x, h0, c0 and every parameter
(concatenated in state_dict order), all time-major. batch_first is checked
here to give exactly the transposed results, so the tests run each case both
ways against the same numbers. Variable-length cases go through
pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence(total_length=T).

Case k is stored as f64 tensors "rnn.<k>.<y|hn|cn|gx|gh0|gc0|gp>" (absent
when the case has none) and i32 "rnn.<k>.lengths" for variable lengths;
metadata rnn.<k>.name, .mode (tanh, relu, lstm, gru), .layers (0: a cell),
.bidir, .T, .B, .I, .H, .has_h0 and .seed; "rnn.seq_cases" and
"rnn.cell_cases" list the k."""
import torch

from golden_st import Golden

torch.set_default_dtype(torch.float64)
M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 1) & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self, lo, hi, shape):
        n = 1
        for d in shape:
            n *= d
        v = [lo + (hi - lo) * float(self.next() >> 11) * (1.0 / 9007199254740992.0) for _ in range(n)]
        return torch.tensor(v).reshape(shape)


out = Golden()
cases = []


def emit(name, t):
    out.add(name, t)
    return name


def make(kind, layers, bidir, T, B, I, H, has_h0, lengths=None, **extra):
    if kind == "lstm":
        return torch.nn.LSTM(I, H, num_layers=layers, bidirectional=bool(bidir), **extra)
    if kind == "gru":
        return torch.nn.GRU(I, H, num_layers=layers, bidirectional=bool(bidir), **extra)
    return torch.nn.RNN(I, H, num_layers=layers, bidirectional=bool(bidir), nonlinearity=kind, **extra)


def seq_case(kind, layers, bidir, T, B, I, H, has_h0, lengths=None):
    idx = len(cases)
    seed = 1000 + idx
    rng = Rng(seed)
    D = 2 if bidir else 1
    lstm = kind == "lstm"
    net = make(kind, layers, bidir, T, B, I, H, has_h0)
    x = rng.uniform(-1, 1, [T, B, I]).requires_grad_()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(rng.uniform(-0.7, 0.7, list(p.shape)))
    h0 = c0 = None
    if has_h0:
        h0 = rng.uniform(-1, 1, [layers * D, B, H]).requires_grad_()
        if lstm:
            c0 = rng.uniform(-1, 1, [layers * D, B, H]).requires_grad_()
    cy = rng.uniform(-1, 1, [T, B, D * H])
    ch = rng.uniform(-1, 1, [layers * D, B, H])
    cc = rng.uniform(-1, 1, [layers * D, B, H]) if lstm else None

    def run(net, x, batch_first=False):
        state = None
        if has_h0:
            state = (h0, c0) if lstm else h0
        inp = x
        if lengths is not None:
            inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                          enforce_sorted=False)
        y, st = net(inp, state)
        if lengths is not None:
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
        hn, cn = st if lstm else (st, None)
        return y, hn, cn

    y, hn, cn = run(net, x)
    loss = (y * cy).sum() + (hn * ch).sum() + ((cn * cc).sum() if lstm else 0)
    loss.backward()
    # batch_first gives the transposed numbers (so the tests reuse them both ways)
    net_bf = make(kind, layers, bidir, T, B, I, H, has_h0, batch_first=True)
    net_bf.load_state_dict(net.state_dict())
    ybf, hbf, cbf = run(net_bf, x.detach().transpose(0, 1).contiguous(), batch_first=True)
    assert torch.allclose(ybf.transpose(0, 1), y, rtol=0, atol=1e-14)
    assert torch.allclose(hbf, hn, rtol=0, atol=1e-14)
    gp = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    p = f"rnn.{idx}."
    c = {"name": f"{kind} layers={layers} bidir={bidir} T={T} B={B}" + (f" lengths={lengths}" if lengths else ""),
         "mode": kind, "layers": layers, "bidir": bidir, "T": T, "B": B, "I": I, "H": H,
         "has_h0": int(has_h0), "seed": seed}
    emit(p + "y", y)
    emit(p + "hn", hn)
    if lstm:
        emit(p + "cn", cn)
    emit(p + "gx", x.grad)
    if has_h0:
        emit(p + "gh0", h0.grad)
    if has_h0 and lstm:
        emit(p + "gc0", c0.grad)
    emit(p + "gp", gp)
    if lengths is not None:
        out.add(p + "lengths", torch.tensor(lengths), "i32")
    cases.append(c)


def cell_case(kind, B, I, H, has_h0):
    idx = len(cases)
    seed = 1000 + idx
    rng = Rng(seed)
    lstm = kind == "lstm"
    if kind == "lstm":
        cell = torch.nn.LSTMCell(I, H)
    elif kind == "gru":
        cell = torch.nn.GRUCell(I, H)
    else:
        cell = torch.nn.RNNCell(I, H, nonlinearity=kind)
    x = rng.uniform(-1, 1, [B, I]).requires_grad_()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(rng.uniform(-0.7, 0.7, list(p.shape)))
    h = c = None
    if has_h0:
        h = rng.uniform(-1, 1, [B, H]).requires_grad_()
        if lstm:
            c = rng.uniform(-1, 1, [B, H]).requires_grad_()
    ch = rng.uniform(-1, 1, [B, H])
    cc = rng.uniform(-1, 1, [B, H]) if lstm else None
    if lstm:
        h1, c1 = cell(x, (h, c) if has_h0 else None)
        loss = (h1 * ch).sum() + (c1 * cc).sum()
    else:
        h1, c1 = cell(x, h), None
        loss = (h1 * ch).sum()
    loss.backward()
    gp = torch.cat([p.grad.reshape(-1) for p in cell.parameters()])
    p = f"rnn.{idx}."
    cases.append({"name": f"{kind}_cell B={B}" + (" h0" if has_h0 else ""), "mode": kind, "layers": 0,
                  "bidir": 0, "T": 1, "B": B, "I": I, "H": H, "has_h0": int(has_h0), "seed": seed})
    emit(p + "y", h1)
    if lstm:
        emit(p + "cn", c1)
    emit(p + "gx", x.grad)
    if has_h0:
        emit(p + "gh0", h.grad)
    if has_h0 and lstm:
        emit(p + "gc0", c.grad)
    emit(p + "gp", gp)


I, H, B = 4, 3, 2
# Every configuration for tanh, lstm and gru: 1-2 layers, uni/bidirectional,
# seq 1 and 37; initial states given for the 2-layer cases, zeros otherwise.
for kind in ["tanh", "lstm", "gru"]:
    for layers in [1, 2]:
        for bidir in [0, 1]:
            for T in [1, 37]:
                seq_case(kind, layers, bidir, T, B, I, H, has_h0=layers == 2)
# relu: the nonlinearity's own path.
seq_case("relu", 2, 1, 37, B, I, H, has_h0=True)
seq_case("relu", 1, 0, 1, B, I, H, has_h0=False)
# Variable lengths (unsorted, one full-length row).
seq_case("lstm", 2, 1, 7, 3, I, H, has_h0=True, lengths=[3, 7, 1])
seq_case("lstm", 1, 0, 7, 3, I, H, has_h0=False, lengths=[7, 2, 5])
seq_case("gru", 1, 1, 7, 3, I, H, has_h0=True, lengths=[5, 7, 2])
seq_case("tanh", 2, 1, 7, 3, I, H, has_h0=False, lengths=[1, 7, 4])
seq_case("relu", 1, 1, 7, 3, I, H, has_h0=True, lengths=[6, 2, 7])
N_SEQ = len(cases)
# Cells.
for kind in ["tanh", "relu", "lstm", "gru"]:
    cell_case(kind, 3, I, H, has_h0=True)
cell_case("lstm", 2, I, H, has_h0=False)
cell_case("gru", 2, I, H, has_h0=False)

for k, c in enumerate(cases):
    for key in ("name", "mode", "layers", "bidir", "T", "B", "I", "H", "has_h0", "seed"):
        out.meta(f"rnn.{k}.{key}", c[key])
out.meta("rnn.seq_cases", list(range(N_SEQ)))
out.meta("rnn.cell_cases", list(range(N_SEQ, len(cases))))
out.meta("generator", "tools/gen_rnn_golden.py, torch " + torch.__version__)
out.save("rnn_golden.safetensors")
