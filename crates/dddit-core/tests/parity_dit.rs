//! Parity with the reference PyTorch DiT (`tools/dit_reference.py`, same math and parameter
//! names as facebookresearch/DiT `models.py`). Fixtures: `tools/make_dit_fixtures.py`.

mod common;

use burn::prelude::*;
use common::{fixture, host, rel_err_host, Golden};
use dddit_core::dit::{DiT, DiTConfig};
use dddit_core::nn::timestep_frequencies;
use dddit_core::testing::device;

/// Parity tolerance: max |ours − reference| / max |reference|, f32.
const TOL: f64 = 1e-4;

fn tiny_config() -> DiTConfig {
    DiTConfig {
        input_height: 8,
        input_width: 8,
        in_channels: 3,
        patch_size: 2,
        hidden_size: 64,
        depth: 2,
        num_heads: 4,
        mlp_ratio: 4.0,
        num_classes: 5,
        class_dropout_prob: 0.1,
        learn_sigma: true,
        text_dim: 0,
    }
}

fn tiny2_config() -> DiTConfig {
    DiTConfig {
        input_height: 8,
        input_width: 8,
        in_channels: 1,
        patch_size: 4,
        hidden_size: 32,
        depth: 1,
        num_heads: 2,
        mlp_ratio: 4.0,
        num_classes: 3,
        class_dropout_prob: 0.1,
        learn_sigma: false,
        text_dim: 0,
    }
}

fn loaded(cfg: DiTConfig, weights: &str) -> DiT {
    let mut m = cfg.init(&device());
    let report = m.load_reference(fixture(weights)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.unused, vec!["pos_embed".to_string()], "only the fixed positions are not loaded");
    m
}

fn check(name: &str, ours: Vec<f64>, want: &[f64]) {
    let e = rel_err_host(&ours, want);
    assert!(e < TOL, "{name}: relative error {e:.2e} ≥ {TOL:.0e}");
}

#[test]
fn forward_matches_reference_step_by_step() {
    let dev = device();
    let g = Golden::load("dit_tiny_io.safetensors");
    let m = loaded(tiny_config(), "dit_tiny.safetensors");
    let x: Tensor<4> = g.tensor("x", &dev);
    let t: Tensor<1> = g.tensor("t", &dev);
    let y = g.ints("y", &dev);

    check("t_freq", host(timestep_frequencies(t.clone(), 256, 10000.0)), g.vals("t_freq"));
    check("pos_embed", host(m.pos_embed(&dev)), g.vals("pos_embed"));
    let e = m.embed(x.clone(), t.clone(), y.clone(), false, None);
    check("t_emb", host(e.t_emb.clone()), g.vals("t_emb"));
    check("y_emb", host(e.c.clone() - e.t_emb.clone()), g.vals("y_emb"));
    check("x_embed", host(e.tokens.clone()), g.vals("x_embed"));
    let b0 = m.blocks[0].forward(e.tokens.clone(), e.c.clone());
    check("block0_out", host(b0.clone()), g.vals("block0_out"));
    let h = m.blocks[1].forward(b0, e.c.clone());
    check("final_tokens", host(m.final_layer.forward(h, e.c)), g.vals("final_tokens"));
    check("out", host(m.forward(x, t, y)), g.vals("out"));
}

#[test]
fn classifier_free_guidance_matches_reference() {
    let dev = device();
    let g = Golden::load("dit_tiny_io.safetensors");
    let m = loaded(tiny_config(), "dit_tiny.safetensors");
    let scale = g.vals("cfg_scale")[0];
    let out = m.forward_with_cfg(g.tensor("cfg_x", &dev), g.tensor("cfg_t", &dev), g.ints("cfg_y", &dev), scale);
    check("cfg_out", host(out), g.vals("cfg_out"));
}

#[test]
fn second_config_without_learned_sigma() {
    let dev = device();
    let g = Golden::load("dit_tiny2_io.safetensors");
    let m = loaded(tiny2_config(), "dit_tiny2.safetensors");
    let out = m.forward(g.tensor("x", &dev), g.tensor("t", &dev), g.ints("y", &dev));
    assert_eq!(out.dims(), [3, 1, 8, 8]);
    check("out", host(out), g.vals("out"));
}

#[test]
fn loads_pytorch_state_dict_and_training_checkpoint() {
    let dev = device();
    let g = Golden::load("dit_tiny_io.safetensors");
    for file in ["dit_tiny.pt", "dit_tiny_ckpt.pt"] {
        let m = loaded(tiny_config(), file);
        let out = m.forward(g.tensor("x", &dev), g.tensor("t", &dev), g.ints("y", &dev));
        check(file, host(out), g.vals("out"));
    }
}

#[test]
fn mismatched_architecture_is_refused() {
    let dev = device();
    // One block too many: the file lacks blocks.2.*.
    let mut cfg = tiny_config();
    cfg.depth = 3;
    let err = cfg.init(&dev).load_reference(fixture("dit_tiny.safetensors")).unwrap_err().to_string();
    assert!(err.contains("blocks.2"), "{err}");
    // One block too few: the file has blocks.1.* that the model cannot take.
    cfg.depth = 1;
    let err = cfg.init(&dev).load_reference(fixture("dit_tiny.pt")).unwrap_err().to_string();
    assert!(err.contains("blocks.1"), "{err}");
    // Unknown format and missing file.
    let err = tiny_config().init(&dev).load_reference(fixture("README.md")).unwrap_err().to_string();
    assert!(err.contains("unknown weight format"), "{err}");
    assert!(tiny_config().init(&dev).load_reference(fixture("nope.pt")).is_err());
}
