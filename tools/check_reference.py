"""Sanity checks for the reference code (not needed to regenerate fixtures).

  python3 tools/check_reference.py

1. If timm is installed: swap timm's PatchEmbed/Attention/Mlp (what official
   models.py imports) into dit_reference.DiT with the same weights and compare.
2. Diffusion: closed-form identities for the golden case in diffusion_golden.safetensors.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference as R  # noqa: E402
import make_diffusion_fixtures as MD  # noqa: E402


def check_timm():
    try:
        from timm.models.vision_transformer import Attention, Mlp, PatchEmbed
    except Exception as e:  # pragma: no cover
        print("timm not available, skipping timm comparison:", e)
        return
    torch.manual_seed(0)
    m = R.DiT(input_size=8, patch_size=2, in_channels=3, hidden_size=64, depth=2, num_heads=4, num_classes=5)
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape) * 0.05)
    m.eval()
    sd = m.state_dict()
    x = torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 1, 500, 999])
    y = torch.tensor([0, 3, 4, 5])
    with torch.no_grad():
        ref = m(x, t, y)
        m.x_embedder = PatchEmbed(8, 2, 3, 64, bias=True)
        for b in m.blocks:
            b.attn = Attention(64, num_heads=4, qkv_bias=True)
            b.mlp = Mlp(in_features=64, hidden_features=256, act_layer=lambda: torch.nn.GELU(approximate="tanh"), drop=0)
        m.load_state_dict(sd, strict=True)
        out = m(x, t, y)
    err = (out - ref).abs().max().item()
    print(f"timm vs reference max abs err = {err:.3g}")
    assert err < 1e-5


def check_diffusion():
    from safetensors.numpy import load_file
    fix = os.environ.get("DDDIT_FIXTURES", os.path.join(MD.FIX))
    g = {k: torch.from_numpy(v) for k, v in load_file(os.path.join(fix, "diffusion_golden.safetensors")).items()}
    d = MD.Diffusion("10")
    t = g["t"].long()
    b = torch.from_numpy(d.betas)[t].view(-1, 1, 1, 1)
    ab = torch.from_numpy(d.alphas_cumprod)[t].view(-1, 1, 1, 1)
    eps = g["model_output"][:, :2]
    # DDPM mean for eps-parameterization: (x_t - beta/sqrt(1-abar) eps) / sqrt(alpha)
    mean_cf = (g["x_t"] - b / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - b)
    e1 = (mean_cf - g["p_mean"]).abs().max().item()
    # KL via torch.distributions (natural log) -> bits
    from torch.distributions import Normal, kl_divergence
    q = Normal(g["true_mean"], torch.exp(0.5 * g["true_log_variance"]))
    p = Normal(g["p_mean"], torch.exp(0.5 * g["p_log_variance"]))
    kl = kl_divergence(q, p).mean(dim=(1, 2, 3)) / np.log(2.0)
    e2 = (kl - g["vb_kl"]).abs().max().item()
    # DDIM eta=0 identity: x_prev = sqrt(abar_prev) x0 + sqrt(1-abar_prev) eps
    abp = torch.from_numpy(d.alphas_cumprod_prev)[t].view(-1, 1, 1, 1)
    ddim_cf = torch.sqrt(abp) * g["pred_xstart"] + torch.sqrt(1 - abp) * eps
    e3 = (ddim_cf - g["ddim_prev"]).abs().max().item()
    e4 = (g["loss"] - g["mse"] - g["vb"]).abs().max().item()
    print(f"diffusion checks: ddpm-mean {e1:.3g}  kl {e2:.3g}  ddim {e3:.3g}  loss {e4:.3g}")
    assert max(e1, e2, e3, e4) < 1e-10
    assert d.timestep_map.tolist() == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    assert MD.Diffusion("ddim10").timestep_map.tolist() == list(range(0, 1000, 100))


if __name__ == "__main__":
    check_timm()
    check_diffusion()
    print("ok")
