//! Function prototypes from BTF, and function search against bpftool's
//! list of the same kernel's functions.

use std::path::Path;
use std::process::Command;

use coolkprobe::types::load;
use coolkprobe::types::proto::{search, Signature};

#[test]
fn prototypes_and_search() {
    let f =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf");
    let src = load::open(Some(&f)).unwrap();
    let sig = Signature::of(&*src, "vfs_read")
        .unwrap()
        .expect("vfs_read has a prototype");
    assert_eq!(
        sig.display(&*src).to_string(),
        "ssize_t vfs_read(struct file * file, char * buf, size_t count, loff_t * pos)"
    );
    assert_eq!(sig.param_index("count"), Some(2));
    let sig = Signature::of(&*src, "wake_up_new_task").unwrap().unwrap();
    assert_eq!(
        sig.display(&*src).to_string(),
        "void wake_up_new_task(struct task_struct * p)"
    );
    assert!(Signature::of(&*src, "no_such_function_xyz")
        .unwrap()
        .is_none());

    let found = search(&*src, "vfs_rea*").unwrap();
    assert!(found.iter().any(|n| n == "vfs_read"), "{found:?}");
    assert!(found.iter().all(|n| n.starts_with("vfs_rea")));
    // Search over every FUNC name finds exactly the distinct names bpftool lists.
    let raw = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(&f)
        .output()
        .unwrap();
    let raw = String::from_utf8(raw.stdout).unwrap();
    assert!(raw.contains("FUNC 'vfs_read' type_id="));
    let funcs = raw.lines().filter(|l| l.contains("] FUNC '")).count();
    assert_eq!(search(&*src, "*").unwrap().len(), {
        let mut names: Vec<&str> = raw
            .lines()
            .filter(|l| l.contains("] FUNC '"))
            .filter_map(|l| l.split('\'').nth(1))
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() <= funcs);
        names.len()
    });
}
