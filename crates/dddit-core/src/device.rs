//! Run-time choice of backend and device (`--device flex`, `--device tch-cuda:0`, …).
//!
//! Backends are compiled in by Cargo features of `dddit-core` (`flex`, the default; `ndarray`;
//! `tch` for LibTorch on CPU and CUDA). Asking for one that was not compiled in is an error that
//! lists those that were.

use crate::error::CoreError;
use burn::prelude::*;
use std::fmt;
use std::str::FromStr;

/// A device named on the command line or in a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// burn's pure-Rust CPU backend (`flex`).
    Flex,
    /// burn's ndarray CPU backend (`ndarray`, deprecated upstream).
    Ndarray,
    /// LibTorch on the CPU (`tch-cpu`).
    TchCpu,
    /// LibTorch on CUDA device `i` (`tch-cuda:i`).
    TchCuda(usize),
}

impl DeviceSpec {
    /// Every device string syntax, with the Cargo feature it needs.
    pub const ALL: [(&'static str, &'static str); 4] =
        [("flex", "flex"), ("ndarray", "ndarray"), ("tch-cpu", "tch"), ("tch-cuda:N", "tch")];

    /// Device strings whose backend is compiled into this build.
    pub fn compiled() -> Vec<&'static str> {
        let mut v = Vec::new();
        if cfg!(feature = "flex") {
            v.push("flex");
        }
        if cfg!(feature = "ndarray") {
            v.push("ndarray");
        }
        if cfg!(feature = "tch") {
            v.push("tch-cpu");
            v.push("tch-cuda:N");
        }
        v
    }

    /// The default device of this build: `flex` if compiled in, else the first compiled one.
    pub fn default_spec() -> DeviceSpec {
        if cfg!(feature = "flex") {
            DeviceSpec::Flex
        } else if cfg!(feature = "ndarray") {
            DeviceSpec::Ndarray
        } else {
            DeviceSpec::TchCpu
        }
    }

    /// Name of the Cargo feature that provides this device.
    pub fn feature(&self) -> &'static str {
        match self {
            DeviceSpec::Flex => "flex",
            DeviceSpec::Ndarray => "ndarray",
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => "tch",
        }
    }

    /// Whether this device's backend is compiled in.
    pub fn is_compiled(&self) -> bool {
        match self {
            DeviceSpec::Flex => cfg!(feature = "flex"),
            DeviceSpec::Ndarray => cfg!(feature = "ndarray"),
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => cfg!(feature = "tch"),
        }
    }

    /// The burn device, or an error naming the compiled-in backends.
    #[allow(deprecated, unreachable_code)]
    pub fn device(&self) -> Result<Device, CoreError> {
        if !self.is_compiled() {
            return Err(CoreError::Device(format!(
                "device '{self}' needs the Cargo feature '{}', which this build lacks; compiled-in devices: {}",
                self.feature(),
                DeviceSpec::compiled().join(", ")
            )));
        }
        Ok(match self {
            #[cfg(feature = "flex")]
            DeviceSpec::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            DeviceSpec::Ndarray => Device::ndarray(),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCuda(i) => Device::libtorch_cuda(*i),
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by is_compiled"),
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Flex => write!(f, "flex"),
            DeviceSpec::Ndarray => write!(f, "ndarray"),
            DeviceSpec::TchCpu => write!(f, "tch-cpu"),
            DeviceSpec::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, CoreError> {
        let s = s.trim().to_ascii_lowercase();
        let spec = match s.as_str() {
            "flex" | "cpu" => DeviceSpec::Flex,
            "ndarray" => DeviceSpec::Ndarray,
            "tch" | "tch-cpu" | "libtorch" => DeviceSpec::TchCpu,
            "tch-cuda" | "cuda" => DeviceSpec::TchCuda(0),
            _ => {
                let idx = s.strip_prefix("tch-cuda:").or_else(|| s.strip_prefix("cuda:"));
                match idx.and_then(|i| i.parse().ok()) {
                    Some(i) => DeviceSpec::TchCuda(i),
                    None => {
                        return Err(CoreError::Device(format!(
                            "unknown device '{s}'; known: {}; compiled into this build: {}",
                            DeviceSpec::ALL.map(|(n, _)| n).join(", "),
                            DeviceSpec::compiled().join(", ")
                        )))
                    }
                }
            }
        };
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["flex", "ndarray", "tch-cpu", "tch-cuda:3"] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::TchCuda(0));
        let err = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("unknown device 'tpu'") && err.contains("compiled into this build"), "{err}");
    }

    #[test]
    fn missing_backend_lists_compiled_ones() {
        let absent = [DeviceSpec::Flex, DeviceSpec::Ndarray, DeviceSpec::TchCpu].into_iter().find(|d| !d.is_compiled());
        if let Some(d) = absent {
            let err = d.device().unwrap_err().to_string();
            assert!(err.contains(d.feature()), "{err}");
            for c in DeviceSpec::compiled() {
                assert!(err.contains(c), "{err} should list {c}");
            }
        }
        assert!(DeviceSpec::default_spec().device().is_ok());
    }
}
