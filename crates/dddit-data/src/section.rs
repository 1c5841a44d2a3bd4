//! The `[data]` table of a run file: which data set, and its reference and held-out splits.

use crate::{DataError, Dataset, FashionMnistConfig, ShapesConfig, Split};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `[data]` of a run file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSection {
    /// Procedural shapes.
    Shapes(ShapesConfig),
    /// Fashion-MNIST from the IDX files.
    FashionMnist(FashionMnistConfig),
}

/// What the model needs to know of a data set, known from its settings without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// Side of the square images.
    pub size: usize,
    /// Image channels.
    pub channels: usize,
    /// Number of classes.
    pub classes: usize,
}

impl DataSection {
    /// The images' size, channels and classes (what [`Dataset`] will report once built), so
    /// that the model and router can be checked even when the data cannot be read.
    pub fn shape(&self) -> DataShape {
        match self {
            DataSection::Shapes(c) => DataShape { size: c.size, channels: 3, classes: crate::ShapeKind::ALL.len() },
            DataSection::FashionMnist(c) => DataShape {
                size: if c.pad_to_32 { 32 } else { 28 },
                channels: 1,
                classes: crate::fashion_mnist::CLASS_NAMES.len(),
            },
        }
    }

    /// Every out-of-range setting, as (key below `[data]`, what is wrong), without reading
    /// any file; a missing or unreadable file is found by [`DataSection::init`].
    pub fn problems(&self) -> Vec<(String, String)> {
        match self {
            DataSection::Shapes(c) => c.problems(),
            DataSection::FashionMnist(_) => vec![],
        }
    }

    /// Builds the data set (the training data of a run).
    pub fn init(&self) -> Result<Arc<dyn Dataset>, DataError> {
        Ok(match self {
            DataSection::Shapes(c) => Arc::new(c.init()?),
            DataSection::FashionMnist(c) => Arc::new(c.init()?),
        })
    }

    /// The reference images generated samples are compared with: Fashion-MNIST's train split
    /// whatever split the run trained on, or the run's own shapes generator, at least `n` long
    /// (a procedural set can draw any index).
    pub fn reference(&self, n: usize) -> Result<Arc<dyn Dataset>, DataError> {
        Ok(match self {
            DataSection::FashionMnist(c) => Arc::new(FashionMnistConfig { split: Split::Train, ..c.clone() }.init()?),
            DataSection::Shapes(c) => Arc::new(ShapesConfig { len: c.len.max(n), ..c.clone() }.init()?),
        })
    }

    /// Held-out real images, never trained on: Fashion-MNIST's test split, or the shapes
    /// settings' held-out split ([`ShapesConfig::held_out`]), at least `max(n, 1000)` long.
    pub fn held_out(&self, n: usize) -> Result<Arc<dyn Dataset>, DataError> {
        Ok(match self {
            DataSection::FashionMnist(c) => Arc::new(FashionMnistConfig { split: Split::Test, ..c.clone() }.init()?),
            DataSection::Shapes(c) => Arc::new(c.held_out(c.len.max(1000).max(n)).init()?),
        })
    }
}
