//! Typed errors of dddit-core.

use std::path::PathBuf;

/// Errors raised by dddit-core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A DiT preset name that does not exist.
    #[error("unknown model preset '{0}' (expected DiT-S|B|L|XL|T|N / 2|4|8, e.g. DiT-XL/2)")]
    UnknownPreset(String),
    /// Hyper-parameters that do not fit together.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    /// A device string naming a backend that is unknown or was not compiled in.
    #[error("{0}")]
    Device(String),
    /// Weights that could not be loaded.
    #[error("cannot load weights from {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// File-system errors.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A diffusion setting that is out of range.
    #[error("invalid diffusion setting: {0}")]
    Diffusion(String),
}
