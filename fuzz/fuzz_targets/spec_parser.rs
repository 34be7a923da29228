//! Arbitrary text as a probe spec: parsing ends in Ok or an error, never a
//! panic, and every span it reports lies inside the input on character
//! boundaries (the error renderer slices the text with them). The same
//! text as a filter is parsed and checked against a set of fields (with
//! literal translation), which must not panic either and must report
//! spans inside the filter.
#![no_main]

use coolkprobe::compile::filter::{check as check_filter, common_fields, FieldType, FilterField};
use coolkprobe::compile::plan::{Display, NameEntry, NameTable, Names};
use coolkprobe::spec::{parse_probe, Cast, Expr, Filter, Place, Span, Spanned};
use libfuzzer_sys::fuzz_target;

fn check(text: &str, s: Span) {
    assert!(s.start <= s.end, "inverted span {s:?}");
    assert!(s.end <= text.len(), "span {s:?} past the end ({})", text.len());
    assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
}

fn check_cast(text: &str, c: &Cast) {
    check(text, c.name.span);
    if let Some(l) = c.packet.and_then(|p| p.layer) {
        check(text, l.span);
    }
}

fn filter(text: &str) {
    let int = |bytes, signed| FieldType::Int { bytes, signed };
    let field = |name: &str, display, size, ty| FilterField {
        name: name.into(),
        display,
        size,
        ty,
        path: None,
        names: None,
    };
    let mut fields = vec![
        field("ip_src", Display::Ip, Some(4), int(4, false)),
        field("ip_v6", Display::Ip, Some(16), FieldType::Array),
        field("b16_p", Display::Swapped { bits: 16, hex: false }, Some(2), int(2, false)),
        field("B32_x", Display::Swapped { bits: 32, hex: true }, None, int(4, false)),
        field("B64_q", Display::Swapped { bits: 64, hex: true }, Some(8), int(8, false)),
        field("n", Display::Default, Some(4), int(4, true)),
        field("s", Display::Default, None, FieldType::String),
        field("b", Display::Default, None, FieldType::Bits { width: 3 }),
        // A whole struct's leaf (named by its path too), with names for
        // its numbers; an error return.
        FilterField {
            path: Some("c.skc_state".into()),
            names: Some(Names::Table(std::sync::Arc::new(NameTable {
                what: "enum e".into(),
                size: 1,
                flags: false,
                entries: vec![NameEntry {
                    mask: u64::MAX,
                    value: 0xff,
                    name: "TCP_CLOSE".into(),
                }],
            }))),
            ..field("c_skc_state", Display::Default, None, int(1, true))
        },
        FilterField {
            names: Some(Names::Errno),
            ..field("r", Display::Default, None, int(8, true))
        },
    ];
    fields.extend(common_fields());
    match coolkprobe::spec::filter::parse(text, 0) {
        Err(e) => {
            if let Some(s) = e.span {
                check(text, s);
            }
        }
        Ok(expr) => {
            for p in expr.preds() {
                check(text, p.field.span);
                check(text, p.op.span);
                check(text, p.value.span);
            }
            let f = Filter {
                text: Spanned {
                    node: text.to_string(),
                    span: Span::new(0, text.len()),
                },
                expr,
            };
            for complete in [true, false] {
                if let Err(errors) = check_filter(&f, &fields, complete) {
                    for e in errors {
                        if let Some(s) = e.span {
                            check(text, s);
                        }
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    filter(text);
    match parse_probe(text) {
        Err(e) => {
            if let Some(s) = e.span {
                check(text, s);
            }
        }
        Ok(p) => {
            assert_eq!(p.text, text);
            check(text, p.kind.span);
            check(text, p.place.span);
            if let Place::Kernel { spans, .. } = &p.place.node {
                check(text, spans.name);
                spans.module.into_iter().chain(spans.offset).for_each(|s| check(text, s));
            }
            if let Some(f) = &p.filter {
                check(text, f.text.span);
                assert_eq!(&text[f.text.span.start..f.text.span.end], f.text.node);
                for p in f.expr.preds() {
                    check(text, p.field.span);
                    check(text, p.value.span);
                }
            }
            for a in &p.args {
                check(text, a.span);
                check(text, a.name.span);
                assert_eq!(&text[a.name.span.start..a.name.span.end], a.name.node);
                match &a.expr {
                    Expr::Raw(r) => {
                        check(text, r.span);
                        assert_eq!(&text[r.span.start..r.span.end], r.node);
                    }
                    Expr::Typed(t) => {
                        check(text, t.span);
                        check(text, t.base.span);
                        if let Some(f) = t.format {
                            check(text, f.span);
                        }
                        if let Some(c) = &t.cast {
                            check(text, c.span);
                            check_cast(text, &c.node);
                        }
                        for s in &t.steps {
                            check(text, s.span);
                        }
                    }
                    Expr::Since(s) => {
                        check(text, s.span);
                        check(text, s.start.span);
                        if let Some(k) = &s.key {
                            check(text, k.span);
                            assert_eq!(&text[k.span.start..k.span.end], k.node);
                        }
                    }
                }
            }
        }
    }
});
