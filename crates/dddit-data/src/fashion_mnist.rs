//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) read from the original IDX files.
//!
//! The files `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
//! `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` are looked for in a directory,
//! by default [`DEFAULT_DIR`] (`/usr/share/datasets/fashion-mnist`, where the Debian package
//! `dataset-fashion-mnist` installs them); uncompressed files without `.gz` are accepted too.
//! Images are 1 channel, 28×28, scaled to `[-1, 1]`; with `pad_to_32` they are centred in a
//! 32×32 frame of −1 (black), so that DiT patch sizes 2, 4 and 8 all divide the side.
//!
//! ```no_run
//! use dddit_data::{Dataset, FashionMnistConfig, Split};
//! let test = FashionMnistConfig::new(Split::Test).with_pad_to_32(true).init()?;
//! assert_eq!((test.len(), test.size()), (10_000, 32));
//! # Ok::<(), dddit_data::DataError>(())
//! ```

use crate::{edge_density, Complexity, DataError, Dataset, Sample};
use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the Debian package `dataset-fashion-mnist` installs the IDX files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Side of a Fashion-MNIST image.
pub const SIDE: usize = 28;

/// The ten official class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Which part of Fashion-MNIST to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 60 000 training images (`train-*`).
    #[default]
    Train,
    /// The 10 000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// Prefix of the file names: `"train"` or `"t10k"`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// Number of images of the official release (60 000 or 10 000).
    pub fn official_len(self) -> usize {
        match self {
            Split::Train => 60_000,
            Split::Test => 10_000,
        }
    }
}

/// Settings of a [`FashionMnist`] data set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FashionMnistConfig {
    /// Directory holding the IDX files (default [`DEFAULT_DIR`]).
    pub dir: PathBuf,
    /// Training or test split.
    pub split: Split,
    /// Centre the 28×28 images in a 32×32 frame of −1.
    pub pad_to_32: bool,
}

impl Default for FashionMnistConfig {
    fn default() -> Self {
        FashionMnistConfig { dir: PathBuf::from(DEFAULT_DIR), split: Split::Train, pad_to_32: false }
    }
}

impl FashionMnistConfig {
    /// The given split from [`DEFAULT_DIR`], 28×28.
    pub fn new(split: Split) -> Self {
        FashionMnistConfig { split, ..Default::default() }
    }

    /// The same reading from another directory.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The same with or without padding to 32×32.
    pub fn with_pad_to_32(mut self, pad: bool) -> Self {
        self.pad_to_32 = pad;
        self
    }

    /// Path of the images file (`<dir>/<prefix>-images-idx3-ubyte.gz`).
    pub fn images_path(&self) -> PathBuf {
        self.dir.join(format!("{}-images-idx3-ubyte.gz", self.split.file_prefix()))
    }

    /// Path of the labels file (`<dir>/<prefix>-labels-idx1-ubyte.gz`).
    pub fn labels_path(&self) -> PathBuf {
        self.dir.join(format!("{}-labels-idx1-ubyte.gz", self.split.file_prefix()))
    }

    /// Reads and checks the files of the split.
    ///
    /// A missing file is [`DataError::Missing`], whose message says how to install the data.
    pub fn init(&self) -> Result<FashionMnist, DataError> {
        let (images_path, labels_path) = (self.images_path(), self.labels_path());
        let images = parse_idx_images(&read_idx_file(&images_path)?, &images_path)?;
        let labels = parse_idx_labels(&read_idx_file(&labels_path)?, &labels_path)?;
        FashionMnist::build(images, labels, self.split, self.pad_to_32, &images_path, &labels_path)
    }
}

/// The payload of an IDX images file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub cols: usize,
    /// `count · rows · cols` pixels, image-major then row-major.
    pub pixels: Vec<u8>,
}

/// Reads a file and gunzips it when it starts with the gzip magic bytes. If `path` does not
/// exist and ends in `.gz`, the same path without `.gz` is tried before giving up with
/// [`DataError::Missing`] naming `path`.
pub fn read_idx_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let chosen = if path.is_file() {
        path.to_path_buf()
    } else {
        match path.to_str().and_then(|s| s.strip_suffix(".gz")).map(PathBuf::from) {
            Some(plain) if plain.is_file() => plain,
            _ => return Err(DataError::Missing { path: path.to_path_buf() }),
        }
    };
    let bytes = std::fs::read(&chosen).map_err(|source| DataError::Io { path: chosen.clone(), source })?;
    gunzip_if_needed(bytes, &chosen)
}

