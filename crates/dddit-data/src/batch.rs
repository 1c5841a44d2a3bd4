//! Batches of tensors, and a deterministic, resumable shuffled order.
//!
//! [`BatchOrder`] gives the indices of each batch: a permutation of the data set per epoch,
//! drawn from `(seed, epoch)`, walked in steps of `batch_size`. Its [`Position`] (epoch, offset)
//! is all a checkpoint needs to continue exactly where a run stopped. [`Batcher`] turns the
//! indices into tensors, building the samples in parallel with rayon; its optional horizontal
//! flip is drawn from `(seed, epoch, index)`, so a batch is the same whenever it is rebuilt.
//!
//! ```
//! use dddit_data::{BatchOrderConfig, BatcherConfig, Dataset, ShapesConfig};
//! use std::sync::Arc;
//! let device = dddit_core::testing::device();
//! let shapes = Arc::new(ShapesConfig { size: 16, len: 10, ..Default::default() }.init().unwrap());
//! let batcher = BatcherConfig::default().init(shapes.clone(), &device);
//! let mut order = BatchOrderConfig::new(4, 0).init(shapes.len()).unwrap();
//! let b = order.next_batch().unwrap();
//! let batch = batcher.batch(&b.indices, b.epoch);
//! assert_eq!(batch.x.dims(), [4, 3, 16, 16]);
//! ```

use crate::rng::SplitMix64;
use crate::{DataError, Dataset, Sample};
use burn::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const FLIP_TAG: u64 = 0x464C_4950; // "FLIP"
const ORDER_TAG: u64 = 0x004F_5244_4552; // "ORDER"

/// Settings of a [`Batcher`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatcherConfig {
    /// Mirror each sample left–right with probability ½ (see [`Sample::hflip`]: shapes keep
    /// true captions).
    pub hflip: bool,
    /// Seed of the flips; the flip of a sample depends on `(seed, epoch, index)` only.
    pub seed: u64,
}

impl BatcherConfig {
    /// Settings with or without flips, seeded.
    pub fn new(hflip: bool, seed: u64) -> Self {
        BatcherConfig { hflip, seed }
    }

    /// A batcher of `dataset` that puts its tensors on `device`.
    pub fn init<D: Dataset + ?Sized>(&self, dataset: Arc<D>, device: &Device) -> Batcher<D> {
        Batcher { dataset, config: self.clone(), device: device.clone() }
    }
}

/// A batch of samples as tensors.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Images `[batch, C, H, W]` in `[-1, 1]`.
    pub x: Tensor<4>,
    /// Labels `[batch]`.
    pub y: Tensor<1, Int>,
    /// One caption per sample.
    pub captions: Vec<String>,
    /// `[batch, 2]`: object count (as a float) and edge density of each sample.
    pub complexity: Tensor<2>,
    /// The data-set index of each sample.
    pub indices: Vec<usize>,
    /// Whether each sample was mirrored.
    pub flipped: Vec<bool>,
}

/// Turns lists of indices of a data set into [`Batch`]es on a device.
#[derive(Clone, Debug)]
pub struct Batcher<D: Dataset + ?Sized> {
    dataset: Arc<D>,
    config: BatcherConfig,
    device: Device,
}

impl<D: Dataset + ?Sized> Batcher<D> {
    /// The data set.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }

    /// Its settings.
    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// Whether sample `index` is mirrored in `epoch` (always false without `hflip`).
    pub fn is_flipped(&self, epoch: usize, index: usize) -> bool {
        self.config.hflip && SplitMix64::from_parts(&[self.config.seed, FLIP_TAG, epoch as u64, index as u64]).coin()
    }

