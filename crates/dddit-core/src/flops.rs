//! Analytic FLOPs in the DiT convention.
//!
//! The DiT paper (Peebles & Xie, Table 4; facebookresearch/DiT issue #14) counts the forward pass
//! only, with one multiply-add as **one** FLOP (i.e. MACs), attention matmuls included. Every
//! figure dddit prints uses that convention unless it says otherwise; [`Convention::TwoPerMac`]
//! gives the "2 FLOPs per multiply-add" figure other repositories (DiT-MoE, calflops) report.
//!
//! Counts are exact integers per component, so a routed forward can add up precisely the cost of
//! the paths that ran.

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Mul};

/// Which convention a FLOPs figure is printed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Convention {
    /// One multiply-add = one FLOP (the DiT paper's convention, the default).
    #[default]
    MacIsOne,
    /// One multiply-add = two FLOPs.
    TwoPerMac,
}

impl Convention {
    /// Multiplier applied to a MAC count.
    pub fn factor(self) -> u64 {
        match self {
            Convention::MacIsOne => 1,
            Convention::TwoPerMac => 2,
        }
    }
}

/// Multiply-add counts of a forward pass, by component.
///
/// All fields are MACs (the DiT convention); [`Flops::total`] adds them up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flops {
    /// Patch embedding (conv p×p stride p).
    pub patch_embed: u64,
    /// Timestep MLP (256 → D → D).
    pub timestep_embed: u64,
    /// Condition projections other than the timestep MLP (e.g. caption projection).
    pub cond_embed: u64,
    /// adaLN modulation linears of the blocks (D → 6D).
    pub adaln: u64,
    /// Attention q, k, v projections.
    pub attn_qkv: u64,
    /// Attention score and value matmuls (Q·Kᵀ and A·V).
    pub attn_core: u64,
    /// Attention output projection.
    pub attn_out: u64,
    /// Block MLPs.
    pub mlp: u64,
    /// Final adaLN layer and output linear.
    pub final_layer: u64,
    /// The routers' own networks.
    pub router: u64,
}

impl Flops {
    /// Sum of all components, in MACs.
    pub fn total(&self) -> u64 {
        self.patch_embed
            + self.timestep_embed
            + self.cond_embed
            + self.adaln
            + self.attn_qkv
            + self.attn_core
            + self.attn_out
            + self.mlp
            + self.final_layer
            + self.router
    }

    /// Total in GFLOPs under the given convention.
    pub fn gflops(&self, convention: Convention) -> f64 {
        (self.total() * convention.factor()) as f64 / 1e9
    }

    /// Components as `(name, MACs)` pairs, in forward order.
    pub fn components(&self) -> [(&'static str, u64); 10] {
        [
            ("patch_embed", self.patch_embed),
            ("timestep_embed", self.timestep_embed),
            ("cond_embed", self.cond_embed),
            ("adaln", self.adaln),
            ("attn_qkv", self.attn_qkv),
            ("attn_core", self.attn_core),
            ("attn_out", self.attn_out),
            ("mlp", self.mlp),
            ("final_layer", self.final_layer),
            ("router", self.router),
        ]
    }
}

impl Add for Flops {
    type Output = Flops;
    fn add(self, o: Flops) -> Flops {
        Flops {
            patch_embed: self.patch_embed + o.patch_embed,
            timestep_embed: self.timestep_embed + o.timestep_embed,
            cond_embed: self.cond_embed + o.cond_embed,
            adaln: self.adaln + o.adaln,
            attn_qkv: self.attn_qkv + o.attn_qkv,
            attn_core: self.attn_core + o.attn_core,
            attn_out: self.attn_out + o.attn_out,
            mlp: self.mlp + o.mlp,
            final_layer: self.final_layer + o.final_layer,
            router: self.router + o.router,
        }
    }
}

impl AddAssign for Flops {
    fn add_assign(&mut self, o: Flops) {
        *self = *self + o;
    }
}

impl Mul<u64> for Flops {
    type Output = Flops;
    fn mul(self, k: u64) -> Flops {
        Flops {
            patch_embed: self.patch_embed * k,
            timestep_embed: self.timestep_embed * k,
            cond_embed: self.cond_embed * k,
            adaln: self.adaln * k,
            attn_qkv: self.attn_qkv * k,
            attn_core: self.attn_core * k,
            attn_out: self.attn_out * k,
            mlp: self.mlp * k,
            final_layer: self.final_layer * k,
            router: self.router * k,
        }
    }
}

impl std::iter::Sum for Flops {
    fn sum<I: Iterator<Item = Flops>>(iter: I) -> Flops {
        iter.fold(Flops::default(), |a, b| a + b)
    }
}

/// Per-sample analytic cost of the DiT building blocks.
///
/// `n` is the token count, `d` the hidden size. Every function returns the MACs for **one**
/// sample, so a routed executor multiplies by the number of samples (or tokens) a path ran on.
pub mod cost {
    use super::Flops;

