//! Host side of the VM tests: the framed output of the guest's /init
//! (see tests/vm/guest/init), trace-line parsing, and one check per scenario.

// Shared by the scenario checks, not all of which use every field.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Vm {
    pub series: String,
    pub release: String,
    pub console: String,
    pub dir: PathBuf,
    scenarios: Vec<Scenario>,
}

pub struct Scenario {
    pub name: String,
    pub rc: i32,
    /// Everything the scenario printed, framing included (for failure reports).
    pub output: String,
    pub kv: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
}

impl Vm {
    pub fn new(series: &str, results: String, console: String, dir: PathBuf) -> Vm {
        let mut release = String::new();
        let mut scenarios = Vec::new();
        let mut cur: Option<Scenario> = None;
        let mut file: Option<(String, String)> = None;
        for line in results.lines() {
            if let Some((name, body)) = file.as_mut() {
                if line == format!("@@@ EOF {name}") {
                    let (name, mut body) = file.take().expect("open file");
                    // dump() adds a newline so that a file without a last one
                    // still ends its line; drop it again.
                    if body.ends_with("\n\n") || body == "\n" {
                        body.pop();
                    }
                    if let Some(s) = cur.as_mut() {
                        s.output.push_str(line);
                        s.output.push('\n');
                        s.files.insert(name, body);
                    }
                } else {
                    body.push_str(line);
                    body.push('\n');
                    if let Some(s) = cur.as_mut() {
                        s.output.push_str(line);
                        s.output.push('\n');
                    }
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("@@@ BOOTED ") {
                release = rest.split_whitespace().next().unwrap_or("").to_owned();
            } else if let Some(name) = line.strip_prefix("@@@ BEGIN ") {
                cur = Some(Scenario {
                    name: name.to_owned(),
                    rc: -1,
                    output: String::new(),
                    kv: BTreeMap::new(),
                    files: BTreeMap::new(),
                });
            } else if let Some(rest) = line.strip_prefix("@@@ END ") {
                if let Some(mut s) = cur.take() {
                    s.rc = rest
                        .rsplit(' ')
                        .next()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(-1);
                    scenarios.push(s);
                }
            } else if let Some(s) = cur.as_mut() {
                s.output.push_str(line);
                s.output.push('\n');
                if let Some(kv) = line.strip_prefix("@@@ KV ") {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    s.kv.insert(k.to_owned(), v.to_owned());
                } else if let Some(name) = line.strip_prefix("@@@ FILE ") {
                    file = Some((name.to_owned(), String::new()));
                }
            }
        }
        Vm {
            series: series.to_owned(),
            release,
            console,
            dir,
            scenarios,
        }
    }

    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

impl Scenario {
    pub fn kv(&self, key: &str) -> Result<&str, String> {
        self.kv
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("no value '{key}' printed"))
    }

    pub fn kv_num(&self, key: &str) -> Result<i64, String> {
        let v = self.kv(key)?;
        v.trim()
            .parse()
            .map_err(|_| format!("value '{key}' is '{v}', not a number"))
    }

    pub fn file(&self, name: &str) -> Result<&str, String> {
        self.files
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("no file '{name}' dumped"))
    }

    /// The trace events (text form) in a dumped file.
    pub fn events(&self, name: &str) -> Result<Vec<Event>, String> {
        self.file(name)?
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(Event::parse)
            .collect()
    }
}

/// One event line as ftrace's `trace` file and coolkprobe's text output
/// print it: `comm-pid [cpu] [flags] secs.micros: event: (where) name=value...`
#[derive(Debug, Clone)]
pub struct Event {
    pub comm: String,
    pub pid: u32,
    pub cpu: u32,
    pub ts: f64,
    pub event: String,
    /// `(do_sys_openat2+0x0/0x170)`, `(caller+0x6a/0xa0 <- func)`, without parentheses.
    pub location: String,
    pub args: BTreeMap<String, String>,
    pub line: String,
}

impl Event {
    pub fn parse(line: &str) -> Result<Event, String> {
        let bad = |why: &str| format!("cannot parse trace line ({why}): {line}");
        let (task, rest) = line.split_once(" [").ok_or_else(|| bad("no [cpu]"))?;
        let (comm, pid) = task
            .trim()
            .rsplit_once('-')
            .ok_or_else(|| bad("no comm-pid"))?;
        let pid = pid.parse().map_err(|_| bad("pid"))?;
        let (cpu, rest) = rest.split_once(']').ok_or_else(|| bad("no ]"))?;
        let cpu = cpu.trim().parse().map_err(|_| bad("cpu"))?;
        let mut words = rest.split_whitespace();
        let mut ts = None;
        for w in words.by_ref() {
            // An optional flags column (`d.Z..`) comes before the timestamp.
            if let Some(t) = w.strip_suffix(':') {
                ts = Some(t.parse::<f64>().map_err(|_| bad("timestamp"))?);
                break;
            }
        }
        let ts = ts.ok_or_else(|| bad("no timestamp"))?;
        let event = words
            .next()
            .and_then(|w| w.strip_suffix(':'))
            .ok_or_else(|| bad("no event name"))?
            .to_owned();
        let after_event = rest
            .split_once(&format!(" {event}:"))
            .map(|(_, r)| r.trim_start())
            .ok_or_else(|| bad("event"))?;
        let (location, args) = match after_event.strip_prefix('(') {
            Some(r) => {
                let (loc, args) = r.split_once(')').ok_or_else(|| bad("unclosed ("))?;
                (loc.to_owned(), args)
            }
            None => (String::new(), after_event),
        };
        Ok(Event {
            comm: comm.to_owned(),
            pid,
            cpu,
            ts,
            event,
            location,
            args: parse_args(args).map_err(|e| bad(&e))?,
            line: line.to_owned(),
        })
    }

