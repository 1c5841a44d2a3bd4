//! Sentence embeddings from token states: mean over real tokens, then L2 normalisation (the
//! `Pooling(mean)` + `Normalize` modules of sentence-transformers).

use burn::prelude::*;

/// Smallest norm divided by, as `torch.nn.functional.normalize` (its `eps`).
pub const NORM_EPS: f32 = 1e-12;

/// Mean of `tokens` (`[batch, len, dim]`) over the positions where `mask` (`[batch, len]`) is
/// true → `[batch, dim]`; padded positions do not count. A row without any real token gives
/// zeros (sentence-transformers clamps the count to 1e-9 the same way).
pub fn mean_pool(tokens: Tensor<3>, mask: Tensor<2, Bool>) -> Tensor<2> {
    let [batch, len, _] = tokens.dims();
    let weights = mask.float().reshape([batch, len, 1]); // [batch, len, 1]
    let sum = (tokens * weights.clone()).sum_dim(1).squeeze_dim::<2>(1); // [batch, dim]
    let count = weights.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9); // [batch, 1]
    sum / count
}

/// Each row of `x` (`[batch, dim]`) divided by its Euclidean norm (at least [`NORM_EPS`]).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(NORM_EPS); // [batch, 1]
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::testing::device;

    fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
        let [_, d] = t.dims();
        t.into_data().try_to_vec::<f32>().unwrap().chunks(d).map(<[f32]>::to_vec).collect()
    }

    #[test]
    fn mean_pool_ignores_padding() {
        let dev = device();
        // Two rows of three tokens; row 0 has two real tokens, row 1 all three.
        let tokens = Tensor::<3>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, 1e6, -1e6, /* row 1 */ 1.0, 1.0, 2.0, 2.0, 6.0, 6.0],
                [2, 3, 2],
            ),
            &dev,
        );
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![true, true, false, true, true, true], [2, 3]), &dev);
        let pooled = rows(mean_pool(tokens.clone(), mask.clone()));
        assert_eq!(pooled, vec![vec![2.0, 3.0], vec![3.0, 3.0]]);
        // Whatever sits at the padded position changes nothing.
        let other = tokens.slice_assign([0..1, 2..3, 0..2], Tensor::<3>::from_floats([[[-7.0, 9.0]]], &dev));
        assert_eq!(rows(mean_pool(other, mask)), pooled);
    }

    #[test]
    fn l2_normalize_gives_unit_rows() {
        let dev = device();
        let x = Tensor::<2>::from_floats([[3.0, 4.0], [-1e-3, 2e-3], [0.0, 0.0]], &dev);
        let y = rows(l2_normalize(x));
        assert_eq!(y[0], vec![0.6, 0.8]);
        for r in &y[..2] {
            let n: f32 = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-6, "{r:?}");
        }
        // A zero row stays zero instead of becoming NaN.
        assert_eq!(y[2], vec![0.0, 0.0]);
    }
}
