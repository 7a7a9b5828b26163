//! Passing Ctrl-C on to a child that runs in a process group of its own.
//!
//! A hook runs in its own process group, so that its time limit can kill all it started;
//! but then the terminal's Ctrl-C (SIGINT to the foreground group) reaches only
//! `backup_manager run`, which would die and leave the hook running. While a hook runs
//! by hand, [`Interrupts`] catches the signals that end a foreground command, so that the
//! caller can stop the hook's group and then die of the same signal, as it would have.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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

/// The write end of [`Watch`]'s pipe, -1 when none watches. The handler writes the
/// signal's number there: `write` is async-signal-safe.
static WATCH_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Set by [`Watch`]'s handler: the process is on its way out.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a signal [`Watch`] watches for has come: the process is about to end, and
/// starts nothing more (a hook).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

extern "C" fn on_watched_signal(signal: libc::c_int) {
    STOPPING.store(true, Ordering::SeqCst);
    let fd = WATCH_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write is async-signal-safe; it reads one byte from our stack.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Watches for SIGINT, SIGTERM and SIGHUP (those not ignored) for the rest of the
/// process's life, and hands the first one caught to a callback on a thread of its own,
/// whatever the other threads are doing: for a command that must tidy up and exit on
/// Ctrl-C, however deep in its work the signal finds it.
///
/// [`Interrupts::catch`] made meanwhile (a hook running) takes the signals over, and on
/// [`Interrupts::end`] gives them back and raises the one it caught, which then reaches
/// the callback.
pub struct Watch;

impl Watch {
    /// Starts watching; `on_signal` runs once, with the first signal.
    pub fn start(on_signal: impl FnOnce(Signal) + Send + 'static) -> Result<Self> {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("creating a pipe for signals")?;
        let mut reader = std::fs::File::from(read_end);
        std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || {
                use std::io::Read;
                let mut byte = [0u8; 1];
                loop {
                    match reader.read(&mut byte) {
                        Ok(1) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        _ => return,
                    }
                }
                if let Ok(signal) = Signal::try_from(i32::from(byte[0])) {
                    on_signal(signal);
                }
            })
            .context("starting the signal thread")?;
        // Kept open for the life of the process, as the handler may write at any time.
        WATCH_PIPE.store(
            std::os::fd::IntoRawFd::into_raw_fd(write_end),
            Ordering::SeqCst,
        );
        let action = SigAction::new(
            SigHandler::Handler(on_watched_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in SIGNALS {
            // SAFETY: the handler only loads an atomic and calls write(2), both
            // async-signal-safe.
            let previous = unsafe { sigaction(signal, &action) }
                .with_context(|| format!("catching {signal}"))?;
            if matches!(previous.handler(), SigHandler::SigIgn) {
                // SAFETY: putting back the disposition that was there.
                unsafe { sigaction(signal, &previous) }
                    .with_context(|| format!("leaving {signal} ignored"))?;
            }
        }
        Ok(Watch)
    }
}

/// Ends the process as `signal` would have, its default action restored: its parent sees
/// it killed by that signal, and a shell reports 128 + its number (130 for SIGINT, 143
/// for SIGTERM), so that a script or a loop around it stops too. Exits with that status
/// should the signal not end it.
pub fn die_of(signal: Signal) -> ! {
    // SAFETY: the default action, which needs no handler.
    let _ = unsafe {
        sigaction(
            signal,
            &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
        )
    };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = set.thread_unblock();
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), signal);
    std::thread::sleep(std::time::Duration::from_secs(1));
    std::process::exit(128 + signal as i32)
}
