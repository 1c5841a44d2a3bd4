//! `dense`: the static DiT baseline — every block runs for every sample.

use crate::registry::{ConfigError, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::{Router, RouterInput, RouterOutput, RoutingStats};
use serde::Deserialize;

/// Config of the `dense` baseline (no keys).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {}

/// The reference DiT block stack.
#[derive(Module, Debug)]
pub struct DenseStack {
    /// The blocks.
    pub blocks: Vec<DiTBlock>,
}

impl RouterConfig for DenseConfig {
    type Stack = DenseStack;
    const NAME: &'static str = "dense";
    const DESCRIPTION: &'static str = "static DiT baseline: every block runs for every sample";

    fn keys() -> &'static [KeyDoc] {
        &[]
    }

    fn validate(&self, _model: &DiTConfig) -> Vec<ConfigError> {
        vec![]
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> DenseStack {
        DenseStack {
            blocks: (0..m.depth)
                .map(|_| DiTBlockConfig::new(m.hidden_size, m.num_heads, m.mlp_hidden()).init(device))
                .collect(),
        }
    }
}

impl Router for DenseStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [b, n, _] = h.dims();
        for block in &self.blocks {
            h = block.forward(h, input.c.clone());
        }
        let per = self.full_flops(n);
        RouterOutput::new(h, vec![per; b], RoutingStats::layers(1.0))
    }

    fn router_params(&self) -> Vec<ParamId> {
        vec![]
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.blocks.iter().map(|b| b.flops(tokens)).sum()
    }
}

crate::register_router!(DenseConfig);
