#!/usr/bin/python3
"""gen_minilm_reference.py: writes tests/data/minilm_embeddings.txt, PyTorch's
all-MiniLM-L6-v2 sentence embeddings of a fixed sentence list, for the ctest
sentence_embeddings_minilm (tests/check_sentence_embeddings.sh), which runs
examples/sentence_embeddings --print-embeddings on the same sentences and
requires a cosine of at least 0.9999 with each.

The reference is independent of lamina: the sentences are tokenized by
Hugging Face `tokenizers` from the model's tokenizer.json (truncation 512,
padding to the longest) and run through BertModel's forward pass written out
in plain torch, in float64, from the model.safetensors weights (word +
position + token-type embeddings, LayerNorm, 6 post-LN blocks with the
padding mask, exact erf GELU), then mean-pooled over the attention mask and
L2-normalised as sentence-transformers' Pooling + Normalize modules do.

File format: '#' comment lines, then for each sentence a line "S<TAB>text"
followed by "E<TAB>" and the 384 values (space-separated, %.9g).

Run with /usr/bin/python3 (needs torch, safetensors and tokenizers) after
tools/fetch_minilm.sh; LAMINA_MINILM_DIR names another model folder."""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "minilm_embeddings.txt")

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A cheetah is running behind its prey.",
    "Crème brûlée, naïve café — déjà vu!",
    "我爱北京天安门 and 한국어 with emoji 😀",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x",
    " ".join(["The committee reviewed the proposal in detail, and after a lengthy discussion it was approved."] * 20),
]


def bert_forward(sd, cfg, ids, mask, types):
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = h // nh, cfg.get("layer_norm_eps", 1e-12)
    b, s = ids.shape
    pos = torch.arange(s)
    x = sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.position_embeddings.weight"][pos] + \
        sd["embeddings.token_type_embeddings.weight"][types]
    x = F.layer_norm(x, (h,), sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min

    def lin(t, name):
        return F.linear(t, sd[name + ".weight"], sd[name + ".bias"])

    def heads(t):
        return t.view(b, s, nh, d).transpose(1, 2)

    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, h)
        x = F.layer_norm(lin(ctx, p + "attention.output.dense") + x, (h,), sd[p + "attention.output.LayerNorm.weight"],
                         sd[p + "attention.output.LayerNorm.bias"], eps)
        inter = F.gelu(lin(x, p + "intermediate.dense"))
        x = F.layer_norm(lin(inter, p + "output.dense") + x, (h,), sd[p + "output.LayerNorm.weight"],
                         sd[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    d = os.environ.get("LAMINA_MINILM_DIR", os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["hidden_act"] == "gelu" and cfg.get("position_embedding_type", "absolute") == "absolute"
    sd = {k: v.double() if v.is_floating_point() else v for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    tok.enable_truncation(512)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    types = torch.tensor([e.type_ids for e in enc])
    with torch.no_grad():
        hidden = bert_forward(sd, cfg, ids, mask, types)
        m = mask[:, :, None].double()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        emb = F.normalize(pooled, p=2, dim=1)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("# all-MiniLM-L6-v2 sentence embeddings, written by tools/gen_minilm_reference.py (torch %s,\n"
                "# float64 BertModel forward from model.safetensors, tokenizers %s, mean pooling, L2 norm).\n"
                "# S<TAB>sentence, then E<TAB>its %d values; token counts: %s\n"
                % (torch.__version__, __import__("tokenizers").__version__, emb.shape[1],
                   " ".join(str(int(x)) for x in mask.sum(1))))
        for s, e in zip(SENTENCES, emb):
            f.write("S\t" + s + "\n")
            f.write("E\t" + " ".join("%.9g" % float(x) for x in e) + "\n")
    print("wrote", os.path.relpath(OUT), "(%d sentences)" % len(SENTENCES))
    sims = emb @ emb.T
    print("cosine similarities:\n", sims[:4, :4])


if __name__ == "__main__":
    main()
