//! Tracepoint fields shown by name, as the kernel's own print format
//! shows them, live on this machine: a TCP connection over loopback at
//! `sock:inet_sock_set_state` (states, family, protocol, addresses), and
//! `sched:sched_switch`'s `prev_state`, each compared with the kernel's
//! own text output of the same events (a tracefs instance of this test's
//! own, `coolkprobe_<test pid>`, removed at the end).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use common::trace::{live_lock, trace};

const T: &str = "/sys/kernel/tracing";

/// This test's own instance, with some events enabled and filtered: the
/// kernel's text output of them, as a reference. Removed when dropped.
struct KernelText {
    dir: PathBuf,
}

impl KernelText {
    fn new(events: &[(&str, &str)]) -> KernelText {
        let dir = PathBuf::from(format!("{T}/instances/coolkprobe_{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        let k = KernelText { dir };
        for (event, filter) in events {
            let e = k.dir.join("events").join(event);
            std::fs::write(e.join("filter"), filter).unwrap();
            std::fs::write(e.join("enable"), "1").unwrap();
        }
        k
    }

    /// The event lines of the `trace` file (not consumed).
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("trace"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for KernelText {
    fn drop(&mut self) {
        // Disabled first: an instance with enabled events may be busy.
        if let Ok(systems) = std::fs::read_dir(self.dir.join("events")) {
            for s in systems.flatten() {
                if let Ok(evs) = std::fs::read_dir(s.path()) {
                    for e in evs.flatten() {
                        let _ = std::fs::write(e.path().join("enable"), "0");
                    }
                }
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `key=value` of a kernel text line (values without spaces).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// One loopback connection to `listener`: a byte each way, then both ends
/// closed (client first).
fn connection(listener: &TcpListener) {
    let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut a, _) = listener.accept().unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    a.read_exact(&mut b).unwrap();
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(a);
    std::thread::sleep(std::time::Duration::from_millis(50));
}

#[test]
fn tcp_states_by_name() {
    let Some(_lock) = live_lock("tracepoint names at sock:inet_sock_set_state") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("sport=={port} || dport=={port}");
    let kernel = KernelText::new(&[("sock/inet_sock_set_state", &filter)]);
    let spec = format!("t sock:inet_sock_set_state f:{filter}");
    // Client: CLOSE -> SYN_SENT -> ESTABLISHED -> FIN_WAIT1 -> FIN_WAIT2
    // -> CLOSE; the server's socket: LISTEN -> SYN_RECV -> ESTABLISHED ->
    // CLOSE_WAIT -> LAST_ACK -> CLOSE. Ten changes.
    let json = trace(&[&spec, "--json", "-c", "10"], 1, || connection(&listener));
    let text = trace(&[&spec, "-c", "10"], 1, || connection(&listener));
    let evs: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evs.len(), 10, "{}", json.stdout);
    // Per socket, the states in order, and each name's number beside it.
    let mut by_sock: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for e in &evs {
        let a = &e["args"];
        let sk = a["skaddr"].as_str().unwrap().to_string();
        let step = (
            a["oldstate"].as_str().unwrap().to_string(),
            a["newstate"].as_str().unwrap().to_string(),
        );
        match by_sock.iter_mut().find(|(s, _)| *s == sk) {
            Some((_, v)) => v.push(step),
            None => by_sock.push((sk, vec![step])),
        }
        assert_eq!(a["family"], "AF_INET", "{e}");
        assert_eq!(a["protocol"], "IPPROTO_TCP", "{e}");
        assert_eq!(a["saddr"], "127.0.0.1", "{e}");
        assert_eq!(e["raw"]["family"], 2, "{e}");
        assert_eq!(e["raw"]["protocol"], 6, "{e}");
        let tcp = |n: &str| match n {
            "TCP_ESTABLISHED" => 1,
            "TCP_SYN_SENT" => 2,
            "TCP_SYN_RECV" => 3,
            "TCP_FIN_WAIT1" => 4,
            "TCP_FIN_WAIT2" => 5,
            "TCP_CLOSE" => 7,
            "TCP_CLOSE_WAIT" => 8,
            "TCP_LAST_ACK" => 9,
            "TCP_LISTEN" => 10,
            other => panic!("unexpected state {other}"),
        };
        assert_eq!(
            e["raw"]["newstate"],
            tcp(a["newstate"].as_str().unwrap()),
            "{e}"
        );
        assert_eq!(
            e["raw"]["oldstate"],
            tcp(a["oldstate"].as_str().unwrap()),
            "{e}"
        );
    }
    let chain = |v: &[(String, String)]| {
        let mut c = vec![v[0].0.clone()];
        for (old, new) in v {
            assert_eq!(c.last().unwrap(), old, "{v:?}");
            c.push(new.clone());
        }
        c.join(" -> ")
    };
    let mut chains: Vec<String> = by_sock.iter().map(|(_, v)| chain(v)).collect();
    chains.sort();
    assert_eq!(
        chains,
        [
            "TCP_CLOSE -> TCP_SYN_SENT -> TCP_ESTABLISHED -> TCP_FIN_WAIT1 -> TCP_FIN_WAIT2 -> TCP_CLOSE",
            "TCP_LISTEN -> TCP_SYN_RECV -> TCP_ESTABLISHED -> TCP_CLOSE_WAIT -> TCP_LAST_ACK -> TCP_CLOSE",
        ],
        "{}",
        json.stdout
    );
    // Text: the same names, as the kernel's own text output has them for
    // the same two connections.
    let ours: Vec<(String, String)> = text
        .stdout
        .lines()
        .map(|l| {
            (
                field(l, "oldstate").unwrap().to_string(),
                field(l, "newstate").unwrap().to_string(),
            )
        })
        .collect();
    let from_json: Vec<(String, String)> = evs
        .iter()
        .map(|e| {
            (
                e["args"]["oldstate"].as_str().unwrap().to_string(),
                e["args"]["newstate"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ours, from_json, "{}", text.stdout);
    let theirs: Vec<(String, String)> = kernel
        .lines()
        .iter()
        .map(|l| {
            (
                field(l, "oldstate").unwrap().to_string(),
                field(l, "newstate").unwrap().to_string(),
            )
        })
        .collect();
    let both: Vec<(String, String)> = from_json.iter().chain(&ours).cloned().collect();
    assert_eq!(
        theirs,
        both,
        "the kernel's own text:\n{:#?}",
        kernel.lines()
    );
    for l in text.stdout.lines() {
        assert!(
            l.contains(" family=AF_INET protocol=IPPROTO_TCP saddr=127.0.0.1 daddr="),
            "{l}"
        );
    }
    // --raw: numbers, as before names.
    let raw = trace(&[&spec, "--raw", "--json", "-c", "10"], 1, || {
        connection(&listener)
    });
    let first: serde_json::Value =
        serde_json::from_str(raw.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["args"]["oldstate"], 7, "{first}");
    assert_eq!(first["args"]["newstate"], 2, "{first}");
    assert!(first.get("raw").is_none(), "{first}");
}

/// A filter compares a field with a name its print format gives
/// (`newstate==TCP_ESTABLISHED`): the kernel gets the number, and only
/// those state changes come (one per end of each connection).
#[test]
fn filter_by_a_print_format_name() {
    let Some(_lock) = live_lock("a tracepoint filtered by a state's name") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = format!(
        "t sock:inet_sock_set_state f:(sport=={port} || dport=={port}) && newstate==TCP_ESTABLISHED && family==AF_INET"
    );
    let out = trace(&[&spec, "--json", "-c", "4"], 1, || {
        connection(&listener);
        connection(&listener);
    });
    let evs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evs.len(), 4, "{}", out.stdout);
    for e in &evs {
        assert_eq!(e["args"]["newstate"], "TCP_ESTABLISHED", "{e}");
        assert_eq!(e["raw"]["newstate"], 1, "{e}");
    }
    let mut old: Vec<&str> = evs
        .iter()
        .map(|e| e["args"]["oldstate"].as_str().unwrap())
        .collect();
    old.sort();
    assert_eq!(
        old,
        [
            "TCP_SYN_RECV",
            "TCP_SYN_RECV",
            "TCP_SYN_SENT",
            "TCP_SYN_SENT"
        ]
    );
    let script = common::cli::run(&["-S", &spec]);
    let script = String::from_utf8_lossy(&script.stdout);
    assert!(
        script.contains("&& newstate==1 && family==2' > "),
        "{script}"
    );
}

/// `prev_state=%s%s` of `sched:sched_switch`: a `?:` around
/// `__print_flags` and a second argument for a preempted task's `+`,
/// evaluated as the kernel does: our text equals its own, event by event.
#[test]
fn sched_switch_prev_state_as_the_kernel_prints_it() {
    let Some(_lock) = live_lock("tracepoint names at sched:sched_switch") else {
        return;
    };
    // A child that sleeps (S) and runs, over and over.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "while :; do sleep 0.01; done"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let filter = format!("prev_pid=={pid}");
    let kernel = KernelText::new(&[("sched/sched_switch", &filter)]);
    let spec = format!("t sched:sched_switch f:{filter}");
    let ran = trace(&[&spec, "-c", "20"], 1, || {
        std::thread::sleep(std::time::Duration::from_millis(300))
    });
    let theirs = kernel.lines();
    drop(kernel);
    let _ = child.kill();
    let _ = child.wait();
    let ours: Vec<&str> = ran
        .stdout
        .lines()
        .map(|l| field(l, "prev_state").unwrap())
        .collect();
    assert_eq!(ours.len(), 20, "{}", ran.stdout);
    assert!(
        ours.iter().all(|s| !s.is_empty() && !s.starts_with("0x")),
        "{ours:?}"
    );
    // The kernel's instance saw at least the same events; find ours in
    // its sequence (its first events may precede our run's).
    let k: Vec<&str> = theirs
        .iter()
        .filter_map(|l| field(l, "prev_state"))
        .collect();
    let at = (0..k.len().saturating_sub(ours.len() - 1))
        .find(|&i| k[i..i + ours.len()] == ours[..])
        .unwrap_or_else(|| panic!("ours {ours:?} is not in the kernel's {k:?}"));
    eprintln!("prev_state as the kernel prints it, from its event {at}: {ours:?}");
}

/// Every tracepoint format of this machine's kernel: its print format
/// parses without a panic, the fields it names evaluate for any value,
/// and the common ones are found.
#[test]
fn every_print_format_of_this_kernel() {
    use coolkprobe::tracefs::format::EventFormat;
    use coolkprobe::tracefs::printfmt::{self, Val};
    let Some(_lock) = live_lock("reading every tracepoint format") else {
        return;
    };
    let (mut events, mut named) = (0, 0);
    for sys in std::fs::read_dir(format!("{T}/events")).unwrap().flatten() {
        let Ok(evs) = std::fs::read_dir(sys.path()) else {
            continue;
        };
        for e in evs.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("format")) else {
                continue;
            };
            let f = EventFormat::parse(&text).unwrap();
            events += 1;
            for p in printfmt::parse(f.print_fmt.as_deref().unwrap_or("")) {
                assert!(f.field(&p.field).is_some(), "{}: {}", f.name, p.field);
                named += 1;
                for v in [0, 1, 0x80, u64::MAX] {
                    let _ = p.eval(&|_| Some(Val::Int(v)));
                }
                let _ = p.eval(&|_| Some(Val::Bytes(vec![1; 16])));
            }
        }
    }
    eprintln!("{events} tracepoints, {named} fields named by their print format");
    assert!(
        events > 500 && named > 500,
        "{events} tracepoints, {named} named"
    );
}