    /// The samples of `indices` for `epoch`, flipped where drawn, built in parallel.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn samples(&self, indices: &[usize], epoch: usize) -> Vec<Sample> {
        let (c, s) = (self.dataset.channels(), self.dataset.size());
        indices
            .par_iter()
            .map(|&i| {
                let mut sample = self.dataset.get(i);
                if self.is_flipped(epoch, i) {
                    sample.hflip(c, s);
                }
                sample
            })
            .collect()
    }

    /// The batch of `indices` for `epoch`.
    ///
    /// # Panics
    /// If `indices` is empty or an index is out of range.
    pub fn batch(&self, indices: &[usize], epoch: usize) -> Batch {
        assert!(!indices.is_empty(), "a batch needs at least one index");
        let (c, s) = (self.dataset.channels(), self.dataset.size());
        let samples = self.samples(indices, epoch);
        let b = samples.len();
        let mut pixels = Vec::with_capacity(b * c * s * s);
        let mut labels = Vec::with_capacity(b);
        let mut complexity = Vec::with_capacity(2 * b);
        let mut captions = Vec::with_capacity(b);
        for sample in samples {
            pixels.extend_from_slice(&sample.image);
            labels.push(sample.label as i64);
            complexity.push(sample.complexity.objects as f32);
            complexity.push(sample.complexity.edge_density);
            captions.push(sample.caption);
        }
        let flipped = indices.iter().map(|&i| self.is_flipped(epoch, i)).collect();
        Batch {
            x: Tensor::<4>::from_data(TensorData::new(pixels, [b, c, s, s]), &self.device),
            y: Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &self.device),
            captions,
            complexity: Tensor::<2>::from_data(TensorData::new(complexity, [b, 2]), &self.device),
            indices: indices.to_vec(),
            flipped,
        }
    }
}

/// Where a [`BatchOrder`] stands: the next batch starts at `offset` in the order of `epoch`.
///
/// Save it with a checkpoint and give it back to [`BatchOrder::set_position`] to continue with
/// exactly the batches the interrupted run would have seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Samples of the epoch already handed out.
    pub offset: usize,
}

/// Settings of a [`BatchOrder`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchOrderConfig {
    /// Samples per batch (≥ 1).
    pub batch_size: usize,
    /// Seed of the shuffles; the order of an epoch depends on `(seed, epoch)` only.
    pub seed: u64,
    /// Shuffle each epoch (else the order is `0..len` every epoch).
    pub shuffle: bool,
    /// Skip the last, short batch of an epoch.
    pub drop_last: bool,
}

impl Default for BatchOrderConfig {
    fn default() -> Self {
        BatchOrderConfig { batch_size: 64, seed: 0, shuffle: true, drop_last: false }
    }
}

impl BatchOrderConfig {
    /// Shuffled batches of `batch_size`, keeping the last short batch.
    pub fn new(batch_size: usize, seed: u64) -> Self {
        BatchOrderConfig { batch_size, seed, ..Default::default() }
    }

    /// The same with or without dropping the last short batch.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The same with or without shuffling.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The order over a data set of `len` samples, at epoch 0, offset 0.
    pub fn init(&self, len: usize) -> Result<BatchOrder, DataError> {
        if self.batch_size == 0 {
            return Err(DataError::InvalidConfig("batch_size must be at least 1".into()));
        }
        let mut order = BatchOrder { config: self.clone(), len, position: Position::default(), cache: None };
        order.normalise();
        Ok(order)
    }
}

/// The indices of one batch, with where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedBatch {
    /// Epoch of the batch.
    pub epoch: usize,
    /// Offset of its first sample in the epoch's order.
    pub offset: usize,
    /// Data-set indices.
    pub indices: Vec<usize>,
}

/// A deterministic, resumable sequence of batches over epochs. It is an endless [`Iterator`]
/// (empty when no batch fits: an empty data set, or `drop_last` with fewer samples than a
/// batch).
#[derive(Clone, Debug)]
pub struct BatchOrder {
    config: BatchOrderConfig,
    len: usize,
    position: Position,
    cache: Option<(usize, Vec<usize>)>,
}

impl BatchOrder {
    /// Its settings.
    pub fn config(&self) -> &BatchOrderConfig {
        &self.config
    }

    /// Size of the data set it orders.
    pub fn dataset_len(&self) -> usize {
        self.len
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.config.drop_last {
            self.len / self.config.batch_size
        } else {
            self.len.div_ceil(self.config.batch_size)
        }
    }

