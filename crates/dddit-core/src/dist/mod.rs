//! Data parallelism: one process per device, gradients averaged through LibTorch's own
//! collectives (c10d's `ProcessGroupGloo` on CPU tensors, `ProcessGroupNCCL` on CUDA tensors),
//! reached through `csrc/dist.cpp`, as PyTorch's DDP reaches them.
//!
//! A process learns its place from the launcher's environment ([`Launch::from_env`]: torchrun's
//! `RANK`/`WORLD_SIZE`/`LOCAL_RANK`/`MASTER_ADDR`/`MASTER_PORT`, or Slurm's `SLURM_PROCID`/
//! `SLURM_NTASKS`/`SLURM_LOCALID` with `MASTER_ADDR`/`MASTER_PORT` from the job script),
//! joins the group once ([`init`]), and from then on the optimiser ([`crate::optim`]) averages
//! every gradient across ranks before it steps, and the trainer reads its share of each global
//! batch. Only the LibTorch backend (`tch` feature) has collectives; elsewhere [`init`] fails
//! with a clear error and a single process runs as before.

use std::sync::OnceLock;
use std::time::Duration;

/// What can go wrong when joining or using a process group.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The launcher's environment is incomplete or inconsistent.
    #[error("data-parallel launch: {0}")]
    Env(String),
    /// This build or backend has no collectives of the kind asked for.
    #[error("data parallelism: {0}")]
    Unsupported(String),
    /// c10d reported an error (rendezvous, timeout, a rank that died).
    #[error("c10d: {0}")]
    Collective(String),
}

/// Set (to anything but `0`), a launch of one process still joins a process group and runs
/// every collective: a check of the collectives (NCCL included) on a machine with one device.
pub const ALONE_ENV: &str = "DDDIT_DIST_ALONE";

/// Where this process stands in a data-parallel launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// This process's rank, `0..world`.
    pub rank: usize,
    /// The number of processes.
    pub world: usize,
    /// The rank among the processes of this host: the CUDA device it uses.
    pub local_rank: usize,
    /// Host of rank 0's rendezvous store.
    pub master_addr: String,
    /// Port of rank 0's rendezvous store.
    pub master_port: u16,
    /// Which launcher's variables were read (`torchrun` or `slurm`).
    pub source: &'static str,
}

impl Launch {
    /// The launch described by the environment: torchrun's variables when `WORLD_SIZE` is set,
    /// else Slurm's when `SLURM_NTASKS` is more than 1 (a job of one task, such as one element
    /// of a sweep's job array, is a single process). `None` when neither applies or the world
    /// has one process (unless [`ALONE_ENV`] is set: then a world of one joins a group too).
    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`Launch::from_env`] over any variable lookup (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let num = |k: &str| -> Result<Option<usize>, DistError> {
            var(k)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| DistError::Env(format!("{k}={v:?} is not a whole number")))
                })
                .transpose()
        };
        let (source, rank, world, local) = if let Some(world) = num("WORLD_SIZE")? {
            let rank = num("RANK")?.ok_or_else(|| DistError::Env("WORLD_SIZE is set but RANK is not".into()))?;
            ("torchrun", rank, world, num("LOCAL_RANK")?.unwrap_or(rank))
        } else if let Some(world) = num("SLURM_NTASKS")?.filter(|&n| n > 1) {
            let rank = num("SLURM_PROCID")?
                .ok_or_else(|| DistError::Env("SLURM_NTASKS is set but SLURM_PROCID is not".into()))?;
            ("slurm", rank, world, num("SLURM_LOCALID")?.unwrap_or(0))
        } else {
            return Ok(None);
        };
        if world == 0 || rank >= world {
            return Err(DistError::Env(format!("rank {rank} is not below the world size {world} ({source})")));
        }
        // A world of one needs no collectives, unless asked for (a check of the collectives on
        // a machine with one GPU: NCCL refuses two ranks on one device).
        if world == 1 && var(ALONE_ENV).is_none_or(|v| v.trim() == "0") {
            return Ok(None);
        }
        let master_addr = var("MASTER_ADDR").ok_or_else(|| {
            DistError::Env(format!(
                "MASTER_ADDR is not set: the host of rank 0 ({source}; in a Slurm job, e.g. \
                 `export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)`)"
            ))
        })?;
        let port = var("MASTER_PORT").ok_or_else(|| DistError::Env("MASTER_PORT is not set".into()))?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| DistError::Env(format!("MASTER_PORT={port:?} is not a port number")))?;
        Ok(Some(Launch { rank, world, local_rank: local, master_addr, master_port, source }))
    }
}