    pub fn arg(&self, name: &str) -> Result<&str, String> {
        self.args
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("no {name}= in: {}", self.line))
    }

    pub fn arg_num(&self, name: &str) -> Result<i64, String> {
        let v = self.arg(name)?;
        parse_int(v).ok_or_else(|| format!("{name}={v} is not a number in: {}", self.line))
    }
}

/// `a=1 b="x y" c=0x10` -> map; quoted values lose their quotes.
pub fn parse_args(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let (name, r) = rest
            .split_once('=')
            .ok_or_else(|| format!("no '=' in '{rest}'"))?;
        let (value, r) = if let Some(q) = r.strip_prefix('"') {
            let end = q.find('"').ok_or("unclosed quote")?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = r.find(' ').unwrap_or(r.len());
            (r[..end].to_owned(), &r[end..])
        };
        out.insert(name.trim().to_owned(), value);
        rest = r.trim_start();
    }
    Ok(out)
}

/// Decimal (signed) or 0x hex.
pub fn parse_int(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok().map(|u| u as i64)
    } else {
        v.parse().ok()
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn one<'a>(events: &'a [Event], event: &str) -> Result<&'a Event, String> {
    let found: Vec<&Event> = events.iter().filter(|e| e.event == event).collect();
    match found.as_slice() {
        [e] => Ok(e),
        _ => Err(format!(
            "expected exactly one '{event}' event, got {}",
            found.len()
        )),
    }
}

/// 00: hand-written kprobes (entry, return, in-function) work on this kernel.
pub fn raw_kprobe(_vm: &Vm, s: &Scenario) -> Result<(), String> {
    ensure(s.kv_num("kprobe_events_before")? == 0, || {
        "kprobe_events not empty at boot".into()
    })?;
    let ev = s.events("trace")?;
    let open = one(&ev, "open")?;
    ensure(open.arg("path")? == "/tmp/ckp-raw-marker", || {
        format!("open path: {}", open.line)
    })?;
    ensure(open.arg_num("dfd")? == -100, || {
        format!("open dfd is not AT_FDCWD: {}", open.line)
    })?;
    ensure(open.location.starts_with("do_sys_openat2+0x0/"), || {
        format!("open at: {}", open.line)
    })?;
    let ret = one(&ev, "ret")?;
    ensure(ret.location.ends_with("<- do_sys_openat2"), || {
        format!("ret at: {}", ret.line)
    })?;
    let fd = ret.arg_num("ret")?;
    ensure(fd >= 3, || format!("open returned {fd}"))?;
    let fdi = one(&ev, "fdi")?;
    ensure(
        fdi.location.starts_with("fd_install+0x") && !fdi.location.starts_with("fd_install+0x0/"),
        || format!("fd_install probe not inside the function: {}", fdi.line),
    )?;
    ensure(fdi.arg_num("fd")? == fd, || {
        format!(
            "register inside fd_install holds {} but open returned {fd}",
            fdi.arg("fd").unwrap_or("?")
        )
    })?;
    ensure(
        ev.iter().all(|e| e.comm == "cat" && e.pid == open.pid),
        || "events from another task".into(),
    )?;
    ensure(s.kv_num("kprobe_events_after")? == 0, || {
        "probes left in kprobe_events".into()
    })
}
