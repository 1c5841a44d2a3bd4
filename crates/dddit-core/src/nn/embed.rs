//! Input embeddings of DiT: patches, fixed 2-D sin-cos positions, timesteps and labels.

use super::init::{eager, linear, LinearInit};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::Distribution;

/// Configuration of [`PatchEmbed`].
#[derive(Config, Debug)]
pub struct PatchEmbedConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Patch size p.
    pub patch_size: usize,
    /// Hidden size D.
    pub hidden_size: usize,
}

/// Patch embedding: a p×p convolution with stride p, initialised like a Linear (xavier-uniform
/// over the flattened kernel, zero bias), as in DiT.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// The convolution, PyTorch name `x_embedder.proj`.
    pub proj: Conv2d,
}

impl PatchEmbedConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device) -> PatchEmbed {
        let (c, p, d) = (self.in_channels, self.patch_size, self.hidden_size);
        let mut proj = Conv2dConfig::new([c, d], [p, p]).with_stride([p, p]).init(device);
        proj.weight =
            eager(Initializer::XavierUniform { gain: 1.0 }.init_with([d, c, p, p], Some(c * p * p), Some(d), device));
        proj.bias = Some(crate::nn::init::constant([d], 0.0, device));
        PatchEmbed { proj }
    }
}

impl PatchEmbed {
    /// `[batch, channels, height, width]` → `[batch, tokens, hidden]`, tokens in row-major order.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let x = self.proj.forward(x); // [batch, hidden, h, w]
        let [b, d, h, w] = x.dims();
        x.reshape([b, d, h * w]).swap_dims(1, 2) // [batch, tokens, hidden]
    }
}

/// The fixed 2-D sin-cos positional embedding of DiT (MAE's `get_2d_sincos_pos_embed`) for a
/// grid of `grid_h` rows and `grid_w` columns, as `[grid_h · grid_w, dim]` in row-major token order.
///
/// The first half of each row encodes the column, the second half the row, each as
/// `[sin(pos·ω), cos(pos·ω)]` with `ω_k = 10000^(−k/(dim/4))`: exactly the reference layout.
pub fn pos_embed_2d(dim: usize, grid_h: usize, grid_w: usize) -> Vec<f32> {
    assert!(dim.is_multiple_of(4), "sin-cos positions need dim divisible by 4");
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter).map(|k| 1.0 / 10000f64.powf(k as f64 / quarter as f64)).collect();
    let mut out = Vec::with_capacity(grid_h * grid_w * dim);
    for i in 0..grid_h {
        for j in 0..grid_w {
            for pos in [j as f64, i as f64] {
                out.extend(omega.iter().map(|w| (pos * w).sin() as f32));
                out.extend(omega.iter().map(|w| (pos * w).cos() as f32));
            }
        }
    }
    out
}

/// Sinusoidal timestep features `[cos(t·f), sin(t·f)]` with `f_k = exp(−ln(max_period)·k/half)`,
/// computed in f32 on the device exactly as DiT's `TimestepEmbedder.timestep_embedding`.
pub fn timestep_frequencies(t: Tensor<1>, dim: usize, max_period: f64) -> Tensor<2> {
    // t: [batch] (float, may be fractional)
    let device = t.device();
    let half = dim / 2;
    let k = Tensor::<1, Int>::arange(0..half as i64, &device).float(); // [half]
    let freqs = (k * (-max_period.ln()) / half as f64).exp();
    let args = t.unsqueeze_dim::<2>(1) * freqs.unsqueeze_dim::<2>(0); // [batch, half]
    let emb = Tensor::cat(vec![args.clone().cos(), args.sin()], 1);
    if dim % 2 == 1 {
        let b = emb.dims()[0];
        Tensor::cat(vec![emb, Tensor::zeros([b, 1], &device)], 1)
    } else {
        emb
    }
}

/// Configuration of [`TimestepEmbedder`].
#[derive(Config, Debug)]
pub struct TimestepEmbedderConfig {
    /// Hidden size D.
    pub hidden_size: usize,
    /// Size of the sinusoidal features.
    #[config(default = 256)]
    pub frequency_size: usize,
}

