#!/usr/bin/python3
"""gen_models_text_golden.py: writes Hugging Face golden data for the text
model zoo (tests/test_models_text.c, include/lamina/models_text.h).

tests/data/models_text_golden.safetensors holds, for tiny configurations with
random weights (torch.manual_seed, normal(0, 0.2) so that every weight matters):

  bert.param.<key>   the state_dict of transformers.BertModel (with the pooler),
                     minus the buffer embeddings.position_ids (not a parameter in
                     lamina), so lamina loads the rest strictly;
  bert.ids, bert.mask, bert.types   inputs [2, 7] (row 1 padded after 4 tokens);
  bert.hidden, bert.pooled          last_hidden_state and pooler_output (eval());
  bert.mean, bert.norm              mean pooling with the mask and its L2
                                    normalisation (sentence-transformers);
  bert.loss, bert.grad.<key>        loss = sum(mean_pool(hidden)^2) + sum(pooled^2)
                                    and its gradient for every parameter;
  gpt2.param.<key>   the state_dict of transformers.GPT2LMHeadModel minus the tied
                     lm_head.weight (the same tensor as transformer.wte.weight)
                     and the attn.bias / attn.masked_bias buffers;
  gpt2.ids, gpt2.logits             input [2, 7] and the logits;
  gpt2.prompt, gpt2.greedy          a [2, 3] prompt and model.generate's greedy
                                    continuation by 5 tokens ([2, 8]).

Needs transformers (4.30.2 works with torch 1.13: pip install
--break-system-packages transformers==4.30.2); the tests only read the file.
Run from the repository root: /usr/bin/python3 tools/gen_models_text_golden.py."""
import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

from golden_st import Golden

torch.manual_seed(16)
g = Golden()


def randomize(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or ".ln_" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))


# ---- BERT --------------------------------------------------------------------------
bc = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=20, type_vocab_size=2,
                layer_norm_eps=1e-12, hidden_act="gelu")
bert = BertModel(bc).eval()
randomize(bert)
B, S = 2, 7
ids = torch.randint(0, 50, (B, S))
mask = torch.ones(B, S, dtype=torch.int64)
mask[1, 4:] = 0
ids[1, 4:] = 0
types = torch.zeros(B, S, dtype=torch.int64)
types[0, 3:] = 1
types[1, 2:4] = 1
out = bert(input_ids=ids, attention_mask=mask, token_type_ids=types)
hidden, pooled = out.last_hidden_state, out.pooler_output
m = mask.unsqueeze(-1).to(hidden.dtype)
mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
norm = torch.nn.functional.normalize(mean, p=2, dim=1)
loss = (mean ** 2).sum() + (pooled ** 2).sum()
bert.zero_grad()
loss.backward()
sd = {k: v for k, v in bert.state_dict().items() if k != "embeddings.position_ids"}
for k, v in sd.items():
    g.add("bert.param." + k, v.float())
for k, p in bert.named_parameters():
    g.add("bert.grad." + k, p.grad.float())
g.add("bert.ids", ids, "i32").add("bert.mask", mask, "i32").add("bert.types", types, "i32")
g.add("bert.hidden", hidden.float()).add("bert.pooled", pooled.float())
g.add("bert.mean", mean.float()).add("bert.norm", norm.float()).add("bert.loss", loss.reshape(1).float())
g.meta("bert.cfg", [50, 16, 2, 2, 32, 20, 2])

# ---- GPT-2 -------------------------------------------------------------------------
gc = GPT2Config(vocab_size=50, n_positions=20, n_embd=16, n_layer=2, n_head=2, n_inner=None,
                activation_function="gelu_new", resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
                layer_norm_epsilon=1e-5)
gpt = GPT2LMHeadModel(gc).eval()
randomize(gpt)
ids = torch.randint(0, 50, (B, S))
with torch.no_grad():
    logits = gpt(input_ids=ids).logits
    prompt = torch.randint(0, 50, (B, 3))
    greedy = gpt.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5,
                          do_sample=False, pad_token_id=0)
sd = {k: v for k, v in gpt.state_dict().items()
      if k != "lm_head.weight" and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
for k, v in sd.items():
    g.add("gpt2.param." + k, v.float())
g.add("gpt2.ids", ids, "i32").add("gpt2.logits", logits.float())
g.add("gpt2.prompt", prompt, "i32").add("gpt2.greedy", greedy, "i32")
g.meta("gpt2.cfg", [50, 20, 16, 2, 2])
g.save("models_text_golden.safetensors")
