"""Generate DiT golden fixtures for crates/dddit-core/tests.

Rerun from the repo root:  python3 tools/make_dit_fixtures.py
Outputs (in crates/dddit-core/tests/fixtures/):
  dit_tiny.safetensors, dit_tiny.pt, dit_tiny_ckpt.pt, dit_tiny_io.safetensors,
  dit_tiny2.safetensors, dit_tiny2_io.safetensors
"""

import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import DiT  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.environ.get("DDDIT_FIXTURES", os.path.join(ROOT, "crates", "dddit-core", "tests", "fixtures"))

torch.set_num_threads(1)  # deterministic-ish CPU reductions


def randomize(model):
    """After official init, overwrite every trainable parameter with randn*0.05
    (in named_parameters order).  pos_embed (requires_grad=False) stays sin-cos."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape) * 0.05)


def sd_of(model):
    return {k: v.detach().clone().contiguous().float() for k, v in model.state_dict().items()}


def dump(name, tensors):
    path = os.path.join(FIX, name)
    meta = {"producer": "tools/make_dit_fixtures.py", "torch": torch.__version__, "numpy": np.__version__}
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for k, v in tensors.items():
        print(f"   {k:14s} {str(list(v.shape)):16s} {str(v.dtype):14s} max|v|={v.abs().max().item():.6g}")


def main():
    os.makedirs(FIX, exist_ok=True)

    # ---------------- config 1: learn_sigma, 3 channels ----------------
    torch.manual_seed(0)
    model = DiT(input_size=8, patch_size=2, in_channels=3, hidden_size=64, depth=2, num_heads=4,
                mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=5, learn_sigma=True)
    randomize(model)
    model.eval()
    sd = sd_of(model)
    dump("dit_tiny.safetensors", sd)
    # Plain model.state_dict() (an OrderedDict carrying a `_metadata` attribute), exactly how
    # official pretrained DiT-XL-2-*.pt files are pickled.
    torch.save(model.state_dict(), os.path.join(FIX, "dit_tiny.pt"))
    # Like official train.py checkpoints {"model", "ema", "opt", "args"}; opt omitted.  Two separate
    # state_dict() OrderedDicts whose tensors share storages (official: EMA is a deep copy, so
    # separate storages; sharing here also exercises a loader's storage de-duplication).
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "args": None},
               os.path.join(FIX, "dit_tiny_ckpt.pt"))
    for f, pick in [("dit_tiny.pt", lambda o: o), ("dit_tiny_ckpt.pt", lambda o: o["ema"])]:
        loaded = pick(torch.load(os.path.join(FIX, f), weights_only=True))
        assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], sd[k]) for k in sd)

    x = torch.randn(4, 3, 8, 8)
    t = torch.tensor([0.0, 1.0, 500.0, 999.0])
    y = torch.tensor([0.0, 3.0, 4.0, 5.0])  # 5 == num_classes == null (CFG) class
    with torch.no_grad():
        inter = model.forward_intermediates(x, t, y.long())
        out = model(x, t, y.long())
        assert torch.equal(out, inter["out"])
        cfg_x = torch.cat([x[:2], x[:2]], 0)
        cfg_t = torch.cat([t[:2], t[:2]], 0)
        cfg_y = torch.tensor([0.0, 3.0, 5.0, 5.0])
        cfg_out = model.forward_with_cfg(cfg_x, cfg_t, cfg_y.long(), 4.0)
        plain = model(cfg_x, cfg_t, cfg_y.long())
        assert torch.equal(cfg_out[:2, :3], cfg_out[2:, :3])  # guided eps duplicated to both halves
        assert torch.equal(cfg_out[:, 3:], plain[:, 3:])  # var channels untouched
        print("cfg: max|guided eps - cond eps| =", (cfg_out[:2, :3] - plain[:2, :3]).abs().max().item())
    io = {
        "x": x, "t": t, "y": y,
        "t_freq": inter["t_freq"], "t_emb": inter["t_emb"], "y_emb": inter["y_emb"],
        "x_embed": inter["x_embed"], "pos_embed": model.pos_embed.detach()[0],
        "block0_out": inter["block0_out"], "final_tokens": inter["final_tokens"], "out": out,
        "cfg_x": cfg_x, "cfg_t": cfg_t, "cfg_y": cfg_y, "cfg_scale": torch.tensor([4.0]),
        "cfg_out": cfg_out,
    }
    dump("dit_tiny_io.safetensors", io)

    # ---------------- config 2: no learn_sigma, 1 channel, patch 4 ----------------
    torch.manual_seed(0)
    model2 = DiT(input_size=8, patch_size=4, in_channels=1, hidden_size=32, depth=1, num_heads=2,
                 mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=3, learn_sigma=False)
    randomize(model2)
    model2.eval()
    dump("dit_tiny2.safetensors", sd_of(model2))
    x2 = torch.randn(3, 1, 8, 8)
    t2 = torch.tensor([0.0, 250.0, 999.0])
    y2 = torch.tensor([0.0, 2.0, 3.0])  # 3 == null class
    with torch.no_grad():
        out2 = model2(x2, t2, y2.long())
    dump("dit_tiny2_io.safetensors", {"x": x2, "t": t2, "y": y2, "out": out2})

    print(f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
