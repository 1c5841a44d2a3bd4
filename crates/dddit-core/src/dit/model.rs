//! The DiT model: embeddings, a stack of adaLN-Zero blocks, the final layer and unpatchify.

use super::block::{DiTBlock, DiTBlockConfig, FinalLayer, FinalLayerConfig};
use super::config::{DiTConfig, TIMESTEP_FREQ_DIM};
use crate::flops::Flops;
use crate::nn::{
    pos_embed_2d, LabelEmbedder, LabelEmbedderConfig, PatchEmbed, PatchEmbedConfig, TimestepEmbedder,
    TimestepEmbedderConfig,
};
use burn::prelude::*;

/// A Diffusion Transformer (Peebles & Xie, 2023), parameter-compatible with the reference
/// `models.py`: see [`crate::dit::load`] for loading its checkpoints.
#[derive(Module, Debug)]
pub struct DiT {
    /// Patch embedding (`x_embedder`).
    pub x_embedder: PatchEmbed,
    /// Timestep embedding (`t_embedder`).
    pub t_embedder: TimestepEmbedder,
    /// Label embedding with the null row (`y_embedder`).
    pub y_embedder: LabelEmbedder,
    /// The blocks (`blocks.N`).
    pub blocks: Vec<DiTBlock>,
    /// The final layer (`final_layer`).
    pub final_layer: FinalLayer,
    /// The hyper-parameters this model was built with.
    #[module(skip)]
    pub config: DiTConfig,
}

/// What the stem of a DiT produces before the blocks.
#[derive(Clone, Debug)]
pub struct Embedded {
    /// Patch tokens with positions added, `[batch, tokens, hidden]`.
    pub tokens: Tensor<3>,
    /// Timestep embedding, `[batch, hidden]`.
    pub t_emb: Tensor<2>,
    /// Conditioning `c = t_emb + y_emb`, `[batch, hidden]`.
    pub c: Tensor<2>,
}

impl DiTConfig {
    /// Builds a DiT with the reference initialisation.
    pub fn init(&self, device: &Device) -> DiT {
        let d = self.hidden_size;
        DiT {
            x_embedder: PatchEmbedConfig::new(self.in_channels, self.patch_size, d).init(device),
            t_embedder: TimestepEmbedderConfig::new(d).with_frequency_size(TIMESTEP_FREQ_DIM).init(device),
            y_embedder: LabelEmbedderConfig::new(self.num_classes, d, self.class_dropout_prob).init(device),
            blocks: (0..self.depth)
                .map(|_| DiTBlockConfig::new(d, self.num_heads, self.mlp_hidden()).init(device))
                .collect(),
            final_layer: FinalLayerConfig::new(d, self.patch_size, self.out_channels()).init(device),
            config: self.clone(),
        }
    }
}

impl DiT {
    /// The fixed sin-cos positional embedding, `[tokens, hidden]`.
    ///
    /// Computed on the host and uploaded once per (size, device), then reused: every forward
    /// used to pay for the sines and an upload that waits for the device (at batch 1 on a GPU,
    /// a stall per forward), and a CUDA-graph capture must contain no upload.
    pub fn pos_embed(&self, device: &Device) -> Tensor<2> {
        // The device's Debug form tells an autodiff device from its raw one (== does not).
        type Key = (usize, usize, usize, String);
        static CACHE: std::sync::Mutex<Vec<(Key, Tensor<2>)>> = std::sync::Mutex::new(Vec::new());
        let c = &self.config;
        let (h, w) = (c.grid_height(), c.grid_width());
        let key = (c.hidden_size, h, w, format!("{device:?}"));
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = cache.iter().find(|(k, _)| *k == key) {
            return t.clone();
        }
        let data = TensorData::new(pos_embed_2d(c.hidden_size, h, w), [h * w, c.hidden_size]);
        let t = Tensor::from_data(data, device);
        cache.push((key, t.clone()));
        t
    }

    /// Stem: patches + positions, timestep and label embeddings.
    ///
    /// `x`: `[batch, channels, height, width]`; `t`: `[batch]` (float timesteps); `y`: `[batch]`
    /// labels (the null label is `num_classes`). `train` enables random label dropout;
    /// `force_drop` replaces exactly the marked labels by the null label.
    pub fn embed(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        y: Tensor<1, Int>,
        train: bool,
        force_drop: Option<Tensor<1, Bool>>,
    ) -> Embedded {
        let device = x.device();
        let tokens = self.x_embedder.forward(x) + self.pos_embed(&device).unsqueeze::<3>(); // [batch, tokens, hidden]
        let t_emb = self.t_embedder.forward(t); // [batch, hidden]
        let y_emb = self.y_embedder.forward(y, train, force_drop); // [batch, hidden]
        let c = t_emb.clone() + y_emb;
        Embedded { tokens, t_emb, c }
    }

    /// Final layer and unpatchify: `[batch, tokens, hidden]` → `[batch, out_channels, height, width]`.
    pub fn head(&self, tokens: Tensor<3>, c: Tensor<2>) -> Tensor<4> {
        let x = self.final_layer.forward(tokens, c); // [batch, tokens, p²·out]
        self.unpatchify(x)
    }

