//! The adaLN-Zero DiT block and the final layer.

use crate::flops::{cost, Flops};
use crate::fused;
use crate::nn::{linear, ln_modulate, Attention, AttentionConfig, LinearInit, Mlp, MlpConfig, LN_EPS};
use crate::routing::ComputePath;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

/// Configuration of [`DiTBlock`].
#[derive(Config, Debug)]
pub struct DiTBlockConfig {
    /// Hidden size D.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// MLP inner size.
    pub mlp_hidden: usize,
}

/// The six per-sample modulation vectors of an adaLN-Zero block, each `[batch, hidden]`.
#[derive(Clone, Debug)]
pub struct Modulation {
    /// Shift before attention.
    pub shift_msa: Tensor<2>,
    /// Scale before attention.
    pub scale_msa: Tensor<2>,
    /// Gate of the attention residual.
    pub gate_msa: Tensor<2>,
    /// Shift before the MLP.
    pub shift_mlp: Tensor<2>,
    /// Scale before the MLP.
    pub scale_mlp: Tensor<2>,
    /// Gate of the MLP residual.
    pub gate_mlp: Tensor<2>,
}

impl Modulation {
    /// Keeps the rows of the listed samples (for routers that run a block on part of a batch).
    pub fn select(&self, rows: Tensor<1, Int>) -> Modulation {
        let s = |t: &Tensor<2>| t.clone().select(0, rows.clone());
        Modulation {
            shift_msa: s(&self.shift_msa),
            scale_msa: s(&self.scale_msa),
            gate_msa: s(&self.gate_msa),
            shift_mlp: s(&self.shift_mlp),
            scale_mlp: s(&self.scale_mlp),
            gate_mlp: s(&self.gate_mlp),
        }
    }
}

/// DiT block with adaLN-Zero conditioning:
/// `x += gate_msa · Attn(modulate(LN(x), shift_msa, scale_msa))`, then the same for the MLP.
///
/// The modulation linear (PyTorch `adaLN_modulation.1`) starts at zero, so the block is the
/// identity at initialisation. The two residual branches are exposed separately so that routers
/// can run, slice or skip them.
#[derive(Module, Debug)]
pub struct DiTBlock {
    /// Self-attention (`attn`).
    pub attn: Attention,
    /// MLP (`mlp`).
    pub mlp: Mlp,
    /// adaLN modulation D → 6D after SiLU (`adaLN_modulation.1`).
    pub ada_ln_modulation: Linear,
}

impl DiTBlockConfig {
    /// Builds the block with the DiT initialisation (zero modulation).
    pub fn init(&self, device: &Device) -> DiTBlock {
        let d = self.hidden_size;
        DiTBlock {
            attn: AttentionConfig::new(d, self.num_heads).init(device),
            mlp: MlpConfig::new(d, self.mlp_hidden).init(device),
            ada_ln_modulation: linear(d, 6 * d, LinearInit::Zeros, device),
        }
    }
}

/// adaLN-Zero modulation vectors from `c` (`[batch, hidden]`) through `SiLU → linear` (D → 6D).
pub fn adaln_modulation(linear: &Linear, c: Tensor<2>) -> Modulation {
    let m = fused::linear(silu(c), linear.weight.val(), linear.bias.as_ref().map(|b| b.val())); // [batch, 6·hidden]
    let mut it = m.chunk(6, 1).into_iter();
    let mut next = || it.next().expect("six chunks");
    Modulation {
        shift_msa: next(),
        scale_msa: next(),
        gate_msa: next(),
        shift_mlp: next(),
        scale_mlp: next(),
        gate_mlp: next(),
    }
}

/// The attention input of a block, `modulate(LN(x), shift_msa, scale_msa)`.
pub fn attn_input(x: Tensor<3>, m: &Modulation) -> Tensor<3> {
    ln_modulate(x, m.shift_msa.clone(), m.scale_msa.clone())
}

