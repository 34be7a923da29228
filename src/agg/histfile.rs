//! The kernel's `events/<system>/<event>/hist` file, parsed.
//!
//! One section per hist trigger on the event, in the order they were
//! added, each headed by `# trigger info: hist:keys=...`. An entry is one
//! line (more with a stack key):
//!
//! ```text
//! { c: dd                                                , n: ~ 2^7  } hitcount:          3
//! { common_pid: cat             [       179] } hitcount:          2  n:     131072
//! { common_stacktrace:
//!          vfs_read+0x9/0x370
//!          ksys_read+0xbb/0xf0
//! , common_pid:        175} hitcount:          1
//! ```
//!
//! and a section ends with `Totals:` (`Hits`, `Entries`, `Dropped`). How
//! each key is printed follows from the trigger (its modifiers) and the
//! event's field types (strings are padded to 50 columns), see
//! hist_trigger_print_key in the kernel's kernel/trace/trace_events_hist.c.
//! The printed key names are not relied on: `keys=common_cpu` prints as
//! `cpu` on some kernels.

/// How one key of a trigger is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `%10llu`.
    Num,
    /// `.hex`: `%llx`.
    Hex,
    /// A string field: `%-50s`.
    Str,
    /// `common_pid.execname`: `%-16s[%10llu]`.
    Exec,
    /// `.log2`: `~ 2^%-2llu`.
    Log2,
    /// `.buckets=N`: `~ %llu-%llu`.
    Bucket,
    /// `stacktrace` / `common_stacktrace`: one `%pS` frame per line.
    Stack,
    /// `.sym` / `.sym-offset`: `[%llx] %-45ps`.
    Sym,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawKey {
    Num(u64),
    Str(Vec<u8>),
    Exec {
        comm: Vec<u8>,
        pid: u64,
    },
    /// The exponent k of a `.log2` bucket.
    Log2(u64),
    /// The first value of a `.buckets=` group.
    Bucket(u64),
    /// Frames as the kernel prints them (`vfs_read+0x9/0x370`).
    Stack(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub keys: Vec<RawKey>,
    pub hitcount: u64,
    /// The sums of `vals=`, in order, after hitcount.
    pub vals: Vec<u64>,
    /// `onmax(...).save(...)`: the maximum and the saved values, as
    /// printed (numbers `%10llu`, strings `%-32s`), in `save()` order.
    pub max: Option<(u64, Vec<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The trigger as the kernel prints it, without ` [active]`.
    pub trigger: String,
    pub keys: Vec<(String, KeyKind)>,
    /// The fields of `onmax(...).save(...)`, in order.
    pub saved: Vec<String>,
    pub entries: Vec<Entry>,
    pub hits: u64,
    pub dropped: u64,
}

/// The fields of a trigger's `.save(a,b)` action.
pub fn trigger_saved(trigger: &str) -> Vec<String> {
    let body = trigger.split(" if ").next().unwrap_or("");
    body.split_once(".save(")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(list, _)| list.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hist file, line {line}: {what}")]
pub struct HistError {
    pub line: usize,
    pub what: String,
}

/// The keys of a trigger text (`hist:keys=c,n.log2:vals=...`): names with
/// their modifiers, and how each is printed. `is_string` says which event
/// fields are strings.
pub fn trigger_keys(trigger: &str, is_string: &dyn Fn(&str) -> bool) -> Vec<(String, KeyKind)> {
    let body = trigger.split(" if ").next().unwrap_or("");
    let Some(keys) = body
        .split(':')
        .find_map(|p| p.strip_prefix("keys=").or_else(|| p.strip_prefix("key=")))
    else {
        return Vec::new();
    };
    keys.split(',')
        .map(|k| {
            let (name, modifier) = k.split_once('.').unwrap_or((k, ""));
            let kind = match modifier {
                "hex" => KeyKind::Hex,
                "execname" => KeyKind::Exec,
                "log2" => KeyKind::Log2,
                "sym" | "sym-offset" => KeyKind::Sym,
                m if m.starts_with("bucket") => KeyKind::Bucket,
                _ if name == "stacktrace" || name == "common_stacktrace" => KeyKind::Stack,
                _ if is_string(name) => KeyKind::Str,
                _ => KeyKind::Num,
            };
            (k.to_string(), kind)
        })
        .collect()
}

/// Parse a whole hist file.
pub fn parse(text: &[u8], is_string: &dyn Fn(&str) -> bool) -> Result<Vec<Section>, HistError> {
    let mut p = P {
        s: text,
        pos: 0,
        line: 1,
    };
    let mut out: Vec<Section> = Vec::new();
    while !p.at_end() {
        let l = p.peek_line();
        if let Some(info) = l.strip_prefix(b"# trigger info: ") {
            let info = String::from_utf8_lossy(info);
            let trigger = info.trim_end().trim_end_matches("[active]").trim_end();
            let trigger = trigger.trim_end_matches("[paused]").trim_end().to_string();
            let keys = trigger_keys(&trigger, is_string);
            out.push(Section {
                saved: trigger_saved(&trigger),
                trigger,
                keys,
                entries: Vec::new(),
                hits: 0,
                dropped: 0,
            });
            p.next_line();
        } else if l.starts_with(b"{") {
            let Some(sec) = out.last_mut() else {
                return Err(p.err("an entry before any `# trigger info:`"));
            };
            let mut e = p.entry(&sec.keys)?;
            if trim(p.peek_line()).starts_with(b"max:") {
                e.max = Some(p.max_line(&sec.saved)?);
            }
            sec.entries.push(e);
        } else {
            let t = trim(l);
            if let Some(sec) = out.last_mut() {
                if let Some(v) = t.strip_prefix(b"Hits:") {
                    sec.hits = p.num_in(v)?;
                } else if let Some(v) = t.strip_prefix(b"Dropped:") {
                    sec.dropped = p.num_in(v)?;
                }
            }
            p.next_line();
        }
    }
    Ok(out)
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [c, rest @ ..] = b {
        if !c.is_ascii_whitespace() {
            break;
        }
        b = rest;
    }
    while let [rest @ .., c] = b {
        if !c.is_ascii_whitespace() {
            break;
        }
        b = rest;
    }
    b
}

struct P<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> P<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn err(&self, what: impl Into<String>) -> HistError {
        HistError {
            line: self.line,
            what: what.into(),
        }
    }
    fn rest(&self) -> &'a [u8] {
        &self.s[self.pos.min(self.s.len())..]
    }
    /// The current line, without its newline.
    fn peek_line(&self) -> &'a [u8] {
        let r = self.rest();
        &r[..r.iter().position(|&c| c == b'\n').unwrap_or(r.len())]
    }
    fn next_line(&mut self) {
        let n = self.peek_line().len();
        self.pos += n;
        if self.pos < self.s.len() {
            self.pos += 1;
            self.line += 1;
        }
    }
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.rest().starts_with(lit) {
            self.advance(lit.len());
            true
        } else {
            false
        }
    }
    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.s.len());
        self.line += self.s[self.pos..end]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        self.pos = end;
    }
    fn spaces(&mut self) {
        while self.rest().first() == Some(&b' ') {
            self.pos += 1;
        }
    }
    fn expect(&mut self, lit: &[u8]) -> Result<(), HistError> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.err(format!(
                "expected `{}`, found `{}`",
                String::from_utf8_lossy(lit),
                String::from_utf8_lossy(&self.peek_line()[..self.peek_line().len().min(20)])
            )))
        }
    }
    fn digits(&mut self, radix: u32) -> Result<u64, HistError> {
        self.spaces();
        let r = self.rest();
        let n = r
            .iter()
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        let t = std::str::from_utf8(&r[..n]).unwrap_or("");
        let v = u64::from_str_radix(t, radix).map_err(|_| self.err("expected a number"))?;
        self.pos += n;
        Ok(v)
    }
    fn num_in(&self, b: &[u8]) -> Result<u64, HistError> {
        std::str::from_utf8(trim(b))
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.err("expected a number"))
    }

    /// `{ k: v, k: v } hitcount: N  val: N ...` (keys as the trigger says).
    fn entry(&mut self, keys: &[(String, KeyKind)]) -> Result<Entry, HistError> {
        self.expect(b"{ ")?;
        let mut out = Vec::with_capacity(keys.len());
        for (i, (_, kind)) in keys.iter().enumerate() {
            if i > 0 {
                self.expect(b", ")?;
            }
            // The printed name, up to `:` (not always the trigger's name).
            let name_len = self
                .rest()
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            self.pos += name_len;
            self.expect(b":")?;
            let last = i + 1 == keys.len();
            out.push(self.key(*kind, last)?);
        }
        self.spaces();
        self.expect(b"}")?;
        self.spaces();
        self.expect(b"hitcount:")?;
        let hitcount = self.digits(10)?;
        let mut vals = Vec::new();
        loop {
            self.spaces();
            let r = self.rest();
            if r.is_empty() || r[0] == b'\n' {
                break;
            }
            // `name: N` (or `name: N` in hex, which only .hex vals use:
            // not generated here).
            let colon = r
                .iter()
                .take_while(|&&c| c != b'\n')
                .position(|&c| c == b':')
                .ok_or_else(|| self.err("expected `name: value` after hitcount"))?;
            self.pos += colon + 1;
            vals.push(self.digits(10)?);
        }
        self.next_line();
        Ok(Entry {
            keys: out,
            hitcount,
            vals,
            max: None,
        })
    }

    /// `\tmax:  N  a:  N  s: text  ...`, the saved fields in order.
    fn max_line(&mut self, saved: &[String]) -> Result<(u64, Vec<String>), HistError> {
        let line = String::from_utf8_lossy(self.peek_line()).into_owned();
        let t = line.trim_start();
        let rest = t
            .strip_prefix("max:")
            .ok_or_else(|| self.err("expected `max:`"))?;
        let mut at = rest;
        let cut = |s: &str, name: &str| s.find(&format!("  {name}: "));
        let first = saved.first().and_then(|n| cut(at, n)).unwrap_or(at.len());
        let max = at[..first]
            .trim()
            .parse()
            .map_err(|_| self.err("expected the maximum after `max:`"))?;
        at = &at[first..];
        let mut vals = Vec::with_capacity(saved.len());
        for (i, name) in saved.iter().enumerate() {
            let head = format!("  {name}: ");
            let Some(body) = at.strip_prefix(&head) else {
                return Err(self.err(format!("expected `{name}:` in the `max:` line")));
            };
            let end = saved
                .get(i + 1)
                .and_then(|n| cut(body, n))
                .unwrap_or(body.len());
            vals.push(body[..end].trim().to_string());
            at = &body[end..];
        }
        self.next_line();
        Ok((max, vals))
    }

    fn key(&mut self, kind: KeyKind, last: bool) -> Result<RawKey, HistError> {
        if kind == KeyKind::Stack {
            // `stacktrace:\n` then `         frame\n` lines.
            self.expect(b"\n")?;
            let mut frames = Vec::new();
            while self.rest().starts_with(b" ") {
                let l = self.peek_line();
                frames.push(String::from_utf8_lossy(trim(l)).into_owned());
                self.next_line();
            }
            return Ok(RawKey::Stack(frames));
        }
        self.expect(b" ")?;
        Ok(match kind {
            KeyKind::Num => RawKey::Num(self.digits(10)?),
            KeyKind::Hex => RawKey::Num(self.digits(16)?),
            KeyKind::Log2 => {
                self.expect(b"~ 2^")?;
                RawKey::Log2(self.digits(10)?)
            }
            KeyKind::Bucket => {
                self.expect(b"~ ")?;
                let lo = self.digits(10)?;
                self.expect(b"-")?;
                self.digits(10)?;
                RawKey::Bucket(lo)
            }
            KeyKind::Exec => {
                // A comm is at most 15 bytes: padded to 16, then `[pid]`.
                let r = self.rest();
                let at = r
                    .iter()
                    .skip(16)
                    .position(|&c| c == b'[')
                    .map(|i| i + 16)
                    .or_else(|| r.iter().position(|&c| c == b'['))
                    .ok_or_else(|| self.err("expected `[pid]` after the comm"))?;
                let comm = trim_end_spaces(&r[..at]).to_vec();
                self.pos += at + 1;
                let pid = self.digits(10)?;
                self.expect(b"]")?;
                RawKey::Exec { comm, pid }
            }
            KeyKind::Str => {
                // `%-50s`: padded to 50 bytes, so the delimiter (`, ` before
                // the next key, `}` after the last) is at 50 or later.
                let r = self.rest();
                let line = &r[..r.iter().position(|&c| c == b'\n').unwrap_or(r.len())];
                let from = 50.min(line.len());
                let delim: &[u8] = if last { b"}" } else { b", " };
                let at = line[from..]
                    .windows(delim.len())
                    .position(|w| w == delim)
                    .map(|i| i + from)
                    .ok_or_else(|| self.err("unterminated string key"))?;
                let v = trim_end_spaces(&line[..at]).to_vec();
                self.pos += at;
                RawKey::Str(v)
            }
            KeyKind::Sym => {
                self.expect(b"[")?;
                let v = self.digits(16)?;
                self.expect(b"]")?;
                // The symbol text that follows is padded; skip to the delimiter.
                let r = self.rest();
                let line = &r[..r.iter().position(|&c| c == b'\n').unwrap_or(r.len())];
                let delim: &[u8] = if last { b"}" } else { b", " };
                let at = line
                    .windows(delim.len())
                    .position(|w| w == delim)
                    .unwrap_or(line.len());
                self.pos += at;
                RawKey::Num(v)
            }
            KeyKind::Stack => unreachable!("handled above"),
        })
    }
}