/// Decompresses `bytes` when they start with the gzip magic bytes `1f 8b`, else returns them
/// unchanged; `path` names the file in errors.
pub fn gunzip_if_needed(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn idx_error(path: &Path, message: String) -> DataError {
    DataError::Idx { path: path.to_path_buf(), message }
}

/// Reads the header of an IDX file: checks the magic number and returns the big-endian
/// dimensions and the payload that follows them, checked to hold exactly their product of bytes.
fn parse_idx(bytes: &[u8], path: &Path, magic: u32, what: &str) -> Result<(Vec<usize>, usize), DataError> {
    if bytes.len() < 4 {
        return Err(idx_error(path, format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(idx_error(
            path,
            format!("magic number 0x{found:08x}, expected 0x{magic:08x} ({what}, unsigned bytes)"),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(idx_error(
            path,
            format!("{} bytes is too short for a header with {ndim} dimensions ({header} bytes)", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let payload = bytes.len() - header;
    if expected != Some(payload) {
        let shape = dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
        return Err(idx_error(path, format!("header says {shape} bytes of data, but the file holds {payload}")));
    }
    Ok((dims, header))
}

/// Parses an (uncompressed) IDX images file: magic `0x00000803`, big-endian count, rows and
/// columns, then the pixels. `path` names the file in errors.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DataError> {
    let (dims, header) = parse_idx(bytes, path, IMAGES_MAGIC, "images")?;
    Ok(IdxImages { count: dims[0], rows: dims[1], cols: dims[2], pixels: bytes[header..].to_vec() })
}

/// Parses an (uncompressed) IDX labels file: magic `0x00000801`, big-endian count, then the
/// labels. `path` names the file in errors.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let (_, header) = parse_idx(bytes, path, LABELS_MAGIC, "labels")?;
    Ok(bytes[header..].to_vec())
}

/// The Fashion-MNIST data set in memory (one split; cloning shares the pixels).
#[derive(Clone, Debug)]
pub struct FashionMnist {
    pixels: Arc<[u8]>,
    labels: Arc<[u8]>,
    split: Split,
    pad_to_32: bool,
}

impl FashionMnist {
    /// Builds the data set from parsed IDX payloads (e.g. made in memory), checking that the
    /// images are 28×28, that there is one label per image and that labels are below 10.
    pub fn from_idx(images: IdxImages, labels: Vec<u8>, split: Split, pad_to_32: bool) -> Result<Self, DataError> {
        let here = Path::new("<memory>");
        FashionMnist::build(images, labels, split, pad_to_32, here, here)
    }

    fn build(
        images: IdxImages,
        labels: Vec<u8>,
        split: Split,
        pad_to_32: bool,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self, DataError> {
        if (images.rows, images.cols) != (SIDE, SIDE) {
            return Err(idx_error(
                images_path,
                format!("images are {}×{}, expected {SIDE}×{SIDE}", images.rows, images.cols),
            ));
        }
        if images.pixels.len() != images.count * SIDE * SIDE {
            return Err(idx_error(
                images_path,
                format!("{} pixels for {} images of {SIDE}×{SIDE}", images.pixels.len(), images.count),
            ));
        }
        if labels.len() != images.count {
            return Err(DataError::Mismatch {
                images: images_path.to_path_buf(),
                labels: labels_path.to_path_buf(),
                message: format!("{} images but {} labels", images.count, labels.len()),
            });
        }
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= CLASS_NAMES.len()) {
            return Err(idx_error(labels_path, format!("label {l} of item {i} is not a class (0..=9)")));
        }
        Ok(FashionMnist { pixels: images.pixels.into(), labels: labels.into(), split, pad_to_32 })
    }

    /// The split it holds.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The raw label of every image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The caption of a class: `"a photo of a t-shirt/top"`, …, `"a photo of an ankle boot"`.
    ///
    /// # Panics
    /// If `label >= 10`.
    pub fn caption(label: usize) -> String {
        let name = CLASS_NAMES[label].to_lowercase();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("a photo of {article} {name}")
    }
}

impl Dataset for FashionMnist {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> Sample {
        assert!(index < self.len(), "fashion-mnist index {index} out of range (len {})", self.len());
        let src = &self.pixels[index * SIDE * SIDE..(index + 1) * SIDE * SIDE];
        let size = self.size();
        let pad = (size - SIDE) / 2;
        let mut image = vec![-1.0f32; size * size];
        for (y, row) in src.chunks_exact(SIDE).enumerate() {
            let dst = &mut image[(y + pad) * size + pad..(y + pad) * size + pad + SIDE];
            for (d, &p) in dst.iter_mut().zip(row) {
                *d = p as f32 / 127.5 - 1.0;
            }
        }
        let label = self.labels[index] as usize;
        let complexity = Complexity { objects: 1, edge_density: edge_density(&image, 1, size) };
        Sample { image, label, caption: FashionMnist::caption(label), complexity, objects: Vec::new() }
    }

    fn channels(&self) -> usize {
        1
    }

    fn size(&self) -> usize {
        if self.pad_to_32 {
            32
        } else {
            SIDE
        }
    }

    fn num_classes(&self) -> usize {
        CLASS_NAMES.len()
    }

    fn class_names(&self) -> Vec<String> {
        CLASS_NAMES.iter().map(|s| s.to_string()).collect()
    }

    fn name(&self) -> &str {
        "fashion-mnist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_headers() {
        let p = Path::new("x");
        let img = parse_idx_images(&idx(IMAGES_MAGIC, &[2, 1, 3], &[1, 2, 3, 4, 5, 6]), p).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 1, 3));
        assert_eq!(img.pixels, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(parse_idx_labels(&idx(LABELS_MAGIC, &[3], &[7, 8, 9]), p).unwrap(), vec![7, 8, 9]);
    }

    #[test]
    fn rejects_bad_headers() {
        let p = Path::new("/data/bad-file");
        let e = parse_idx_images(&idx(LABELS_MAGIC, &[1], &[0]), p).unwrap_err().to_string();
        assert!(e.contains("/data/bad-file") && e.contains("0x00000801") && e.contains("0x00000803"), "{e}");
        let e = parse_idx_images(&[0, 0, 8], p).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let e = parse_idx_images(&idx(IMAGES_MAGIC, &[2, 2], &[]), p).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let e = parse_idx_labels(&idx(LABELS_MAGIC, &[4], &[1, 2, 3]), p).unwrap_err().to_string();
        assert!(e.contains("header says 4 bytes") && e.contains("holds 3"), "{e}");
    }

    #[test]
    fn captions_use_articles() {
        assert_eq!(FashionMnist::caption(0), "a photo of a t-shirt/top");
        assert_eq!(FashionMnist::caption(9), "a photo of an ankle boot");
    }
}
