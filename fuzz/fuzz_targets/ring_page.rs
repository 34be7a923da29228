//! Arbitrary bytes as a trace_pipe_raw page (or several): decoding ends
//! on every input without a panic or an endless loop; every record lies
//! inside the page; field values, the readers' index (with stacks
//! joined) and both renderers take whatever the records hold.
#![no_main]

use coolkprobe::compile::plan::{CompiledProbe, Plan, Target};
use coolkprobe::render::Renderer;
use coolkprobe::tracefs::format::EventFormat;
use coolkprobe::ring::merge::{Merger, Sink};
use coolkprobe::ring::page::PageLayout;
use coolkprobe::ring::reader::{index_pages, Batch, Msg};
use libfuzzer_sys::fuzz_target;

/// A uprobe format with every field kind the decoder knows, id 1; and
/// kernel_stack, id 4 (real files from tests/fixtures/ring, ids changed).
const FORMAT: &str = "name: f3\nID: 1\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:__data_loc char[] s;\toffset:16;\tsize:4;\tsigned:1;\n\
\tfield:s16 n;\toffset:20;\tsize:2;\tsigned:1;\n\
\tfield:__rel_loc char[] r;\toffset:22;\tsize:4;\tsigned:1;\n\
\tfield:__data_loc u32[] arr;\toffset:26;\tsize:4;\tsigned:0;\n\
\tfield:char comm[6];\toffset:30;\tsize:6;\tsigned:0;\n\
\tfield:u8 ip[4];\toffset:36;\tsize:4;\tsigned:0;\n\n\
print fmt: \"(%lx) s=\\\"%s\\\" n=%d\", REC->__probe_ip\n";

const STACK: &str = "name: kernel_stack\nID: 4\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;\n";

fuzz_target!(|data: &[u8]| {
    let layout = PageLayout::X86_64_4K;
    let fmt = EventFormat::parse(FORMAT).unwrap();
    for page in data.chunks(layout.subbuf_size) {
        if let Ok(p) = layout.page(page) {
            let mut n = 0usize;
            for r in p.records() {
                n += 1;
                assert!(n <= page.len() / 4 + 1, "more records than 4-byte words");
                if let Ok(r) = r {
                    let at = r.payload.as_ptr() as usize - page.as_ptr() as usize;
                    assert!(at + r.payload.len() <= page.len());
                    for f in &fmt.fields {
                        let _ = f.value(r.payload);
                    }
                }
            }
        }
    }
    // Text that is not a format file must not break the parsers either.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = EventFormat::parse(s);
        let _ = PageLayout::parse(s, 4096);
    }
    let mut items = Vec::new();
    let _ = index_pages(&layout, Some(4), data, &mut items);
    let plan = Plan {
        group: "coolkprobe_1".into(),
        probes: vec![CompiledProbe {
            index: 0,
            spec: "p /x:f".into(),
            target: Target::Uprobe {
                ret: false,
                path: "/x".into(),
                offset: 0,
                symbol: None,
            },
            fetchargs: vec![],
            filter: None,
            fields: vec![],
            aggs: vec![],
        }],
    };
    for json in [false, true] {
        let mut r = Renderer::new(
            &plan,
            vec![fmt.clone()],
            Some(EventFormat::parse(STACK).unwrap()),
            json,
            Vec::<u8>::new(),
        );
        // No /proc or kallsyms lookups in the loop: names come from nowhere.
        r.kallsyms = coolkprobe::render::Kallsyms::from_file("/nonexistent");
        r.comms.disable_lookups();
        let mut m = Merger::new(1, std::time::Duration::ZERO);
        m.feed(
            Msg::Batch(Batch {
                slot: 0,
                cpu: 0,
                buf: data.to_vec(),
                items: items.clone(),
                arrival: std::time::Instant::now(),
            }),
            &mut r,
        );
        m.feed(Msg::Done { slot: 0, error: None }, &mut r);
        m.emit(&mut r);
        r.flush();
        let _ = r.counts.events;
        let _: &mut dyn Sink = &mut r;
    }
});
