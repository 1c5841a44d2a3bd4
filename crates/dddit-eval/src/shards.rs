//! An evaluation's sampling split over the ranks of a data-parallel launch: rank `r` of `w`
//! samples the batches `r, r + w, r + 2w, …` and every rank gets all of them back in order.
//! A batch's seed is its index, so the images are the ones a single process draws; the
//! quality metrics are then computed once, on rank 0.

use crate::compute::ComputeAccumulator;
use crate::EvalError;
use serde::{Deserialize, Serialize};

/// One sampled batch: its place among the batches, its images, what each sample cost.
#[derive(Debug)]
pub struct Batch {
    /// Index of the batch (its sampling seed).
    pub index: usize,
    /// Images, `[b, c, h, w]` row-major.
    pub images: Vec<f32>,
    /// GFLOPs each sample of the batch spent over its trajectory.
    pub gflops: Vec<f64>,
    /// The batch's compute and routing statistics by timestep range.
    pub compute: ComputeAccumulator,
}

/// Everything of a [`Batch`] but its images, as JSON.
#[derive(Serialize, Deserialize)]
struct Meta {
    index: usize,
    images: usize,
    gflops: Vec<f64>,
    compute: ComputeAccumulator,
}

/// The batches of `n` that `rank` of `world` samples.
pub fn mine(n: usize, rank: usize, world: usize) -> impl Iterator<Item = usize> {
    (rank..n).step_by(world.max(1))
}

/// `[u64 meta length][meta JSON][f32 images, little-endian]` per batch.
fn encode(batches: &[Batch]) -> Result<Vec<u8>, EvalError> {
    let mut out = Vec::new();
    for b in batches {
        let meta =
            Meta { index: b.index, images: b.images.len(), gflops: b.gflops.clone(), compute: b.compute.clone() };
        let json = serde_json::to_vec(&meta).map_err(|e| EvalError::Invalid(format!("encoding a batch: {e}")))?;
        out.extend((json.len() as u64).to_le_bytes());
        out.extend(json);
        out.extend(b.images.iter().flat_map(|v| v.to_le_bytes()));
    }
    Ok(out)
}

fn decode(mut bytes: &[u8]) -> Result<Vec<Batch>, EvalError> {
    let bad = |what: &str| EvalError::Invalid(format!("a rank's samples arrived damaged ({what})"));
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at_checked(8).ok_or_else(|| bad("length"))?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let (json, rest) = rest.split_at_checked(len).ok_or_else(|| bad("metadata"))?;
        let meta: Meta = serde_json::from_slice(json).map_err(|_| bad("metadata"))?;
        let (raw, rest) = rest.split_at_checked(meta.images * 4).ok_or_else(|| bad("images"))?;
        let images = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        out.push(Batch { index: meta.index, images, gflops: meta.gflops, compute: meta.compute });
        bytes = rest;
    }
    Ok(out)
}

/// Every rank's batches, in index order; without a process group, `batches` as they are.
pub fn gather(batches: Vec<Batch>) -> Result<Vec<Batch>, EvalError> {
    let Some(group) = dddit_core::dist::group() else { return Ok(batches) };
    let all = group
        .all_gather_bytes(&encode(&batches)?)
        .map_err(|e| EvalError::Invalid(format!("gathering the samples of every rank: {e}")))?;
    let mut out = Vec::with_capacity(batches.len() * group.world);
    for bytes in all {
        out.extend(decode(&bytes)?);
    }
    out.sort_by_key(|b| b.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The ranks' batches tile `0..n` exactly once, whatever the world size.
        #[test]
        fn ranks_share_every_batch_once(n in 0usize..200, world in 1usize..9) {
            let mut seen: Vec<usize> = (0..world).flat_map(|r| mine(n, r, world)).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn batches_survive_the_wire() {
        let dev = dddit_core::testing::device();
        let cfg = dddit_core::dit::DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
        let model = dddit_routers::build(&"kind = \"dense\"".parse::<toml::Table>().unwrap(), &cfg, &dev).unwrap();
        let compute = ComputeAccumulator::new(model.as_ref(), &crate::sample::SampleConfig::default());
        let b = |index: usize, n: usize| Batch {
            index,
            images: (0..n).map(|i| i as f32 * 0.5 - 3.25).collect(),
            gflops: vec![index as f64 + 0.125; 2],
            compute: compute.clone(),
        };
        let sent = vec![b(3, 5), b(7, 0), b(11, 64)];
        let got = decode(&encode(&sent).unwrap()).unwrap();
        assert_eq!(got.len(), 3);
        for (s, g) in sent.iter().zip(&got) {
            assert_eq!((s.index, &s.images, &s.gflops), (g.index, &g.images, &g.gflops));
        }
        assert!(decode(&encode(&sent).unwrap()[..20]).is_err(), "a cut message is refused");
        // Without a process group, gather hands the batches back.
        assert_eq!(gather(sent).unwrap().len(), 3);
    }
}
