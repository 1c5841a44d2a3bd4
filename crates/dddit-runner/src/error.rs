//! Errors of the runner. Everything wrong with an experiment file is a [`Problem`] naming the
//! file, the line and the key path; validation collects all of them before anything runs.

use std::fmt;
use std::path::PathBuf;

/// Where a key was written: a file and, when known, the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The TOML file.
    pub file: PathBuf,
    /// 1-based line, when the key (or a parent section) appears in the file.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One thing wrong with an experiment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// Where the offending key was written.
    pub location: Location,
    /// Full key path, e.g. `router.k` or `sweep."router.kind"`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The sweep points it concerns (empty: the experiment as a whole).
    pub points: Vec<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.key, self.message)?;
        match self.points.len() {
            0 => Ok(()),
            1..=3 => write!(f, " (point {})", self.points.join(", ")),
            n => write!(f, " ({n} points: {}, …)", self.points[..2].join(", ")),
        }
    }
}

/// Errors of the runner.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The experiment is invalid; every problem found is listed. Nothing was started.
    #[error("{} problem{} in the experiment; nothing was run:\n  {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<Problem>),
    /// Reading or writing a file.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Training a point failed.
    #[error("{point}: training failed: {message}")]
    Train {
        /// The run directory.
        point: String,
        /// The trainer's error.
        message: String,
    },
    /// Evaluating a point failed.
    #[error("{point}: evaluation failed: {message}")]
    Eval {
        /// The run directory.
        point: String,
        /// The evaluator's error.
        message: String,
    },
    /// A bad command-line argument (e.g. `--shard 3/2`).
    #[error("{0}")]
    Usage(String),
}

impl RunnerError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, e: impl fmt::Display) -> Self {
        RunnerError::Io { path: path.into(), message: e.to_string() }
    }
}
