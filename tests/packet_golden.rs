//! Packet expressions, display names and filter literal
//! translation (2.4), offline on every fixture kernel: the exact lines -S
//! prints. skb->data sits at 0xd0 on Debian's 6.1 and 6.12 and at 0xc8 on
//! 6.18 (also checked against pahole in offsets_pahole.rs).

mod common;

use std::process::Output;

use common::cli::{fixture, normalised, run};

/// (fixture, offset of skb->data, arch, register of argument 0).
const KERNELS: &[(&str, &str, &str, &str)] = &[
    ("vmlinux-6.1.0-56-cloud-amd64.btf", "0xd0", "x86_64", "%di"),
    (
        "vmlinux-6.12.117+deb12-cloud-amd64.btf",
        "0xd0",
        "x86_64",
        "%di",
    ),
    (
        "vmlinux-6.12.117+deb12-cloud-arm64.btf",
        "0xd0",
        "aarch64",
        "%x0",
    ),
    ("vmlinux-6.18.44-fc-v782.btf", "0xc8", "x86_64", "%di"),
];

fn show(fx: &str, probes: &[&str]) -> Output {
    let arch = KERNELS.iter().find(|k| k.0 == fx).map_or("x86_64", |k| k.2);
    let fx = fixture(fx);
    let mut args = vec!["-S", "-a", arch, "-v", fx.to_str().unwrap()];
    args.extend_from_slice(probes);
    run(&args)
}

/// The definition and filter lines of a successful run, group normalised.
fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("echo") && !l.ends_with("/enable"))
        .map(|l| normalised(l).replace("coolkprobe_<PID>", "G"))
        .collect()
}

#[test]
fn readme_packet_examples_on_every_kernel() {
    for (fx, data, _, r) in KERNELS {
        let out = show(
            fx,
            &[
                "p ip_rcv proto=%0~$(struct iphdr)l3->protocol",
                "p ip_rcv seq=%0S~$(struct icmphdr)l3->sdata[0]",
            ],
        );
        assert_eq!(
            lines(&out),
            vec![
                format!("echo 'p:G/f0 ip_rcv proto=+0x9(+{data}({r})):x8' >> $T/kprobe_events"),
                format!("echo 'p:G/f1 ip_rcv seq=+0x1c(+{data}({r})):s16' >> $T/kprobe_events"),
            ],
            "{fx}"
        );
    }
}

/// Every layer marker with every header, payload units, IPv6 bytes.
#[test]
fn layers_headers_and_payload_on_every_kernel() {
    for (fx, d, _, r) in KERNELS {
        let out = show(
            fx,
            &[
                // skb->data at l2: eth 14, then ip 20 before l4 headers.
                "p __netif_receive_skb B16_proto=%0~$(struct ethhdr)l2->h_proto ip_s=%0~$(struct iphdr)l2->saddr b16_dport=%0~$(struct tcphdr)l2->dest q=%0U~$(struct udphdr)l2->qdata[1]",
                // default l3: l4 headers 20 bytes on.
                "p ip_local_deliver ip_dst=%0~$(struct iphdr)->daddr type=%0~$(struct icmphdr)->type l=%0~$(struct icmphdr)->ldata[2] f:ip_dst==192.168.1.1",
                // l4: the header at data itself.
                "p tcp_v4_rcv b16_sport=%0~$(struct tcphdr)l4->source doff=%0~$(struct tcphdr)l4->doff c=%0~$(struct tcphdr)l4->cdata[3] f:b16_sport==443 && doff>5",
                "p icmp_rcv id=%0U~$(struct icmphdr)l4->un.echo.id b16_seq=%0~$(struct icmphdr)l4->un.echo.sequence f:b16_seq == 1",
                // IPv6: 40-byte header, addresses as 16 bytes.
                "p ipv6_rcv ip_src=%0~$(struct ipv6hdr)->saddr nh=%0~$(struct ipv6hdr)l3->nexthdr",
            ],
        );
        assert_eq!(
            lines(&out),
            vec![
                format!("echo 'p:G/f0 __netif_receive_skb B16_proto=+0xc(+{d}({r})):x16 ip_s=+0x1a(+{d}({r})):x32 b16_dport=+0x24(+{d}({r})):x16 q=+0x32(+{d}({r})):u64' >> $T/kprobe_events"),
                format!("echo 'p:G/f1 ip_local_deliver ip_dst=+0x10(+{d}({r})):x32 type=+0x14(+{d}({r})):x8 l=+0x24(+{d}({r})):x32' >> $T/kprobe_events"),
                format!("echo 'p:G/f2 tcp_v4_rcv b16_sport=+0(+{d}({r})):x16 doff=+0xc(+{d}({r})):b4@4/16 c=+0x17(+{d}({r})):x8' >> $T/kprobe_events"),
                format!("echo 'p:G/f3 icmp_rcv id=+0x4(+{d}({r})):u16 b16_seq=+0x6(+{d}({r})):x16' >> $T/kprobe_events"),
                format!("echo 'p:G/f4 ipv6_rcv ip_src=+0x8(+{d}({r})):u8[16] nh=+0x6(+{d}({r})):x8' >> $T/kprobe_events"),
                "echo 'ip_dst==0x101a8c0' > $T/events/G/f1/filter".to_string(),
                "echo 'b16_sport==0xbb01 && doff>5' > $T/events/G/f2/filter".to_string(),
                "echo 'b16_seq == 0x100' > $T/events/G/f3/filter".to_string(),
            ],
            "{fx}"
        );
    }
}

