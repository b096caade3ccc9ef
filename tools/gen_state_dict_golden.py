#!/usr/bin/env python3
"""Makes tests/data/torch_mlp_f32.safetensors and torch_mlp_f16.safetensors:
the state_dict of a PyTorch nn.Sequential(Linear(6, 5), ReLU(), Linear(5, 3))
saved in the safetensors format (written by hand with struct + json, so the
`safetensors` package is not needed), plus tests/data/torch_mlp_golden.safetensors
with an input batch "mlp.x" and the model's outputs "mlp.y_f32" and "mlp.y_f16"
(from the f32 and the f16-rounded weights), all f32. tests/test_state_dict.c loads the files into the equivalent lamina
model and compares outputs.

    /usr/bin/python3 tools/gen_state_dict_golden.py
"""
import json
import os
import struct

import torch

from golden_st import Golden

torch.manual_seed(31)
model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
x = torch.randn(4, 6)
here = os.path.join(os.path.dirname(__file__), "..", "tests", "data")


def save(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        dtype = {torch.float32: "F32", torch.float16: "F16"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


sd = model.state_dict()
save(os.path.join(here, "torch_mlp_f32.safetensors"), sd)
save(os.path.join(here, "torch_mlp_f16.safetensors"), {k: v.half() for k, v in sd.items()})
with torch.no_grad():
    y32 = model(x)
    m16 = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    m16.load_state_dict({k: v.half().float() for k, v in sd.items()})
    y16 = m16(x)


out = Golden()
out.add("mlp.x", x).add("mlp.y_f32", y32).add("mlp.y_f16", y16)
out.meta("generator", "tools/gen_state_dict_golden.py, torch " + torch.__version__)
out.save("torch_mlp_golden.safetensors")
