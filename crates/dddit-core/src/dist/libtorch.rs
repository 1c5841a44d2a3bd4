//! [`ProcessGroup`] on LibTorch: c10d's process groups through `csrc/dist.cpp`.
// burn's LibTorch types are marked deprecated (see fused/libtorch.rs).
#![allow(unsafe_code, deprecated)]

use super::{Collectives, DistError, Launch, ProcessGroup, BUCKET_BYTES};
use crate::fused::libtorch::{from_tch, ptr, take, to_tch};
use crate::prelude::*;
use burn::backend::libtorch::TchTensor;
use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;
use torch_sys::C_tensor;

type P = *mut C_tensor;

extern "C" {
    fn dddit_dist_last_error() -> *const std::os::raw::c_char;
    fn dddit_dist_nccl_available() -> i32;
    #[allow(clippy::too_many_arguments)]
    fn dddit_dist_new(
        host: *const std::os::raw::c_char,
        port: i32,
        rank: i32,
        world: i32,
        nccl: i32,
        cuda_device: i32,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> i32;
    fn dddit_dist_free(g: *mut c_void);
    fn dddit_dist_average(g: *mut c_void, ts: *const P, n: i64, bucket_bytes: i64, out: *mut P) -> i32;
    fn dddit_dist_sum_f64(g: *mut c_void, values: *mut f64, n: i64) -> i32;
    fn dddit_dist_all_gather(g: *mut c_void, t: P, out: *mut P) -> i32;
    fn dddit_dist_barrier(g: *mut c_void) -> i32;
    fn dddit_dist_all_gather_bytes(g: *mut c_void, data: *const u8, n: i64, out: *mut u8) -> i32;
}

fn check(rc: i32) -> Result<(), DistError> {
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(dddit_dist_last_error()) }.to_string_lossy().into_owned();
    Err(DistError::Collective(msg))
}

fn tch<const D: usize>(t: &Tensor<D>) -> Result<TchTensor, DistError> {
    to_tch(t).ok_or_else(|| {
        DistError::Unsupported(
            "collectives take LibTorch float tensors without autodiff (a tch-cpu or tch-cuda device)".into(),
        )
    })
}

// SAFETY: a c10d process group is used from any thread in PyTorch (its collectives are
// thread-safe); dddit calls it from the training thread only.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl ProcessGroup {
    pub(super) fn join(
        launch: &Launch,
        collectives: Collectives,
        timeout: Duration,
    ) -> Result<ProcessGroup, DistError> {
        if collectives == Collectives::Nccl && unsafe { dddit_dist_nccl_available() } == 0 {
            return Err(DistError::Unsupported(
                "this build has no NCCL: build with scripts/build-gpu.sh (it unpacks NCCL's and the CUDA \
                 toolkit's headers and sets DDDIT_NCCL_INCLUDE; NCCL=0 leaves NCCL out)"
                    .into(),
            ));
        }
        let host = CString::new(launch.master_addr.clone())
            .map_err(|_| DistError::Env(format!("MASTER_ADDR {:?} holds a NUL byte", launch.master_addr)))?;
        let mut out = std::ptr::null_mut();
        check(unsafe {
            dddit_dist_new(
                host.as_ptr(),
                i32::from(launch.master_port),
                launch.rank as i32,
                launch.world as i32,
                i32::from(collectives == Collectives::Nccl),
                launch.local_rank as i32,
                timeout.as_millis().min(i64::MAX as u128) as i64,
                &mut out,
            )
        })?;
        let ptr = NonNull::new(out).ok_or_else(|| DistError::Collective("no process group returned".into()))?;
        Ok(ProcessGroup { ptr, rank: launch.rank, world: launch.world, collectives })
    }

    /// The mean over ranks of each tensor (gradients), in buckets of [`BUCKET_BYTES`] with
    /// every bucket in flight at once. New tensors; the inputs are left as they were.
    pub fn average(&self, tensors: Vec<Tensor<1>>) -> Result<Vec<Tensor<1>>, DistError> {
        if tensors.is_empty() {
            return Ok(tensors);
        }
        let ts = tensors.iter().map(tch).collect::<Result<Vec<_>, _>>()?;
        let ptrs: Vec<P> = ts.iter().map(ptr).collect();
        let mut out = vec![std::ptr::null_mut(); ptrs.len()];
        check(unsafe {
            dddit_dist_average(
                self.ptr.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len() as i64,
                BUCKET_BYTES as i64,
                out.as_mut_ptr(),
            )
        })?;
        Ok(out.into_iter().map(|p| from_tch(take(p))).collect())
    }

    /// Sums `values` across ranks, in place (losses to log, flags every rank must agree on).
    pub fn sum_f64(&self, values: &mut [f64]) -> Result<(), DistError> {
        check(unsafe { dddit_dist_sum_f64(self.ptr.as_ptr(), values.as_mut_ptr(), values.len() as i64) })
    }

    /// Every rank's `t` (one shape on every rank) concatenated along dimension 0 in rank order.
    pub fn all_gather<const D: usize>(&self, t: Tensor<D>) -> Result<Tensor<D>, DistError> {
        let tt = tch(&t)?;
        let mut out = std::ptr::null_mut();
        check(unsafe { dddit_dist_all_gather(self.ptr.as_ptr(), ptr(&tt), &mut out) })?;
        Ok(from_tch(take(out)))
    }

    /// Every rank's `bytes` (any length), in rank order: how serialised results travel.
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        let mut lens = vec![0.0; self.world];
        lens[self.rank] = bytes.len() as f64;
        self.sum_f64(&mut lens)?; // exact: lengths below 2^53
        let n = lens.iter().map(|&l| l as usize).max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(n, 0);
        let mut out = vec![0u8; n * self.world];
        // SAFETY: `padded` holds n bytes and `out` world · n, as the shim reads and writes.
        check(unsafe { dddit_dist_all_gather_bytes(self.ptr.as_ptr(), padded.as_ptr(), n as i64, out.as_mut_ptr()) })?;
        Ok(out.chunks(n).zip(&lens).map(|(c, &l)| c[..l as usize].to_vec()).collect())
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<(), DistError> {
        check(unsafe { dddit_dist_barrier(self.ptr.as_ptr()) })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the pointer came from dddit_dist_new and is freed once.
        unsafe { dddit_dist_free(self.ptr.as_ptr()) }
    }
}
