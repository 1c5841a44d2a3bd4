//! The error type of [`crate::assets`].

use std::path::PathBuf;

/// Everything that can go wrong while finding, checking or installing a pretrained asset.
///
/// Library crates above dddit-core convert it into their own error type (`dddit_eval::EvalError`
/// maps each variant onto its variant of the same name).
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but is not what was expected (a wheel that is not a readable zip, a
    /// member missing from it).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A known asset is not installed; the message says where it was looked for and which
    /// command fetches it.
    #[error("missing asset `{name}`: {message}")]
    MissingAsset {
        /// The asset's name, as `dddit assets fetch` knows it.
        name: String,
        /// Where it was looked for and how to get it.
        message: String,
    },
    /// A file is not the one expected: its checksum differs (another file, another version, or
    /// a corrupted download).
    #[error(
        "{path}: {actual}, expected {expected}: not the file dddit expects (another version, or a corrupted download)"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The checksum it should have, with the algorithm (`SHA-1 a16e…`).
        expected: String,
        /// The checksum it has.
        actual: String,
    },
    /// A name that is not in the table of known assets.
    #[error("unknown asset `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// No assets directory can be derived from the environment.
    #[error("no assets directory: set {var} (or XDG_CACHE_HOME or HOME)")]
    NoAssetsDir {
        /// The variable that sets it ([`super::ENV_ASSETS`]).
        var: &'static str,
    },
}

impl AssetError {
    /// An [`AssetError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AssetError::Io { path: path.into(), source }
    }

    /// An [`AssetError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        AssetError::Format { path: path.into(), message: message.into() }
    }
}
