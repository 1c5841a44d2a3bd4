//! `dddit`: the command-line tool of the dddit framework.

mod assets_cmd;
mod bench_cmd;
mod classifier_cmd;
mod eval_cmd;
mod flops_cmd;
mod graph_study;
mod launch;
mod run_cmd;
mod train_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
// Linking a router crate is all it takes to add its routers: this one line is what puts
// `noise-skip` (docs/adding-a-router.md) into `dddit routers` and `[router] kind = ...`.
use dddit_router_example as _;

/// dddit — dynamic-compute Diffusion Transformers: routers that decide per input, timestep and
/// token how much to compute, with GFLOPs (DiT convention) reported next to measured time.
#[derive(Parser, Debug)]
#[command(name = "dddit", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analytic GFLOPs of a DiT forward pass, per component, in the DiT paper's convention
    /// (forward only, one multiply-add = one FLOP); `--measure` also times it on a device.
    Flops(flops_cmd::FlopsArgs),
    /// Times training steps, sampling and routed forwards of a DiT on one device (JSON for the
    /// benchmark scripts in `bench/`).
    Bench(bench_cmd::BenchArgs),
    /// Runs an experiment: trains and evaluates every sweep point × seed of a TOML experiment
    /// (skipping completed runs, resuming interrupted ones), then prints the comparison table.
    Run(run_cmd::RunArgs),
    /// Writes the comparison table (Markdown, CSV, JSON) of a results directory.
    Table(run_cmd::TableArgs),
    /// Writes the quality-vs-GFLOPs Pareto plot and the compute-by-timestep plot (SVG, PNG).
    Plot(run_cmd::TableArgs),
    /// Trains a routed DiT from a TOML run file (resumes when its run directory has a checkpoint).
    Train(train_cmd::TrainArgs),
    /// Pretrained files (the FID Inception network, the MiniLM text encoder): `fetch NAME [--from FILE]`, `list`, `path NAME`.
    Assets(assets_cmd::AssetsArgs),
    /// Draws images from a trained run (EMA weights) into a PNG grid, with the GFLOPs and time
    /// they cost.
    Sample(eval_cmd::SampleArgs),
    /// Evaluates a trained run: samples, Fréchet distance / precision / recall per feature
    /// extractor, class accuracy, adherence on shapes, GFLOPs per sample by timestep range and
    /// measured ms per image; writes `<run>/eval.json`.
    Eval(eval_cmd::EvalArgs),
    /// Checks the metric pipeline on real data: held-out real images against the training
    /// statistics (small Fréchet distance expected) and Gaussian noise (large).
    FdCheck(eval_cmd::FdCheckArgs),
    /// Small classifiers used as fast feature extractors: `train` one on fashion-mnist or
    /// shapes, or `eval` the embedded weights (or a file) on the held-out split.
    Classifier(classifier_cmd::ClassifierArgs),
    /// Checks the fused ops (attention, LayerNorm + modulate, GELU, softmax, linear, gated
    /// residual) against their composition from burn's tensor ops on a device, values and
    /// gradients, f32 and (LibTorch) bf16; exits non-zero when one is off.
    CheckFused {
        /// Device (see `dddit devices`).
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Lists every registered router with a one-line description and its config keys.
    Routers,
    /// Lists the devices this build can run on (`--device` values) and those it lacks.
    Devices,
    /// Lists the DiT presets with their size and cost at a given input size.
    Presets {
        /// Input height and width.
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Input channels.
        #[arg(long, default_value_t = 4)]
        channels: usize,
    },
    /// Loads a reference DiT checkpoint (`.pt`, `.pth` or `.safetensors` from the official
    /// PyTorch code) into dddit and reports what was loaded.
    CheckWeights {
        /// The weights file.
        path: std::path::PathBuf,
        /// Model preset the checkpoint was trained with.
        #[arg(long, default_value = "DiT-XL/2")]
        model: String,
        /// Latent/image size the model was built for (32 for 256×256 images).
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Input channels.
        #[arg(long, default_value_t = 4)]
        channels: usize,
        /// Number of classes (a null row is added).
        #[arg(long, default_value_t = 1000)]
        num_classes: usize,
        /// Device to load onto.
        #[arg(long, default_value = "flex")]
        device: String,
    },
}

