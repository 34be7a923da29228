//! Arbitrary text as a probe spec: parsing ends in Ok or an error, never a
//! panic, and every span it reports lies inside the input on character
//! boundaries (the error renderer slices the text with them).
#![no_main]

use coolkprobe::spec::{parse_probe, Cast, Expr, Span};
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_probe(text) {
        Err(e) => check(text, e.span),
        Ok(p) => {
            assert_eq!(p.text, text);
            check(text, p.kind.span);
            check(text, p.place.span);
            if let Some(f) = &p.filter {
                check(text, f.span);
                assert_eq!(&text[f.span.start..f.span.end], f.node);
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
                }
            }
        }
    }
});
