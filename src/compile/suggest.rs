//! Nearest names for "did you mean" hints.

/// Up to three names close to `want`: by edit distance (scaled to the
/// name's length), a name that merely adds a prefix or suffix counts too
/// (`task` → `task_struct`).
pub fn nearest<'a>(want: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (want.chars().count() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, &str)> = names
        .filter(|n| *n != want)
        .filter_map(|n| {
            let d = distance(want, n);
            if d <= limit {
                Some((d, n))
            } else if want.len() >= 3
                && n.len() <= want.len() + 8
                && (n.starts_with(want) || n.ends_with(want) || abbreviates(want, n))
            {
                Some((limit + 1 + n.len() - want.len(), n))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    // A much closer name makes the far ones noise.
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|s| s.0 <= best + 1)
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// `cnt` for `count`, `len` for `length`: same first letter, the rest in
/// order.
fn abbreviates(short: &str, long: &str) -> bool {
    let mut l = long.chars();
    let mut s = short.chars();
    if s.next() != l.next() {
        return false;
    }
    s.all(|c| l.any(|d| d == c))
}

/// Levenshtein distance over chars, with a cheap length cut-off.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 8 {
        return usize::MAX / 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("comm", "comm"), 0);
    }

    #[test]
    fn picks_close_names() {
        let names = [
            "task_struct",
            "task_group",
            "mm_struct",
            "tasklet_struct",
            "x",
        ];
        assert_eq!(nearest("task_strut", names.into_iter())[0], "task_struct");
        assert_eq!(
            nearest("task", names.into_iter()),
            vec!["task_group", "task_struct"]
        );
        assert!(nearest("zzzzzzzz", names.into_iter()).is_empty());
    }
}