/// Which collectives a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collectives {
    /// gloo, for CPU tensors.
    Gloo,
    /// NCCL, for CUDA tensors.
    Nccl,
}

/// A joined process group.
pub struct ProcessGroup {
    #[cfg(feature = "tch")]
    ptr: std::ptr::NonNull<std::ffi::c_void>,
    /// This process's rank.
    pub rank: usize,
    /// The number of processes.
    pub world: usize,
    /// The collectives in use.
    pub collectives: Collectives,
}

/// Gradients are averaged in buckets of this many bytes (PyTorch DDP's default is 25 MiB).
pub const BUCKET_BYTES: usize = 25 << 20;

static GROUP: OnceLock<ProcessGroup> = OnceLock::new();

/// Joins the process group of `launch` for the rest of the process (every rank must call it;
/// rank 0 serves the rendezvous store). `timeout` bounds every collective, so a rank that dies
/// makes the others fail instead of hang.
pub fn init(launch: &Launch, collectives: Collectives, timeout: Duration) -> Result<&'static ProcessGroup, DistError> {
    if GROUP.get().is_some() {
        return Err(DistError::Unsupported("the process group is already joined".into()));
    }
    let g = ProcessGroup::join(launch, collectives, timeout)?;
    let _ = GROUP.set(g);
    Ok(GROUP.get().expect("just set"))
}

/// The joined process group, if any.
pub fn group() -> Option<&'static ProcessGroup> {
    GROUP.get()
}

/// This process's rank (0 without a group).
pub fn rank() -> usize {
    group().map_or(0, |g| g.rank)
}

/// The number of processes (1 without a group).
pub fn world() -> usize {
    group().map_or(1, |g| g.world)
}

/// Whether this process writes shared outputs (checkpoints, metrics, results): rank 0.
pub fn is_main() -> bool {
    rank() == 0
}

/// Rank 0's `value` on every rank (`value` itself without a group): a decision every rank must
/// follow, made once.
pub fn from_main(value: usize) -> Result<usize, DistError> {
    let Some(g) = group() else { return Ok(value) };
    let mut v = [if g.rank == 0 { value as f64 } else { 0.0 }];
    g.sum_f64(&mut v)?; // exact: values below 2^53
    Ok(v[0] as usize)
}

/// How many ranks say `flag` (0 or 1 without a group).
pub fn count(flag: bool) -> Result<usize, DistError> {
    let Some(g) = group() else { return Ok(usize::from(flag)) };
    let mut v = [f64::from(u8::from(flag))];
    g.sum_f64(&mut v)?;
    Ok(v[0] as usize)
}

/// Returns once every rank has called it (at once without a group).
pub fn barrier() -> Result<(), DistError> {
    group().map_or(Ok(()), ProcessGroup::barrier)
}

/// The slice `[begin, end)` of `n` items that `rank` of `world` takes: contiguous, in rank
/// order, sizes differing by at most one (the first `n % world` ranks take one more).
pub fn shard(n: usize, rank: usize, world: usize) -> (usize, usize) {
    let (q, r) = (n / world, n % world);
    let begin = rank * q + rank.min(r);
    (begin, begin + q + usize::from(rank < r))
}

/// Without LibTorch no group can be joined ([`init`] fails), so these are never reached.
#[cfg(not(feature = "tch"))]
impl ProcessGroup {
    fn join(_: &Launch, _: Collectives, _: Duration) -> Result<ProcessGroup, DistError> {
        Err(Self::unsupported())
    }