    /// Patch embedding: a p×p conv with stride p from `c` channels to `d`, on `n` patches.
    pub fn patch_embed(n: usize, c: usize, p: usize, d: usize) -> Flops {
        Flops { patch_embed: (n * c * p * p * d) as u64, ..Default::default() }
    }

    /// Timestep embedder: Linear(freq, d) then Linear(d, d).
    pub fn timestep_embed(freq: usize, d: usize) -> Flops {
        Flops { timestep_embed: (freq * d + d * d) as u64, ..Default::default() }
    }

    /// adaLN-Zero modulation of one block: Linear(d, 6d).
    pub fn adaln(d: usize) -> Flops {
        Flops { adaln: (6 * d * d) as u64, ..Default::default() }
    }

    /// Self-attention over `n` tokens with `heads` active heads of size `head_dim`.
    ///
    /// qkv: n·d·3·(heads·hd); scores and values: 2·n²·(heads·hd); out-projection n·(heads·hd)·d.
    pub fn attention(n: usize, d: usize, heads: usize, head_dim: usize) -> Flops {
        let inner = (heads * head_dim) as u64;
        let (n, d) = (n as u64, d as u64);
        Flops {
            attn_qkv: n * d * 3 * inner,
            attn_core: 2 * n * n * inner,
            attn_out: n * inner * d,
            ..Default::default()
        }
    }

    /// Two-layer MLP d → hidden → d on `n` tokens.
    pub fn mlp(n: usize, d: usize, hidden: usize) -> Flops {
        Flops { mlp: (2 * n * d * hidden) as u64, ..Default::default() }
    }

    /// One full adaLN-Zero DiT block.
    pub fn block(n: usize, d: usize, heads: usize, mlp_hidden: usize) -> Flops {
        adaln(d) + attention(n, d, heads, d / heads) + mlp(n, d, mlp_hidden)
    }

    /// Final layer: adaLN Linear(d, 2d) + Linear(d, p²·out) on `n` tokens.
    pub fn final_layer(n: usize, d: usize, p: usize, out_channels: usize) -> Flops {
        Flops { final_layer: (2 * d * d + n * d * p * p * out_channels) as u64, ..Default::default() }
    }

    /// A plain linear layer `d_in → d_out` applied to `rows` vectors, charged to the router.
    pub fn router_linear(rows: usize, d_in: usize, d_out: usize) -> Flops {
        Flops { router: (rows * d_in * d_out) as u64, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_scales() {
        let a = cost::mlp(4, 8, 32);
        let b = cost::adaln(8);
        assert_eq!((a + b).total(), 2 * 4 * 8 * 32 + 6 * 64);
        assert_eq!((a * 3).mlp, 3 * a.mlp);
        assert_eq!([a, b].into_iter().sum::<Flops>(), a + b);
        assert_eq!(a.gflops(Convention::TwoPerMac), 2.0 * a.gflops(Convention::MacIsOne));
    }

    #[test]
    fn block_matches_hand_count() {
        // DiT-XL/2 block: N = 256, D = 1152.
        let (n, d) = (256u64, 1152u64);
        let want = 6 * d * d + 3 * n * d * d + 2 * n * n * d + n * d * d + 8 * n * d * d;
        assert_eq!(cost::block(256, 1152, 16, 4 * 1152).total(), want);
    }
}
