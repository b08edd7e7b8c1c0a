"""PyTorch reference implementation of the MERT/HuBERT encoder, for benchmarks.

Written from reference/mert.md with torch.nn.functional (Debian python3-torch 1.13); reads the same
Hugging Face directories as `mess` (model.safetensors or pytorch_model.bin). Validated against the
parity fixtures (`--check DIR`, run by the test suite), so its timings are those of a faithful reference.

  /usr/bin/python3 bench/mert_reference.py --check tests/fixtures/mert/mert95m_tiny
  /usr/bin/python3 bench/mert_reference.py --bench DIR --batch 4 --reps 2 --threads 2
  python3 bench/mert_reference.py --bench DIR --batch 64 --device cuda --dtype fp16    # eager fp16 on a GPU
  /usr/bin/python3 bench/mert_reference.py --dump DIR IN.npy OUT.npy   # hidden states [1, L+1, T, H]
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_weights(d):
    st = os.path.join(d, "model.safetensors")
    if os.path.exists(st):
        with open(st, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            data = f.read()
        out = {}
        for k, v in header.items():
            if k == "__metadata__":
                continue
            assert v["dtype"] == "F32", (k, v["dtype"])
            b, e = v["data_offsets"]
            out[k] = torch.from_numpy(np.frombuffer(data, dtype="<f4", count=(e - b) // 4, offset=b).reshape(v["shape"]).copy())
        return out
    return torch.load(os.path.join(d, "pytorch_model.bin"), map_location="cpu")


class Reference:
    def __init__(self, d):
        with open(os.path.join(d, "config.json")) as f:
            self.c = json.load(f)
        w = load_weights(d)
        pg = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
        if pg in w:
            w["encoder.pos_conv_embed.conv.weight_g"] = w.pop(pg)
            w["encoder.pos_conv_embed.conv.weight_v"] = w.pop(pg[:-1] + "1")
        g, v = w["encoder.pos_conv_embed.conv.weight_g"], w["encoder.pos_conv_embed.conv.weight_v"]
        w["pos_w"] = torch._weight_norm(v, g, 2)
        self.w = w

    @torch.inference_mode()
    def forward(self, x, normalize=True):
        c, w = self.c, self.w
        eps = c.get("layer_norm_eps", 1e-5)
        if normalize:
            mean = x.mean(dim=1, keepdim=True)
            var = x.var(dim=1, unbiased=False, keepdim=True)
            x = (x - mean) / torch.sqrt(var + 1e-7)
        h = x[:, None, :]
        for i in range(len(c["conv_dim"])):
            p = f"feature_extractor.conv_layers.{i}."
            h = F.conv1d(h, w[p + "conv.weight"], w.get(p + "conv.bias"), stride=c["conv_stride"][i])
            if c["feat_extract_norm"] == "group" and i == 0:
                h = F.group_norm(h, h.shape[1], w[p + "layer_norm.weight"], w[p + "layer_norm.bias"], 1e-5)
            elif c["feat_extract_norm"] == "layer":
                h = F.layer_norm(h.transpose(1, 2), (h.shape[1],), w[p + "layer_norm.weight"], w[p + "layer_norm.bias"], 1e-5).transpose(1, 2)
            h = F.gelu(h)
        feats = h.transpose(1, 2)
        if c.get("feat_proj_layer_norm", True):
            feats = F.layer_norm(feats, (feats.shape[-1],), w["feature_projection.layer_norm.weight"], w["feature_projection.layer_norm.bias"], eps)
        x = F.linear(feats, w["feature_projection.projection.weight"], w["feature_projection.projection.bias"])
        K = c["num_conv_pos_embeddings"]
        pos = F.conv1d(x.transpose(1, 2), w["pos_w"], w["encoder.pos_conv_embed.conv.bias"], padding=K // 2,
                       groups=c["num_conv_pos_embedding_groups"])
        if K % 2 == 0:
            pos = pos[:, :, :-1]
        x = x + F.gelu(pos).transpose(1, 2)
        H = c["hidden_size"]
        ln = lambda t, p: F.layer_norm(t, (H,), w[p + ".weight"], w[p + ".bias"], eps)
        stable = c.get("do_stable_layer_norm", False)
        if not stable:
            x = ln(x, "encoder.layer_norm")
        states = [x]
        heads = c["num_attention_heads"]
        hd = H // heads
        B, T, _ = x.shape
        for l in range(c["num_hidden_layers"]):
            p = f"encoder.layers.{l}."
            a_in = ln(x, p + "layer_norm") if stable else x
            q = F.linear(a_in, w[p + "attention.q_proj.weight"], w[p + "attention.q_proj.bias"]) * hd ** -0.5
            k = F.linear(a_in, w[p + "attention.k_proj.weight"], w[p + "attention.k_proj.bias"])
            v = F.linear(a_in, w[p + "attention.v_proj.weight"], w[p + "attention.v_proj.bias"])
            split = lambda t: t.view(B, T, heads, hd).transpose(1, 2)
            probs = torch.softmax(split(q) @ split(k).transpose(-1, -2), dim=-1)
            ctx = (probs @ split(v)).transpose(1, 2).reshape(B, T, H)
            a = F.linear(ctx, w[p + "attention.out_proj.weight"], w[p + "attention.out_proj.bias"])
            x = x + a if stable else ln(x + a, p + "layer_norm")
            f_in = ln(x, p + "final_layer_norm") if stable else x
            f = F.linear(F.gelu(F.linear(f_in, w[p + "feed_forward.intermediate_dense.weight"], w[p + "feed_forward.intermediate_dense.bias"])),
                         w[p + "feed_forward.output_dense.weight"], w[p + "feed_forward.output_dense.bias"])
            x = x + f if stable else ln(x + f, p + "final_layer_norm")
            if stable and l == c["num_hidden_layers"] - 1:
                x = ln(x, "encoder.layer_norm")
            states.append(x)
        return torch.stack(states, dim=1)  # [B, L+1, T, H]


def check(d):
    ref = Reference(d)
    x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))[None]
    got = ref.forward(x).numpy()[0]
    want = np.load(os.path.join(d, "hidden_states.npy"))
    diff = float(np.abs(got - want).max())
    print(json.dumps({"fixture": d, "max_abs_diff": diff}))
    return diff <= 1e-4


def bench(d, batch, reps, threads, seconds, device="cpu", dtype="fp32"):
    torch.set_num_threads(threads)
    ref = Reference(d)
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    ref.w = {k: v.to(device=device, dtype=dt) for k, v in ref.w.items()}
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, int(seconds * 24000))).astype(np.float32) * 0.1).to(device=device, dtype=dt)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ref.forward(x)  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        ref.forward(x)
    sync()
    sec = (time.perf_counter() - t0) / (reps * batch)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"impl": "pytorch", "torch": torch.__version__, "batch": batch, "threads": threads, "device": device, "dtype": dtype,
           "sec_per_window": sec, "peak_rss_mb": rss}
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", nargs="*", default=[])
    ap.add_argument("--bench")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--dump", nargs=3, metavar=("DIR", "IN_NPY", "OUT_NPY"))
    a = ap.parse_args()
    ok = all([check(d) for d in a.check])
    if a.dump:
        d, inp, out = a.dump
        x = torch.from_numpy(np.load(inp).astype(np.float32))[None]
        np.save(out, Reference(d).forward(x).numpy())
    if a.bench:
        bench(a.bench, a.batch, a.reps, a.threads, a.seconds, a.device, a.dtype)
    sys.exit(0 if ok else 1)
