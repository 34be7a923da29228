//! Capture raw ring-buffer pages from this kernel as decoder fixtures.
//!
//!   cargo run --example capture_pages -- OUT_DIR   (as root)
//!
//! Builds two small C programs, traces them through a session (a
//! tracepoint with a stacktrace trigger, uprobes with numbers and a
//! string, a uretprobe, sched_switch for char arrays), then saves every
//! page of every CPU's trace_pipe_raw (`cpuN.raw`), `header_page`,
//! `header_event`, each event's `format` (`format.<id>`) and `meta`
//! (what was generated, for the tests to check exactly).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use coolkprobe::compile::plan::{CompiledProbe, FetchArg, Plan, Target};
use coolkprobe::tracefs::{Session, SessionOptions, Tracefs};

const PROG: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int probe_me(long a, long b) { return (int)(a + b); }
long probe_str(const char *s, long n) { return n; }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1;
    char buf[64];
    for (long i = 1; i <= n; i++) {
        probe_me(i, 1000 * i - 7);
        snprintf(buf, sizeof buf, "str-%ld", i);
        probe_str(buf, -i);
        syscall(SYS_getppid);
    }
    printf("%d\n", getpid());
    return 0;
}
"#;

fn file_offset(bin: &Path, sym: &str) -> u64 {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(bin).unwrap();
    let f = object::File::parse(&*data).unwrap();
    let s = f.symbols().find(|s| s.name() == Ok(sym)).unwrap();
    let sec = f.section_by_index(s.section_index().unwrap()).unwrap();
    s.address() - sec.address() + sec.file_range().unwrap().0
}

fn probe(
    index: usize,
    target: Target,
    args: &[(&str, &str)],
    filter: Option<&str>,
) -> CompiledProbe {
    CompiledProbe {
        index,
        spec: String::new(),
        target,
        fetchargs: args.iter().map(|(n, f)| FetchArg::raw(*n, f)).collect(),
        filter: filter.map(String::from),
        fields: vec![],
        aggs: vec![],
        latency: None,
    }
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("OUT_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let tmp = std::env::temp_dir().join(format!("ckp-capture-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = tmp.join("capture_prog.c");
    std::fs::write(&src, PROG).unwrap();
    let bin = tmp.join("capture_prog");
    assert!(Command::new("gcc")
        .args(["-O0", "-fno-inline", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let up = |ret, sym: &str| Target::Uprobe {
        ret,
        path: bin.clone(),
        offset: file_offset(&bin, sym),
        symbol: Some(sym.into()),
    };
    let plan = Plan {
        group: coolkprobe::tracefs::run_group(std::process::id()),
        probes: vec![
            probe(
                0,
                Target::Tracepoint {
                    system: "syscalls".into(),
                    event: "sys_enter_getppid".into(),
                },
                &[],
                Some("common_pid!=0"),
            ),
            probe(
                1,
                up(false, "probe_me"),
                &[("a", "%di:s64"), ("b", "%si:x32")],
                None,
            ),
            probe(2, up(true, "probe_me"), &[("r", "$retval:s32")], None),
            probe(
                3,
                up(false, "probe_str"),
                &[("s", "+0(%di):string"), ("n", "%si:s16")],
                None,
            ),
            probe(
                4,
                Target::Tracepoint {
                    system: "sched".into(),
                    event: "sched_switch".into(),
                },
                &[],
                Some("prev_comm==\"capture_prog\""),
            ),
        ],
    };
    let fs = Tracefs::find_or_mount().unwrap();
    let opts = SessionOptions {
        stack: true,
        ..Default::default()
    };
    let mut s = Session::create(fs.clone(), &plan.group, &opts).unwrap();
    s.install(&plan, &opts).unwrap();
    let inst = s.instance().to_string();
    let n = 300;
    let o = Command::new(&bin).arg(n.to_string()).output().unwrap();
    let pid: u32 = String::from_utf8(o.stdout).unwrap().trim().parse().unwrap();
    s.stop_recording().unwrap();
    for f in ["events/header_page", "events/header_event"] {
        let t = fs.read(f).unwrap();
        std::fs::write(out.join(Path::new(f).file_name().unwrap()), t).unwrap();
    }
    let mut ids = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let t = fs
            .read(&format!("{inst}/events/{sys}/{ev}/format"))
            .unwrap();
        let f = coolkprobe::tracefs::format::EventFormat::parse(&t).unwrap();
        ids.push(format!("f{}={}", p.index, f.id));
        std::fs::write(out.join(format!("format.{}", f.id)), t).unwrap();
    }
    let t = fs
        .read(&format!("{inst}/events/ftrace/kernel_stack/format"))
        .unwrap();
    std::fs::write(out.join("format.kernel_stack"), t).unwrap();
    let mut pages = 0;
    for e in std::fs::read_dir(fs.path(&format!("{inst}/per_cpu")))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(e.path().join("trace_pipe_raw"))
                .unwrap()
        };
        let mut all = Vec::new();
        let mut page = vec![0u8; 4096];
        loop {
            page.iter_mut().for_each(|b| *b = 0);
            match f.read(&mut page) {
                Ok(0) => break,
                Ok(_) => {
                    all.extend_from_slice(&page);
                    pages += 1;
                }
                Err(_) => break,
            }
        }
        if !all.is_empty() {
            std::fs::write(out.join(format!("{name}.raw")), all).unwrap();
        }
    }
    let meta = format!(
        "kernel={}\npid={pid}\ncalls={n}\n{}\n",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim(),
        ids.join("\n")
    );
    std::fs::write(out.join("meta"), meta).unwrap();
    drop(s);
    std::fs::remove_dir_all(&tmp).unwrap();
    eprintln!("{pages} pages saved in {}", out.display());
}
