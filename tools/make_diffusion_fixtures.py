"""Generate Gaussian-diffusion golden values (facebookresearch/DiT diffusion/*).

Rerun from the repo root:  python3 tools/make_diffusion_fixtures.py
Output: crates/dddit-core/tests/fixtures/diffusion_golden.safetensors (all float64)

Follows create_diffusion(timestep_respacing, noise_schedule="linear", learn_sigma=True)
  -> SpacedDiffusion, LossType.MSE, ModelVarType.LEARNED_RANGE, ModelMeanType.EPSILON.
Everything here is computed in float64.  NOTE: the official `_extract_into_tensor`
casts the float64 numpy coefficient to float32 (`.float()`) before multiplying, so
official results on float32 tensors agree with these only to ~1e-6 relative.
"""

import math
import os

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.environ.get("DDDIT_FIXTURES", os.path.join(ROOT, "crates", "dddit-core", "tests", "fixtures"))
LN2 = np.log(2.0)


# ---------------------------------------------------------------- schedules
def linear_betas(T):
    scale = 1000 / T
    return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)


def space_timesteps(num_timesteps, section_counts):
    """Official respace.space_timesteps.  NB: Python round() is round-half-to-even."""
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for i in range(1, num_timesteps):
                if len(range(0, num_timesteps, i)) == desired:
                    return set(range(0, num_timesteps, i))
            raise ValueError("cannot create exactly that many steps with an integer stride")
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start, steps = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride  # accumulated by repeated addition, as official
        start += size
    return set(steps)


class Diffusion:
    """GaussianDiffusion coefficient tables (float64) + SpacedDiffusion respacing."""

    def __init__(self, respacing="", T=1000):
        base = linear_betas(T)
        if respacing in (None, ""):
            respacing = [T]
        use = space_timesteps(T, respacing)
        acp = np.cumprod(1.0 - base)
        last, betas, tmap = 1.0, [], []
        for i, a in enumerate(acp):
            if i in use:
                betas.append(1 - a / last)
                last = a
                tmap.append(i)
        self.timestep_map = np.array(tmap, dtype=np.int64)
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        self.num_timesteps = len(b)
        alphas = 1.0 - b
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # posterior_variance[0] == 0 -> log clipped by replacing entry 0 with entry 1
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = b * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)


def ex(arr, t, shape):
    """_extract_into_tensor, but kept in float64 (official casts to float32)."""
    r = torch.from_numpy(np.asarray(arr, dtype=np.float64))[t]
    while r.dim() < len(shape):
        r = r[..., None]
    return r + torch.zeros(shape, dtype=torch.float64)


def mean_flat(x):
    return x.mean(dim=list(range(1, x.dim())))


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    # Official uses this tanh approximation (NOT erf) in the decoder likelihood.
    return 0.5 * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


