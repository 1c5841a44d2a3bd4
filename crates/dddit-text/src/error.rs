//! The error type of dddit-text.

use dddit_core::assets::AssetError;
use std::path::PathBuf;

/// Everything that can go wrong while loading or running the text encoder.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The encoder's files are missing or not the pinned ones (the message of
    /// [`AssetError::MissingAsset`] names `dddit assets fetch minilm`).
    #[error(transparent)]
    Asset(#[from] AssetError),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is unreadable or describes a model this port does not implement.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The weights do not fit the model (missing tensors, wrong shapes, unexpected tensors).
    #[error("cannot load weights from {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `tokenizer.json` could not be read, or tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Inputs or settings out of range (an empty batch, a maximum length the model cannot take).
    #[error("{0}")]
    Invalid(String),
}

impl TextError {
    /// A [`TextError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TextError::Io { path: path.into(), source }
    }
}
