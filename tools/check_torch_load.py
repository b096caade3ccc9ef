#!/usr/bin/env python3
"""tools/check_torch_load.py: a state_dict saved by lamina loads into PyTorch.

Runs the lamina program tests/torch_export.c (its path is the first
argument) to write model.safetensors (lam_vars_save of linear(3, 4) +
batch_norm(4) after two training passes, so the batch-norm state is not the
initial one) and io.safetensors (an input x and lamina's evaluation output
y) into a scratch folder, then builds the same model in PyTorch
(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))), loads the file with
load_state_dict(strict=True) and checks that PyTorch's evaluation output on
x matches lamina's. The safetensors files are parsed with struct + json, so
the `safetensors` package is not needed.

ctest "torch_load" runs it with /usr/bin/python3. Without torch it prints why
and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE 77): CI has no
torch.

    /usr/bin/python3 tools/check_torch_load.py build/tests/torch_export
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("check_torch_load: torch is not installed; skipped")
    sys.exit(77)

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "I32": torch.int32,
          "I64": torch.int64, "U8": torch.uint8}


def load_st(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DTYPES[e["dtype"]]) if end > b else \
            torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_torch_load.py PATH_TO_torch_export")
    with tempfile.TemporaryDirectory(prefix="lamina-torch-") as d:
        subprocess.run([sys.argv[1], d], check=True)
        sd = load_st(os.path.join(d, "model.safetensors"))
        io = load_st(os.path.join(d, "io.safetensors"))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    nbt = int(model[1].num_batches_tracked)
    assert nbt == 2, "num_batches_tracked is %d, expected 2" % nbt
    assert not torch.allclose(model[1].running_mean, torch.zeros(4)), "running_mean did not move"
    model.eval()
    with torch.no_grad():
        y = model(io["x"])
    err = (y - io["y"]).abs().max().item()
    print("check_torch_load: strict load_state_dict of %d keys %s; max |y_torch - y_lamina| = %.3g"
          % (len(sd), sorted(sd), err))
    if err > 1e-5:
        sys.exit("check_torch_load: outputs differ by %g" % err)


if __name__ == "__main__":
    main()
