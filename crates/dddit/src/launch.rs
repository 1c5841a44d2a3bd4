//! Data-parallel launching: joining the process group a launcher described (torchrun, Slurm or
//! `--nproc`), and `--nproc N` itself, which starts N local processes the way torchrun would.

use anyhow::{bail, Context, Result};
use dddit_core::dist::{self, Collectives, Launch};
use std::ffi::OsString;
use std::process::{Child, Command};
use std::time::Duration;

/// How long a collective may wait for the other ranks before the run fails (torch's default,
/// 30 minutes; `DDDIT_DIST_TIMEOUT` in seconds overrides it).
fn timeout() -> Result<Duration> {
    match std::env::var("DDDIT_DIST_TIMEOUT") {
        Ok(s) => Ok(Duration::from_secs_f64(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .with_context(|| format!("DDDIT_DIST_TIMEOUT={s:?} is not a positive number of seconds"))?,
        )),
        Err(_) => Ok(Duration::from_secs(1800)),
    }
}

/// Joins the process group the environment describes, if any, for a run on `device` (the
/// run's device spec): NCCL for `tch-cuda`, whose index becomes the rank's local rank, gloo for
/// `tch-cpu`. Returns the device spec this rank uses (unchanged for a single process).
pub fn join_from_env(device: &str) -> Result<String> {
    let Some(launch) = Launch::from_env()? else { return Ok(device.to_string()) };
    let (collectives, device) = if device.starts_with("tch-cuda") {
        (Collectives::Nccl, format!("tch-cuda:{}", launch.local_rank))
    } else if device.starts_with("tch-cpu") {
        (Collectives::Gloo, device.to_string())
    } else {
        bail!(
            "data-parallel run (rank {} of {}, from {}'s variables) on `{device}`: collectives exist on LibTorch \
             devices only (tch-cpu, tch-cuda:N)",
            launch.rank,
            launch.world,
            launch.source
        );
    };
    let t = timeout()?;
    dist::init(&launch, collectives, t).with_context(|| {
        format!(
            "joining the process group as rank {} of {} at {}:{}",
            launch.rank, launch.world, launch.master_addr, launch.master_port
        )
    })?;
    if launch.rank == 0 {
        eprintln!(
            "data parallel: {} process{} ({}), {:?} collectives, rank 0 at {}:{}",
            launch.world,
            if launch.world == 1 { "" } else { "es" },
            launch.source,
            collectives,
            launch.master_addr,
            launch.master_port
        );
    }
    Ok(device)
}

/// The command line of this process without `--nproc N` / `--nproc=N`.
fn args_without_nproc() -> Vec<OsString> {
    let mut out = vec![];
    let mut skip = false;
    for a in std::env::args_os().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        match a.to_str() {
            Some("--nproc") => skip = true,
            Some(s) if s.starts_with("--nproc=") => {}
            _ => out.push(a),
        }
    }
    out
}

/// Starts `nproc` copies of this command (without `--nproc`) as ranks 0..nproc of one
/// data-parallel run on this host, with torchrun's variables and a free port on the loopback,
/// and waits for them. When one fails, the others are stopped (after a second in which they
/// may fail on their own) and every failed rank's exit status is reported, first failure first.
pub fn spawn_local(nproc: usize) -> Result<()> {
    if nproc == 0 {
        bail!("--nproc must be at least 1");
    }
    if Launch::from_env()?.is_some() {
        bail!("--nproc inside a launched process (RANK/WORLD_SIZE or a Slurm job of several tasks are set): use one or the other");
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    let args = args_without_nproc();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for the rendezvous")?
        .port();
    let mut children: Vec<(usize, Child)> = vec![];
    for rank in 0..nproc {
        let child = Command::new(&exe)
            .args(&args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .spawn()
            .with_context(|| format!("starting rank {rank}"))?;
        children.push((rank, child));
    }
    // Ranks in the order they were seen to fail. When one fails, the others usually fail
    // within moments (their collectives lose the peer): they get a second to do so, so that the
    // report names who failed first and who followed, and are then stopped.
    let mut failed: Vec<(usize, std::process::ExitStatus)> = vec![];
    let mut deadline: Option<std::time::Instant> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait().context("waiting for a rank")? {
                Some(status) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() {
                        failed.push((rank, status));
                        deadline.get_or_insert_with(|| std::time::Instant::now() + Duration::from_secs(1));
                    }
                }
                None => i += 1,
            }
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            for (_, c) in &mut children {
                let _ = c.kill();
            }
            for (_, c) in &mut children {
                let _ = c.wait();
            }
            children.clear();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match failed.split_first() {
        Some(((rank, status), rest)) => {
            let then: String = rest.iter().map(|(r, s)| format!(", then rank {r} ({s})")).collect();
            bail!("rank {rank} of {nproc} failed ({status}){then}; the other ranks were stopped")
        }
        None => Ok(()),
    }
}
