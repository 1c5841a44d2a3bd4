//! A DiT whose blocks are a routed stack.

use burn::prelude::*;
use dddit_core::dit::{DiT, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::{Mode, Router, RouterInput, RouterLosses, RoutingStats};

/// The DiT stem (patch, position, timestep and label embeddings) and final layer of the
/// reference model around a [`Router`] (the routed layers).
#[derive(Module, Debug)]
pub struct RoutedDiT<S: Module + Router> {
    /// Embeddings and final layer (its own `blocks` is empty: the stack replaces it).
    pub backbone: DiT,
    /// The routed layers.
    pub stack: S,
    /// Auxiliary heads on the routing input `c` (seed §5.2): image complexity (object count / 10,
    /// edge density) and generation difficulty (t / T). Computed only when a forward is given
    /// targets, so inference never pays for them.
    pub aux_heads: burn::nn::Linear,
    /// Caption projection `text_dim → D` added to `c` when the model is caption-conditioned
    /// (`text_dim > 0`). A zero text row (no caption) maps to the bias: the learned null caption.
    pub caption: Option<burn::nn::Linear>,
}

/// Result of a routed forward pass.
#[derive(Clone, Debug)]
pub struct RoutedForward {
    /// Model output, `[batch, out_channels, H, W]`.
    pub out: Tensor<4>,
    /// MACs each sample spent, stem and final layer included.
    pub flops: Vec<Flops>,
    /// Auxiliary losses (the router's, and the complexity heads' when given targets).
    pub losses: RouterLosses,
    /// Routing statistics.
    pub stats: RoutingStats,
}

/// Options of a routed forward pass.
#[derive(Clone, Debug)]
pub struct ForwardOptions<'a> {
    /// Timesteps on the host (one per sample); they must equal `t`.
    pub timesteps: &'a [f64],
    /// Pooled text embedding, `[batch, text_dim]`; a zero row means "no caption". A
    /// caption-conditioned model adds its projection to `c`; text-aware routers read it.
    pub text: Option<&'a Tensor<2>>,
    /// Training (soft decisions, label dropout) or inference.
    pub mode: Mode,
    /// Labels to replace by the null label (classifier-free guidance).
    pub force_drop: Option<Tensor<1, Bool>>,
    /// Targets of the auxiliary heads, `[batch, 2]`: object count and edge density of each clean
    /// image. When given, the forward returns an `aux` loss (MSE of complexity and difficulty).
    pub complexity: Option<Tensor<2>>,
    /// Run the complete model: gated routers switch everything on (DyDiT's complete-model
    /// loss trains the full network alongside the routed one). Routers without gates ignore it.
    pub full: bool,
}

impl<'a> ForwardOptions<'a> {
    /// The plain pass of `mode` at host `timesteps`: no caption, no forced label dropout, no
    /// auxiliary targets, routed (not complete) model. Set the other fields on the result.
    pub fn new(timesteps: &'a [f64], mode: Mode) -> Self {
        ForwardOptions { timesteps, text: None, mode, force_drop: None, complexity: None, full: false }
    }
}

impl<S: Router> RoutedDiT<S> {
    /// Wraps `stack` with a freshly initialised stem for `config`.
    pub fn new(config: &DiTConfig, stack: S, device: &Device) -> Self {
        let mut stem = config.clone();
        stem.depth = 0;
        let mut backbone = stem.init(device);
        backbone.config = config.clone();
        let aux_heads = dddit_core::nn::linear(config.hidden_size, 3, dddit_core::nn::LinearInit::Normal(0.02), device);
        let caption = (config.text_dim > 0).then(|| {
            dddit_core::nn::linear(
                config.text_dim,
                config.hidden_size,
                dddit_core::nn::LinearInit::Normal(0.02),
                device,
            )
        });
        RoutedDiT { backbone, stack, aux_heads, caption }
    }

    /// The same model with its routed layers replaced by `f(router)`: stem, final layer, heads
    /// and whatever `f` moves over keep their weights. Compares a router against dense on the
    /// same weights: `model.with_router(|s| DenseStack { blocks: s.blocks })`.
    pub fn with_router<T: Router>(self, f: impl FnOnce(S) -> T) -> RoutedDiT<T> {
        RoutedDiT { backbone: self.backbone, stack: f(self.stack), aux_heads: self.aux_heads, caption: self.caption }
    }

    /// The DiT hyper-parameters.
    pub fn config(&self) -> &DiTConfig {
        &self.backbone.config
    }

    /// Forward pass with routing.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>, opts: &ForwardOptions) -> RoutedForward {
        let train = opts.mode == Mode::Train;
        let mut e = self.backbone.embed(x.clone(), t, y, train, opts.force_drop.clone());
        if let Some(proj) = &self.caption {
            let b = x.dims()[0];
            // [batch, text_dim]; without text every sample is uncaptioned (the null caption).
            let text = opts.text.cloned().unwrap_or_else(|| Tensor::zeros([b, self.config().text_dim], &x.device()));
            e.c = e.c + proj.forward(text); // [batch, D]
        }
        let input = RouterInput {
            c: &e.c,
            t_emb: &e.t_emb,
            timesteps: opts.timesteps,
            text: opts.text,
            x_t: &x,
            mode: opts.mode,
            full: opts.full,
        };
        let s = self.stack.forward(e.tokens, &input);
        let mut stem = self.config().stem_flops();
        let mut losses = s.losses;
        // A stack reports its `flops_ratio` relative to its own complete stack; the evaluation's
        // GFLOPs ratio is the whole model's against the dense DiT (stem and final layer, which no
        // router skips, included). Rescale, so that a budget λ trained for is the ratio reported
        // at inference: (stem + r·stack_full) / dense.
        if let Some(r) = losses.flops_ratio.take() {
            let full = self.stack.full_flops(self.config().num_tokens()).total() as f64;
            let dense = self.config().dense_flops().total().max(1) as f64;
            losses.flops_ratio = Some((r * full + stem.total() as f64) / dense);
        }
        if let Some(target) = &opts.complexity {
            let b = target.dims()[0];
            let dev = target.device();
            let difficulty: Vec<f32> = opts.timesteps.iter().map(|&t| (t / 1000.0) as f32).collect();
            let difficulty = Tensor::<2>::from_data(TensorData::new(difficulty, [b, 1]), &dev);
            let scale = Tensor::<2>::from_floats([[0.1, 1.0]], &dev);
            let want = Tensor::cat(vec![target.clone() * scale, difficulty], 1); // [batch, 3]
            let got = self.aux_heads.forward(e.c.clone()); // [batch, 3]
            losses.complexity = Some((got - want).square().mean().reshape([1]));
            stem.router += (self.config().hidden_size * 3) as u64;
        }
        RoutedForward {
            out: self.backbone.head(s.h, e.c),
            flops: s.flops.into_iter().map(|f| f + stem).collect(),
            losses,
            stats: s.stats,
        }
    }

    /// MACs per sample with everything on.
    pub fn full_flops(&self) -> Flops {
        self.config().stem_flops() + self.stack.full_flops(self.config().num_tokens())
    }
}
