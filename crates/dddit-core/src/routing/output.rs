//! What a router reports besides its output: typed auxiliary losses and routing statistics.

use burn::prelude::*;

/// The auxiliary losses of one routed forward pass, each a scalar `[1]`, `None` where the
/// router has no such loss. Typed so that a router cannot misspell one and a trainer cannot
/// miss one; the trainer weighs each by its `[train.loss]` key.
#[derive(Clone, Debug, Default)]
pub struct RouterLosses {
    /// Switch / DiT-MoE load balance `E · Σ_i P_i · f_i` (1 when balanced), mean over layers.
    /// Weighed by `train.loss.balance`.
    pub balance: Option<Tensor<1>>,
    /// Mean entropy of the routing distribution, mean over layers (seed §5.1). Weighed by
    /// `train.loss.entropy`: positive makes routing confident, negative balanced.
    pub entropy: Option<Tensor<1>>,
    /// Differentiable share of the compute spent (`RoutedDiT` rescales the router's share of its
    /// complete layers to the whole model's against dense). The FLOPs loss pulls it towards
    /// `train.loss.flops_target`.
    pub flops_ratio: Option<Tensor<1>>,
    /// MSE of the auxiliary complexity and difficulty heads (seed §5.2), set by `RoutedDiT`
    /// when training with `train.loss.aux`.
    pub complexity: Option<Tensor<1>>,
}

impl RouterLosses {
    /// The losses present, in a fixed order, under the names the metrics log uses (`balance`,
    /// `entropy`, `flops_ratio`, `aux`).
    pub fn named(&self) -> Vec<(&'static str, Tensor<1>)> {
        [
            ("balance", &self.balance),
            ("entropy", &self.entropy),
            ("flops_ratio", &self.flops_ratio),
            ("aux", &self.complexity),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

/// The mean of per-layer losses (summed in order, then divided), `None` for no layer.
pub fn mean(per_layer: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    let n = per_layer.len();
    per_layer.into_iter().reduce(|a, b| a + b).map(|s| s / n as f64)
}

/// What ran in one forward pass, as fractions of the complete model (1 = everything),
/// averaged over samples and layers; `None` where the router has no such choice. Serialised as
/// a map of the fractions present (`{"layers": 1.0, "tokens": 0.62}`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoutingStats {
    /// (sample, block) pairs that ran.
    pub layers: f64,
    /// Experts per routing unit (a soft mixture runs all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<f64>,
    /// Tokens that ran the MLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<f64>,
    /// Attention heads that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<f64>,
    /// MLP channels that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_channels: Option<f64>,
    /// Samples with a caption (text-aware routers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<f64>,
    /// Cost of the chosen block variants against the heavy one (timestep gates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_cost: Option<f64>,
}

impl Default for RoutingStats {
    /// Everything ran.
    fn default() -> Self {
        RoutingStats::layers(1.0)
    }
}

impl RoutingStats {
    /// Only the layer fraction.
    pub fn layers(fraction: f64) -> Self {
        RoutingStats {
            layers: fraction,
            experts: None,
            tokens: None,
            heads: None,
            mlp_channels: None,
            text: None,
            block_cost: None,
        }
    }

    /// The statistics present, by the names results files use.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        let optional = [
            ("experts", self.experts),
            ("tokens", self.tokens),
            ("heads", self.heads),
            ("mlp_channels", self.mlp_channels),
            ("text", self.text),
            ("block_cost", self.block_cost),
        ];
        std::iter::once(("layers", self.layers))
            .chain(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::device;

    #[test]
    fn mean_sums_then_divides() {
        let dev = device();
        let got = mean(vec![Tensor::from_floats([1.0], &dev), Tensor::from_floats([2.0], &dev)]).unwrap();
        assert_eq!(got.into_scalar::<f32>(), 1.5);
        assert!(mean(vec![]).is_none());
    }

    #[test]
    fn names_follow_a_fixed_order_and_skip_absent_losses() {
        let dev = device();
        let one = || Some(Tensor::<1>::from_floats([1.0], &dev));
        let l = RouterLosses { entropy: one(), complexity: one(), ..Default::default() };
        let names: Vec<_> = l.named().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["entropy", "aux"]);
        let s = RoutingStats { tokens: Some(0.5), ..RoutingStats::layers(1.0) };
        assert_eq!(s.entries(), [("layers", 1.0), ("tokens", 0.5)]);
    }
}
