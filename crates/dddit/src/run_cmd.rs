//! `dddit run`, `dddit table`, `dddit plot`: sweeps from an experiment TOML and their
//! comparison tables and plots.

use anyhow::{Context, Result};
use clap::Args;
use dddit_runner::{run_experiment, Experiment, RunOptions, Shard};
use std::path::{Path, PathBuf};

/// Arguments of `dddit run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment file (see experiments/README.md).
    pub experiment: PathBuf,
    /// Results directory (default: the file's `out`, else runs/<name>, which git ignores; write
    /// committed results with `--out results/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (0 ≤ I < N): run r belongs to shard r mod N. For Slurm arrays:
    /// `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Device for every run, overriding the file's `device`.
    #[arg(long)]
    pub device: Option<String>,
    /// Precision for every run (`f32`, `tf32`, `bf16`), overriding the file's `precision`.
    #[arg(long)]
    pub precision: Option<dddit_core::precision::Precision>,
    /// A results directory whose completed runs are copied, instead of trained again, where
    /// their settings (config.toml and eval.toml, seed included) equal a run's here; may be
    /// given several times. Experiments that share a baseline train it once.
    #[arg(long, value_name = "DIR")]
    pub reuse: Vec<PathBuf>,
    /// Train nothing: copy what --reuse finds, leave the other runs to do, and write the table
    /// of what is complete (an experiment's table from runs trained by another).
    #[arg(long)]
    pub no_train: bool,
    /// Validate the file and list the runs with their state; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Train and evaluate each run with N processes on this host (data parallelism: each takes
    /// 1/N of every batch and samples 1/N of the evaluation; rank 0 writes; LibTorch devices
    /// only, `tch-cuda` uses devices 0..N). Under torchrun or a Slurm job of several tasks, leave
    /// it out: their variables are read instead.
    #[arg(long)]
    pub nproc: Option<usize>,
}

/// Arguments of `dddit table` and `dddit plot`.
#[derive(Args, Debug)]
pub struct TableArgs {
    /// A results directory written by `dddit run`.
    pub results: PathBuf,
    /// Where to write (default: the results directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `dddit run`.
pub fn run(a: RunArgs) -> Result<()> {
    let exp = Experiment::open(&a.experiment)?;
    let shard: Shard = match &a.shard {
        Some(s) => s.parse()?,
        None => Shard::default(),
    };
    let mut opts = RunOptions {
        out: a.out.clone(),
        shard,
        device: a.device.clone(),
        precision: a.precision,
        reuse: a.reuse.clone(),
        no_train: a.no_train,
        rank_device: None,
    };
    let out = opts.out.clone().unwrap_or_else(|| exp.out.clone());
    // One line per launch: not from the parent of --nproc's ranks, nor from ranks other than 0.
    let launched = dddit_core::dist::Launch::from_env()?;
    let quiet = (a.nproc.is_some() && !a.dry_run) || launched.as_ref().is_some_and(|l| l.rank != 0);
    if !quiet {
        eprintln!(
            "experiment {} ({}): {} points × {} seeds = {} runs, {} in shard {}/{}; results in {}",
            exp.name,
            a.experiment.display(),
            exp.points.len(),
            exp.seeds.len(),
            exp.runs.len(),
            exp.runs.iter().enumerate().filter(|(r, _)| shard.takes(*r)).count(),
            shard.index,
            shard.count,
            out.display()
        );
    }
    if a.dry_run {
        for (r, run) in exp.runs.iter().enumerate().filter(|(r, _)| shard.takes(*r)) {
            let dir = out.join(&run.dir_name);
            let (config, _) = dddit_runner::runner::config_texts(run);
            let state = if dir.join(dddit_runner::runner::DONE).exists() {
                "complete".to_string()
            } else if let Some(from) = dddit_runner::reuse::find(&a.reuse, &config, &run.resolved.eval, &dir) {
                format!("reuse {}", from.display())
            } else if dddit_train::RunDir::new(&dir).has_checkpoint() {
                "interrupted (will resume)".to_string()
            } else {
                "to do".to_string()
            };
            let gf = run.resolved.dit.dense_flops().gflops(dddit_core::flops::Convention::MacIsOne);
            println!(
                "{r:>4}  {:<40} {:<26} steps {:>6}  dense {gf:.4} GFLOPs/forward",
                run.dir_name,
                state,
                run.resolved.run.train.total_steps()
            );
        }
        return Ok(());
    }
    if let Some(n) = a.nproc {
        return crate::launch::spawn_local(n);
    }
    // Under a data-parallel launch: every rank walks the same runs, each on its own device,
    // training one model together and sharing its evaluation; rank 0 writes and reports.
    if launched.is_some() {
        let device = match &a.device {
            Some(d) => d.clone(),
            None => {
                let mut devices: Vec<&str> = exp.runs.iter().map(|r| r.resolved.run.device.as_str()).collect();
                devices.sort_unstable();
                devices.dedup();
                match devices.as_slice() {
                    [one] => one.to_string(),
                    _ => anyhow::bail!(
                        "{}: a data-parallel sweep needs one device for all its runs (found {}); pass --device",
                        a.experiment.display(),
                        devices.join(", ")
                    ),
                }
            }
        };
        opts.rank_device = Some(crate::launch::join_from_env(&device)?);
        opts.device = Some(device);
    }
    let main = dddit_core::dist::is_main();
    let outcome = run_experiment(&exp, &opts, &mut |m| {
        if main {
            eprintln!("{m}")
        }
    })?;
    if !main {
        return Ok(()); // rank 0 writes the table and reports failures
    }
    let table = dddit_runner::table::build(&out)?;
    table.write(&out)?;
    let plots = dddit_runner::plots::write(&table, &out)?;
    println!("{}", table.markdown());
    eprintln!(
        "table: {0}/table.md, table.csv, table.json; plots: {1}",
        out.display(),
        plots.iter().map(|p| format!("{}.svg/.png", p.display())).collect::<Vec<_>>().join(", ")
    );
    if !outcome.failed.is_empty() {
        let list: Vec<String> = outcome.failed.iter().map(|(d, e)| format!("  {}: {e}", d.display())).collect();
        anyhow::bail!(
            "{} run(s) failed (their directories hold failed.json; re-running retries them):\n{}",
            outcome.failed.len(),
            list.join("\n")
        );
    }
    Ok(())
}

fn table_of(results: &Path) -> Result<dddit_runner::table::Table> {
    dddit_runner::tidy::remove_stale_temps(results);
    let t = dddit_runner::table::build(results).with_context(|| format!("reading results in {}", results.display()))?;
    if t.rows.is_empty() {
        anyhow::bail!("{}: no completed runs (run directories with done.json)", results.display());
    }
    Ok(t)
}

/// Runs `dddit table`.
pub fn table(a: TableArgs) -> Result<()> {
    let t = table_of(&a.results)?;
    let out = a.out.unwrap_or(a.results);
    t.write(&out)?;
    println!("{}", t.markdown());
    eprintln!("wrote {0}/table.md, {0}/table.csv, {0}/table.json", out.display());
    Ok(())
}

/// Runs `dddit plot`.
pub fn plot(a: TableArgs) -> Result<()> {
    let t = table_of(&a.results)?;
    let out = a.out.unwrap_or(a.results);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for p in dddit_runner::plots::write(&t, &out)? {
        println!("{}.svg\n{}.png", p.display(), p.display());
    }
    Ok(())
}
