"""PyTorch side of dddit's speed benchmarks: the same DiT, batch and work as `dddit bench`.

The model is `tools/dit_reference.py` (facebookresearch/DiT `models.py` without timm, same
parameter names and initialisation scheme: xavier-uniform linears, zeroed adaLN and final
layer, sin-cos positions), with attention through `F.scaled_dot_product_attention` as timm's
fused attention does (`--no-sdpa` for the explicit softmax).

What is timed, as in dddit (crates/dddit-eval/src/speed.rs):
  train  : one step of the official DiT `train.py` loop: a batch from a host pool moved to the
           device, random t and noise, the DiT loss (MSE on eps + the VB term of the learned
           variance), backward, AdamW (lr 1e-4, wd 0, betas (0.9, 0.999), eps 1e-8: PyTorch's
           defaults, as in DiT), the EMA update (0.9999) and `loss.item()`. `--adamw` picks
           PyTorch's AdamW implementation; the default, `auto`, is the fused CUDA kernel
           (`fused=True`) on CUDA and PyTorch's own default elsewhere (the CPU numbers are
           unchanged). The math is the same in every implementation.
  sample : a full DDIM trajectory (eta 0, clip x0, no guidance) of `--sample-steps` model calls.
  forward: one inference forward at t = 500.
Precision: f32; tf32 (allow_tf32 matmuls, f32 weights); bf16-autocast (PyTorch's mixed
precision, `torch.autocast(dtype=bfloat16)` around the forward: f32 master weights, f32 AdamW
state and EMA, bf16 matmuls and attention, the loss in f32 — the counterpart of dddit's
`bf16-mixed`); bf16-pure (model and optimiser state in bf16, as dddit's `bf16`).
`--compile` wraps the model in torch.compile (default mode). Presets: DiT-S, -B, -L, -XL with
patch 2, 4 or 8 (`--model DiT-XL/2`). On CUDA the JSON also holds the peak memory PyTorch
allocated in each phase (`max_memory_gib`).

  python bench/torch_dit.py --model DiT-S/4 --image-size 32 --channels 1 --classes 10 \
      --device cpu --train-batch 32 --sample-batch 32 --sample-steps 5 --json out.json
  python bench/torch_dit.py --matmul-peak --device cuda   # measured matmul TFLOP/s
"""

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import dit_reference as ref  # noqa: E402

PRESETS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def sdpa_forward(self, x):
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    x = F.scaled_dot_product_attention(q, k, v)
    return self.proj(x.transpose(1, 2).reshape(B, N, C))


def t_embed_forward(self, t):
    freq = self.timestep_embedding(t, self.frequency_embedding_size)
    return self.mlp(freq.to(self.mlp[0].weight.dtype))


def build(args, device):
    size, patch = args.model.split("-")[1].split("/")
    depth, hidden, heads = PRESETS[size]
    if args.sdpa:
        ref.Attention.forward = sdpa_forward
    # The sinusoidal frequencies are computed in f32; in bf16-pure they must enter a bf16 MLP.
    ref.TimestepEmbedder.forward = t_embed_forward
    m = ref.DiT(input_size=args.image_size, patch_size=int(patch), in_channels=args.channels, hidden_size=hidden,
                depth=depth, num_heads=heads, num_classes=args.classes, learn_sigma=True)
    return m.to(device)


