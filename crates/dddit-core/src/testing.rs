//! Helpers shared by tests (also used by the other dddit crates' tests).

use burn::prelude::*;

/// The default test device: the pure-Rust `flex` backend where compiled in, else the first
/// compiled-in backend.
pub fn device() -> Device {
    crate::device::DeviceSpec::default_spec().device().expect("a compiled-in backend")
}

/// Every CPU device compiled in: flex, and LibTorch's CPU with the `tch` feature; with
/// `DDDIT_TEST_CUDA=1` (on a GPU machine) also `tch-cuda:0`. Tests of backend-specific code
/// (the fused ops, the multi-tensor optimiser) run on each.
pub fn backend_devices() -> Vec<Device> {
    use crate::device::DeviceSpec;
    let mut v = vec![];
    if cfg!(feature = "flex") {
        v.push(DeviceSpec::Flex.device().expect("flex"));
    }
    if cfg!(feature = "tch") {
        v.push(DeviceSpec::TchCpu.device().expect("tch-cpu"));
        if std::env::var("DDDIT_TEST_CUDA").is_ok_and(|v| v == "1") {
            v.push(DeviceSpec::TchCuda(0).device().expect("tch-cuda:0"));
        }
    }
    v
}

/// Largest absolute element-wise difference.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// `max|a − b| / max|b|`: the relative error used by the parity tests.
pub fn rel_err<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(f32::MIN_POSITIVE);
    max_abs_diff(a, b) / scale
}

/// Serialises tests that draw random numbers: the backends' random generators are global to the
/// process, so a test asserting "same seed → same result" must not run while another test in the
/// same binary draws. Hold the guard for the whole test.
pub fn seeded(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    guard
}

/// CPU time this process has used so far (user + system), in seconds, from `/proc/self/stat`
/// (Linux); `None` elsewhere. Benchmarks print it beside wall time: it is less sensitive to
/// other processes on a shared machine.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ
}

/// Adds N(0, 0.1) noise to every parameter (`module.map(&mut Perturb)`), so that adaLN-Zero
/// blocks (and the zero-initialised final layer) stop being the identity and outputs depend on
/// which blocks ran. The new parameters are fresh leaves, so this works on an autodiff device too.
pub struct Perturb;

impl burn::module::ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, p: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        let v = p.val();
        let noise = Tensor::<D>::random(v.shape(), burn::tensor::Distribution::Normal(0.0, 0.1), &v.device());
        burn::module::Param::from_tensor((v + noise).detach())
    }
}