fn trim_end_spaces(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b' '] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of Debian's 6.12 kernel (QEMU), five triggers on one
    /// kprobe `p:hx/f0 vfs_read n=%dx:u64 c=$comm` and two on a tracepoint.
    const REAL: &str = include_str!("testdata/hist-6.12.txt");

    fn strings(n: &str) -> bool {
        n == "c"
    }

    #[test]
    fn real_612() {
        let secs = parse(REAL.as_bytes(), &strings).unwrap();
        assert_eq!(secs.len(), 6);
        let s = &secs[0];
        assert_eq!(
            s.trigger,
            "hist:keys=c,n.log2:vals=hitcount:sort=hitcount.descending:size=2048"
        );
        assert_eq!(s.keys[1], ("n.log2".into(), KeyKind::Log2));
        assert_eq!(s.entries.len(), 7);
        assert_eq!(
            s.entries[0],
            Entry {
                keys: vec![RawKey::Str(b"dd".to_vec()), RawKey::Log2(0)],
                hitcount: 9,
                vals: vec![],
                max: None,
            }
        );
        assert_eq!((s.hits, s.dropped), (30, 0));
        let e = &secs[1].entries[5];
        assert_eq!(
            e.keys,
            vec![RawKey::Exec {
                comm: b"dd".to_vec(),
                pid: 166
            }]
        );
        assert_eq!((e.hitcount, e.vals.clone()), (3, vec![15000]));
        let st = &secs[2].entries[0];
        assert_eq!(
            st.keys,
            vec![RawKey::Stack(vec![
                "kprobe_ftrace_handler+0x13b/0x1d0".into(),
                "0xffffffffc058d0de".into(),
                "vfs_read+0x9/0x370".into(),
                "ksys_read+0xbb/0xf0".into(),
                "do_syscall_64+0x87/0x180".into(),
                "entry_SYSCALL_64_after_hwframe+0x76/0x7e".into(),
            ])]
        );
        assert_eq!(st.hitcount, 5);
        let b = &secs[3].entries[0];
        assert_eq!(b.keys, vec![RawKey::Num(1), RawKey::Bucket(8100)]);
        // `keys=cpu` prints its key as `cpu`.
        assert_eq!(secs[4].entries[1].keys, vec![RawKey::Num(1)]);
        assert_eq!(secs[4].entries[1].hitcount, 22);
        let sv = &secs[5].entries[0];
        assert_eq!(sv.keys, vec![RawKey::Str(b"cat".to_vec())]);
        assert_eq!(sv.vals, vec![196608, 196608]);
        // A stack key followed by another key.
        let tp = parse(include_bytes!("testdata/hist-stack-pid.txt"), &strings).unwrap();
        assert_eq!(tp[0].entries.len(), 2);
        assert_eq!(
            tp[0].entries[1].keys,
            vec![
                RawKey::Stack(vec![
                    "do_syscall_64+0x147/0x180".into(),
                    "entry_SYSCALL_64_after_hwframe+0x76/0x7e".into()
                ]),
                RawKey::Num(174)
            ]
        );
    }

    #[test]
    fn dropped_and_paused() {
        let t = "# event histogram\n#\n# trigger info: hist:keys=n:vals=hitcount:sort=hitcount:size=128 [paused]\n#\n\n{ n:          1 } hitcount:          1\n\nTotals:\n    Hits: 128\n    Entries: 128\n    Dropped: 73\n";
        let s = parse(t.as_bytes(), &|_| false).unwrap();
        assert_eq!(
            s[0].trigger,
            "hist:keys=n:vals=hitcount:sort=hitcount:size=128"
        );
        assert_eq!((s[0].hits, s[0].dropped), (128, 73));
    }

    #[test]
    fn long_and_odd_strings() {
        let long = "x".repeat(60);
        let t = format!(
            "# trigger info: hist:keys=s,n:vals=hitcount\n{{ s: {long}, n:          5 }} hitcount:          2\n{{ s: a, b}}{}, n:          6 }} hitcount:          1\n",
            " ".repeat(45)
        );
        let s = parse(t.as_bytes(), &|n| n == "s").unwrap();
        assert_eq!(s[0].entries[0].keys[0], RawKey::Str(long.into_bytes()));
        assert_eq!(s[0].entries[1].keys[0], RawKey::Str(b"a, b}".to_vec()));
        assert_eq!(s[0].entries[1].keys[1], RawKey::Num(6));
    }

    #[test]
    fn errors_not_panics() {
        for t in [
            "{ n: 1 } hitcount: 1\n",
            "# trigger info: hist:keys=n\n{ n: x } hitcount: 1\n",
            "# trigger info: hist:keys=s\n{ s: ab",
            "# trigger info: hist:keys=common_pid.execname\n{ common_pid: ab",
            "# trigger info: hist:keys=stacktrace\n{ stacktrace:",
        ] {
            assert!(parse(t.as_bytes(), &|n| n == "s").is_err(), "{t}");
        }
    }

    /// Debian 6.1: `onmax($m).save(lat,ns,comm,ret)` on a synthetic event
    /// (a latency of hrtimer_nanosleep with a `char comm[]`).
    #[test]
    fn onmax_saved_values() {
        let text = "# event histogram\n#\n\
# trigger info: hist:keys=common_type:vals=hitcount:ckx_m=lat:sort=hitcount:size=2048:onmax($ckx_m).save(lat,ns,comm,ret) [active]\n#\n\n\
{ common_type:       1394 } hitcount:          4\n\
\tmax:  100520809  lat:  100520809  ns:  100000000  comm: sleep                             ret:          0\n\n\
Totals:\n    Hits: 4\n    Entries: 1\n    Dropped: 0\n";
        let secs = parse(text.as_bytes(), &|_| false).unwrap();
        assert_eq!(secs[0].saved, ["lat", "ns", "comm", "ret"]);
        let e = &secs[0].entries[0];
        assert_eq!(e.hitcount, 4);
        assert_eq!(
            e.max,
            Some((
                100520809,
                vec![
                    "100520809".to_string(),
                    "100000000".into(),
                    "sleep".into(),
                    "0".into()
                ]
            ))
        );
        assert_eq!(secs[0].hits, 4);
    }
}
