//! CUDA graphs on LibTorch: capture a region of burn ops once, replay it with one launch.
//!
//! At batch 1 a GPU forward is bound by the host: every op costs a few microseconds of
//! dispatch (`results/gpu/routers.md`), far more than its kernel. A graph records the kernels
//! of a region (through `at::cuda::CUDAGraph`, `csrc/fused.cpp`) and replays them without the
//! host. What may run inside a capture: device ops only. A host read (`into_data`), an upload
//! from host memory (`Tensor::from_data`) or a shape that depends on device values cannot be
//! recorded, and the capture fails. A router's decision read on the host can be replayed from
//! an eager run instead ([`crate::routing::tape`]): one graph per decision, valid for the inputs
//! that make that decision (`dynamic-width`'s depends on the timestep only). Token-skip's
//! `argwhere` sizes a tensor from device values and stays eager. Tensors created during the
//! capture live in the graph's memory pool and every replay rewrites them.
//!
//! Needs the `tch` feature and a build with the CUDA runtime's headers
//! (`DDDIT_CUDA_INCLUDE`, set by `scripts/build-gpu.sh`); [`available`] says whether this
//! build has them.

// The C calls into the shim (csrc/fused.cpp), as in fused/libtorch.rs.
#![allow(unsafe_code)]

use burn::prelude::*;

#[cfg(feature = "tch")]
mod ffi {
    extern "C" {
        pub fn dddit_graph_available() -> i32;
        pub fn dddit_graph_begin(device: i64, out: *mut *mut std::ffi::c_void) -> i32;
        pub fn dddit_graph_end(h: *mut std::ffi::c_void) -> i32;
        pub fn dddit_graph_replay(h: *mut std::ffi::c_void) -> i32;
        pub fn dddit_graph_free(h: *mut std::ffi::c_void);
        pub fn dddit_copy_(dst: *mut torch_sys::C_tensor, src: *mut torch_sys::C_tensor) -> i32;
    }
}

/// Whether this build can capture CUDA graphs.
pub fn available() -> bool {
    #[cfg(feature = "tch")]
    {
        // SAFETY: a C function without arguments.
        unsafe { ffi::dddit_graph_available() == 1 }
    }
    #[cfg(not(feature = "tch"))]
    {
        false
    }
}

#[cfg(feature = "tch")]
fn last_error() -> String {
    crate::fused::libtorch::last_error()
}

/// A captured CUDA graph.
pub struct CudaGraph {
    #[cfg(feature = "tch")]
    handle: *mut std::ffi::c_void,
}

impl CudaGraph {
    /// Captures the device work of `f` on CUDA device `index` (nothing runs: the kernels are
    /// recorded). Returns the graph and what `f` returned, whose tensors each replay rewrites.
    /// A panic inside `f` (an op that cannot be captured) ends the capture and is returned as
    /// an error.
    pub fn capture<R>(index: usize, f: impl FnOnce() -> R) -> Result<(CudaGraph, R), String> {
        #[cfg(feature = "tch")]
        {
            let mut handle = std::ptr::null_mut();
            // SAFETY: `handle` is written by the shim on success.
            if unsafe { ffi::dddit_graph_begin(index as i64, &mut handle) } != 0 {
                return Err(last_error());
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            // SAFETY: `handle` came from dddit_graph_begin; end restores the stream either way.
            let ended = unsafe { ffi::dddit_graph_end(handle) };
            let g = CudaGraph { handle };
            match r {
                Err(p) => {
                    let msg =
                        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                    Err(format!("an op could not be captured: {}", msg.unwrap_or_default()))
                }
                Ok(_) if ended != 0 => Err(last_error()),
                Ok(r) => Ok((g, r)),
            }
        }
        #[cfg(not(feature = "tch"))]
        {
            let _ = (index, f);
            Err("CUDA graphs need the tch feature".into())
        }
    }

    /// Launches the recorded kernels once, on the current stream.
    pub fn replay(&self) -> Result<(), String> {
        #[cfg(feature = "tch")]
        {
            // SAFETY: a live handle from a finished capture.
            if unsafe { ffi::dddit_graph_replay(self.handle) } != 0 {
                return Err(last_error());
            }
            Ok(())
        }
        #[cfg(not(feature = "tch"))]
        {
            Err("CUDA graphs need the tch feature".into())
        }
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        #[cfg(feature = "tch")]
        // SAFETY: the handle is owned by this value and freed once.
        unsafe {
            ffi::dddit_graph_free(self.handle)
        }
    }
}

/// `dst ← src` in place, on LibTorch tensors without autodiff (a static buffer a graph reads,
/// refilled between replays, or written by the graph itself). `Err` elsewhere.
pub fn copy_into<const D: usize>(dst: &Tensor<D>, src: &Tensor<D>) -> Result<(), String> {
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    {
        use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensorKind};
        let raw = |t: &Tensor<D>| {
            let d = t.clone().into_dispatch();
            match (d.kind, d.autodiff) {
                (DispatchTensorKind::LibTorch(BackendTensor::Float(t)), DispatchAutodiffContext::Disabled) => Some(t),
                _ => None,
            }
        };
        let (Some(d), Some(s)) = (raw(dst), raw(src)) else {
            return Err("copy_into needs LibTorch float tensors without autodiff".into());
        };
        // SAFETY: both pointers are live tch tensors for the duration of the call.
        if unsafe { ffi::dddit_copy_(d.tensor.as_ptr() as *mut _, s.tensor.as_ptr() as *mut _) } != 0 {
            return Err(last_error());
        }
        Ok(())
    }
    #[cfg(not(feature = "tch"))]
    {
        let _ = (dst, src);
        Err("copy_into needs the tch feature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::device;

    /// Where graphs cannot exist (the default flex build, or LibTorch without the CUDA
    /// headers), capture and the in-place copy refuse with a message instead of pretending.
    #[test]
    fn refuses_where_unavailable() {
        let dev = device();
        let t = Tensor::<1>::zeros([2], &dev);
        if format!("{dev:?}").contains("Flex") {
            assert!(copy_into(&t, &t.clone()).is_err());
        }
        if !available() {
            assert!(CudaGraph::capture(0, || ()).is_err());
        }
    }
}
