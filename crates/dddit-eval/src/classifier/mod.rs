//! Small image classifiers trained by dddit, used as fast feature extractors for CPU and CI
//! evaluation: Fréchet distance and precision/recall on their 128-d embedding, class accuracy
//! from their logits, in seconds where the Inception network takes minutes.
//!
//! - [`model`]: the network ([`ClassifierConfig`] → [`Classifier`]).
//! - [`mod@train`]: training and held-out evaluation on dddit's own data sets.
//! - Here: the data sets a classifier is made for ([`DataSetName`]), the weights embedded in
//!   the library ([`Classifier::pretrained`]), and burnpack files that carry their own config.
//!
//! A weights file is a burnpack whose metadata holds the data set name and the JSON
//! [`ClassifierConfig`], so that it loads without being told the architecture. Its
//! [`crate::FeatureExtractor::name`] is `classifier-<data set>-<side>-<first 8 hex digits of the
//! file's SHA-256>`: two tables quoting the same name used the same weights.
//!
//! ```no_run
//! use dddit_eval::classifier::{Classifier, DataSetName};
//! use dddit_eval::FeatureExtractor;
//! let device = dddit_core::testing::device();
//! let clf = Classifier::pretrained(DataSetName::FashionMnist, &device).unwrap();
//! println!("{} gives {}-d features", clf.name(), clf.dim());
//! ```

pub mod model;
pub mod train;

pub use model::{argmax_rows, Classifier, ClassifierConfig, ConvBlock};
pub use train::{evaluate, predictions, train, Accuracy, EpochLog, TrainOptions, TrainReport};

use crate::EvalError;
use burn::module::{ModuleMapper, Param, ParamId};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn_store::{BurnpackStore, ModuleSnapshot};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Metadata key holding the data set name in a classifier weights file.
pub const META_DATA: &str = "dddit.classifier.data";
/// Metadata key holding the JSON [`ClassifierConfig`] in a classifier weights file.
pub const META_CONFIG: &str = "dddit.classifier.config";

static FASHION_MNIST_WEIGHTS: &[u8] = include_bytes!("../../weights/classifier-fashion-mnist-32.bpk");
static SHAPES_WEIGHTS: &[u8] = include_bytes!("../../weights/classifier-shapes-32.bpk");

/// A data set dddit trains classifiers on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DataSetName {
    /// Fashion-MNIST, padded to 32×32, 1 channel, 10 classes.
    FashionMnist,
    /// The procedural shapes data set at 32×32, 3 channels, 5 classes (the kind of the first
    /// object).
    Shapes,
}

impl DataSetName {
    /// Both data sets.
    pub const ALL: [DataSetName; 2] = [DataSetName::FashionMnist, DataSetName::Shapes];

    /// The name used on the command line and in weights files: `fashion-mnist`, `shapes`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataSetName::FashionMnist => "fashion-mnist",
            DataSetName::Shapes => "shapes",
        }
    }

    /// Channels of its images.
    pub fn channels(self) -> usize {
        match self {
            DataSetName::FashionMnist => 1,
            DataSetName::Shapes => 3,
        }
    }

    /// Side of the images the classifiers are trained on.
    pub fn image_size(self) -> usize {
        32
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> Vec<String> {
        match self {
            DataSetName::FashionMnist => dddit_data::fashion_mnist::CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            DataSetName::Shapes => dddit_data::ShapeKind::ALL.iter().map(|k| k.name().to_string()).collect(),
        }
    }

    /// The default classifier settings for this data set, seeded.
    pub fn classifier_config(self, seed: u64) -> ClassifierConfig {
        ClassifierConfig::new(self.channels(), self.image_size(), self.class_names().len()).with_seed(seed)
    }

    /// File name of the weights embedded in the library
    /// (`crates/dddit-eval/weights/<file name>`).
    pub fn weights_file_name(self) -> String {
        format!("classifier-{}-{}.bpk", self.as_str(), self.image_size())
    }

    /// The weights embedded in the library.
    pub fn embedded_weights(self) -> &'static [u8] {
        match self {
            DataSetName::FashionMnist => FASHION_MNIST_WEIGHTS,
            DataSetName::Shapes => SHAPES_WEIGHTS,
        }
    }
}

impl fmt::Display for DataSetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataSetName {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self, EvalError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Ok(DataSetName::FashionMnist),
            "shapes" => Ok(DataSetName::Shapes),
            other => Err(EvalError::Invalid(format!("unknown classifier data set `{other}` (fashion-mnist, shapes)"))),
        }
    }
}