    fn unsupported() -> DistError {
        DistError::Unsupported(
            "this build has no collectives: data parallelism needs LibTorch (build with `--features tch`)".into(),
        )
    }

    /// The mean over ranks of each tensor (LibTorch builds only).
    pub fn average(&self, _: Vec<crate::prelude::Tensor<1>>) -> Result<Vec<crate::prelude::Tensor<1>>, DistError> {
        Err(Self::unsupported())
    }

    /// Sums `values` across ranks (LibTorch builds only).
    pub fn sum_f64(&self, _: &mut [f64]) -> Result<(), DistError> {
        Err(Self::unsupported())
    }

    /// Every rank's tensor concatenated along dimension 0 (LibTorch builds only).
    pub fn all_gather<const D: usize>(
        &self,
        _: crate::prelude::Tensor<D>,
    ) -> Result<crate::prelude::Tensor<D>, DistError> {
        Err(Self::unsupported())
    }

    /// Every rank's bytes in rank order (LibTorch builds only).
    pub fn all_gather_bytes(&self, _: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        Err(Self::unsupported())
    }

    /// Returns once every rank has called it (LibTorch builds only).
    pub fn barrier(&self) -> Result<(), DistError> {
        Err(Self::unsupported())
    }
}

#[cfg(feature = "tch")]
mod libtorch;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>, DistError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn torchrun_variables() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "29500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.master_port, l.source), (3, 4, 1, 29500, "torchrun"));
        assert_eq!(l.master_addr, "node7");
    }

    #[test]
    fn slurm_variables_and_single_processes() {
        let l = launch(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_LOCALID", "1"),
            ("MASTER_ADDR", "a"),
            ("MASTER_PORT", "1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.source), (1, 2, 1, "slurm"));
        // One task of a job array, one torchrun process, nothing at all: a single process.
        assert_eq!(launch(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")]).unwrap(), None);
        assert_eq!(launch(&[("RANK", "0"), ("WORLD_SIZE", "1")]).unwrap(), None);
        assert_eq!(launch(&[]).unwrap(), None);
        // Unless a group of one is asked for (a check of the collectives on one device).
        let alone = [("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "5")];
        assert_eq!(launch(&[alone.as_slice(), &[(ALONE_ENV, "0")]].concat()).unwrap(), None);
        let l = launch(&[alone.as_slice(), &[(ALONE_ENV, "1")]].concat()).unwrap().unwrap();
        assert_eq!((l.rank, l.world, l.master_port), (0, 1, 5));
    }

    #[test]
    fn without_a_group_the_collectives_are_the_process_alone() {
        assert!(group().is_none());
        assert_eq!(from_main(7).unwrap(), 7);
        assert_eq!((count(true).unwrap(), count(false).unwrap()), (1, 0));
        barrier().unwrap();
    }

    #[test]
    fn bad_launches_are_named() {
        let e = launch(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "a"), ("MASTER_PORT", "1")]);
        assert!(e.unwrap_err().to_string().contains("rank 2 is not below the world size 2"));
        let e = launch(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "1")]);
        assert!(e.unwrap_err().to_string().contains("MASTER_ADDR is not set"));
        let e = launch(&[("RANK", "x"), ("WORLD_SIZE", "2")]);
        assert!(e.unwrap_err().to_string().contains("RANK=\"x\" is not a whole number"));
        let e = launch(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "a"), ("MASTER_PORT", "99999")]);
        assert!(e.unwrap_err().to_string().contains("not a port number"));
    }

    proptest::proptest! {
        /// The shards of every rank tile `0..n` in order, sizes within one of each other.
        #[test]
        fn shards_tile_the_batch(n in 0usize..1000, world in 1usize..17) {
            let mut next = 0;
            let mut sizes = vec![];
            for r in 0..world {
                let (b, e) = shard(n, r, world);
                proptest::prop_assert_eq!(b, next);
                sizes.push(e - b);
                next = e;
            }
            proptest::prop_assert_eq!(next, n);
            proptest::prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }
}