    /// Samples handed out per epoch (`len`, or less with `drop_last`).
    fn epoch_samples(&self) -> usize {
        if self.config.drop_last {
            self.batches_per_epoch() * self.config.batch_size
        } else {
            self.len
        }
    }

    /// The order of the samples in `epoch`: a permutation of `0..len`.
    pub fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.len).collect();
        if self.config.shuffle {
            let mut rng = SplitMix64::from_parts(&[self.config.seed, ORDER_TAG, epoch as u64]);
            for i in (1..perm.len()).rev() {
                let j = rng.below(i + 1);
                perm.swap(i, j);
            }
        }
        perm
    }

    /// Where the next batch starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Moves to `position` (from [`BatchOrder::position`] of an earlier run with the same
    /// settings and data-set size). An offset at the end of an epoch moves to the next epoch.
    pub fn set_position(&mut self, position: Position) -> Result<(), DataError> {
        if position.offset > self.len {
            return Err(DataError::InvalidConfig(format!(
                "batch-order position offset {} is beyond the data set ({} samples)",
                position.offset, self.len
            )));
        }
        self.position = position;
        self.normalise();
        Ok(())
    }

    /// The same order moved to `position` (see [`BatchOrder::set_position`]).
    pub fn with_position(mut self, position: Position) -> Result<Self, DataError> {
        self.set_position(position)?;
        Ok(self)
    }

    /// The next batch, and the position moves past it; `None` when no batch fits.
    pub fn next_batch(&mut self) -> Option<OrderedBatch> {
        if self.batches_per_epoch() == 0 {
            return None;
        }
        let Position { epoch, offset } = self.position;
        if self.cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.cache = Some((epoch, self.epoch_order(epoch)));
        }
        let perm = &self.cache.as_ref().expect("cached above").1;
        let end = (offset + self.config.batch_size).min(self.len);
        let indices = perm[offset..end].to_vec();
        self.position.offset = end;
        self.normalise();
        Some(OrderedBatch { epoch, offset, indices })
    }

    /// Rolls over to the next epoch when the current one has no batch left.
    fn normalise(&mut self) {
        if self.batches_per_epoch() > 0 && self.position.offset >= self.epoch_samples() {
            self.position = Position { epoch: self.position.epoch + 1, offset: 0 };
        }
    }
}

impl Iterator for BatchOrder {
    type Item = OrderedBatch;

    fn next(&mut self) -> Option<OrderedBatch> {
        self.next_batch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_once() {
        let mut order = BatchOrderConfig::new(4, 9).init(10).unwrap();
        assert_eq!(order.batches_per_epoch(), 3);
        for epoch in 0..3 {
            let mut seen = Vec::new();
            for k in 0..3 {
                let b = order.next_batch().unwrap();
                assert_eq!((b.epoch, b.offset), (epoch, 4 * k));
                seen.extend(b.indices);
            }
            assert_eq!(order.position(), Position { epoch: epoch + 1, offset: 0 });
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn drop_last_and_degenerate_orders() {
        let mut order = BatchOrderConfig::new(4, 0).with_drop_last(true).init(10).unwrap();
        assert_eq!(order.batches_per_epoch(), 2);
        let sizes: Vec<(usize, usize)> = order.by_ref().take(4).map(|b| (b.epoch, b.indices.len())).collect();
        assert_eq!(sizes, vec![(0, 4), (0, 4), (1, 4), (1, 4)]);
        assert!(BatchOrderConfig::new(4, 0).with_drop_last(true).init(3).unwrap().next_batch().is_none());
        assert!(BatchOrderConfig::new(4, 0).init(0).unwrap().next_batch().is_none());
        assert!(BatchOrderConfig::new(0, 0).init(10).is_err());
        let plain = BatchOrderConfig::new(3, 0).with_shuffle(false).init(5).unwrap();
        assert_eq!(plain.epoch_order(7), vec![0, 1, 2, 3, 4]);
    }
}
