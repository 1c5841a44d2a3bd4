//! The classifiers embedded in dddit-eval: they load, carry the hash `results/classifiers.md`
//! quotes, and reach the accuracy it reports on a fixed part of the held-out split.

use burn::prelude::*;
use dddit_core::testing::{device, max_abs_diff};
use dddit_data::fashion_mnist::DEFAULT_DIR;
use dddit_eval::classifier::{self, Classifier, ClassifierConfig, DataSetName};
use dddit_eval::FeatureExtractor;

/// Accuracy (percent) of the committed Fashion-MNIST weights on the first 2,000 test images, as
/// reported in `results/classifiers.md`.
const FASHION_FIRST_2000: f64 = 91.80;
/// Accuracy (percent) of the committed shapes weights on the first 2,000 held-out shapes.
const SHAPES_FIRST_2000: f64 = 81.05;

fn results_md() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/classifiers.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn embedded_weights_load_and_are_the_ones_documented() {
    let dev = device();
    let md = results_md();
    for data in DataSetName::ALL {
        let clf = Classifier::pretrained(data, &dev).unwrap();
        let bytes = data.embedded_weights();
        assert!(bytes.len() < 1_000_000, "{data}: {} bytes", bytes.len());
        let sha = classifier::sha256_hex(bytes);
        assert!(md.contains(&sha), "results/classifiers.md does not quote the sha256 {sha} of the {data} weights");
        assert_eq!(clf.name(), format!("classifier-{data}-32-{}", &sha[..8]));
        assert_eq!(clf.config().channels, data.channels());
        assert_eq!(clf.config().num_classes, data.class_names().len());
        assert_eq!(clf.dim(), 128);
    }
}

#[test]
fn fashion_mnist_weights_reach_the_reported_accuracy() {
    if !std::path::Path::new(DEFAULT_DIR).join("t10k-images-idx3-ubyte.gz").exists() {
        println!(
            "skipped: Fashion-MNIST is not installed in {DEFAULT_DIR} (sudo apt-get install dataset-fashion-mnist)"
        );
        return;
    }
    let dev = device();
    let clf = Classifier::pretrained(DataSetName::FashionMnist, &dev).unwrap();
    let test = classifier::train::test_set(DataSetName::FashionMnist, DEFAULT_DIR.as_ref(), 32, false).unwrap();
    let acc = classifier::evaluate(&clf, &*test, Some(2000), &dev);
    assert_eq!(acc.total(), 2000);
    assert!(
        (acc.overall() - FASHION_FIRST_2000).abs() <= 0.5,
        "{:.2}% vs reported {FASHION_FIRST_2000}%",
        acc.overall()
    );
}

#[test]
fn shapes_weights_reach_the_reported_accuracy() {
    let dev = device();
    let clf = Classifier::pretrained(DataSetName::Shapes, &dev).unwrap();
    let test = classifier::train::test_set(DataSetName::Shapes, "/nonexistent".as_ref(), 32, false).unwrap();
    let acc = classifier::evaluate(&clf, &*test, Some(2000), &dev);
    assert_eq!(acc.total(), 2000);
    assert!((acc.overall() - SHAPES_FIRST_2000).abs() <= 0.5, "{:.2}% vs reported {SHAPES_FIRST_2000}%", acc.overall());
}

#[test]
fn weights_round_trip_through_bytes_and_files() {
    let dev = device();
    let clf = ClassifierConfig::new(3, 32, 5).with_seed(3).init(&dev).unwrap();
    let bytes = clf.to_bytes("shapes").unwrap();
    // The bytes depend on the weights only (not on burn's random parameter ids).
    let twin = ClassifierConfig::new(3, 32, 5).with_seed(3).init(&dev).unwrap();
    assert_eq!(twin.to_bytes("shapes").unwrap(), bytes);
    let back = Classifier::from_bytes(&bytes, "<test>", &dev).unwrap();
    assert_eq!(back.to_bytes("shapes").unwrap(), bytes);
    assert_eq!(back.config(), clf.config());
    assert_eq!(back.name(), classifier::weights_name("shapes", 32, &bytes));
    let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    assert_eq!(max_abs_diff(back.logits(x.clone()), clf.logits(x.clone())), 0.0);

    let dir = std::env::temp_dir().join(format!("dddit-classifier-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.bpk");
    let name = clf.save_weights("shapes", &path).unwrap();
    let loaded = Classifier::load_weights(&path, &dev).unwrap();
    assert_eq!(loaded.name(), name);
    assert_eq!(max_abs_diff(loaded.features(x.clone()), clf.features(x)), 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn foreign_bytes_are_refused() {
    let dev = device();
    assert!(Classifier::from_bytes(b"not a burnpack", "<junk>", &dev).is_err());
    // Weights that do not fit the config in their metadata: a 3-channel config over 1-channel
    // weights.
    let clf = ClassifierConfig::new(1, 32, 10).init(&dev).unwrap();
    let mut bytes = clf.to_bytes("fashion-mnist").unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains("\"channels\":1"));
    let at = bytes.windows(12).position(|w| w == b"\"channels\":1").unwrap();
    bytes[at + 11] = b'3';
    let err = Classifier::from_bytes(&bytes, "<edited>", &dev).unwrap_err().to_string();
    assert!(err.contains("<edited>"), "{err}");
}

#[test]
fn training_learns_fashion_mnist() {
    if !std::path::Path::new(DEFAULT_DIR).join("train-images-idx3-ubyte.gz").exists() {
        println!(
            "skipped: Fashion-MNIST is not installed in {DEFAULT_DIR} (sudo apt-get install dataset-fashion-mnist)"
        );
        return;
    }
    // 48 steps on 1,024 training images: far from the committed weights, far above chance (10%).
    let opts = classifier::TrainOptions {
        epochs: 3,
        batch_size: 64,
        train_limit: Some(1024),
        test_limit: Some(500),
        warmup_steps: 4,
        lr: 3e-3,
        seed: 5,
        ..classifier::TrainOptions::new(DataSetName::FashionMnist)
    };
    let dev = device();
    let mut epochs = Vec::new();
    let (_, report) = classifier::train(&opts, &dev, &mut |e| epochs.push(e.clone())).unwrap();
    assert_eq!(epochs.len(), 3);
    assert_eq!(epochs[2].steps, 48);
    assert_eq!(report.train_samples, 1024);
    assert_eq!(report.test.total(), 500);
    assert!(epochs[2].train_loss < epochs[0].train_loss, "{epochs:?}");
    assert!(report.test.overall() > 50.0, "{:.1}% {epochs:?}", report.test.overall());
}

#[test]
fn training_is_repeatable_from_the_seed() {
    let opts = classifier::TrainOptions {
        epochs: 1,
        batch_size: 32,
        shapes_per_epoch: 96,
        test_limit: Some(10),
        seed: 9,
        ..classifier::TrainOptions::new(DataSetName::Shapes)
    };
    let dev = device();
    let (a, _) = classifier::train(&opts, &dev, &mut |_| {}).unwrap();
    let (b, _) = classifier::train(&opts, &dev, &mut |_| {}).unwrap();
    let (c, _) = classifier::train(&classifier::TrainOptions { seed: 10, ..opts }, &dev, &mut |_| {}).unwrap();
    let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    assert_eq!(max_abs_diff(a.logits(x.clone()), b.logits(x.clone())), 0.0);
    assert!(max_abs_diff(a.logits(x.clone()), c.logits(x)) > 1e-4);
}
