//! Values as a C programmer reads them, live on this machine's kernel
//! with uprobes typed by a test program's DWARF (tests/c/values.c):
//! bytes vs strings and whole integer arrays. The offsets in the `-S`
//! definitions come from pahole reading the same binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::pahole;
use common::trace::{live_lock, trace};

fn build(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckp-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/values.c");
    let st = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc is needed");
    assert!(st.success());
    out
}

/// Byte offset of `member` of `struct values` as pahole prints it.
fn offset(bin: &Path, member: &str) -> u64 {
    let out = Command::new("pahole")
        .args(["-F", "dwarf", "-C", "values"])
        .arg(bin)
        .output()
        .expect("pahole is needed (apt-get install dwarves)");
    let text = String::from_utf8(out.stdout).unwrap();
    pahole::members(&text)
        .into_iter()
        .find(|(n, _, _)| n == member)
        .unwrap_or_else(|| panic!("pahole shows no {member}:\n{text}"))
        .1
}

fn show(specs: &[String]) -> String {
    let mut args = vec!["-S".to_string()];
    args.extend_from_slice(specs);
    let out = common::cli::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const BYTES: &str = "mac=%0X~(struct values)->mac macs=%0~(struct values)->mac \
     words=%0~(struct values)->words wordsu=%0U~(struct values)->words \
     data=%0X~(struct values)->data datas=%0~(struct values)->data \
     name=%0~(struct values)->name namex=%0X~(struct values)->name \
     raw=%0~(struct values)->raw";

/// A `char`-family pointer or array without a letter is a string; with a
/// letter, the pointer itself or the array's elements; an integer array
/// is the kernel's array fetch type.
#[test]
fn bytes_and_strings_definitions() {
    let bin = build("bytes");
    let def = show(&[format!("p {}:take {BYTES}", bin.display())]);
    let at = |m: &str| match offset(&bin, m) {
        0 => "+0(%di)".to_string(),
        o => format!("+{o:#x}(%di)"),
    };
    for want in [
        format!("mac={}:x8[6]", at("mac")),
        format!("macs={}:string", at("mac")),
        format!("words={}:x32[4]", at("words")),
        format!("wordsu={}:u32[4]", at("words")),
        format!("data={}:x64", at("data")),
        format!("datas=+0({}):string", at("data")),
        format!("name={}:string", at("name")),
        format!("namex={}:x8[8]", at("name")),
        format!("raw={}:x8[3]", at("raw")),
    ] {
        assert!(
            def.split_whitespace().any(|a| a.trim_matches('\'') == want),
            "expected {want} in\n{def}"
        );
    }
}

/// The same, traced: arrays as `{0x..,..}` in text and JSON arrays.
#[test]
fn bytes_and_strings_live() {
    let Some(_lock) = live_lock("live bytes-and-strings uprobes") else {
        return;
    };
    let bin = build(&format!("ckpb{}", std::process::id() % 100_000));
    let spec = format!("p {}:take {BYTES}", bin.display());
    let run = || {
        assert!(Command::new(&bin).status().unwrap().success());
    };
    let json = trace(&[&spec, "--json", "-c", "1"], 1, run);
    let ev: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let a = &ev["args"];
    let hex = |v: &[&str]| serde_json::json!(v);
    assert_eq!(
        a["mac"],
        hex(&["0x2", "0x0", "0x5e", "0x10", "0x20", "0x30"]),
        "{ev}"
    );
    // Without a letter: a string, up to the first zero byte (0x02, then 0x00).
    assert_eq!(a["macs"], "\u{2}", "{ev}");
    assert_eq!(
        a["words"],
        hex(&["0x1", "0x10", "0xffffffff", "0x4"]),
        "{ev}"
    );
    assert_eq!(
        a["wordsu"],
        serde_json::json!([1, 16, 4294967295u64, 4]),
        "{ev}"
    );
    assert!(
        a["data"].as_str().is_some_and(|d| d.starts_with("0x")),
        "{ev}"
    );
    assert_eq!(a["name"], "values", "{ev}");
    assert_eq!(
        a["namex"],
        hex(&["0x76", "0x61", "0x6c", "0x75", "0x65", "0x73", "0x0", "0x0"]),
        "{ev}"
    );
    assert_eq!(a["raw"], hex(&["0x0", "0x7", "0x80"]), "{ev}");
    let text = trace(&[&spec, "-c", "1"], 1, run);
    for want in [
        " mac={0x2,0x0,0x5e,0x10,0x20,0x30} ",
        " words={0x1,0x10,0xffffffff,0x4} ",
        " wordsu={1,16,4294967295,4} ",
        " datas=\"\\xde\\xad\\xbe\\xef\" ",
        " name=\"values\" ",
        " raw={0x0,0x7,0x80}",
    ] {
        assert!(text.stdout.contains(want), "{want} in {}", text.stdout);
    }
}

const NAMES: &str = "st=%0~(struct values)->state un=%0~(struct values)->unknown \
     perm=%0~(struct values)->perm on=%0~(struct values)->on off=%0~(struct values)->off \
     s=s flag=flag stx=%0X~(struct values)->state";

/// Enums by name (a flag-like one as `A|B`, a value with no name as its
/// number), bools as true/false, the number beside each name in JSON, a
/// letter for the number alone; `--raw` for numbers only.
#[test]
fn names_live() {
    let Some(_lock) = live_lock("live named values at uprobes") else {
        return;
    };
    let bin = build(&format!("ckpn{}", std::process::id() % 100_000));
    let spec = format!("p {}:take {NAMES}", bin.display());
    let ret = format!("r {}:take r=$retval", bin.display());
    let run = || {
        assert!(Command::new(&bin).status().unwrap().success());
    };
    let json = trace(&[&spec, &ret, "--json", "-c", "2"], 2, run);
    let evs: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (a, raw) = (&evs[0]["args"], &evs[0]["raw"]);
    assert_eq!(a["st"], "ST_RUNNING", "{}", evs[0]);
    assert_eq!(raw["st"], 3, "{}", evs[0]);
    assert_eq!(a["un"], 5, "{}", evs[0]);
    assert!(raw.get("un").is_none(), "{}", evs[0]);
    assert_eq!(a["perm"], "P_READ|P_EXEC", "{}", evs[0]);
    assert_eq!(raw["perm"], "0x5", "{}", evs[0]);
    assert_eq!(a["on"], true, "{}", evs[0]);
    assert_eq!(a["off"], false, "{}", evs[0]);
    assert_eq!(a["s"], "ST_DONE", "{}", evs[0]);
    assert_eq!(a["flag"], true, "{}", evs[0]);
    assert_eq!(a["stx"], "0x3", "{}", evs[0]);
    // A user function's int return is no errno: 1 + 7 + 1.
    assert_eq!(evs[1]["args"]["r"], 9, "{}", evs[1]);
    let text = trace(&[&spec, "-c", "1"], 1, run);
    assert!(
        text.stdout.contains(
            " st=ST_RUNNING un=5 perm=P_READ|P_EXEC on=true off=false s=ST_DONE flag=true stx=0x3"
        ),
        "{}",
        text.stdout
    );
    let raw = trace(&[&spec, "--raw", "-c", "1"], 1, run);
    assert!(
        raw.stdout
            .contains(" st=0x3 un=0x5 perm=0x5 on=0x1 off=0x0 s=7 flag=1 stx=0x3"),
        "{}",
        raw.stdout
    );
}

/// A whole struct (`*v`): a C initializer in text, a nested object in
/// JSON, nested structs and an array of structs, names and the numbers
/// beside them, pointers as addresses, a signed bitfield sign-extended.
#[test]
fn whole_struct_live() {
    let Some(_lock) = live_lock("a whole struct at a uprobe") else {
        return;
    };
    let bin = build(&format!("ckpw{}", std::process::id() % 100_000));
    let spec = format!("p {}:take v=*v s=s", bin.display());
    let run = || {
        assert!(Command::new(&bin).status().unwrap().success());
    };
    let text = trace(&[&spec, "-c", "1"], 1, run);
    let line = text.stdout.lines().next().unwrap_or("");
    for want in [
        " v={mac=\"\\x02\" words={1,16,4294967295,4} data=0x",
        " name=\"values\" raw={0,7,128} state=ST_RUNNING unknown=5 perm=P_READ|P_EXEC on=true off=false at={x=-3 y=9} path={{x=10 y=11},{x=12 y=13}} cb=0x",
        " bits=5 neg=-2 count=1 counters={5,-6}} s=ST_DONE",
    ] {
        assert!(line.contains(want), "{want} in {line}");
    }
    let json = trace(&[&spec, "--json", "-c", "1"], 1, run);
    let ev: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let v = &ev["args"]["v"];
    assert_eq!(v["at"], serde_json::json!({"x": -3, "y": 9}), "{ev}");
    assert_eq!(
        v["path"],
        serde_json::json!([{"x": 10, "y": 11}, {"x": 12, "y": 13}]),
        "{ev}"
    );
    assert_eq!(
        v["words"],
        serde_json::json!([1, 16, 4294967295u64, 4]),
        "{ev}"
    );
    assert_eq!(v["counters"], serde_json::json!([5, -6]), "{ev}");
    assert_eq!(v["state"], "ST_RUNNING", "{ev}");
    assert_eq!(v["neg"], -2, "{ev}");
    assert_eq!(
        ev["raw"],
        serde_json::json!({"v": {"state": 3, "perm": "0x5"}, "s": 7}),
        "{ev}"
    );
    assert!(
        v["cb"].as_str().is_some_and(|c| c.starts_with("0x")),
        "{ev}"
    );
}

/// Where a uprobe fired, by symbol: its place in the probed file
/// (`libc.so.6:puts`), and a return probe's caller in another file of the
/// process (the test program, through /proc/PID/maps); `--raw` gives the
/// addresses.
#[test]
fn uprobe_places_by_symbol() {
    let Some(_lock) = live_lock("uprobe places by symbol") else {
        return;
    };
    let bin = build(&format!("ckpp{}", std::process::id() % 100_000));
    let comm: String = bin
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    // The C library this program loads.
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let libc = ldd
        .lines()
        .find_map(|l| l.split("=> ").nth(1).filter(|_| l.contains("libc.so")))
        .and_then(|r| r.split_whitespace().next())
        .expect("the program's libc")
        .to_string();
    let entry = format!("p {libc}:puts f:comm==\"{comm}\"");
    let ret = format!("r {libc}:puts f:comm==\"{comm}\"");
    let run = || {
        assert!(Command::new(&bin).arg("hello").status().unwrap().success());
    };
    let text = trace(&[&entry, &ret, "-c", "2"], 2, run);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].ends_with(" f0: (libc.so.6:puts)"),
        "{}",
        text.stdout
    );
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        lines[1].contains(&format!(" f1: ({name}:main+0x"))
            && lines[1].ends_with(" <- libc.so.6:puts)"),
        "{}",
        text.stdout
    );
    let raw = trace(&[&entry, &ret, "--raw", "-c", "2"], 2, run);
    let lines: Vec<&str> = raw.stdout.lines().collect();
    assert!(lines[0].contains(" f0: (0x"), "{}", raw.stdout);
    assert!(lines[1].contains(" <- 0x"), "{}", raw.stdout);
}

