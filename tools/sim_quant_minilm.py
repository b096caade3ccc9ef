#!/usr/bin/env python3
"""tools/sim_quant_minilm.py: the accuracy of group-wise quantization on the
real all-MiniLM-L6-v2, simulated in PyTorch (float64), as a check of what
lamina's `sentence_embeddings --quantize B` can reach.

Quantizes every 2-D weight but the layer norms (as lam_quantize_layer does:
linear and embedding layers) with MLX's affine round-to-nearest scheme
(scale = (max - min) / (2^bits - 1), bias = min per group of input elements),
optionally with a clipping search per group (the range shrunk in 2% steps to
the least squared error), runs tools/gen_minilm_reference.py's BertModel
forward on its sentences and prints the cosine of each configuration's
embeddings to the float weights' embeddings.

Usage: /usr/bin/python3 tools/sim_quant_minilm.py  (after tools/fetch_minilm.sh)
Seen (torch 2.15, 2026-12-04): 8 bits g64 min 0.99971; 4 bits g64 0.92681,
g32 0.93949; with the clipping search 0.93055 / 0.94122.
"""
import importlib.util
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("ref", os.path.join(ROOT, "tools", "gen_minilm_reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def quantize(w, group, bits, clip):
    rows, cols = w.shape
    wg = w.reshape(rows, cols // group, group)
    mn, mx = wg.min(-1, keepdim=True).values, wg.max(-1, keepdim=True).values
    best = best_dq = None
    for r in ([1 - 0.02 * k for k in range(20)] if clip else [1.0]):
        lo, hi = mn * r, mx * r
        scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
        dq = ((wg - lo) / scale).round().clamp(0, 2 ** bits - 1) * scale + lo
        err = ((dq - wg) ** 2).sum(-1, keepdim=True)
        if best is None:
            best, best_dq = err, dq
        else:
            better = err < best
            best, best_dq = torch.where(better, err, best), torch.where(better, dq, best_dq)
    return best_dq.reshape(rows, cols)


def main():
    d = os.environ.get("LAMINA_MINILM_DIR", os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    cfg = json.load(open(os.path.join(d, "config.json")))
    sd0 = {k: v.double() if v.is_floating_point() else v
           for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    tok.enable_truncation(512)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(ref.SENTENCES)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    types = torch.tensor([e.type_ids for e in enc])

    def embed(sd):
        with torch.no_grad():
            h = ref.bert_forward(sd, cfg, ids, mask, types)
            m = mask[:, :, None].double()
            return F.normalize((h * m).sum(1) / m.sum(1), dim=1)

    e0 = embed(sd0)
    for bits, group, clip in [(8, 64, False), (4, 64, False), (4, 32, False), (4, 64, True), (4, 32, True)]:
        sd = dict(sd0)
        for k, v in sd0.items():
            if k.endswith(".weight") and v.dim() == 2 and "LayerNorm" not in k and v.shape[1] % group == 0:
                sd[k] = quantize(v, group, bits, clip)
        c = (embed(sd) * e0).sum(1)
        print("%d bits, groups of %d, %s: cosine min %.5f mean %.5f"
              % (bits, group, "clipping search" if clip else "round to nearest", c.min(), c.mean()))


if __name__ == "__main__":
    main()
