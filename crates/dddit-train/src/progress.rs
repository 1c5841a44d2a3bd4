//! Training progress on stderr: an `indicatif` bar on a terminal; in a file (a log, Slurm's
//! output), where `\r` updates would run together into one huge line, a plain line every
//! [`LINES_PER_RUN`]-th of the run instead.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// About how many plain lines a whole run prints off a terminal: one every `total / 20` steps
/// (at the same steps whether or not the run was resumed), plus the first step after a (re)start
/// and the last.
pub const LINES_PER_RUN: usize = 20;

/// The longest silence between two plain lines: a slow run prints at least this often.
pub const MAX_SILENCE: Duration = Duration::from_secs(300);

/// The bar's layout: elapsed time, bar, step/total, ETA, then the message (loss, rate, terms),
/// cut at the terminal's width.
const BAR_TEMPLATE: &str = "{elapsed_precise} {bar:20} {pos}/{len}  ETA {eta}  {wide_msg}";

/// What one step shows.
#[derive(Debug, Clone, Copy)]
pub struct StepStatus<'a> {
    /// Steps done (the step just taken, counted from 1).
    pub step: usize,
    /// Total loss.
    pub loss: f64,
    /// Each loss term by name.
    pub terms: &'a [(String, f64)],
    /// Training samples per second since the run (re)started.
    pub samples_per_sec: f64,
    /// Seconds left at that rate.
    pub eta_secs: f64,
}

impl StepStatus<'_> {
    /// Loss, rate and terms (the most useful first: a narrow terminal cuts the end).
    fn message(&self) -> String {
        let mut s = format!("loss {:.4}  {:.1} samples/s", self.loss, self.samples_per_sec);
        for (k, v) in self.terms {
            s.push_str(&format!("  {k} {v:.4}"));
        }
        s
    }
}

/// How progress is shown.
enum Display {
    /// A progress bar redrawn in place.
    Bar(ProgressBar),
    /// Whole lines to a writer, every `every` steps.
    Lines { out: Box<dyn Write + Send>, every: usize, first: usize, last: Instant },
}

/// The progress display of a training run from step `first` to `total`.
pub struct Progress {
    display: Display,
    total: usize,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines to stderr otherwise.
    pub fn stderr(first: usize, total: usize) -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bar(ProgressDrawTarget::stderr(), first, total)
        } else {
            Progress::lines(std::io::stderr(), first, total)
        }
    }

    /// A progress bar drawn on `target`.
    pub fn bar(target: ProgressDrawTarget, first: usize, total: usize) -> Progress {
        let style = ProgressStyle::with_template(BAR_TEMPLATE).expect("a valid template");
        let bar =
            ProgressBar::with_draw_target(Some(total as u64), target).with_style(style).with_position(first as u64);
        // The rate estimate starts at `first`, not at 0 an instant ago (a resumed run).
        bar.tick();
        bar.reset_eta();
        Progress { display: Display::Bar(bar), total }
    }

    /// Plain lines (no `\r`, no colours) written to `out`.
    pub fn lines(out: impl Write + Send + 'static, first: usize, total: usize) -> Progress {
        let every = total.div_ceil(LINES_PER_RUN).max(1);
        Progress { display: Display::Lines { out: Box::new(out), every, first, last: Instant::now() }, total }
    }

    /// Shows the step just taken. Progress is best effort: a failed write is ignored.
    pub fn update(&mut self, s: &StepStatus) {
        let total = self.total;
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_message(s.message());
                bar.set_position(s.step as u64);
            }
            Display::Lines { out, every, first, last } => {
                let due = s.step == *first + 1 || s.step.is_multiple_of(*every) || s.step == total;
                if due || last.elapsed() >= MAX_SILENCE {
                    *last = Instant::now();
                    let _ = writeln!(out, "step {}/{total}  {}  ETA {:.0}s", s.step, s.message(), s.eta_secs);
                    let _ = out.flush();
                }
            }
        }
    }

    /// Ends the display: the bar stays on screen as it last was.
    pub fn finish(self) {
        if let Display::Bar(bar) = self.display {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The text `Progress::lines` writes for steps `first + 1 ..= total`.
    fn run(first: usize, total: usize) -> String {
        let sink = Sink::default();
        let mut p = Progress::lines(sink.clone(), first, total);
        let terms = vec![("mse".to_string(), 0.25), ("flops_ratio".to_string(), 0.5)];
        for step in first + 1..=total {
            p.update(&StepStatus {
                step,
                loss: 1.0 / step as f64,
                terms: &terms,
                samples_per_sec: 12.5,
                eta_secs: 3.0,
            });
        }
        p.finish();
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn off_a_terminal_a_bounded_number_of_plain_lines() {
        let text = run(0, 100_000);
        assert!(!text.contains('\r') && !text.contains('\x1b'), "no carriage returns or escapes");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= LINES_PER_RUN + 2, "{} lines", lines.len());
        assert_eq!(lines.len(), LINES_PER_RUN + 1, "the first step, then every 5000th");
        assert_eq!(lines[0], "step 1/100000  loss 1.0000  12.5 samples/s  mse 0.2500  flops_ratio 0.5000  ETA 3s");
        assert!(lines[1].starts_with("step 5000/100000  loss 0.0002"), "{}", lines[1]);
        assert!(lines.last().unwrap().starts_with("step 100000/100000  "));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn resumed_and_short_runs() {
        // Resumed at 990 of 1000: the first step after the restart, then the usual 1000.
        let lines: Vec<String> = run(990, 1000).lines().map(|l| l.split("  ").next().unwrap().to_string()).collect();
        assert_eq!(lines, ["step 991/1000", "step 1000/1000"]);
        // Fewer steps than lines per run: every step, once.
        assert_eq!(run(0, 3).lines().count(), 3);
        assert_eq!(run(5, 5), "");
    }

    #[test]
    fn a_bar_on_a_hidden_target_takes_updates() {
        let mut p = Progress::bar(ProgressDrawTarget::hidden(), 10, 20);
        for step in 11..=20 {
            p.update(&StepStatus { step, loss: 0.5, terms: &[], samples_per_sec: 1.0, eta_secs: 0.0 });
        }
        if let Display::Bar(bar) = &p.display {
            assert_eq!((bar.position(), bar.length()), (20, Some(20)));
            assert_eq!(bar.message(), "loss 0.5000  1.0 samples/s");
        }
        p.finish();
    }
}
