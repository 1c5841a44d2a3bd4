//! The error type of dddit-eval.

use std::path::PathBuf;

/// Everything that can go wrong while sampling, extracting features or scoring.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file was read but its content is not what was expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A pretrained asset (Inception weights, a classifier) is missing; the message says how to
    /// get it.
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
    /// Inputs of the wrong shape or size, or settings out of range.
    #[error("{0}")]
    Invalid(String),
    /// A data set could not be built or read.
    #[error(transparent)]
    Data(#[from] dddit_data::DataError),
    /// A model error.
    #[error(transparent)]
    Core(#[from] dddit_core::CoreError),
    /// A router error (unknown router, bad config, a checkpoint that does not fit).
    #[error(transparent)]
    Router(#[from] dddit_routers::RouterError),
    /// A training-run error (reading a run's config or checkpoint).
    #[error(transparent)]
    Train(#[from] dddit_train::TrainError),
}

impl From<dddit_core::assets::AssetError> for EvalError {
    fn from(e: dddit_core::assets::AssetError) -> Self {
        use dddit_core::assets::AssetError as A;
        match e {
            A::Io { path, source } => EvalError::Io { path, source },
            A::Format { path, message } => EvalError::Format { path, message },
            A::MissingAsset { name, message } => EvalError::MissingAsset { name, message },
            A::Checksum { path, expected, actual } => EvalError::Checksum { path, expected, actual },
            e @ (A::Unknown { .. } | A::NoAssetsDir { .. }) => EvalError::Invalid(e.to_string()),
        }
    }
}

impl EvalError {
    /// An [`EvalError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.into(), source }
    }

    /// An [`EvalError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EvalError::Format { path: path.into(), message: message.into() }
    }
}
