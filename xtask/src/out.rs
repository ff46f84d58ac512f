//! Writing to stdout when the reader may go away early, as `head` does.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout refused a write: nobody reads what follows.
static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `args` and a newline.
pub fn line(args: fmt::Arguments<'_>) {
    write(format_args!("{args}\n"));
}

/// Writes `args`.
pub fn text(args: fmt::Arguments<'_>) {
    write(args);
}

fn write(args: fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // A closed pipe (or a full disk): what is left is not read either.
        GONE.store(true, Ordering::Relaxed);
    }
}
