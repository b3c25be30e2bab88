//! The progress bar of commands that walk a whole vault (fsck, rekey): entries done of the
//! entries counted beforehand, a rate without decimals, and the time left once it means
//! something.

use std::fmt::Write;
use std::time::Duration;

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressState, ProgressStyle};

/// How long the bar runs before it estimates the time left: an estimate from the first
/// directories (the root, often small or large) is noise.
const ETA_AFTER: Duration = Duration::from_secs(3);

/// A bar "{spinner} {doing} [=====>   ] done/total entries (rate/s, time left)" over `total`
/// entries, ticking on its own.
pub fn entries_bar(doing: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {doing} [{{wide_bar}}] {{human_pos}}/{{human_len}} entries{{speed}}"
        ))
        .expect("valid template")
        .with_key("speed", speed)
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn speed(state: &ProgressState, out: &mut dyn Write) {
    let rate = state.per_sec();
    if state.pos() == 0 || !rate.is_finite() || rate < 1.0 {
        return;
    }
    let _ = write!(out, " ({}/s", HumanCount(rate as u64));
    if state.elapsed() >= ETA_AFTER && state.eta() >= Duration::from_secs(1) {
        let _ = write!(out, ", {} left", HumanDuration(state.eta()));
    }
    let _ = write!(out, ")");
}
