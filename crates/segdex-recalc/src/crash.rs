//! The crash hook for tests: `SEGDEX_CRASH_AT=<point>` kills the process
//! at that point of a pass. Inert unless the variable is set.

use std::sync::OnceLock;

/// The named points of a pass where `SEGDEX_CRASH_AT` can kill the
/// process, in the order a pass reaches them:
/// * `members` — about half of the new generation's member files written
///   (they are written as segments are evaluated);
/// * `evaluated` — every segment evaluated and its member files written;
/// * `events` — the new events file written;
/// * `history` — the new history.parquet written;
/// * `state` — the new generation's state.json written, not yet synced;
/// * `before-commit` — everything durable, the new `current` link created
///   under a temporary name, not yet renamed;
/// * `after-commit` — `current` renamed and synced, old generations not
///   yet deleted.
pub const CRASH_POINTS: [&str; 7] = [
    "members",
    "evaluated",
    "events",
    "history",
    "state",
    "before-commit",
    "after-commit",
];

/// Kills the process with `SIGKILL` (as `kill -9` would) when
/// `SEGDEX_CRASH_AT` equals `point`.
pub(crate) fn point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("SEGDEX_CRASH_AT").ok());
    if at.as_deref() == Some(point) {
        eprintln!("segdex: SEGDEX_CRASH_AT={point}: killing the process");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