/// Timestep embedding: 256-d sinusoid → Linear → SiLU → Linear (PyTorch `t_embedder.mlp.{0,2}`).
#[derive(Module, Debug)]
pub struct TimestepEmbedder {
    /// First linear, PyTorch `t_embedder.mlp.0`.
    pub mlp_in: Linear,
    /// Second linear, PyTorch `t_embedder.mlp.2`.
    pub mlp_out: Linear,
    /// Size of the sinusoidal features.
    pub frequency_size: usize,
}

impl TimestepEmbedderConfig {
    /// Builds the embedder with DiT's N(0, 0.02) weights and zero biases.
    pub fn init(&self, device: &Device) -> TimestepEmbedder {
        TimestepEmbedder {
            mlp_in: linear(self.frequency_size, self.hidden_size, LinearInit::Normal(0.02), device),
            mlp_out: linear(self.hidden_size, self.hidden_size, LinearInit::Normal(0.02), device),
            frequency_size: self.frequency_size,
        }
    }
}

impl TimestepEmbedder {
    /// `[batch]` timesteps → `[batch, hidden]`.
    pub fn forward(&self, t: Tensor<1>) -> Tensor<2> {
        let f = timestep_frequencies(t, self.frequency_size, 10000.0); // [batch, freq]
        self.mlp_out.forward(silu(self.mlp_in.forward(f)))
    }
}

/// Configuration of [`LabelEmbedder`].
#[derive(Config, Debug)]
pub struct LabelEmbedderConfig {
    /// Number of real classes.
    pub num_classes: usize,
    /// Hidden size D.
    pub hidden_size: usize,
    /// Probability of replacing a label by the null label in training.
    pub dropout_prob: f64,
}

/// Class-label embedding table with an extra null row (index `num_classes`) for classifier-free
/// guidance, initialised N(0, 0.02).
#[derive(Module, Debug)]
pub struct LabelEmbedder {
    /// The table, PyTorch `y_embedder.embedding_table`.
    pub embedding_table: burn::nn::Embedding,
    /// Number of real classes; the null label is this index.
    pub num_classes: usize,
    /// Label dropout probability in training.
    pub dropout_prob: f64,
}

impl LabelEmbedderConfig {
    /// Builds the table.
    pub fn init(&self, device: &Device) -> LabelEmbedder {
        let rows = self.num_classes + usize::from(self.dropout_prob > 0.0);
        let weight = eager(Initializer::Normal { mean: 0.0, std: 0.02 }.init([rows, self.hidden_size], device));
        LabelEmbedder {
            embedding_table: burn::nn::Embedding { weight },
            num_classes: self.num_classes,
            dropout_prob: self.dropout_prob,
        }
    }
}

impl LabelEmbedder {
    /// Replaces labels by the null label: where `force_drop` is given, exactly where it is true;
    /// otherwise at random with the dropout probability (training only).
    pub fn token_drop(&self, labels: Tensor<1, Int>, force_drop: Option<Tensor<1, Bool>>) -> Tensor<1, Int> {
        let drop = match force_drop {
            Some(mask) => mask,
            None => {
                let [b] = labels.dims();
                Tensor::<1>::random([b], Distribution::Default, &labels.device()).lower_elem(self.dropout_prob)
            }
        };
        labels.mask_fill(drop, self.num_classes as i64)
    }

    /// `[batch]` labels → `[batch, hidden]`. `train` enables random label dropout.
    pub fn forward(&self, labels: Tensor<1, Int>, train: bool, force_drop: Option<Tensor<1, Bool>>) -> Tensor<2> {
        let use_dropout = self.dropout_prob > 0.0;
        let labels =
            if (train && use_dropout) || force_drop.is_some() { self.token_drop(labels, force_drop) } else { labels };
        self.embedding_table.weight.val().select(0, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pos_embed_layout() {
        // Token (row 0, col 1) of a 2x2 grid with dim 4: first half encodes the column (1),
        // second half the row (0): [sin 1, cos 1, sin 0, cos 0].
        let e = pos_embed_2d(4, 2, 2);
        let tok = &e[4..8];
        let want = [1f64.sin(), 1f64.cos(), 0.0, 1.0];
        for (a, b) in tok.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
    }
}