def q_sample(d, x0, t, noise):
    return ex(d.sqrt_alphas_cumprod, t, x0.shape) * x0 + ex(d.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise


def q_posterior(d, x0, xt, t):
    mean = ex(d.posterior_mean_coef1, t, xt.shape) * x0 + ex(d.posterior_mean_coef2, t, xt.shape) * xt
    return mean, ex(d.posterior_variance, t, xt.shape), ex(d.posterior_log_variance_clipped, t, xt.shape)


def p_mean_variance(d, model_output, x, t, clip_denoised=False):
    """LEARNED_RANGE + EPSILON.  model_output: [B, 2C, ...] (already computed at timestep_map[t])."""
    C = x.shape[1]
    eps, var_values = torch.split(model_output, C, dim=1)
    min_log = ex(d.posterior_log_variance_clipped, t, x.shape)
    max_log = ex(np.log(d.betas), t, x.shape)
    frac = (var_values + 1) / 2  # model value in [-1,1] maps to [min_var, max_var]
    log_var = frac * max_log + (1 - frac) * min_log
    pred_x0 = ex(d.sqrt_recip_alphas_cumprod, t, x.shape) * x - ex(d.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps
    if clip_denoised:
        pred_x0 = pred_x0.clamp(-1, 1)
    mean, _, _ = q_posterior(d, pred_x0, x, t)
    return {"mean": mean, "variance": torch.exp(log_var), "log_variance": log_var, "pred_xstart": pred_x0}


def main():
    os.makedirs(FIX, exist_ok=True)
    out = {}
    f64 = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))

    d1000 = Diffusion("")
    for k in ["betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
              "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
              "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1",
              "posterior_mean_coef2"]:
        out[k] = f64(getattr(d1000, k))
    assert np.array_equal(d1000.timestep_map, np.arange(1000))

    spaced = {}
    for name in ["10", "25", "250", "ddim10"]:
        d = Diffusion(name)
        spaced[name] = d
        out[f"timestep_map_{name}"] = f64(d.timestep_map)
        out[f"timestep_map_{name}_i64"] = torch.from_numpy(d.timestep_map.copy())
        out[f"betas_{name}"] = f64(d.betas)
        out[f"alphas_cumprod_{name}"] = f64(d.alphas_cumprod)
        out[f"posterior_log_variance_clipped_{name}"] = f64(d.posterior_log_variance_clipped)

    # ---------------- fixed small case on respaced-10 ----------------
    d = spaced["10"]
    g = torch.Generator().manual_seed(1234)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    # x_start in [-1, 1] with some entries exactly at +-1 so the decoder-NLL edge branches run
    x_start = (torch.rand(2, 2, 4, 4, generator=g, dtype=torch.float64) * 2.4 - 1.2).clamp(-1.0, 1.0)
    noise = rn(2, 2, 4, 4)
    t = torch.tensor([0, 7], dtype=torch.int64)  # indices into the respaced chain
    model_t = torch.from_numpy(d.timestep_map)[t]  # what the DiT actually receives: [0, 777]
    model_output = rn(2, 4, 4, 4)
    model_output[:, 2:] = model_output[:, 2:].clamp(-1.5, 1.5)  # var values (unconstrained in official)
    step_noise = rn(2, 2, 4, 4)

    x_t = q_sample(d, x_start, t, noise)
    pm = p_mean_variance(d, model_output, x_t, t, clip_denoised=False)

    # _vb_terms_bpd with frozen model output (training_losses, learned sigma)
    true_mean, _, true_logvar = q_posterior(d, x_start, x_t, t)
    kl = mean_flat(normal_kl(true_mean, true_logvar, pm["mean"], pm["log_variance"])) / LN2
    nll = -discretized_gaussian_log_likelihood(x_start, pm["mean"], 0.5 * pm["log_variance"])
    nll = mean_flat(nll) / LN2
    vb = torch.where(t == 0, nll, kl)
    eps = model_output[:, :2]
    mse = mean_flat((noise - eps) ** 2)
    loss = mse + vb

    # DDIM step (eta = 0, clip_denoised=False): eps re-derived from pred_xstart as official
    eps_re = (ex(d.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - pm["pred_xstart"]) / \
        ex(d.sqrt_recipm1_alphas_cumprod, t, x_t.shape)
    ab_prev = ex(d.alphas_cumprod_prev, t, x_t.shape)
    ddim_prev = pm["pred_xstart"] * torch.sqrt(ab_prev) + torch.sqrt(1 - ab_prev) * eps_re  # sigma = 0

    # DDPM p_sample with given noise; nonzero_mask zeroes the noise where t == 0
    nonzero = (t != 0).double().view(-1, 1, 1, 1)
    ddpm_prev = pm["mean"] + nonzero * torch.exp(0.5 * pm["log_variance"]) * step_noise

    out.update({
        "x_start": x_start, "noise": noise, "t": t.double(), "model_t": model_t.double(),
        "t_i64": t, "model_t_i64": model_t,
        "x_t": x_t, "model_output": model_output, "step_noise": step_noise,
        "p_mean": pm["mean"], "p_log_variance": pm["log_variance"], "pred_xstart": pm["pred_xstart"],
        "true_mean": true_mean, "true_log_variance": true_logvar,
        "vb_kl": kl, "vb_decoder_nll": nll, "vb": vb, "mse": mse, "loss": loss,
        "ddim_prev": ddim_prev, "ddpm_prev": ddpm_prev,
    })

    path = os.path.join(FIX, "diffusion_golden.safetensors")
    meta = {"producer": "tools/make_diffusion_fixtures.py", "torch": torch.__version__, "numpy": np.__version__}
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for k, v in out.items():
        print(f"   {k:40s} {str(list(v.shape)):14s} {str(v.dtype):14s} max|v|={v.abs().max().item():.6g}")
    print("timestep_map_10  =", d.timestep_map.tolist())
    print("timestep_map_25  =", spaced["25"].timestep_map.tolist())
    print("timestep_map_ddim10 =", spaced["ddim10"].timestep_map.tolist())
    print("case vb =", vb.tolist(), " mse =", mse.tolist(), " loss =", loss.tolist())
    print(f"torch {torch.__version__} numpy {np.__version__}")


if __name__ == "__main__":
    main()
