//! Passing Ctrl-C on to a child that runs in a process group of its own.
//!
//! A hook runs in its own process group, so that its time limit can kill all it started;
//! but then the terminal's Ctrl-C (SIGINT to the foreground group) reaches only
//! `backup_manager run`, which would die and leave the hook running. While a hook runs
//! by hand, [`Interrupts`] catches the signals that end a foreground command, so that the
//! caller can stop the hook's group and then die of the same signal, as it would have.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The signals that end a command in a terminal: Ctrl-C, `kill`, and the terminal closed.
const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The last signal caught, 0 for none. A signal handler may only touch atomics.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    CAUGHT.store(signal, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP (those not ignored) from its making until
/// [`Interrupts::end`] or drop, which put back what was there before.
pub struct Interrupts {
    previous: Vec<(Signal, SigAction)>,
}

impl Interrupts {
    /// Starts catching. A signal the process ignores (`nohup`) stays ignored.
    pub fn catch() -> Result<Self> {
        CAUGHT.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut interrupts = Interrupts {
            previous: Vec::new(),
        };
        for signal in SIGNALS {
            // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
            let previous = unsafe { sigaction(signal, &action) }
                .with_context(|| format!("catching {signal} while a hook runs"))?;
            if matches!(previous.handler(), SigHandler::SigIgn) {
                // SAFETY: putting back the disposition that was there.
                unsafe { sigaction(signal, &previous) }
                    .with_context(|| format!("leaving {signal} ignored"))?;
            } else {
                interrupts.previous.push((signal, previous));
            }
        }
        Ok(interrupts)
    }

    /// The signal caught since [`Interrupts::catch`], if any.
    pub fn caught(&self) -> Option<Signal> {
        Signal::try_from(CAUGHT.load(Ordering::SeqCst)).ok()
    }

    /// Puts back the signals' dispositions; then, if one was caught, raises it again, so
    /// that the process ends as that signal would have ended it.
    pub fn end(self) {
        let caught = self.caught();
        drop(self);
        if let Some(signal) = caught {
            let _ = nix::sys::signal::raise(signal);
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (signal, previous) in &self.previous {
            // SAFETY: putting back the disposition that was there before `catch`.
            let _ = unsafe { sigaction(*signal, previous) };
        }
    }
}
