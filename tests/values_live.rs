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
