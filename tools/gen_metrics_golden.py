#!/usr/bin/python3
"""gen_metrics_golden.py: golden data for tests/test_metrics.c.

Writes tests/data/metrics_golden.safetensors (by hand with struct + json, as
tools/gen_optim_golden.py does): random inputs and the scikit-learn values of
every metric in lamina/metrics.h. scikit-learn is not installed here, so the
reference formulas are written out in numpy exactly as scikit-learn defines
them (sklearn.metrics 1.x):

  accuracy_score(y, argmax(scores))
  top_k_accuracy_score(y, scores, k, labels=range(C))   (no ties in the scores)
  (probs > 0.5) == y  mean                              (Keras BinaryAccuracy)
  precision/recall/f1_score(y, pred, labels=range(C), average=..., zero_division=0)
  confusion_matrix(y, pred, labels=range(C))
  mean_squared_error, mean_absolute_error               (over all elements)

Class 5 of 6 is never predicted (its score column is -10), so its precision
is a zero division (0) and macro averages include it as 0, as scikit-learn
does with labels=range(6).
Run: /usr/bin/python3 tools/gen_metrics_golden.py   (numpy)
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
DT = {np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("int32"): "I32"}
SIZE = {"F64": 8, "F32": 4, "I32": 4}


def write_safetensors(path, arrays):
    tensors = [(k, DT[a.dtype], a.shape, np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())
               for k, a in arrays.items()]
    order = sorted(tensors, key=lambda t: (-SIZE[t[1]], t[0]))
    pos, offsets, header = 0, {}, {}
    for name, dt, shape, raw in order:
        offsets[name] = (pos, pos + len(raw))
        pos += len(raw)
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": list(offsets[name])}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, raw in order:
            f.write(raw)
    print(f"wrote {path}: {os.path.getsize(path)} bytes, {len(tensors)} tensors")


def confusion(y, p, c):
    m = np.zeros((c, c), dtype=np.int64)
    for t, q in zip(y, p):
        m[t, q] += 1
    return m


def prf(m, average):
    tp = np.diag(m).astype(np.float64)
    npred = m.sum(axis=0).astype(np.float64)
    ntrue = m.sum(axis=1).astype(np.float64)
    if average == "micro":
        v = tp.sum() / m.sum()
        return v, v, v
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(npred > 0, tp / npred, 0.0)
        r = np.where(ntrue > 0, tp / ntrue, 0.0)
        f = np.where(npred + ntrue > 0, 2 * tp / (npred + ntrue), 0.0)
    if average == "macro":
        return p.mean(), r.mean(), f.mean()
    w = ntrue / ntrue.sum()
    return (p * w).sum(), (r * w).sum(), (f * w).sum()


def main():
    rng = np.random.default_rng(17)
    n, c = 203, 6
    scores = rng.standard_normal((n, c)).astype(np.float32)
    scores[:, 5] = -10.0
    labels = rng.integers(0, c, n).astype(np.int32)
    # make the predictions better than chance so the metrics are not trivial
    boost = rng.random(n) < 0.5
    scores[boost, labels[boost]] += 2.0
    scores[:, 5] = -10.0
    pred = scores.argmax(axis=1)
    out = {"scores": scores, "labels": labels, "pred": pred.astype(np.int32)}
    out["accuracy"] = np.array([np.mean(pred == labels)])
    for k in (1, 2, 3):
        above = (scores > scores[np.arange(n), labels][:, None]).sum(axis=1)
        top = np.argsort(-scores, axis=1)[:, :k]
        ref = np.mean([labels[i] in top[i] for i in range(n)])
        assert abs(ref - np.mean(above < k)) < 1e-12
        out[f"top{k}"] = np.array([ref])
    m = confusion(labels, pred, c)
    out["confusion"] = m.astype(np.int32)
    for avg in ("macro", "micro", "weighted"):
        p, r, f = prf(m, avg)
        out[f"precision_{avg}"] = np.array([p])
        out[f"recall_{avg}"] = np.array([r])
        out[f"f1_{avg}"] = np.array([f])
    probs = rng.random((n, 2)).astype(np.float32)
    target = (rng.random((n, 2)) < 0.5).astype(np.int32)
    out["probs"], out["binary_target"] = probs, target
    out["binary_accuracy"] = np.array([np.mean((probs > 0.5) == (target > 0.5))])
    yp = rng.standard_normal((50, 3)).astype(np.float32)
    yt = rng.standard_normal((50, 3)).astype(np.float32)
    out["reg_pred"], out["reg_target"] = yp, yt
    d = yp.astype(np.float64) - yt.astype(np.float64)
    out["mse"] = np.array([np.mean(d * d)])
    out["mae"] = np.array([np.mean(np.abs(d))])
    write_safetensors(os.path.join(OUT, "metrics_golden.safetensors"), out)


if __name__ == "__main__":
    main()
