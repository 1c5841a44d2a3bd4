//! Process set-up of the command-line tool.

/// Restores the default action of `SIGPIPE` (terminate quietly), which the Rust runtime sets to
/// "ignore" before `main`. With it ignored, writing to a closed pipe (`dddit routers | head -1`)
/// is an error that `println!` turns into a panic (exit 101 with a message); with the default,
/// the process ends silently as other Unix tools do when their reader has gone. A run cut off
/// this way resumes from its last checkpoint like any other interrupted run. No-op off Unix.
#[allow(unsafe_code)]
pub fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with SIG_DFL installs no handler code; it is called at the start of
    // main, before other threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
