//! The -S script really works when run as root: on this machine's
//! tracefs (uprobes exist here, kprobes do not), the script installs a
//! uprobe in this run's group and enables it, and its commented teardown
//! lines, run as a script, remove exactly that again.
//!
//! Needs root and tracefs, as CI has; it fails (does not skip) otherwise.

use std::process::Command;

fn tracefs() -> &'static str {
    for t in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if std::path::Path::new(t).join("uprobe_events").exists() {
            return t;
        }
    }
    panic!("no tracefs with uprobe_events: this test needs root and a mounted tracefs");
}

#[test]
fn script_installs_and_teardown_removes_a_uprobe() {
    let t = tracefs();
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let spec = format!("p {exe}:main argc=%0S f:argc > 0");
    let out = Command::new(exe).args(["-S", &spec]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut script = String::from_utf8(out.stdout).unwrap();
    let group = {
        let i = script.find("coolkprobe_").unwrap();
        let digits: String = script[i + 11..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        format!("coolkprobe_{digits}")
    };
    // Every kind of fetcharg the compiler emits, for the kernel's parser
    // to accept: strings in place and through pointers, chains, bitfields,
    // IPv6 bytes, payload units, byte-swapped names. They are compiled for
    // a kprobe against the 6.1 fixture (this kernel has no kprobes) and
    // put on a uprobe at the same place as f0: the values read are not
    // looked at, only whether the kernel takes the definition.
    let kinds = "p try_to_wake_up comm=%0~(struct task_struct)->comm users=%0S~(struct task_struct)->mm->mm_users \
         name=%0~(struct file)->f_path.dentry->d_name.name bf=%0~(struct task_struct)->in_iowait \
         pkt=%0~(struct sk_buff)->pkt_type ip_6=%0~$(struct ipv6hdr)->saddr s=%0S~$(struct icmphdr)->sdata[0] \
         B16_p=%0~$(struct tcphdr)l4->dest bits=%0U~(struct task_struct)->cpus_mask.bits[1]";
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"
    );
    // And user memory: a syscall wrapper's arguments out of pt_regs, a
    // string and a member through user pointers (`+u`, `ustring`).
    let user = "p __x64_sys_openat2 f=%1 how=%2~(struct open_how)->mode";
    let out = Command::new(exe)
        .args(["-S", "-a", "x86_64", "-v", fx, kinds, user])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kscript = String::from_utf8(out.stdout).unwrap();
    let kdefs: Vec<&str> = kscript
        .lines()
        .filter(|l| l.ends_with(">> $T/kprobe_events"))
        .collect();
    let fetchargs = kdefs[0]
        .split_once(" try_to_wake_up ")
        .unwrap()
        .1
        .trim_end_matches("' >> $T/kprobe_events");
    let ufetchargs = kdefs[1]
        .split_once(" __x64_sys_openat2 ")
        .unwrap()
        .1
        .trim_end_matches("' >> $T/kprobe_events");
    // Argument names (and `const char *` → ustring) come from this
    // kernel's syscall tracepoint, so compile that one against it.
    let out = Command::new(exe)
        .args([
            "-S",
            "--arg-fetch",
            "regs",
            "p __x64_sys_openat2 n=filename",
        ])
        .output()
        .unwrap();
    let local = String::from_utf8(out.stdout).unwrap();
    let named = local
        .lines()
        .find(|l| l.ends_with(">> $T/kprobe_events"))
        .and_then(|l| l.split_once(" __x64_sys_openat2 "))
        .map(|(_, a)| a.trim_end_matches("' >> $T/kprobe_events"))
        .unwrap_or_else(|| panic!("{local}{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(named, "n=+0(+0x68(%di)):ustring");
    let ufetchargs = format!("{ufetchargs} {named}");
    let place = script
        .lines()
        .find(|l| l.starts_with(&format!("echo 'p:{group}/f0 ")))
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let extra = format!(
        "echo 'p:{group}/f1 {place} {fetchargs}' >> $T/uprobe_events\necho 1 > $T/events/{group}/f1/enable\n\
         echo 'p:{group}/f2 {place} {ufetchargs}' >> $T/uprobe_events\necho 1 > $T/events/{group}/f2/enable\n"
    );
    let extra_rm = format!(
        "#   echo 0 > $T/events/{group}/f1/enable\n#   echo '-:{group}/f1' >> $T/uprobe_events\n\
         #   echo 0 > $T/events/{group}/f2/enable\n#   echo '-:{group}/f2' >> $T/uprobe_events\n"
    );
    let at = script.find("# read the events:").unwrap();
    script.insert_str(at, &extra);
    script.push_str(&extra_rm);
    let dir = std::env::temp_dir().join(format!("ckp-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let install = dir.join("install.sh");
    std::fs::write(&install, &script).unwrap();
    // The teardown is the commented block after "# remove the probes:".
    let teardown: String = script
        .split("# remove the probes:\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    let remove = dir.join("remove.sh");
    std::fs::write(&remove, format!("T={t}\n{teardown}")).unwrap();

    let run = Command::new("sh").arg(&install).output().unwrap();
    let events = std::fs::read_to_string(format!("{t}/uprobe_events")).unwrap();
    let enable = std::fs::read_to_string(format!("{t}/events/{group}/f0/enable"));
    let enable1 = std::fs::read_to_string(format!("{t}/events/{group}/f1/enable"));
    let filter = std::fs::read_to_string(format!("{t}/events/{group}/f0/filter"));
    // Tear down before asserting, so a failure leaves nothing behind.
    let rm = Command::new("sh").arg(&remove).output().unwrap();
    let after = std::fs::read_to_string(format!("{t}/uprobe_events")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(
        run.status.success(),
        "install: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ours: Vec<&str> = events.lines().filter(|l| l.contains(&group)).collect();
    assert_eq!(ours.len(), 3, "{events}");
    assert!(
        ours[2].ends_with(" f=+0x68(%di):x64 how=+u0x8(+0x60(%di)):x64 n=+0(+0x68(%di)):ustring"),
        "{}",
        ours[2]
    );
    assert!(
        ours[0].starts_with(&format!("p:{group}/f0 {exe}:0x")),
        "{}",
        ours[0]
    );
    assert!(ours[0].ends_with(" argc=%di:s64"), "{}", ours[0]);
    assert_eq!(enable.unwrap().trim(), "1");
    assert_eq!(enable1.unwrap().trim(), "1");
    // The kernel spells the definition back the way it was written.
    assert!(
        ours[1].ends_with(
            " comm=+0xba0(%di):string users=+0x54(+0x8e0(%di)):s32 name=+0(+0x28(+0x18(%di))):string \
             bf=+0x928(%di):b1@3/32 pkt=+0x80(%di):b3@0/8 ip_6=+0x8(+0xd0(%di)):u8[16] \
             s=+0x1c(+0xd0(%di)):s16 B16_p=+0x2(+0xd0(%di)):x16 bits=+0x3f0(%di):u64"
        ),
        "{}",
        ours[1]
    );
    assert_eq!(filter.unwrap().trim(), "argc > 0");
    assert!(
        rm.status.success(),
        "teardown: {}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(!after.contains(&group), "left behind: {after}");
}

/// A script is all or nothing: when the kernel refuses one of its writes
/// (here a tracepoint filter naming a field that event lacks, which `-S`
/// for another kernel cannot know), everything written before it is
/// taken back, the kernel's reason (its error_log entry) is printed, and
/// the script fails.
#[test]
fn a_refused_write_undoes_the_whole_script() {
    let t = tracefs();
    let exe = env!("CARGO_BIN_EXE_coolkprobe");
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf"
    );
    let out = Command::new(exe)
        .args([
            "-S",
            "-s",
            "-v",
            fx,
            &format!("p {exe}:main argc=%di f:argc > 0"),
            &format!("r {exe}:main r=$retval"),
            "t sched:sched_switch f:no_such_field == 1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    let i = script.find("coolkprobe_").unwrap();
    let group: String = script[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let path = std::env::temp_dir().join(format!("ckp-atomic-{}.sh", std::process::id()));
    std::fs::write(&path, &script).unwrap();
    let filter = format!("{t}/events/sched/sched_switch/filter");
    let filter_before = std::fs::read_to_string(&filter).unwrap();
    let run = Command::new("sh").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    let events = std::fs::read_to_string(format!("{t}/uprobe_events")).unwrap();
    let left: Vec<&str> = events.lines().filter(|l| l.contains(&group)).collect();
    // Should anything be left, remove it before failing.
    for l in &left {
        let name = l
            .split_whitespace()
            .next()
            .unwrap()
            .split_once(':')
            .unwrap()
            .1;
        // Disabled and without its trigger, an event can go.
        let _ = std::fs::write(format!("{t}/events/{name}/enable"), "0");
        let _ = std::fs::write(format!("{t}/events/{name}/trigger"), "!stacktrace");
        let _ = std::fs::write(format!("{t}/uprobe_events"), format!("-:{name}\n"));
    }
    let filter_after = std::fs::read_to_string(&filter).unwrap();
    if filter_after != filter_before {
        let _ = std::fs::write(&filter, "0");
    }
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(left.is_empty(), "left installed: {left:?}\n{err}");
    assert!(!std::path::Path::new(&format!("{t}/events/{group}")).exists());
    assert_eq!(filter_after, filter_before);
    // The kernel's own words, then which write it was (the two uprobes,
    // f0's filter, trigger and enable, f1's trigger and enable, then
    // the tracepoint's filter: the 8th).
    assert!(err.contains("error:"), "{err}");
    assert!(err.contains("no_such_field"), "{err}");
    assert!(
        err.contains(
            "coolkprobe: stopped at write 8 of 10; every write of this script is taken back"
        ),
        "{err}"
    );
}