/// The README's filter example, on raw fetchargs too (the name alone decides).
#[test]
fn filter_literals_on_raw_fetchargs() {
    let out = show(
        KERNELS[0].0,
        &["p ip_rcv ip_src=+12(+0xd0(%di)):x32 b32_x=%si f:ip_src==127.0.0.1 || b32_x==1"],
    );
    assert_eq!(
        lines(&out),
        vec![
            "echo 'p:G/f0 ip_rcv ip_src=+12(+0xd0(%di)):x32 b32_x=%si' >> $T/kprobe_events"
                .to_string(),
            "echo 'ip_src==0x100007f || b32_x==0x1000000' > $T/events/G/f0/filter".to_string(),
        ]
    );
}

fn error(probe: &str) -> String {
    let out = show(KERNELS[0].0, &[probe]);
    assert_eq!(out.status.code(), Some(2), "{probe}");
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn untranslatable_filter_literal_is_an_error() {
    assert_eq!(
        error("p ip_rcv ip_src=%0~$(struct iphdr)->saddr f:ip_src==127.0.0.256"),
        "error: bad filter: `127.0.0.256` is not an IPv4 address (compare `ip_src` with e.g. 127.0.0.1)
  p ip_rcv ip_src=%0~$(struct iphdr)->saddr f:ip_src==127.0.0.256
                                                      ^^^^^^^^^^^
"
    );
    assert_eq!(
        error("p ip_rcv b16_p=%0~$(struct tcphdr)l4->dest f:b16_p>1024"),
        "error: bad filter: `b16_p` is byte-swapped: only `==`, `!=` and `&` keep their meaning
  p ip_rcv b16_p=%0~$(struct tcphdr)l4->dest f:b16_p>1024
                                                    ^
"
    );
    assert_eq!(
        error("p ipv6_rcv ip_s=%0~$(struct ipv6hdr)->saddr f:ip_s==1.2.3.4"),
        "error: bad filter: `ip_s` is a 128-bit IPv6 address, which kernel filters cannot compare
  p ipv6_rcv ip_s=%0~$(struct ipv6hdr)->saddr f:ip_s==1.2.3.4
                                                      ^^^^^^^
"
    );
}

#[test]
fn display_name_of_the_wrong_width_is_an_error() {
    assert_eq!(
        error("p ip_rcv B32_p=%0~$(struct tcphdr)l4->dest"),
        "error: the name `B32_p` asks for a 32-bit value, but the value is 16 bits wide
  p ip_rcv B32_p=%0~$(struct tcphdr)l4->dest
                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^
help: rename it, or point it at a member of that width
"
    );
    assert_eq!(
        error("p ip_rcv ip_p=%0~$(struct iphdr)->protocol"),
        "error: the name `ip_p` asks for an IPv4 (32-bit) or IPv6 (128-bit) address, but the value is 8 bits wide
  p ip_rcv ip_p=%0~$(struct iphdr)->protocol
                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
help: rename it, or point it at a member of that width
"
    );
}

#[test]
fn payload_unit_needs_an_l4_header_and_an_index() {
    let e = error("p ip_rcv x=%0~$(struct iphdr)->cdata[0]");
    assert!(
        e.starts_with("error: `struct iphdr` has no member `cdata`\n"),
        "{e}"
    );
    let e = error("p ip_rcv x=%0~$(struct udphdr)->sdata");
    assert!(
        e.starts_with("error: `sdata` needs an index: `sdata[0]`\n"),
        "{e}"
    );
}

/// The display decision each name makes, as the render stage receives it.
#[test]
fn display_plan() {
    use coolkprobe::arch::Arch;
    use coolkprobe::compile::plan::Display;
    use coolkprobe::compile::{compile_probe, Context};
    use coolkprobe::spec::parse_probe;
    let src = coolkprobe::types::load::open(Some(&fixture(KERNELS[0].0))).unwrap();
    let cx = Context::new(Arch::X86_64, Some(src.as_ref()));
    let p = parse_probe(
        "p ip_rcv ip_s=%0~$(struct iphdr)->saddr ip_6=%0~$(struct ipv6hdr)->daddr B16_a=%0~$(struct tcphdr)l4->source \
         b32_b=%0~$(struct tcphdr)l4->seq B64_c=%0~$(struct udphdr)l4->qdata[0] s=%0S~$(struct iphdr)->ttl \
         u=%0U~$(struct iphdr)->ttl x=%0~$(struct iphdr)->ttl c=%0~(struct sk_buff)->dev->name r=%di",
    )
    .unwrap();
    let c = compile_probe(0, &p, &cx).unwrap();
    let got: Vec<(&str, Display)> = c
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.display))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ip_s", Display::Ip),
            ("ip_6", Display::Ip),
            (
                "B16_a",
                Display::Swapped {
                    bits: 16,
                    hex: true
                }
            ),
            (
                "b32_b",
                Display::Swapped {
                    bits: 32,
                    hex: false
                }
            ),
            (
                "B64_c",
                Display::Swapped {
                    bits: 64,
                    hex: true
                }
            ),
            ("s", Display::Signed),
            ("u", Display::Unsigned),
            ("x", Display::Hex),
            ("c", Display::String),
            ("r", Display::Default),
        ]
    );
    assert_eq!(c.fetchargs[1].fetch_text(), "+0x18(+0xd0(%di)):u8[16]");
}