class Diffusion:
    """Linear schedule, 1000 steps, learned-range variance, eps prediction (DiT defaults)."""

    def __init__(self, device, T=1000):
        b = np.linspace(0.0001, 0.02, T, dtype=np.float64)
        acp = np.cumprod(1 - b)
        acp_prev = np.append(1.0, acp[:-1])
        post_var = b * (1 - acp_prev) / (1 - acp)
        t = lambda a: torch.tensor(a, dtype=torch.float32, device=device)
        self.T = T
        self.betas = b
        self.acp = acp
        self.sqrt_acp, self.sqrt_1m_acp = t(np.sqrt(acp)), t(np.sqrt(1 - acp))
        self.sqrt_recip_acp, self.sqrt_recipm1_acp = t(np.sqrt(1 / acp)), t(np.sqrt(1 / acp - 1))
        self.post_logvar = t(np.log(np.append(post_var[1], post_var[1:])))
        self.log_betas = t(np.log(b))
        self.coef1 = t(b * np.sqrt(acp_prev) / (1 - acp))
        self.coef2 = t((1 - acp_prev) * np.sqrt(1 - b) / (1 - acp))

    @staticmethod
    def ex(a, t):
        return a[t][:, None, None, None]

    def loss(self, out, x0, xt, t, noise):
        C = x0.shape[1]
        eps, var = out[:, :C], out[:, C:]
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        # VB term with the mean detached (official `frozen_out`).
        frac = (var + 1) / 2
        logvar = frac * self.ex(self.log_betas, t) + (1 - frac) * self.ex(self.post_logvar, t)
        x0_pred = self.ex(self.sqrt_recip_acp, t) * xt - self.ex(self.sqrt_recipm1_acp, t) * eps.detach()
        mean = self.ex(self.coef1, t) * x0_pred + self.ex(self.coef2, t) * xt
        true_mean = self.ex(self.coef1, t) * x0 + self.ex(self.coef2, t) * xt
        true_logvar = self.ex(self.post_logvar, t)
        kl = 0.5 * (-1.0 + logvar - true_logvar + torch.exp(true_logvar - logvar) + (true_mean - mean) ** 2 * torch.exp(-logvar))
        kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
        centered = x0 - mean
        inv = torch.exp(-0.5 * logvar)
        cdf = lambda v: 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))
        cp, cm = cdf(inv * (centered + 1 / 255)), cdf(inv * (centered - 1 / 255))
        ll = torch.where(x0 < -0.999, torch.log(cp.clamp(min=1e-12)),
                         torch.where(x0 > 0.999, torch.log((1 - cm).clamp(min=1e-12)), torch.log((cp - cm).clamp(min=1e-12))))
        nll = -ll.mean(dim=(1, 2, 3)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        return (mse + vb).mean()

    def ddim_sample(self, model, x, y, steps):
        ts = list(range(0, self.T, self.T // steps))[::-1] if self.T % steps == 0 else [round(i * (self.T - 1) / (steps - 1)) for i in range(steps)][::-1]
        for i, t in enumerate(ts):
            prev = ts[i + 1] if i + 1 < len(ts) else None
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            out = model(x, tt.to(x.dtype), y)
            eps = out[:, : x.shape[1]].to(x.dtype)
            a, ap = float(self.acp[t]), (float(self.acp[prev]) if prev is not None else 1.0)
            x0 = ((x - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
            x = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
        return x


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, warmup, reps, device):
    for _ in range(warmup):
        fn()
    sync(device)
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "all_ms": ms}


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device, into):
    """Adds the peak memory PyTorch allocated since `reset_peak` (CUDA only)."""
    if device.type == "cuda":
        into["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30


def matmul_peak(device, dtype, n=8192, reps=20):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = timed(lambda: a @ b, 3, reps, device)
    return 2 * n ** 3 / (t["min_ms"] / 1e3) / 1e12


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="DiT-S/4")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16-autocast", "bf16-pure"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--no-sdpa", dest="sdpa", action="store_false")
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--sample-batch", type=int, default=32)
    p.add_argument("--sample-steps", type=int, default=50)
    p.add_argument("--forward-batch", type=int, default=0)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--sample-reps", type=int, default=3)
    p.add_argument("--adamw", default="auto", choices=["auto", "fused", "foreach", "for-loop"],
                   help="AdamW implementation (auto: fused on CUDA, PyTorch's default elsewhere)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--matmul-peak", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    result = {"model": args.model, "image_size": args.image_size, "channels": args.channels, "classes": args.classes,
              "device": str(device), "precision": args.precision, "compile": args.compile, "sdpa": args.sdpa,
              "torch": torch.__version__, "threads": torch.get_num_threads(), "warmup": args.warmup, "reps": args.reps}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    if args.matmul_peak:
        result["matmul_tflops"] = {"f32": matmul_peak(device, torch.float32)}
        torch.backends.cuda.matmul.allow_tf32 = True
        result["matmul_tflops"]["tf32"] = matmul_peak(device, torch.float32)
        torch.backends.cuda.matmul.allow_tf32 = False
        result["matmul_tflops"]["bf16"] = matmul_peak(device, torch.bfloat16)
        print(json.dumps(result["matmul_tflops"]))
    else:
        if args.precision == "tf32":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        pure = args.precision == "bf16-pure"
        autocast = args.precision == "bf16-autocast"
        dtype = torch.bfloat16 if pure else torch.float32
        model = build(args, device).to(dtype)
        ema = copy.deepcopy(model).requires_grad_(False)
        fwd = torch.compile(model) if args.compile else model
        diffusion = Diffusion(device)
        # A host pool of images, as a data loader hands them over.
        pool_x = torch.rand(256, args.channels, args.image_size, args.image_size) * 2 - 1
        pool_y = torch.randint(0, args.classes, (256,))
        if args.train_batch:
            B = args.train_batch
            impl = args.adamw if args.adamw != "auto" else ("fused" if device.type == "cuda" else "default")
            kw = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}.get(impl, {})
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, **kw)
            result["adamw"] = impl
            state = {"i": 0}

            def step():
                idx = torch.arange(state["i"], state["i"] + B) % 256
                state["i"] += B
                x0 = pool_x[idx].to(device, dtype)
                y = pool_y[idx].to(device)
                t = torch.randint(0, 1000, (B,), device=device)
                noise = torch.randn_like(x0)
                xt = diffusion.ex(diffusion.sqrt_acp, t).to(dtype) * x0 + diffusion.ex(diffusion.sqrt_1m_acp, t).to(dtype) * noise
                model.train()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    out = fwd(xt, t.to(dtype), y)
                loss = diffusion.loss(out.float(), x0.float(), xt.float(), t, noise.float())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(0.9999).add_(pm, alpha=1 - 0.9999)
                loss.item()

            reset_peak(device)
            if args.compile:
                t0 = time.perf_counter()
                step()
                sync(device)
                result["compile_seconds"] = time.perf_counter() - t0
            tr = timed(step, args.warmup, args.reps, device)
            tr["img_per_s"] = B * 1e3 / tr["median_ms"]
            result["train"] = {"batch": B, "time": tr}
            peak_memory(device, result["train"])
            print(f"train   batch {B}: {tr['median_ms']:.2f} ms/step, {tr['img_per_s']:.1f} img/s", flush=True)
        model.eval()
        if args.sample_batch:
            B = args.sample_batch
            y = torch.arange(B, device=device) % args.classes

            @torch.no_grad()
            def sample():
                torch.manual_seed(0)
                x = torch.randn(B, args.channels, args.image_size, args.image_size, device=device, dtype=dtype)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    x = diffusion.ddim_sample(fwd, x, y, args.sample_steps)
                x.flatten()[0].item()

            reset_peak(device)
            sa = timed(sample, 1, args.sample_reps, device)
            sa["img_per_s"] = B * 1e3 / sa["median_ms"]
            result["sample"] = {"batch": B, "steps": args.sample_steps, "time": sa}
            peak_memory(device, result["sample"])
            print(f"sample  batch {B}: {sa['median_ms']:.1f} ms/trajectory ({args.sample_steps} DDIM steps), {sa['img_per_s']:.2f} img/s", flush=True)
        if args.forward_batch:
            B = args.forward_batch
            x = torch.randn(B, args.channels, args.image_size, args.image_size, device=device, dtype=dtype)
            y = torch.zeros(B, dtype=torch.long, device=device)
            t = torch.full((B,), 500.0, device=device, dtype=dtype)

            @torch.no_grad()
            def forward():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    fwd(x, t, y).flatten()[0].item()

            fo = timed(forward, args.warmup, args.reps, device)
            fo["img_per_s"] = B * 1e3 / fo["median_ms"]
            result["forward"] = {"batch": B, "time": fo}
            print(f"forward batch {B}: {fo['median_ms']:.3f} ms", flush=True)
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
