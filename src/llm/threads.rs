//! How many threads inference uses. candle's quantized matmuls run on a pool of threads that
//! spin while they wait for each other, so one thread more than the cores that are free
//! makes every step wait for a descheduled thread: throughput collapses (measured: SmolLM2
//! decode from 26 to 2–8 tokens/s with a compiler running beside it). The default is
//! therefore the physical cores minus those other processes keep busy right now.

use std::time::Duration;

/// The thread count and why.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ThreadChoice {
    pub(crate) threads: usize,
    pub(crate) reason: String,
}

/// `requested` (from `--threads`) wins, then `REFACTOR_AI_THREADS`, then the physical cores
/// less the busy ones.
pub(crate) fn choose(requested: Option<usize>) -> ThreadChoice {
    if let Some(threads) = requested.filter(|&n| n > 0) {
        return ThreadChoice {
            threads,
            reason: "--threads".to_string(),
        };
    }
    if let Some(threads) = std::env::var("REFACTOR_AI_THREADS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return ThreadChoice {
            threads,
            reason: "REFACTOR_AI_THREADS".to_string(),
        };
    }
    let physical = crate::hw::physical_core_count();
    let logical = std::thread::available_parallelism().map_or(1, |count| count.get());
    match busy_cores(Duration::from_millis(200), logical) {
        Some(busy) => from_load(physical, busy),
        None => ThreadChoice {
            threads: physical,
            reason: format!("{physical} physical cores"),
        },
    }
}

/// Physical cores minus the cores busy elsewhere (rounded), at least one.
fn from_load(physical: usize, busy: f64) -> ThreadChoice {
    let taken = busy.round() as usize;
    let threads = physical.saturating_sub(taken).max(1);
    let reason = if taken == 0 {
        format!("{physical} physical cores, idle")
    } else {
        format!(
            "{physical} physical cores, {busy:.1} busy with other work: fewer threads than cores \
             keeps candle's spinning thread pool from stalling"
        )
    };
    ThreadChoice { threads, reason }
}

/// How many cores other processes kept busy over `window`, from two reads of `/proc/stat`.
/// `None` where there is no `/proc/stat`.
fn busy_cores(window: Duration, logical: usize) -> Option<f64> {
    let before = cpu_times(&std::fs::read_to_string("/proc/stat").ok()?)?;
    std::thread::sleep(window);
    let after = cpu_times(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let total = after.0.saturating_sub(before.0);
    let idle = after.1.saturating_sub(before.1);
    (total > 0).then(|| (total - idle) as f64 / total as f64 * logical as f64)
}

/// (all jiffies, idle + iowait jiffies) from the aggregate `cpu` line of `/proc/stat`.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// Makes candle use `threads`: its pools read these variables once, when first used.
///
/// Call before the first model is loaded.
pub(crate) fn apply(threads: usize) {
    let value = threads.to_string();
    // SAFETY: called on the main thread before any model is loaded; no other thread of this
    // process reads the environment at that point (analysis workers are idle, and the
    // download thread, if any, has finished).
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", &value);
        std::env::set_var("RAYON_NUM_THREADS", &value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_gives_total_and_idle() {
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\n";
        assert_eq!(cpu_times(stat), Some((981, 820)));
        assert_eq!(cpu_times("intr 1 2 3\n"), None);
    }

    #[test]
    fn busy_cores_are_left_to_their_owners() {
        assert_eq!(from_load(2, 0.2).threads, 2);
        assert_eq!(from_load(2, 0.9).threads, 1);
        assert_eq!(from_load(2, 2.0).threads, 1);
        assert_eq!(from_load(8, 2.6).threads, 5);
    }
}
