//! Numeric precision of a run: `f32` (default), `tf32` or `bf16`.
//!
//! - `tf32`: float32 tensors, with CUDA matmuls on TF32 tensor cores (10-bit mantissa inputs,
//!   f32 accumulate), the PyTorch `allow_tf32` switch. Weights, optimiser state and the loss
//!   stay f32, so training needs no extra care. LibTorch-CUDA only: it is set through PyTorch's
//!   `TORCH_ALLOW_TF32_CUBLAS_OVERRIDE`, read when LibTorch first builds its context, so it must
//!   be chosen before the first tensor of the process.
//! - `bf16`: every float tensor of the device is bfloat16 (burn's device default dtype): weights,
//!   activations, gradients and AdamW moments. bf16 has f32's exponent range, so no loss scaling
//!   is needed, but its 8-bit mantissa makes small updates vanish: an EMA with decay 0.9999
//!   cannot move a bf16 weight, and AdamW steps below 2⁻⁸ of a weight are lost. It is a speed
//!   setting (inference, benchmarks); train with `bf16-mixed`, `tf32` or `f32`.
//! - `bf16-mixed`: PyTorch autocast's rule for training: parameters, AdamW state, LayerNorm,
//!   the residual stream and the loss stay f32; the matmuls of every linear and the attention
//!   run in bf16 ([`crate::fused`] casts their inputs, as autocast does, and hands each branch's
//!   output back in f32). LibTorch only (CPU or CUDA); process-wide, like `tf32`.

use crate::device::DeviceSpec;
use crate::error::CoreError;
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Numeric precision (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 everywhere.
    #[default]
    F32,
    /// float32 tensors, TF32 tensor-core matmuls (CUDA).
    Tf32,
    /// bfloat16 everywhere.
    Bf16,
    /// f32 weights and state, bf16 matmuls and attention (autocast).
    #[serde(rename = "bf16-mixed")]
    Bf16Mixed,
}

/// The environment variable LibTorch reads to allow TF32 in cuBLAS matmuls.
pub const TF32_ENV: &str = "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE";

impl Precision {
    /// Sets `device` up for this precision. Call it before any tensor is created on the device;
    /// calling it again with the same precision is a no-op.
    pub fn apply(self, spec: DeviceSpec, device: &mut Device) -> Result<(), CoreError> {
        match self {
            Precision::F32 => {
                let now = device.settings().float_dtype;
                if now != FloatDType::F32 {
                    return Err(CoreError::Device(format!(
                        "precision f32 asked for, but {spec} already holds {now:?} tensors in this process"
                    )));
                }
                Ok(())
            }
            Precision::Tf32 => {
                self.check_device(spec).map_err(CoreError::Device)?;
                // Safe in edition 2021; set before LibTorch creates its global context.
                std::env::set_var(TF32_ENV, "1");
                Ok(())
            }
            Precision::Bf16Mixed => {
                self.check_device(spec).map_err(CoreError::Device)?;
                crate::fused::set_mixed(true);
                Ok(())
            }
            Precision::Bf16 => {
                if device.settings().float_dtype == FloatDType::BF16 {
                    return Ok(());
                }
                device
                    .configure(FloatDType::BF16)
                    .map_err(|e| CoreError::Device(format!("precision bf16 on {spec}: {e:?}")))
            }
        }
    }

    /// Whether this precision exists on `spec`: `tf32` needs CUDA, `bf16-mixed` LibTorch.
    pub fn check_device(self, spec: DeviceSpec) -> Result<(), String> {
        match self {
            Precision::Tf32 if !matches!(spec, DeviceSpec::TchCuda(_)) => {
                Err(format!("precision tf32 needs a CUDA device (tch-cuda:N), not {spec}; use f32"))
            }
            Precision::Bf16Mixed if !matches!(spec, DeviceSpec::TchCuda(_) | DeviceSpec::TchCpu) => {
                Err(format!("precision bf16-mixed needs LibTorch (tch-cpu or tch-cuda:N), not {spec}; use f32"))
            }
            _ => Ok(()),
        }
    }

    /// Bytes of one float element of the parameters (bf16-mixed keeps them f32).
    pub fn bytes(self) -> usize {
        match self {
            Precision::Bf16 => 2,
            _ => 4,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Bf16Mixed => "bf16-mixed",
        })
    }
}

impl FromStr for Precision {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "bf16-mixed" | "bf16_mixed" | "mixed" => Ok(Precision::Bf16Mixed),
            other => Err(CoreError::Device(format!("unknown precision '{other}'; known: f32, tf32, bf16, bf16-mixed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for p in [Precision::F32, Precision::Tf32, Precision::Bf16, Precision::Bf16Mixed] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert!("fp16".parse::<Precision>().unwrap_err().to_string().contains("known: f32, tf32, bf16, bf16-mixed"));
    }

    #[test]
    fn bf16_mixed_is_refused_off_libtorch() {
        let spec = DeviceSpec::default_spec();
        if matches!(spec, DeviceSpec::TchCpu) {
            return;
        }
        let mut dev = spec.device().unwrap();
        let e = Precision::Bf16Mixed.apply(spec, &mut dev).unwrap_err().to_string();
        assert!(e.contains("needs LibTorch"), "{e}");
        assert!(!crate::fused::mixed());
    }

    #[test]
    fn tf32_is_refused_off_cuda() {
        let spec = DeviceSpec::default_spec();
        let mut dev = spec.device().unwrap();
        let e = Precision::Tf32.apply(spec, &mut dev).unwrap_err().to_string();
        assert!(e.contains("needs a CUDA device"), "{e}");
    }
}