/// The attention half of a dense block, `x + gate_msa · Attn(modulate(LN(x)))`, as the dense
/// block runs it: fused norm-modulate (bf16 for the linear under bf16-mixed) and one fused
/// gated residual, as a router's own loop calls it.
pub fn attn_residual(attn: &Attention, x: Tensor<3>, m: &Modulation) -> Tensor<3> {
    let h = fused::ln_modulate(x.clone(), m.shift_msa.clone(), m.scale_msa.clone(), LN_EPS, true);
    fused::gated_residual(x, attn.forward(h), m.gate_msa.clone())
}

/// The MLP input of a block, `modulate(LN(x), shift_mlp, scale_mlp)`, before any MLP runs: what
/// a token-level router looks at.
pub fn mlp_input(x: Tensor<3>, m: &Modulation) -> Tensor<3> {
    ln_modulate(x, m.shift_mlp.clone(), m.scale_mlp.clone())
}

impl DiTBlock {
    /// Modulation vectors from the conditioning `c` (`[batch, hidden]`).
    pub fn modulation(&self, c: Tensor<2>) -> Modulation {
        adaln_modulation(&self.ada_ln_modulation, c)
    }

    /// Dense forward: `[batch, tokens, hidden]`, conditioning `[batch, hidden]`.
    ///
    /// Each half is two fused ops around its branch: LayerNorm + modulate (written in bf16 under
    /// bf16-mixed, for the matmul it feeds) and the gated residual `x + branch·gate`.
    pub fn forward(&self, x: Tensor<3>, c: Tensor<2>) -> Tensor<3> {
        let m = self.modulation(c);
        let x = attn_residual(&self.attn, x, &m);
        let h = fused::ln_modulate(x.clone(), m.shift_mlp.clone(), m.scale_mlp.clone(), LN_EPS, true);
        fused::gated_residual(x, self.mlp.forward(h), m.gate_mlp)
    }

    /// Cost of a dense forward for one sample with `tokens` tokens.
    pub fn flops(&self, tokens: usize) -> Flops {
        let d = self.attn.proj.weight.dims()[0];
        cost::adaln(d) + self.attn.flops(tokens, self.attn.num_heads) + self.mlp.flops(tokens, self.mlp.inner())
    }
}

impl ComputePath for DiTBlock {
    fn label(&self) -> String {
        "dit-block".into()
    }
    fn cost(&self, tokens: usize) -> Flops {
        self.flops(tokens)
    }
}

/// Configuration of [`FinalLayer`].
#[derive(Config, Debug)]
pub struct FinalLayerConfig {
    /// Hidden size D.
    pub hidden_size: usize,
    /// Patch size p.
    pub patch_size: usize,
    /// Output channels.
    pub out_channels: usize,
}

/// The final adaLN layer: `linear(modulate(LN(x), shift, scale))` → `[batch, tokens, p²·out]`.
#[derive(Module, Debug)]
pub struct FinalLayer {
    /// Output linear D → p²·out (`final_layer.linear`), zero at initialisation.
    pub linear: Linear,
    /// adaLN modulation D → 2D (`final_layer.adaLN_modulation.1`), zero at initialisation.
    pub ada_ln_modulation: Linear,
}

impl FinalLayerConfig {
    /// Builds the layer, zero-initialised as in DiT.
    pub fn init(&self, device: &Device) -> FinalLayer {
        let d = self.hidden_size;
        FinalLayer {
            linear: linear(d, self.patch_size * self.patch_size * self.out_channels, LinearInit::Zeros, device),
            ada_ln_modulation: linear(d, 2 * d, LinearInit::Zeros, device),
        }
    }
}

impl FinalLayer {
    /// `[batch, tokens, hidden]`, `[batch, hidden]` → `[batch, tokens, p²·out]`.
    pub fn forward(&self, x: Tensor<3>, c: Tensor<2>) -> Tensor<3> {
        let ada = &self.ada_ln_modulation;
        let m = fused::linear(silu(c), ada.weight.val(), ada.bias.as_ref().map(|b| b.val()));
        let mut m = m.chunk(2, 1).into_iter();
        let (shift, scale) = (m.next().expect("shift"), m.next().expect("scale"));
        let h = fused::ln_modulate(x, shift, scale, LN_EPS, true);
        fused::linear(h, self.linear.weight.val(), self.linear.bias.as_ref().map(|b| b.val()))
    }
}
