//! Names for numbers, decided at compile time, offline on every fixture
//! kernel (README, "Values by name"): enum-typed parameters and members
//! get their enum's names exactly as `bpftool btf dump` lists them, the
//! TCP states their anonymous enum's, a kernel function's `long` return
//! errno names, a `bool` true/false, a function pointer the `symbol`
//! fetch type; a letter or `--raw` leaves numbers alone.

mod common;

use std::path::Path;
use std::process::Command;

use coolkprobe::arch::Arch;
use coolkprobe::compile::known::Known;
use coolkprobe::compile::plan::{CompiledProbe, NameTable, Names};
use coolkprobe::compile::{compile_probe, Context};
use coolkprobe::spec::parse_probe;
use coolkprobe::types::{load, TypeSource};

fn arch_of(btf: &Path) -> Arch {
    if btf.to_string_lossy().contains("arm64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    }
}

fn compile(src: &dyn TypeSource, arch: Arch, raw: bool, spec: &str) -> CompiledProbe {
    let cx = Context {
        raw,
        known: Known::new(arch, None),
        ..Context::new(arch, Some(src))
    };
    compile_probe(0, &parse_probe(spec).unwrap(), &cx).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// The enumerators bpftool lists for the enum called `name` (or, for
/// `(anon)`, the one holding `member`): (name, value).
fn bpftool_enum(btf: &Path, name: &str, member: &str) -> Vec<(String, u64)> {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(btf)
        .output()
        .expect("bpftool is needed (apt-get install bpftool)");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut blocks = text.split("\n[");
    let block = blocks
        .find(|b| {
            let head = b.lines().next().unwrap_or("");
            head.contains(&format!(" ENUM '{name}' ")) && b.contains(&format!("'{member}' val="))
        })
        .unwrap_or_else(|| panic!("bpftool lists no enum {name} with {member}"));
    block
        .lines()
        .skip(1)
        .map(|l| {
            let (n, v) = l.trim().split_once(" val=").unwrap();
            let v = v.trim_end_matches("ULL").trim_end_matches("LL");
            let v = match v.parse::<i64>() {
                Ok(i) => i as u64,
                Err(_) => v.parse::<u64>().unwrap(),
            };
            (n.trim_matches('\'').to_string(), v)
        })
        .collect()
}

fn table(p: &CompiledProbe, i: usize) -> &NameTable {
    match &p.fields[i].names {
        Some(Names::Table(t)) => t,
        other => panic!("{}: not a table: {other:?}", p.spec),
    }
}

fn spell(t: &NameTable, v: u64) -> String {
    let mut b = Vec::new();
    assert!(t.spell(v, &mut b), "{} has no name for {v}", t.what);
    String::from_utf8(b).unwrap()
}

/// The table's (name, value) pairs, values cut to the table's size.
fn pairs(t: &NameTable) -> Vec<(String, u64)> {
    t.entries
        .iter()
        .map(|e| (e.name.clone(), e.value))
        .collect()
}

fn cut(v: Vec<(String, u64)>, size: u32) -> Vec<(String, u64)> {
    let m = if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    };
    v.into_iter().map(|(n, x)| (n, x & m)).collect()
}

#[test]
fn names_on_every_fixture() {
    for btf in common::fixtures::btf() {
        let src = load::open(Some(&btf)).unwrap();
        let src = src.as_ref();
        let arch = arch_of(&btf);
        let fx = btf.file_name().unwrap().to_string_lossy().into_owned();

        // An enum-typed parameter.
        let p = compile(src, arch, false, "p hrtimer_nanosleep mode=mode");
        let t = table(&p, 0);
        assert_eq!(
            pairs(t),
            cut(bpftool_enum(&btf, "hrtimer_mode", "HRTIMER_MODE_REL"), 4),
            "{fx}"
        );
        assert_eq!(spell(t, 1), "HRTIMER_MODE_REL", "{fx}");

        // An enum-typed member through a pointer.
        let p = compile(src, arch, false, "p sock_sendmsg st=sock->state");
        let t = table(&p, 0);
        assert_eq!(
            pairs(t),
            cut(bpftool_enum(&btf, "(anon)", "SS_CONNECTED"), 4),
            "{fx}"
        );
        assert_eq!(spell(t, 3), "SS_CONNECTED", "{fx}");

        // The TCP states: an `unsigned char` member named by the
        // kernel's anonymous enum.
        let p = compile(
            src,
            arch,
            false,
            "p tcp_sendmsg s=sk->__sk_common.skc_state",
        );
        let t = table(&p, 0);
        assert_eq!(
            pairs(t),
            cut(bpftool_enum(&btf, "(anon)", "TCP_ESTABLISHED"), 1),
            "{fx}"
        );
        assert_eq!(spell(t, 1), "TCP_ESTABLISHED", "{fx}");

        // Errors, bools, code pointers, open flags.
        let p = compile(src, arch, false, "r do_sys_openat2 r=$retval");
        assert_eq!(p.fields[0].names, Some(Names::Errno), "{fx}");
        let p = compile(
            src,
            arch,
            false,
            "p tcp_sendmsg u=sk->sk_use_task_frag d=sk->sk_data_ready dx=%0X->sk_data_ready",
        );
        assert_eq!(p.fields[0].names, Some(Names::Bool), "{fx}");
        assert_eq!(p.fields[1].names, Some(Names::Symbol), "{fx}");
        assert!(
            p.fetchargs[1].to_string().ends_with(":symbol"),
            "{fx}: {:?}",
            p.fetchargs[1]
        );
        assert_eq!(p.fields[2].names, None, "{fx}");
        assert!(p.fetchargs[2].to_string().ends_with(":x64"), "{fx}");
        let p = compile(src, arch, false, "p do_filp_open f=op->open_flag");
        assert_eq!(
            spell(table(&p, 0), 0o2000102),
            "O_RDWR|O_CREAT|O_CLOEXEC",
            "{fx}"
        );

        // A letter, or --raw: numbers only.
        let p = compile(src, arch, false, "p hrtimer_nanosleep mode=%1U");
        assert_eq!(p.fields[0].names, None, "{fx}");
        let p = compile(
            src,
            arch,
            true,
            "p tcp_sendmsg s=sk->__sk_common.skc_state d=sk->sk_data_ready",
        );
        assert!(p.fields.iter().all(|f| f.names.is_none()), "{fx}");
        assert!(p.fetchargs[1].to_string().ends_with(":x64"), "{fx}");
        eprintln!("{fx}: names agree with bpftool");
    }
}

/// A filter compares named values with their names, and whole structs'
/// leaves by their paths, with `--raw` too (which only shows numbers): the
/// kernel gets field names and numbers; on every fixture kernel, the
/// numbers bpftool lists.
#[test]
fn filter_literals_by_name_on_every_fixture() {
    for fx in common::fixtures::btf() {
        let src: Box<dyn TypeSource> = load::open(Some(&fx)).unwrap();
        let arch = arch_of(&fx);
        let connected = bpftool_enum(&fx, "(anon)", "SS_CONNECTED")
            .into_iter()
            .find(|(n, _)| n == "SS_CONNECTED")
            .expect("SS_CONNECTED")
            .1;
        for raw in [false, true] {
            let p = compile(
                src.as_ref(),
                arch,
                raw,
                "p inet_sendmsg st=sock->state s=*sock f:st==SS_CONNECTED && s.state!=SS_CONNECTED",
            );
            assert_eq!(
                p.filter.as_deref(),
                Some(format!("st=={connected} && s_state!={connected}").as_str()),
                "{}",
                fx.display()
            );
            assert_eq!(p.fields[0].names.is_none(), raw, "{}", fx.display());
            let p = compile(
                src.as_ref(),
                arch,
                raw,
                "p tcp_sendmsg c=sk->__sk_common f:c.skc_family==AF_INET && c.skc_state==TCP_CLOSE",
            );
            assert_eq!(
                p.filter.as_deref(),
                Some("c_skc_family==2 && c_skc_state==7"),
                "{}",
                fx.display()
            );
        }
    }
}