fn main() -> std::process::ExitCode {
    dddit_core::alloc::keep_freed_memory();
    dddit_core::process::default_sigpipe();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain, without a backtrace: errors are for users.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Flops(args) => flops_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Table(args) => run_cmd::table(args),
        Command::Plot(args) => run_cmd::plot(args),
        Command::Train(args) => train_cmd::run(args),
        Command::Assets(args) => assets_cmd::run(args),
        Command::Sample(args) => eval_cmd::sample(args),
        Command::Eval(args) => eval_cmd::eval(args),
        Command::FdCheck(args) => eval_cmd::fd_check(args),
        Command::Classifier(args) => classifier_cmd::run(args),
        Command::CheckFused { device } => {
            let spec: dddit_core::device::DeviceSpec = device.parse()?;
            let dev = spec.device()?;
            let _seed = dddit_core::testing::seeded(&dev, 0);
            let tch =
                matches!(spec, dddit_core::device::DeviceSpec::TchCpu | dddit_core::device::DeviceSpec::TchCuda(_));
            let rows = dddit_core::fused::check::check_all(&dev, tch);
            println!(
                "fused ops against their burn composition on {spec} (relative error of values, of input gradients):"
            );
            for r in &rows {
                println!(
                    "{:<28} {:<5} value {:>9.2e}  grad {:>9.2e}  (tol {:.0e})  {}",
                    r.op,
                    r.dtype,
                    r.value_err,
                    r.grad_err,
                    r.tol,
                    if r.ok() { "ok" } else { "FAILED" }
                );
            }
            let bad = rows.iter().filter(|r| !r.ok()).count();
            if bad > 0 {
                anyhow::bail!("{bad} of {} fused-op checks failed on {spec}", rows.len());
            }
            Ok(())
        }
        Command::Routers => {
            for e in dddit_routers::routers() {
                println!("{:<14} {}", e.name, e.description);
                for k in (e.keys)() {
                    println!("  {:<16} {:<44} default {:<10} {}", k.key, k.ty, k.default.to_string(), k.doc);
                }
            }
            Ok(())
        }
        Command::Devices => {
            println!("compiled into this build:");
            for d in DeviceSpec::compiled() {
                println!("  {d}");
            }
            let missing: Vec<_> = DeviceSpec::ALL
                .iter()
                .filter(|(n, _)| !DeviceSpec::compiled().contains(n))
                .map(|(n, f)| format!("  {n} (rebuild with --features {f})"))
                .collect();
            if !missing.is_empty() {
                println!("not compiled in:\n{}", missing.join("\n"));
            }
            Ok(())
        }
        Command::Presets { image_size, channels } => {
            println!(
                "{:<10} {:>6} {:>6} {:>6} {:>7} {:>10} {:>10}",
                "preset", "depth", "hidden", "heads", "tokens", "params(M)", "GFLOPs"
            );
            let mut skipped = Vec::new();
            for name in DiTConfig::preset_names() {
                let Ok(cfg) = DiTConfig::preset(&name, image_size, channels) else {
                    skipped.push(name);
                    continue;
                };
                let gf = cfg.dense_flops().gflops(dddit_core::flops::Convention::MacIsOne);
                println!(
                    "{:<10} {:>6} {:>6} {:>6} {:>7} {:>10.2} {:>10.3}",
                    name,
                    cfg.depth,
                    cfg.hidden_size,
                    cfg.num_heads,
                    cfg.num_tokens(),
                    param_count(&cfg) as f64 / 1e6,
                    gf
                );
            }
            println!("(GFLOPs: forward pass, one multiply-add = one FLOP, as in the DiT paper)");
            if !skipped.is_empty() {
                println!("(not shown: {}: their patch does not divide {image_size})", skipped.join(", "));
            }
            Ok(())
        }
        Command::CheckWeights { path, model, image_size, channels, num_classes, device } => {
            let device = device.parse::<DeviceSpec>()?.device()?;
            let mut cfg = DiTConfig::preset(&model, image_size, channels)?;
            cfg.num_classes = num_classes;
            let mut dit = cfg.init(&device);
            let report = dit.load_reference(&path)?;
            println!("loaded {} tensors from {} into {model}", report.applied.len(), path.display());
            if !report.unused.is_empty() {
                println!("ignored (recomputed by dddit): {}", report.unused.join(", "));
            }
            Ok(())
        }
    }
}

/// Parameter count of a DiT config (trainable parameters, as the reference counts them minus
/// the fixed positional table).
fn param_count(cfg: &DiTConfig) -> usize {
    let (d, c, p, f) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size, dddit_core::dit::TIMESTEP_FREQ_DIM);
    let m = cfg.mlp_hidden();
    let block = (d * 3 * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d) + (d * 6 * d + 6 * d);
    let stem = (c * p * p * d + d) + (f * d + d) + (d * d + d) + cfg.label_rows() * d;
    let fin = (d * p * p * cfg.out_channels() + p * p * cfg.out_channels()) + (d * 2 * d + 2 * d);
    stem + block * cfg.depth + fin
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    #[test]
    fn param_count_matches_module() {
        let cfg = DiTConfig::preset("DiT-N/2", 8, 3).unwrap();
        let dit = cfg.init(&dddit_core::testing::device());
        assert_eq!(param_count(&cfg), dit.num_params());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn enumerated_flags_are_checked_by_clap_with_their_values() {
        use clap::Parser;
        for (args, want) in [
            (vec!["dddit", "eval", "r", "--sampler", "dpm"], "ddpm, ddim"),
            (vec!["dddit", "eval", "r", "--features", "classifier,nope"], "classifier, inception"),
            (vec!["dddit", "fd-check", "--data", "cifar"], "fashion-mnist, shapes"),
        ] {
            let err = Cli::try_parse_from(&args).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
        assert!(Cli::try_parse_from(["dddit", "eval", "r", "--sampler", "ddim", "--features", "inception"]).is_ok());
    }
}