/// A filter names a whole struct's leaves by their member paths and
/// compares them with enumerator names (README, "Whole structs"): the
/// kernel gets field names and numbers, and drops what does not match.
#[test]
fn whole_struct_filtered_by_leaf_paths() {
    let Some(_lock) = live_lock("a whole struct filtered by its leaves") else {
        return;
    };
    let bin = build(&format!("ckpf{}", std::process::id() % 100_000));
    // f0 never matches (the state is ST_RUNNING), f1 always does.
    let never = format!("p {}:take v=*v f:v.state==ST_DONE", bin.display());
    let always = format!(
        "p {}:take w=*v f:w.state==ST_RUNNING && w.at.x==-3 && w.path[1].y==13 && w.perm&P_EXEC",
        bin.display()
    );
    let def = show(&[never.clone(), always.clone()]);
    assert!(def.contains("echo 'v_state==7' > "), "{def}");
    assert!(
        def.contains("echo 'w_state==3 && w_at_x==-3 && w_path_1_y==13 && w_perm&4' > "),
        "{def}"
    );
    let run = || {
        for _ in 0..3 {
            assert!(Command::new(&bin).status().unwrap().success());
        }
    };
    let text = trace(&[&never, &always, "-c", "3"], 2, run);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    for l in lines {
        assert!(
            l.contains(": f1: ") && l.contains(" w={") && l.contains(" state=ST_RUNNING "),
            "{l}"
        );
    }
}