    /// `[batch, tokens, p²·C]` → `[batch, C, H, W]` (the reference `unpatchify`).
    pub fn unpatchify(&self, x: Tensor<3>) -> Tensor<4> {
        let c = &self.config;
        let (p, oc, h, w) = (c.patch_size, c.out_channels(), c.grid_height(), c.grid_width());
        let b = x.dims()[0];
        x.reshape([b, h, w, p, p, oc])
            .permute([0, 5, 1, 3, 2, 4]) // [batch, C, h, p, w, p]
            .reshape([b, oc, h * p, w * p])
    }

    /// Dense forward without label dropout (evaluation and sampling).
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>) -> Tensor<4> {
        self.forward_with(x, t, y, false, None)
    }

    /// Dense forward with explicit control over label dropout.
    pub fn forward_with(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        y: Tensor<1, Int>,
        train: bool,
        force_drop: Option<Tensor<1, Bool>>,
    ) -> Tensor<4> {
        let e = self.embed(x, t, y, train, force_drop);
        let mut h = e.tokens;
        for block in &self.blocks {
            h = block.forward(h, e.c.clone());
        }
        self.head(h, e.c)
    }

    /// Classifier-free guidance as the reference `forward_with_cfg`: the batch holds the
    /// conditional half followed by the unconditional half (null labels); the first half of `x`
    /// is used for both, and guidance `uncond + s·(cond − uncond)` is applied to the ε channels
    /// (the first `in_channels`; the reference hard-codes 3). The variance channels pass through.
    pub fn forward_with_cfg(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>, scale: f64) -> Tensor<4> {
        let [b, ..] = x.dims();
        let half = x.slice_dim(0, 0..b / 2);
        let combined = Tensor::cat(vec![half.clone(), half], 0);
        let out = self.forward(combined, t, y);
        apply_cfg(out, self.config.in_channels, scale)
    }

    /// Dense cost of one forward pass for one sample.
    pub fn flops(&self) -> Flops {
        self.config.dense_flops()
    }
}

/// Combines a `[2B, C_out, H, W]` output of conditional then unconditional rows into guided ε on
/// the first `eps_channels` channels, duplicated to both halves like the reference.
pub fn apply_cfg(out: Tensor<4>, eps_channels: usize, scale: f64) -> Tensor<4> {
    let [b2, c, ..] = out.dims();
    let b = b2 / 2;
    let eps = out.clone().slice_dim(1, 0..eps_channels);
    let cond = eps.clone().slice_dim(0, 0..b);
    let uncond = eps.slice_dim(0, b..b2);
    let guided = uncond.clone() + (cond - uncond) * scale;
    let eps = Tensor::cat(vec![guided.clone(), guided], 0);
    if eps_channels == c {
        eps
    } else {
        Tensor::cat(vec![eps, out.slice_dim(1, eps_channels..c)], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{device, max_abs_diff};
    use burn::tensor::Distribution;

    fn tiny() -> DiTConfig {
        let mut c = DiTConfig::preset("DiT-N/2", 8, 3).unwrap();
        c.num_classes = 5;
        c
    }

    #[test]
    fn shapes_and_zero_output_at_init() {
        let dev = device();
        let model = tiny().init(&dev);
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<1>::from_floats([3.0, 900.0], &dev);
        let y = Tensor::<1, Int>::from_ints([1, 5], &dev);
        let out = model.forward(x, t, y);
        assert_eq!(out.dims(), [2, 6, 8, 8]);
        // The final layer is zero-initialised, so the prediction starts at exactly zero.
        assert_eq!(out.abs().max().into_scalar::<f32>(), 0.0);
    }

    #[test]
    fn every_block_is_identity_at_init() {
        let dev = device();
        let model = tiny().init(&dev);
        let x = Tensor::<3>::random([3, 16, 64], Distribution::Normal(0.0, 1.0), &dev);
        let c = Tensor::<2>::random([3, 64], Distribution::Normal(0.0, 1.0), &dev);
        for block in &model.blocks {
            let y = block.forward(x.clone(), c.clone());
            assert_eq!(max_abs_diff(x.clone(), y), 0.0);
        }
    }

    #[test]
    fn unpatchify_inverts_patchify_order() {
        // Token k = i·w + j holds patch (i, j) with channel-last pixels (p, q, c).
        let dev = device();
        let mut cfg = tiny();
        cfg.learn_sigma = false;
        cfg.in_channels = 1;
        cfg.input_width = 4;
        cfg.input_height = 2;
        let model = cfg.init(&dev);
        // 1 x 2 grid of 2x2 patches, one channel: token 0 = [0,1,2,3], token 1 = [4,5,6,7].
        let x = Tensor::<1, Int>::arange(0..8, &dev).float().reshape([1, 2, 4]);
        let img = model.unpatchify(x);
        let got: Vec<f32> = img.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, vec![0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
    }

    #[test]
    fn cfg_scale_one_is_conditional() {
        let dev = device();
        let out = Tensor::<4>::random([4, 6, 2, 2], Distribution::Normal(0.0, 1.0), &dev);
        let g = apply_cfg(out.clone(), 3, 1.0);
        let cond = out.clone().slice_dim(0, 0..2).slice_dim(1, 0..3);
        assert!(max_abs_diff(g.clone().slice_dim(0, 0..2).slice_dim(1, 0..3), cond.clone()) < 1e-6);
        assert!(max_abs_diff(g.clone().slice_dim(0, 2..4).slice_dim(1, 0..3), cond) < 1e-6);
        assert!(max_abs_diff(g.slice_dim(1, 3..6), out.slice_dim(1, 3..6)) < 1e-6);
    }
}
