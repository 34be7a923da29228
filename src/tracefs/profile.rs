//! The kernel's per-probe counters: `kprobe_profile` counts, for every
//! kprobe event, its hits and the hits it missed (a probe hit while
//! another probe's handler ran, or a return probe with no free instance:
//! `nmissed`). `uprobe_profile` counts hits only; a uprobe does not miss.
//!
//! A profile line names the event without its group (`  f0  12  3`), so
//! lines are matched to events by position: the profile and the events
//! file list the same probes in the same order.

use super::session::Tracefs;

/// `(event, nmissed)` for each kprobe of `group`; empty where the kernel
/// has no kprobe_profile.
pub fn probe_misses(fs: &Tracefs, group: &str) -> Vec<(String, u64)> {
    // Retried if a probe came or went between the two reads.
    for _ in 0..3 {
        let Ok(events) = fs.read("kprobe_events") else {
            return vec![];
        };
        let Ok(profile) = fs.read("kprobe_profile") else {
            return vec![];
        };
        if fs.read("kprobe_events").ok().as_deref() != Some(events.as_str()) {
            continue;
        }
        return misses_of(&events, &profile, group);
    }
    vec![]
}

fn misses_of(events: &str, profile: &str, group: &str) -> Vec<(String, u64)> {
    let names = events.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        // `p:group/event target args` / `r10:group/event ...`
        l.split_whitespace()
            .next()
            .and_then(|h| h.split_once(':'))
            .and_then(|(_, n)| n.split_once('/'))
            .map(|(g, e)| (g.to_string(), e.to_string()))
    });
    let counts = profile.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        // name, nhit, nmissed
        (w.len() == 3)
            .then(|| Some((w[0].to_string(), w[2].parse::<u64>().ok()?)))
            .flatten()
    });
    names
        .zip(counts)
        .filter_map(|(n, c)| {
            let (g, e) = n?;
            let (pe, missed) = c?;
            (g == group && pe == e).then_some((e, missed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_by_position() {
        let events = "p:other/f0 do_exit\nr:coolkprobe_1_2/f0 kernel_clone r=$retval\n\
                      p:coolkprobe_1_2/f1 vfs_read\n";
        let profile = "  f0                                                   10       0\n  \
                       f0                                                   22       7\n  \
                       f1                                                    5       0\n";
        assert_eq!(
            misses_of(events, profile, "coolkprobe_1_2"),
            vec![("f0".to_string(), 7), ("f1".to_string(), 0)]
        );
    }
}
