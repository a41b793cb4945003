//! Ctrl-C, `kill` and a closed terminal during `suggest`, `apply` and `undo`.
//!
//! The first SIGINT, SIGTERM or SIGHUP only sets a flag. `suggest` checks it between
//! tokens (the model stops), in every sandbox wait (the test run's process group is
//! killed: it is not in the terminal's group, so Ctrl-C would not reach it) and before
//! each next finding; it then saves the session with what was done, removes its sandboxes
//! and exits with [`crate::exit_code::INTERRUPTED`]. `apply` and `undo` finish the few
//! writes they started (their journal is on disk before the first one), so a signal never
//! leaves a file half-restored. A second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Set by the process entry point ([`crate::run`]), not by `run_with`: a test harness
/// calling the library keeps the default handling, so Ctrl-C still stops `cargo test`.
static OWN_PROCESS: AtomicBool = AtomicBool::new(false);

/// Lets [`install`] take over the signals: the CLI owns this process.
pub(crate) fn own_process() {
    OWN_PROCESS.store(true, Ordering::SeqCst);
}

/// Installs the handler, once per process (only when the CLI owns the process).
pub(crate) fn install() {
    if !OWN_PROCESS.load(Ordering::SeqCst) {
        return;
    }
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let handler = on_signal as extern "C" fn(libc::c_int);
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SAFETY: the handler only touches an atomic and calls _exit(2), both
                // async-signal-safe.
                unsafe {
                    libc::signal(signal, handler as libc::sighandler_t);
                }
            }
        });
    }
}

#[cfg(unix)]
extern "C" fn on_signal(_signal: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit(2) is async-signal-safe and ends the process without unwinding.
        unsafe { libc::_exit(i32::from(crate::exit_code::INTERRUPTED)) };
    }
}

/// Whether a signal asked the run to stop.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The flag itself, for the model's cancel check between tokens.
pub(crate) fn flag() -> &'static AtomicBool {
    &REQUESTED
}