/// Replaces parameter ids by 0, 1, 2, … in visiting order.
struct NumberParams(u64);

impl ModuleMapper for NumberParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, _) = param.consume();
        self.0 += 1;
        Param::initialized(ParamId::from(self.0 - 1), value)
    }
}

/// Lower-case hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The feature-extractor name of weights `bytes` for `data` at side `image_size`:
/// `classifier-<data>-<side>-<first 8 hex digits of sha256(bytes)>`.
pub fn weights_name(data: &str, image_size: usize, bytes: &[u8]) -> String {
    format!("classifier-{data}-{image_size}-{}", &sha256_hex(bytes)[..8])
}

impl Classifier {
    /// The classifier trained by dddit on `data`, from the weights embedded in the library (see
    /// `results/classifiers.md` for how they were trained and their test accuracy).
    pub fn pretrained(data: DataSetName, device: &Device) -> Result<Classifier, EvalError> {
        let origin = format!("<embedded {}>", data.weights_file_name());
        let clf = Classifier::from_bytes(data.embedded_weights(), &origin, device)?;
        if clf.config.channels != data.channels() || clf.config.num_classes != data.class_names().len() {
            return Err(EvalError::format(origin, format!("embedded weights do not fit {data}: {:?}", clf.config)));
        }
        Ok(clf)
    }

    /// Loads a classifier from burnpack bytes written by [`Classifier::to_bytes`]; `origin` names
    /// them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str, device: &Device) -> Result<Classifier, EvalError> {
        let bad = |m: String| EvalError::format(origin, m);
        let reader = burn_store::burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| bad(format!("not a burnpack file: {e}")))?;
        let meta = reader.metadata();
        let data = meta
            .get(META_DATA)
            .ok_or_else(|| bad(format!("no `{META_DATA}` metadata: not a dddit classifier")))?
            .clone();
        let config: ClassifierConfig = serde_json::from_str(
            meta.get(META_CONFIG).ok_or_else(|| bad(format!("no `{META_CONFIG}` metadata: not a dddit classifier")))?,
        )
        .map_err(|e| bad(format!("bad classifier config: {e}")))?;
        let mut clf = config.init(device)?;
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes.to_vec())));
        let r = clf.load_from(&mut store).map_err(|e| bad(e.to_string()))?;
        if !r.errors.is_empty() || !r.missing.is_empty() || !r.unused.is_empty() {
            return Err(bad(format!("weights do not match the classifier config: {r}")));
        }
        clf.name = weights_name(&data, config.image_size, bytes);
        Ok(clf)
    }

    /// Loads a classifier weights file (see [`Classifier::from_bytes`]).
    pub fn load_weights(path: &Path, device: &Device) -> Result<Classifier, EvalError> {
        let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
        Classifier::from_bytes(&bytes, &path.display().to_string(), device)
    }

    /// The weights as burnpack bytes, with `data` and the config in the metadata.
    ///
    /// burn gives every parameter a random id, which burnpack stores; here the parameters are
    /// numbered 0, 1, 2, … in module order instead, so that the bytes (and the name's hash)
    /// depend on the weights only and the same training command writes the same file.
    pub fn to_bytes(&self, data: &str) -> Result<Vec<u8>, EvalError> {
        let config = serde_json::to_string(&self.config).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let mut store = BurnpackStore::from_bytes(None).metadata(META_DATA, data).metadata(META_CONFIG, config);
        let numbered = self.clone().map(&mut NumberParams(0));
        numbered.save_into(&mut store).map_err(|e| EvalError::Invalid(format!("serialising the classifier: {e}")))?;
        let bytes = store.get_bytes().map_err(|e| EvalError::Invalid(format!("serialising the classifier: {e}")))?;
        Ok(bytes.to_vec())
    }

    /// Writes the weights to `path` atomically ([`dddit_core::atomic::write`]) and
    /// returns the name the loaded file will have ([`weights_name`]).
    pub fn save_weights(&self, data: &str, path: &Path) -> Result<String, EvalError> {
        let bytes = self.to_bytes(data)?;
        dddit_core::atomic::write(path, &bytes).map_err(|e| EvalError::io(path, e))?;
        Ok(weights_name(data, self.config.image_size, &bytes))
    }
}
