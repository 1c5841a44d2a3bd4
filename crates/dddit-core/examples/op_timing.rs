//! Times the operations of a DiT forward on the default device (a profiling aid).
//!
//! `cargo run --release -p dddit-core --example op_timing`

use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::nn::{layer_norm_no_affine, modulate};
use std::time::Instant;

fn time(name: &str, iters: usize, mut f: impl FnMut() -> f32) -> f64 {
    let _ = f();
    let s = Instant::now();
    for _ in 0..iters {
        let _ = f();
    }
    let ms = s.elapsed().as_secs_f64() * 1e3 / iters as f64;
    println!("{name:<28} {ms:>9.2} ms");
    ms
}

fn sync<const D: usize>(t: burn::tensor::Tensor<D>) -> f32 {
    t.sum().into_scalar::<f32>()
}

fn main() {
    let dev = dddit_core::testing::device();
    let cfg = DiTConfig::preset("DiT-S/4", 32, 1).unwrap();
    let m = cfg.init(&dev);
    let (b, n, d) = (32, cfg.num_tokens(), cfg.hidden_size);
    let x = burn::tensor::Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &dev);
    let c = burn::tensor::Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &dev);
    let w = burn::tensor::Tensor::<2>::random([d, 4 * d], Distribution::Normal(0.0, 1.0), &dev);
    let blk = &m.blocks[0];
    let md = blk.modulation(c.clone());
    let it = 5;
    time("matmul [2048,384]x[384,1536]", it, || sync(x.clone().reshape([b * n, d]).matmul(w.clone())));
    time("linear fc1", it, || sync(blk.mlp.fc1.forward(x.clone())));
    time("mlp", it, || sync(blk.mlp.forward(x.clone())));
    time("qkv", it, || sync(blk.attn.qkv.forward(x.clone())));
    time("attention", it, || sync(blk.attn.forward(x.clone())));
    time("layer_norm", it, || sync(layer_norm_no_affine(x.clone())));
    time("modulate", it, || sync(modulate(x.clone(), md.shift_msa.clone(), md.scale_msa.clone())));
    time("gelu", it, || sync(burn::tensor::activation::gelu_approximate(x.clone())));
    let h = x.clone().reshape([b * n, d]).matmul(w.clone());
    time("gelu [2048,1536]", it, || sync(burn::tensor::activation::gelu_approximate(h.clone())));
    time("gelu_tanh [2048,1536]", it, || sync(dddit_core::nn::gelu_tanh(h.clone())));
    time("x*x*x", it, || sync(h.clone() * h.clone() * h.clone()));
    time("powf_scalar 3", it, || sync(h.clone().powf_scalar(3.0)));
    time("tanh", it, || sync(h.clone().tanh()));
    time("exp", it, || sync(h.clone().exp()));
    time("sigmoid", it, || sync(burn::tensor::activation::sigmoid(h.clone())));
    time("mul scalar", it, || sync(h.clone() * 0.5));
    time("block", it, || sync(blk.forward(x.clone(), c.clone())));
}
