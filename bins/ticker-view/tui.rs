//! The terminal: raw mode and the alternate screen on start, and always restored on the way
//! out: when [`Tui`] drops (normal exit or an error), and from a panic hook before the panic
//! message prints, so a crash never leaves the shell in raw mode.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// Whether the terminal is in raw mode now (so restoring twice is harmless).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The terminal in raw mode on the alternate screen; restored on drop.
#[derive(Debug)]
pub(crate) struct Tui {
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Tui {
    /// Enters raw mode and the alternate screen, and installs the panic hook.
    ///
    /// # Errors
    ///
    /// If stdout is not a terminal or cannot be switched.
    pub(crate) fn new() -> Result<Self> {
        install_panic_hook();
        enable_raw_mode().context("entering raw mode (is stdout a terminal?)")?;
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = || -> Result<Self> {
            execute!(io::stdout(), EnterAlternateScreen, Hide)
                .context("entering the alternate screen")?;
            let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))
                .context("creating the terminal")?;
            Ok(Self { terminal })
        };
        setup().inspect_err(|_| restore())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode and shows the cursor. Idempotent.
pub(crate) fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // Nothing more can be done if this fails: the terminal is gone.
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
    }
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