/// A struct with more values than a probe takes (140 leaves): cut to
/// the kernel's 128 values, which the kernel accepts; a warning names
/// what was left out, text ends the struct with ` ...`, JSON says how
/// many in "left_out"; every value kept is right.
#[test]
fn whole_struct_cut_at_the_kernels_limit() {
    let Some(_lock) = live_lock("a whole struct cut at 128 values") else {
        return;
    };
    let bin = build(&format!("ckpm{}", std::process::id() % 100_000));
    let spec = format!("p {}:take_many m=*m", bin.display());
    let def = common::cli::run(&["-S", &spec]);
    let err = String::from_utf8_lossy(&def.stderr);
    assert!(
        err.contains("warning: `m` shows 128 values of `struct many`; left out: 12 of its values past what the kernel takes of one probe")
            && err.contains("p[64].x, p[64].y, p[65].x"),
        "{err}"
    );
    let run = || {
        assert!(Command::new(&bin).status().unwrap().success());
    };
    let text = trace(&[&spec, "-c", "1"], 1, run);
    let line = text.stdout.lines().next().unwrap_or("");
    assert!(
        line.contains(" m={p={{x=0 y=0},{x=1 y=-1},") && line.ends_with(",{x=63 y=-63}} ...}"),
        "{line}"
    );
    let json = trace(&[&spec, "--json", "-c", "1"], 1, run);
    let ev: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let p = ev["args"]["m"]["p"].as_array().unwrap();
    assert_eq!(p.len(), 64, "{ev}");
    for (i, e) in p.iter().enumerate() {
        assert_eq!(e, &serde_json::json!({"x": i, "y": -(i as i64)}), "{ev}");
    }
    assert_eq!(ev["left_out"], serde_json::json!({"m": 12}), "{ev}");
}
