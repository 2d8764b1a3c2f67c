//! Fuzz targets of the XMPP side (issue 16): property tests, on stable Rust, over every
//! parser and converter that reads what a user or a server sends: XEP-0393 styling, the
//! stream read guard, message payloads and fallbacks, MAM stamps and queries, data forms,
//! stanza classification, JID localparts.
//!
//! Inputs are biased to what breaks parsers: markup nested thousands deep, runs of one
//! character thousands long, odd Unicode (combining marks, bidi controls, joiners, U+FFFD,
//! non-characters, NUL and controls, every line break), entity-like text, and mixtures of
//! all; the guard is also fed every input in random pieces. Each case is at most 64 KiB and
//! must finish within `budget()` (linear work takes milliseconds).
//!
//! Cases per target: `CAUSEWAY_FUZZ_CASES` (default `DEFAULT_CASES`, what CI runs);
//! `scripts/fuzz [cases]` runs all targets of the workspace long, in release mode. A failure
//! is shrunk and its seed saved in `proptest-regressions/fuzz.txt` (committed: the
//! regression inputs), which every run replays first.

use crate::xmpp::{self, forms, inbound, mam, ns, payload, styling};
use causeway_api::fuzzing::{self, *};
use causeway_api::{hostile, Content, RemoteUserId, Style};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;
use tokio_xmpp::minidom::Element;

use crate::xmpp::guard;

// ---------------------------------------------------------------------------------------
// The harness: causeway_api::fuzzing, failures kept beside this file.

fn fuzz<S>(name: &'static str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    fuzzing::fuzz(file!(), name, strategy, test)
}

// ---------------------------------------------------------------------------------------
// Generators

/// XEP-0393 markup and what surrounds it.
const STYLING: &[&str] = &[
    "*", "_", "~", "`", "```", "```rust", "```\n", "\n```", ">", "> ", ">>", "> > ", "\n> ", "*a*",
    "_b_", "~c~", "`d`", "*_e_*", "* ", " *", "**", "__", "a*", "*😀", "😀*", " ", "  ", "\n",
    "\n\n", "/me ", "x", "word", "<", "&",
];

/// XEP-0393 markup nested: (opening, closing).
const STYLING_NESTS: &[(&str, &str)] = &[
    ("*", "*"),
    ("_", "_"),
    ("~", "~"),
    ("`", "`"),
    (">", ""),
    ("> ", ""),
    ("\n> ", "\n"),
    ("```\n", "\n```"),
    ("*_", "_*"),
    ("*a ", " b*"),
];

/// Markup-like pieces of a stanza's text or attribute (JIDs, ids, numbers, stamps).
const XMPPISH: &[&str] = &[
    "@",
    "/",
    "gw.example",
    "GW.Example",
    "lobby",
    "a@gw.example/r",
    "user@example.org/res",
    "mirror-",
    "roster-",
    "0",
    "1",
    "-1",
    "64",
    "250",
    "999999999999999999999",
    "18446744073709551616",
    " 7 ",
    "2026-11-18T11:06:40Z",
    "1970-01-01T00:00:00.000+14:00",
    "urn:xmpp:mam:2",
    "jabber:iq:register",
    "https://up.example/f.png",
    "/me ",
    "> Nick:\n> quoted\n",
    " ",
    "",
];

fn styling_text() -> BoxedStrategy<String> {
    fuzzing::text(STYLING, STYLING_NESTS)
}

/// Short hostile text for attributes, JIDs, ids (occasionally long).
fn short_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => vec(piece(XMPPISH), 0..6).prop_map(|v| v.concat()),
        1 => (select(XMPPISH), 100..5000usize).prop_map(|(p, n)| p.repeat(n)),
    ]
    .prop_map(cap)
    .boxed()
}

fn style() -> BoxedStrategy<Style> {
    prop_oneof![
        3 => Just(Style::Bold),
        3 => Just(Style::Italic),
        2 => Just(Style::Strike),
        2 => Just(Style::Code),
        1 => prop::option::of(short_text()).prop_map(Style::Pre),
        2 => Just(Style::Quote),
        1 => short_text().prop_map(Style::Link),
        1 => short_text().prop_map(|s| Style::Mention(RemoteUserId::new(s))),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// XEP-0393 styling

#[test]
fn fuzz_styling_parse() {
    fuzz("styling_parse", styling_text(), |body| {
        let c = timed("parse", || styling::parse(&body))?;
        hostile::check_content(&c).map_err(TestCaseError::fail)?;
        let quotes = c.spans.iter().filter(|s| s.style == Style::Quote).count();
        let lines = body.split('\n').count();
        check(quotes <= lines * styling::MAX_QUOTE_DEPTH, || {
            format!("{quotes} quotes over {lines} lines")
        })?;
        let (written, _) = timed("write", || styling::write(&c))?;
        let again = timed("parse written", || styling::parse(&written))?;
        hostile::check_content(&again).map_err(TestCaseError::fail)
    });
}

/// What is written back parses to the same text: what a network's message (read from
/// Discord or Matrix) becomes for XMPP clients.
#[test]
#[ignore = "finding: styling::write puts the body and the closing fence of a code block \
            inside a quote outside the quote (no `> ` before their lines)"]
fn fuzz_styling_round_trip() {
    fuzz("styling_round_trip", styling_text(), |body| {
        let c = timed("parse", || styling::parse(&body))?;
        let (written, _) = timed("write", || styling::write(&c))?;
        let again = timed("parse written", || styling::parse(&written))?;
        check(again.text == c.text, || {
            format!(
                "the text parsed, written ({written:?}) and parsed again: {}",
                diff(&c.text, &again.text)
            )
        })
    });
}

#[test]
fn fuzz_styling_write() {
    fuzz(
        "styling_write",
        fuzzing::content(styling_text(), style()),
        |c| {
            let (body, unstyled) = timed("write", || styling::write(&c))?;
            let back = timed("parse", || styling::parse(&body))?;
            hostile::check_content(&back).map_err(TestCaseError::fail)?;
            // plain text is written as it is, flagged when a client would show it styled
            let plain = Content::text(c.text.clone());
            let (written, flagged) = styling::write(&plain);
            check(written == c.text, || {
                format!("plain text written as {written:?}")
            })?;
            check(flagged || styling::parse(&written).spans.is_empty(), || {
                "plain text that parses styled is not flagged unstyled".into()
            })?;
            // a body flagged unstyled reads back as its text
            if unstyled {
                let read = payload::content_of(&body, true, None);
                check(read.spans.is_empty(), || "unstyled body read styled".into())?;
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The stream read guard

/// What the guard keeps as it is (guard.rs's `LIMIT` and `MAX_DEPTH`).
const GUARD_LIMIT: usize = 4096;
const GUARD_MAX_DEPTH: usize = 32;
/// The longest value passed on: the limit, an entity reference under way there finished
/// (`&#x10FFFF;`), and `#` with the 16 hex digits of the hash of what was cut off.
const GUARD_MAX_VALUE: usize = GUARD_LIMIT + 10 + 17;

/// The guard's output for `input` fed in the pieces between `cuts`, with a fresh guard.
fn guarded(input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut g = guard::Guard::default();
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain([&input.len()]) {
        g.feed(&input[from..c], &mut out);
        from = c;
    }
    out
}

/// The guard's output with the hash digits of cut values and long names masked: each
/// guard draws its own key (a stream's), so two guards' hashes differ.
fn masked(mut out: Vec<u8>) -> Vec<u8> {
    let hex16 = |b: &[u8]| b.len() >= 16 && b[..16].iter().all(u8::is_ascii_hexdigit);
    let mut i = 0;
    while i < out.len() {
        let at = if out[i..].starts_with(b"long-name-") {
            i + 10
        } else if out[i] == b'#' {
            i + 1
        } else {
            i += 1;
            continue;
        };
        if hex16(&out[at..]) {
            out[at..at + 16].fill(b'h');
            i = at + 16;
        } else {
            i += 1;
        }
    }
    out
}

/// Pieces of a byte stream that is anything but well-formed.
const XMLISH: &[&str] = &[
    "<", ">", "</", "/>", "<?", "?>", "<!", "<!--", "-->", "<![CDATA[", "]]>", "'", "\"", "=",
    " ", "\t", "\r", "\n", "\r\n", "\n\r", "&", ";", "&amp;", "&#xD;", "&#x1F389;", "a", "x:y",
    "<a>", "</a>", "<a b='c'>", "<a/>", "<d x='>'>", "</d>", "<a\rb='\r\n'>", "é", "🎉",
    "\u{0}", "\u{fffd}",
    "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>",
    "<message to='a@gw.example'><body>", "</body></message>",
];

fn xmlish_bytes() -> BoxedStrategy<Vec<u8>> {
    let piece = prop_oneof![
        6 => select(XMLISH).prop_map(|s| s.as_bytes().to_vec()),
        1 => select(vec![vec![0xffu8], vec![0xc3], vec![0xe2, 0x82], vec![0x80], vec![0xf0, 0x9f]]),
        1 => (select(vec!["n", "é", "&amp;", "'", "\r\n"]), GUARD_LIMIT - 4..GUARD_LIMIT + 4, select(vec!["<", "<a ", "<a v='", "<a v=\""]))
            .prop_map(|(unit, n, before)| format!("{before}{}", unit.repeat(n)).into_bytes()),
        1 => (1..3000usize, select(vec!["<d>", "<d x='1'>", "<a/>", "</d>", "<d\r\n>"]))
            .prop_map(|(n, unit)| unit.repeat(n).into_bytes()),
        1 => piece(STYLING).prop_map(String::into_bytes),
    ];
    vec(piece, 0..40)
        .prop_map(|v| {
            let mut b = v.concat();
            b.truncate(MAX_INPUT);
            b
        })
        .boxed()
}

#[test]
fn fuzz_guard_any_bytes() {
    let strategy = (xmlish_bytes(), vec(any::<Index>(), 0..12));
    fuzz("guard_any_bytes", strategy, |(input, at)| {
        let whole = timed("feed", || guarded(&input, &[]))?;
        let cuts = cuts(input.len(), &at);
        let pieces = timed("feed in pieces", || guarded(&input, &cuts))?;
        let one_by_one: Vec<usize> = (1..input.len()).collect();
        let bytes = timed("feed byte by byte", || guarded(&input, &one_by_one))?;
        let whole_m = masked(whole.clone());
        check(masked(pieces) == whole_m, || {
            format!("pieces at {cuts:?} differ")
        })?;
        check(masked(bytes) == whole_m, || "byte by byte differs".into())?;
        check(
            std::str::from_utf8(&input).is_err() || std::str::from_utf8(&whole).is_ok(),
            || "UTF-8 in, not UTF-8 out".into(),
        )
    });
}

/// A part of a well-formed stream: an element opened (closed later), closed, empty, text,
/// the same element nested many times, or two namespace declarations cut to one prefix.
#[derive(Clone, Debug)]
enum XmlOp {
    Open(String, Vec<(String, Value)>),
    Empty(String, Vec<(String, Value)>),
    Close,
    Text(Value),
    Nest(String, usize),
    Prefixes(String),
}

/// Character data: raw text (escaped when written) and character or entity references.
#[derive(Clone, Debug)]
enum Seg {
    Raw(String),
    Ref(&'static str),
}
type Value = Vec<Seg>;

/// References XML allows in any text (each decodes to a character XML may carry).
const REFS: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&#x1F389;",
    "&#xD;",
    "&#13;",
    "&#10;",
    "&#x9;",
    "&#233;",
    "&#x10FFFF;",
    "&#xA0;",
];

/// The characters XML 1.0 may carry, of `s`.
fn xml_chars(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        })
        .collect()
}

fn xml_name() -> BoxedStrategy<String> {
    let short = select(vec![
        "a", "b", "d", "message", "body", "iq", "x", "é", "名", "_u", "a-b.c", "a1", "Ω", "z",
    ])
    .prop_map(String::from);
    // names about LIMIT bytes long, and far longer
    let long = (
        select(vec!["n", "é", "名"]),
        prop_oneof![
            GUARD_LIMIT - 3..GUARD_LIMIT + 4,
            2 * GUARD_LIMIT..3 * GUARD_LIMIT
        ],
        select(vec!["", "x", "y"]),
    )
        .prop_map(|(unit, bytes, tail)| {
            let mut s = unit.repeat(bytes / unit.len() + 1);
            let mut end = bytes.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            format!("n{s}{tail}")
        });
    prop_oneof![12 => short, 1 => long].boxed()
}

fn xml_value() -> BoxedStrategy<Value> {
    let seg = prop_oneof![
        6 => piece(XMPPISH).prop_map(|s| Seg::Raw(xml_chars(&s))),
        2 => select(REFS).prop_map(Seg::Ref),
        1 => select(vec!["\r", "\r\n", "\n", "\n\r", "\t"]).prop_map(|s| Seg::Raw(s.into())),
    ];
    // values about LIMIT bytes long as written, and twice that
    let long = (
        select(vec!["v", "é", "🎉", "&amp;", "&#x1F389;", "\r\n"]),
        prop_oneof![
            GUARD_LIMIT - 40..GUARD_LIMIT + 40,
            2 * GUARD_LIMIT..2 * GUARD_LIMIT + 40
        ],
    )
        .prop_map(|(unit, bytes)| {
            let seg = if unit.starts_with('&') {
                Seg::Ref(unit)
            } else {
                Seg::Raw(unit.into())
            };
            vec![seg; bytes / unit.len() + 1]
        });
    prop_oneof![8 => vec(seg, 0..8), 1 => long].boxed()
}

fn attrs() -> BoxedStrategy<Vec<(String, Value)>> {
    vec((xml_name(), xml_value()), 0..4)
        .prop_map(|mut v| {
            // attribute names are unique in a tag
            let mut seen = std::collections::HashSet::new();
            v.retain(|(n, _)| seen.insert(n.clone()));
            v
        })
        .boxed()
}

fn xml_op() -> BoxedStrategy<XmlOp> {
    prop_oneof![
        4 => (xml_name(), attrs()).prop_map(|(n, a)| XmlOp::Open(n, a)),
        3 => (xml_name(), attrs()).prop_map(|(n, a)| XmlOp::Empty(n, a)),
        4 => Just(XmlOp::Close),
        4 => xml_value().prop_map(XmlOp::Text),
        1 => (select(vec!["d", "é", "x"]), 1..200usize).prop_map(|(n, k)| XmlOp::Nest(n.into(), k)),
        1 => Just(XmlOp::Nest("d".into(), 3000)),
        1 => (
            select(vec!["u", "é", "&amp;"]),
            GUARD_LIMIT - 2..GUARD_LIMIT + 20,
        )
            .prop_map(|(unit, n)| XmlOp::Prefixes(unit.repeat(n))),
    ]
    .boxed()
}

/// A stream as the server writes it, and what the guard must meet in it.
#[derive(Debug)]
struct Stream {
    xml: String,
    /// The deepest element (the stream's root is 1), the longest name, and the longest
    /// attribute value as written.
    depth: usize,
    name: usize,
    value: usize,
}

fn write_value(v: &Value, quote: char, out: &mut String) -> usize {
    let start = out.len();
    for seg in v {
        match seg {
            Seg::Ref(r) => out.push_str(r),
            Seg::Raw(s) => {
                for c in s.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '\'' if quote == '\'' => out.push_str("&apos;"),
                        '"' if quote == '"' => out.push_str("&quot;"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.len() - start
}

/// Whitespace between a tag's parts, as a server may write it.
const GAPS: &[&str] = &[" ", "\n", "\r\n", "\t", "  ", "\r"];

fn stream(ops: &[XmlOp], gap: &[Index]) -> Stream {
    let mut gaps = gap.iter().cycle().map(|i| GAPS[i.index(GAPS.len())]);
    let mut s = Stream {
        xml: "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='fz' from='gw.example'>".into(),
        depth: 1,
        name: 0,
        value: 0,
    };
    let mut open: Vec<String> = Vec::new();
    let mut tag =
        |s: &mut Stream, name: &str, attrs: &[(String, Value)], empty: bool, depth: usize| {
            s.xml.push('<');
            s.xml.push_str(name);
            s.name = s.name.max(name.len());
            for (k, (n, v)) in attrs.iter().enumerate() {
                let quote = if k % 2 == 0 { '\'' } else { '"' };
                s.xml.push_str(gaps.next().unwrap_or(" "));
                s.xml.push_str(n);
                s.name = s.name.max(n.len());
                s.xml.push_str(if k % 3 == 1 { " = " } else { "=" });
                s.xml.push(quote);
                let len = write_value(v, quote, &mut s.xml);
                s.value = s.value.max(len);
                s.xml.push(quote);
            }
            if k_gap(attrs.len()) {
                s.xml.push_str(gaps.next().unwrap_or(" "));
            }
            s.xml.push_str(if empty { "/>" } else { ">" });
            s.depth = s.depth.max(depth);
        };
    fn k_gap(n: usize) -> bool {
        n % 2 == 1
    }
    for op in ops {
        if s.xml.len() > MAX_INPUT {
            break;
        }
        let depth = open.len() + 2;
        match op {
            XmlOp::Open(n, a) => {
                tag(&mut s, n, a, false, depth);
                open.push(n.clone());
            }
            XmlOp::Empty(n, a) => tag(&mut s, n, a, true, depth),
            XmlOp::Close => {
                if let Some(n) = open.pop() {
                    s.xml.push_str(&format!("</{n}>"));
                }
            }
            XmlOp::Text(v) => {
                write_value(v, '\0', &mut s.xml);
            }
            XmlOp::Nest(n, k) => {
                for i in 0..*k {
                    tag(&mut s, n, &[], false, depth + i);
                    open.push(n.clone());
                }
            }
            XmlOp::Prefixes(long) => {
                // two declarations that differ only past the limit, each with its own x
                let a = vec![Seg::Raw(format!("{long}1"))];
                let b = vec![Seg::Raw(format!("{long}2"))];
                let mut el = String::new();
                el.push_str("<p xmlns:a='");
                let la = write_value(&a, '\'', &mut el);
                el.push_str("' xmlns:b='");
                let lb = write_value(&b, '\'', &mut el);
                el.push_str("' a:x='1' b:x='2'/>");
                s.xml.push_str(&el);
                s.value = s.value.max(la).max(lb);
                s.depth = s.depth.max(depth);
            }
        }
    }
    while let Some(n) = open.pop() {
        s.xml.push_str(&format!("</{n}>"));
    }
    s.xml.push_str("</stream:stream>");
    s
}

fn depth_of(el: &Element) -> usize {
    1 + el.children().map(depth_of).max().unwrap_or(0)
}

/// Every element name (local) and attribute value of `el` and its descendants.
fn names_and_values(el: &Element, out: &mut Vec<(String, usize)>) {
    out.push((el.name().to_string(), 0));
    for ((_, n), v) in el.attrs() {
        out.push((n.to_string(), v.len()));
    }
    el.children().for_each(|c| names_and_values(c, out));
}

#[test]
fn fuzz_guard_streams() {
    let strategy = (
        vec(xml_op(), 0..24),
        vec(any::<Index>(), 1..8),
        vec(any::<Index>(), 0..12),
    );
    fuzz("guard_streams", strategy, |(ops, gaps, at)| {
        let s = stream(&ops, &gaps);
        let input = s.xml.as_bytes();
        let whole = timed("feed", || guarded(input, &[]))?;
        let cuts = cuts(input.len(), &at);
        let pieces = timed("feed in pieces", || guarded(input, &cuts))?;
        check(masked(pieces) == masked(whole.clone()), || {
            format!("pieces at {cuts:?} differ")
        })?;
        let out = String::from_utf8(whole).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // within every limit, only line breaks change (XML 1.0 2.11)
        if s.depth <= GUARD_MAX_DEPTH && s.name <= GUARD_LIMIT && s.value <= GUARD_LIMIT {
            let normalized = s.xml.replace("\r\n", "\n").replace('\r', "\n");
            check(out == normalized, || {
                "a stream within the limits was changed".into()
            })?;
        }
        // what passes is a well-formed stream, as shallow and short as promised
        let root: Element = out
            .parse()
            .map_err(|e| TestCaseError::fail(format!("guarded stream does not parse: {e}")))?;
        let depth = depth_of(&root);
        check(depth <= GUARD_MAX_DEPTH, || format!("depth {depth} passed"))?;
        let mut seen = Vec::new();
        names_and_values(&root, &mut seen);
        for (name, value) in seen {
            let short =
                name.len() <= GUARD_LIMIT || (name.len() == 26 && name.starts_with("long-name-"));
            check(short, || format!("a name of {} bytes passed", name.len()))?;
            check(value <= GUARD_MAX_VALUE, || {
                format!("a value of {value} bytes passed")
            })?;
        }
        // and each stanza in it is classified without panicking
        for stanza in root.children() {
            let _ = timed("classify", || {
                inbound::classify("gw.example", stanza.clone(), 10_000)
            })?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Stanzas as elements: payloads, MAM queries, forms, classification

/// (name, namespace) of the elements stanzas carry, and some no one knows.
const VOCAB: &[(&str, &str)] = &[
    ("body", ns::STREAM),
    ("body", ns::FALLBACK),
    ("replace", ns::CORRECT),
    ("retract", ns::RETRACT),
    ("reactions", ns::REACTIONS),
    ("reaction", ns::REACTIONS),
    ("reply", ns::REPLY),
    ("fallback", ns::FALLBACK),
    ("displayed", ns::MARKERS),
    ("markable", ns::MARKERS),
    ("x", ns::OOB),
    ("url", ns::OOB),
    ("unstyled", ns::STYLING),
    ("composing", ns::CHATSTATES),
    ("active", ns::CHATSTATES),
    ("bogus", ns::CHATSTATES),
    ("origin-id", ns::SID),
    ("query", ns::DISCO_INFO),
    ("query", ns::DISCO_ITEMS),
    ("query", ns::REGISTER),
    ("query", ns::GATEWAY),
    ("prompt", ns::GATEWAY),
    ("query", ns::VERSION),
    ("query", ns::MAM),
    ("query", ns::ROSTER),
    ("item", ns::ROSTER),
    ("group", ns::ROSTER),
    ("username", ns::REGISTER),
    ("remove", ns::REGISTER),
    ("command", ns::COMMANDS),
    ("pubsub", ns::PUBSUB),
    ("pubsub", ns::PUBSUB_OWNER),
    ("items", ns::PUBSUB),
    ("subscribe", ns::PUBSUB),
    ("unsubscribe", ns::PUBSUB),
    ("subscriptions", ns::PUBSUB),
    ("publish", ns::PUBSUB),
    ("ping", ns::PING),
    ("vCard", ns::VCARD),
    ("PHOTO", ns::VCARD),
    ("BINVAL", ns::VCARD),
    ("moderate", ns::MODERATE),
    ("reason", ns::MODERATE),
    ("x", ns::DATA),
    ("field", ns::DATA),
    ("value", ns::DATA),
    ("set", ns::RSM),
    ("max", ns::RSM),
    ("after", ns::RSM),
    ("before", ns::RSM),
    ("privilege", ns::PRIVILEGE),
    ("privilege", ns::PRIVILEGE_V1),
    ("perm", ns::PRIVILEGE),
    ("x", ns::MUC),
    ("history", ns::MUC),
    ("show", ns::STREAM),
    ("status", ns::STREAM),
    ("error", ns::STREAM),
    ("item-not-found", ns::STANZAS),
    ("foo", "urn:x"),
    ("body", "jabber:client"),
];

/// Attribute names stanza parsers read.
const ATTR_NAMES: &[&str] = &[
    "id",
    "node",
    "jid",
    "var",
    "type",
    "access",
    "for",
    "start",
    "end",
    "action",
    "sessionid",
    "maxstanzas",
    "maxchars",
    "queryid",
    "name",
    "to",
    "from",
];

/// `s` cut to what the read guard passes in an attribute value (`GUARD_LIMIT` bytes; the
/// elements stanza parsers get come through it).
fn guarded_value(mut s: String) -> String {
    if s.len() > GUARD_LIMIT {
        let mut end = GUARD_LIMIT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Attribute values: the ones that mean something, numbers, and hostile text.
fn attr_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(vec![
            "get", "set", "result", "error", "submit", "form", "cancel", "groupchat", "chat",
            "normal", "unavailable", "subscribe", "probe", "roster", "both", "execute",
            ns::REPLY, ns::RETRACT, ns::MAM, "FORM_TYPE", "start", "end", "after-id",
            "before-id", "ids", "with", "0", "1", "-1", " 3 ", "99999999999999999999",
            "2026-11-18T11:06:40Z", "mirror-1", "roster-1",
        ])
        .prop_map(String::from),
        1 => any::<usize>().prop_map(|n| n.to_string()),
        3 => short_text(),
    ]
    .prop_map(guarded_value)
    .boxed()
}

#[derive(Clone, Debug)]
enum Child {
    El(Element),
    Text(String),
}

/// An element of the vocabulary with hostile attributes, text and children, nested a
/// few levels (and sometimes a chain of thirty).
fn element() -> BoxedStrategy<Element> {
    let attrs = vec((select(ATTR_NAMES), attr_value()), 0..4);
    let leaf = (select(VOCAB), attrs.clone(), prop::option::of(short_text()))
        .prop_map(|((name, ns), attrs, text)| {
            let mut el = Element::builder(name, ns).build();
            for (n, v) in attrs {
                xmpp::set_attr(&mut el, n, v);
            }
            if let Some(t) = text {
                el.append_text_node(t);
            }
            el
        })
        .boxed();
    let tree = leaf.prop_recursive(4, 64, 6, move |inner| {
        let child = prop_oneof![
            3 => inner.prop_map(Child::El),
            1 => short_text().prop_map(Child::Text),
        ];
        (select(VOCAB), attrs.clone(), vec(child, 0..6)).prop_map(|((name, ns), attrs, kids)| {
            let mut el = Element::builder(name, ns).build();
            for (n, v) in attrs {
                xmpp::set_attr(&mut el, n, v);
            }
            for k in kids {
                match k {
                    Child::El(e) => {
                        el.append_child(e);
                    }
                    Child::Text(t) => el.append_text_node(t),
                }
            }
            el
        })
    });
    prop_oneof![
        8 => tree,
        1 => (select(VOCAB), 1..30usize).prop_map(|((name, ns), n)| {
            let mut el = Element::bare(name, ns);
            for _ in 0..n {
                el = Element::builder(name, ns).append(el).build();
            }
            el
        }),
    ]
    .boxed()
}

/// A JID as `to` or `from`: node, domain (the gateway's, in any case, or another), resource.
fn jid() -> BoxedStrategy<String> {
    (
        prop::option::of(short_text()),
        select(vec![
            "gw.example",
            "GW.EXAMPLE",
            "other.example",
            "",
            "gw.example.evil",
        ]),
        prop::option::of(short_text()),
    )
        .prop_map(|(node, domain, res)| {
            let mut j = String::new();
            if let Some(n) = node {
                j.push_str(&n);
                j.push('@');
            }
            j.push_str(domain);
            if let Some(r) = res {
                j.push('/');
                j.push_str(&r);
            }
            guarded_value(j)
        })
        .boxed()
}

/// A stanza: message, iq, presence or other, with hostile addressing and children.
fn stanza() -> BoxedStrategy<Element> {
    (
        select(vec!["message", "iq", "presence", "foo"]),
        select(vec![ns::STREAM, "jabber:client"]),
        prop::option::of(jid()),
        prop::option::of(jid()),
        prop::option::of(attr_value()),
        prop::option::of(attr_value()),
        vec(element(), 0..5),
    )
        .prop_map(|(name, ns, from, to, typ, id, kids)| {
            let mut el = Element::builder(name, ns).build();
            for (n, v) in [("from", from), ("to", to), ("type", typ), ("id", id)] {
                if let Some(v) = v {
                    xmpp::set_attr(&mut el, n, v);
                }
            }
            for k in kids {
                el.append_child(k);
            }
            el
        })
        .boxed()
}

/// The rendered text of an answer parses back as a stanza: characters XML cannot carry
/// were mended.
fn answer_parses(out: xmpp::Outgoing) -> Result<(), TestCaseError> {
    let text = out.into_text();
    let wrapped = format!("<w xmlns='{}'>{text}</w>", ns::STREAM);
    wrapped
        .parse::<Element>()
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("answer {text:?} does not parse: {e}")))
}

#[test]
fn fuzz_classify() {
    fuzz(
        "classify",
        (stanza(), select(vec![0usize, 1, 100, 10_000])),
        |(el, max_body)| {
            let typ = el.attr("type").map(String::from);
            let to = el.attr("to").map(String::from);
            let has_from = el.attr("from").is_some();
            let got = timed("classify", || inbound::classify("gw.example", el, max_body))?;
            if typ.as_deref() == Some("error") {
                check(!matches!(got, inbound::Classified::Reply(_)), || {
                    "an error answered with an error".into()
                })?;
            }
            let foreign = to
                .as_deref()
                .map(|t| !xmpp::split_jid(t).1.eq_ignore_ascii_case("gw.example"))
                .unwrap_or(false);
            if foreign && has_from {
                check(
                    matches!(
                        got,
                        inbound::Classified::Reply(_) | inbound::Classified::Ignore
                    ),
                    || format!("a stanza to another domain gave {got:?}"),
                )?;
            }
            match got {
                inbound::Classified::Reply(out) => answer_parses(out)?,
                inbound::Classified::Event(xmpp::XmppEvent::Groupchat { payload, .. })
                | inbound::Classified::Event(xmpp::XmppEvent::Direct { payload, .. }) => {
                    check(
                        payload.body.as_ref().is_none_or(|b| !b.trim().is_empty()),
                        || "a blank body passed".into(),
                    )?;
                }
                inbound::Classified::Event(xmpp::XmppEvent::Archive { query, .. }) => {
                    check(query.max <= mam::MAX_PAGE, || {
                        format!("page of {}", query.max)
                    })?;
                }
                _ => {}
            }
            Ok(())
        },
    );
}

/// A message with payload children (and sometimes a body with a reply fallback).
fn message() -> BoxedStrategy<Element> {
    let fallback = (
        styling_text(),
        vec(
            (
                prop::option::of(attr_value()),
                prop::option::of(attr_value()),
            ),
            0..4,
        ),
    )
        .prop_map(|(body, ranges)| {
            let mut fb = Element::bare("fallback", ns::FALLBACK);
            xmpp::set_attr(&mut fb, "for", ns::REPLY);
            for (s, e) in ranges {
                let mut b = Element::bare("body", ns::FALLBACK);
                if let Some(s) = s {
                    xmpp::set_attr(&mut b, "start", s);
                }
                if let Some(e) = e {
                    xmpp::set_attr(&mut b, "end", e);
                }
                fb.append_child(b);
            }
            vec![
                Element::builder("body", ns::STREAM).append(body).build(),
                Element::builder("reply", ns::REPLY).build(),
                fb,
            ]
        });
    (
        vec(element(), 0..6),
        prop::option::of(fallback),
        any::<bool>(),
    )
        .prop_map(|(mut kids, fallback, first)| {
            if let Some(f) = fallback {
                if first {
                    kids.splice(0..0, f);
                } else {
                    kids.extend(f);
                }
            }
            let mut el = Element::builder("message", ns::STREAM).build();
            for k in kids {
                // (replies need an id to count)
                let k = if k.is("reply", ns::REPLY) && k.attr("id").is_none() {
                    let mut k = k;
                    xmpp::set_attr(&mut k, "id", "r1");
                    k
                } else {
                    k
                };
                el.append_child(k);
            }
            el
        })
        .boxed()
}

#[test]
fn fuzz_payload_parse() {
    fuzz(
        "payload_parse",
        (message(), select(vec![0usize, 10, 100, 100_000])),
        |(el, max)| {
            let got = timed("parse", || payload::parse(&el, max))?;
            let Ok(p) = got else { return Ok(()) };
            if let Some(b) = &p.body {
                check(!b.trim().is_empty(), || "a blank body passed".into())?;
                check(b.len() <= max, || {
                    format!("a body of {} bytes over {max}", b.len())
                })?;
                let c = timed("content_of", || {
                    payload::content_of(b, p.unstyled, p.oob_url.as_deref())
                })?;
                hostile::check_content(&c).map_err(TestCaseError::fail)?;
            }
            check(p.retract.is_none() || p.body.is_none(), || {
                "a retraction kept its body".into()
            })?;
            if let Some(r) = &p.reactions {
                check(r.emojis.len() <= payload::MAX_REACTIONS, || {
                    "too many reactions".into()
                })?;
                for (k, e) in r.emojis.iter().enumerate() {
                    check(
                        !e.is_empty() && e.len() <= payload::MAX_REACTION_LEN,
                        || format!("reaction {e:?}"),
                    )?;
                    check(!r.emojis[..k].contains(e), || format!("{e:?} twice"))?;
                }
            }
            Ok(())
        },
    );
}

/// `strip_fallback` the plain way: every code point outside all (clamped) ranges, then
/// leading line breaks trimmed.
fn strip_naive(body: &str, ranges: &[(Option<usize>, Option<usize>)]) -> String {
    if ranges.is_empty() {
        return String::new();
    }
    let chars: Vec<char> = body.chars().collect();
    let len = chars.len();
    let covered = |i: usize| {
        ranges.iter().any(|&r| {
            let (s, e) = match r {
                (Some(s), Some(e)) => (s.min(len), e.min(len)),
                _ => (0, len),
            };
            s <= i && i < e
        })
    };
    let kept: String = (0..len)
        .filter(|&i| !covered(i))
        .map(|i| chars[i])
        .collect();
    kept.trim_start_matches(['\n', '\r']).to_string()
}

#[test]
fn fuzz_strip_fallback() {
    let bound = prop_oneof![
        1 => Just(None),
        6 => (0..80usize).prop_map(Some),
        1 => any::<usize>().prop_map(Some),
    ];
    let strategy = (styling_text(), vec((bound.clone(), bound), 0..8));
    fuzz("strip_fallback", strategy, |(body, ranges)| {
        let got = timed("strip_fallback", || payload::strip_fallback(&body, &ranges))?;
        // what is kept is a subsequence of the body
        let mut rest = body.chars();
        check(got.chars().all(|c| rest.any(|b| b == c)), || {
            format!("{got:?} is not a subsequence of the body")
        })?;
        if body.len() <= 4096 {
            let want = strip_naive(&body, &ranges);
            check(got == want, || format!("kept {got:?}, want {want:?}"))?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_content_of() {
    let oob = prop::option::of(prop_oneof![
        short_text(),
        Just("https://up.example/f.png".to_string())
    ]);
    let strategy = (styling_text(), any::<bool>(), oob, any::<bool>());
    fuzz(
        "content_of",
        strategy,
        |(body, unstyled, oob, oob_is_body)| {
            let body = match (&oob, oob_is_body) {
                (Some(u), true) => format!(" {u}\n"),
                _ => body,
            };
            let c = timed("content_of", || {
                payload::content_of(&body, unstyled, oob.as_deref())
            })?;
            hostile::check_content(&c).map_err(TestCaseError::fail)?;
            if oob.as_deref().is_some_and(|u| u == body.trim()) {
                check(c.attachments.len() == 1 && c.text.is_empty(), || {
                    "the file is not an attachment".into()
                })?;
            } else if unstyled {
                let want = body.strip_prefix("/me ").unwrap_or(&body);
                check(c.text == want && c.spans.is_empty(), || {
                    "an unstyled body was styled".into()
                })?;
            }
            // and back: the body written for it reads as the same kind (an emote stays one)
            let (written, flag) = timed("body_of", || payload::body_of(&c))?;
            let again = payload::content_of(&written, flag, None);
            if c.attachments.is_empty() {
                check(again.kind == c.kind, || {
                    format!(
                        "kind {:?} written {written:?} reads {:?}",
                        c.kind, again.kind
                    )
                })?;
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// MAM: stamps and queries

/// XEP-0082 stamps: valid ones (any date, fraction, offset), valid ones with one character
/// changed, and text that only looks like one.
fn stamp() -> BoxedStrategy<(String, Option<i64>)> {
    let valid = (
        0..=9999i64,
        1..=12i64,
        1..=28i64,
        0..24i64,
        0..60i64,
        0..60i64,
        prop::option::of("[0-9]{1,9}"),
        prop_oneof![
            Just(None),
            (any::<bool>(), 0..24i64, 0..60i64).prop_map(Some)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            let millis = match &frac {
                Some(f) => {
                    t.push('.');
                    t.push_str(f);
                    format!("{:0<3}", &f[..f.len().min(3)]).parse().unwrap_or(0)
                }
                None => 0,
            };
            let off_min = match off {
                None => {
                    t.push('Z');
                    0
                }
                Some((neg, oh, om)) => {
                    t.push_str(&format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }));
                    (if neg { -1 } else { 1 }) * (oh * 60 + om)
                }
            };
            // the instant, through the calendar's other direction (civil_from_days)
            let local_days = days_from_civil_naive(y, mo, d);
            let ms =
                ((local_days * 86_400 + h * 3600 + mi * 60 + s) - off_min * 60) * 1000 + millis;
            (t, Some(ms))
        });
    let mutated = (valid.clone(), any::<Index>(), piece(XMPPISH)).prop_map(|((t, _), at, p)| {
        let chars: Vec<char> = t.chars().collect();
        let i = at.index(chars.len() + 1);
        let mut s: String = chars[..i].iter().collect();
        s.push_str(&p);
        s.extend(chars.get(i + 1..).unwrap_or_default());
        (s, None)
    });
    prop_oneof![
        3 => valid,
        3 => mutated,
        1 => "[-+0-9:TZ. ]{0,40}".prop_map(|s| (s, None)),
        1 => short_text().prop_map(|s| (s, None)),
    ]
    .boxed()
}

/// Days since 1970-01-01 of a date, counted by hand (a check on the parser's formula).
fn days_from_civil_naive(y: i64, m: i64, d: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let in_year = |y: i64| if leap(y) { 366 } else { 365 };
    let mut days: i64 = 0;
    if y >= 1970 {
        days += (1970..y).map(in_year).sum::<i64>();
    } else {
        days -= (y..1970).map(in_year).sum::<i64>();
    }
    let months = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += months[..(m - 1) as usize].iter().sum::<i64>();
    days + d - 1
}

#[test]
fn fuzz_mam_stamp() {
    // year 0 to year 9999, give or take the largest offset
    let earliest = -62_167_219_200_000 - 86_400_000;
    let latest = 253_402_300_800_000 + 86_400_000;
    fuzz("mam_stamp", stamp(), |(s, want)| {
        let got = timed("parse_stamp", || mam::parse_stamp(&s))?;
        if let Some(want) = want {
            check(got == Ok(want), || format!("{s:?}: {got:?}, want {want}"))?;
        }
        if let Ok(ms) = got {
            check((earliest..=latest).contains(&ms), || {
                format!("{s:?} -> {ms}")
            })?;
            // what Causeway writes for that instant reads back the same
            if (-62_167_219_200_000..253_402_300_800_000).contains(&ms) {
                let w = crate::xmpp::outbound::rfc3339(ms);
                check(mam::parse_stamp(&w) == Ok(ms), || {
                    format!("{ms} written {w:?}")
                })?;
            }
        }
        Ok(())
    });
}

/// A MAM query: a form with fields (known and not) and an RSM set, values hostile.
fn mam_query() -> BoxedStrategy<Element> {
    let value = prop_oneof![
        2 => stamp().prop_map(|(s, _)| s),
        2 => attr_value(),
    ];
    let field = (
        select(vec![
            "FORM_TYPE",
            "start",
            "end",
            "after-id",
            "before-id",
            "ids",
            "with",
            "",
        ]),
        vec(value, 0..3),
        any::<bool>(),
    )
        .prop_map(|(var, values, mam_type)| {
            let mut f = Element::bare("field", ns::DATA);
            if !var.is_empty() {
                xmpp::set_attr(&mut f, "var", var);
            }
            if var == "FORM_TYPE" && mam_type {
                f.append_child(Element::builder("value", ns::DATA).append(ns::MAM).build());
            }
            for v in values {
                f.append_child(Element::builder("value", ns::DATA).append(v).build());
            }
            f
        });
    let rsm = vec(
        (
            select(vec!["max", "after", "before", "index"]),
            attr_value(),
        ),
        0..4,
    )
    .prop_map(|items| {
        let mut set = Element::bare("set", ns::RSM);
        for (n, v) in items {
            set.append_child(Element::builder(n, ns::RSM).append(v).build());
        }
        set
    });
    (
        prop::option::of(attr_value()),
        prop::option::of(vec(field, 0..5)),
        prop::option::of(rsm),
        vec(element(), 0..2),
    )
        .prop_map(|(queryid, fields, rsm, other)| {
            let mut q = Element::bare("query", ns::MAM);
            if let Some(id) = queryid {
                xmpp::set_attr(&mut q, "queryid", id);
            }
            if let Some(fields) = fields {
                let mut x = Element::bare("x", ns::DATA);
                xmpp::set_attr(&mut x, "type", "submit");
                for f in fields {
                    x.append_child(f);
                }
                q.append_child(x);
            }
            if let Some(set) = rsm {
                q.append_child(set);
            }
            for o in other {
                q.append_child(o);
            }
            q
        })
        .boxed()
}

#[test]
fn fuzz_mam_query() {
    fuzz("mam_query", mam_query(), |q| {
        let got = timed("parse_query", || mam::parse_query(&q))?;
        if let Ok(query) = got {
            check(query.max <= mam::MAX_PAGE, || {
                format!("page of {}", query.max)
            })?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// XEP-0004 forms

fn form() -> BoxedStrategy<Element> {
    let field = (
        prop::option::of(attr_value()),
        vec(
            prop_oneof![3 => short_text().prop_map(Some), 1 => Just(None)],
            0..4,
        ),
        vec(element(), 0..2),
    )
        .prop_map(|(var, values, other)| {
            let mut f = Element::bare("field", ns::DATA);
            if let Some(v) = var {
                xmpp::set_attr(&mut f, "var", v);
            }
            for v in values {
                let mut value = Element::bare("value", ns::DATA);
                if let Some(v) = v {
                    value.append_text_node(v);
                }
                f.append_child(value);
            }
            for o in other {
                f.append_child(o);
            }
            f
        });
    (
        select(vec![("x", ns::DATA), ("x", ns::OOB), ("form", ns::DATA)]),
        prop::option::of(attr_value()),
        vec(field, 0..6),
        vec(element(), 0..2),
    )
        .prop_map(|((name, ns), typ, fields, other)| {
            let mut x = Element::bare(name, ns);
            if let Some(t) = typ {
                xmpp::set_attr(&mut x, "type", t);
            }
            for f in fields {
                x.append_child(f);
            }
            for o in other {
                x.append_child(o);
            }
            x
        })
        .boxed()
}

#[test]
fn fuzz_forms_submitted() {
    fuzz("forms_submitted", form(), |x| {
        let got = timed("submitted", || forms::submitted(&x))?;
        let is_submit = x.is("x", ns::DATA) && x.attr("type") == Some("submit");
        check(got.is_some() == is_submit, || {
            format!("submitted: {}", got.is_some())
        })?;
        if let Some(fields) = got {
            for (var, value) in &fields {
                // the value of the last field with that var: its values joined by newlines
                let f = x
                    .children()
                    .filter(|f| f.is("field", ns::DATA) && f.attr("var") == Some(var.as_str()))
                    .last();
                let want = f.map(|f| {
                    f.children()
                        .filter(|v| v.is("value", ns::DATA))
                        .map(|v| v.text())
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                check(want.as_ref() == Some(value), || {
                    format!("{var:?} = {value:?}, want {want:?}")
                })?;
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// JID localparts for remote ids

/// Remote ids: what networks use (snowflakes, Matrix ids, room names) and hostile text.
fn remote_id() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "[0-9]{1,20}",
        2 => "[!@#][A-Za-z0-9_=.-]{1,20}:[a-z.]{1,12}",
        3 => short_text(),
        1 => text(XMPPISH, STYLING_NESTS),
    ]
    .boxed()
}

#[test]
fn fuzz_addressing() {
    let local = prop_oneof![
        3 => "(=[0-9a-fA-F]{2}|\\\\[0-9a-f]{2}|_[a-z_]|[a-z0-9.%-]){0,24}",
        1 => "[a-z0-9.%_=\\\\A-Z-]{0,24}",
        1 => short_text(),
    ];
    fuzz("addressing", (remote_id(), local), |(id, local)| {
        let enc = timed("encode_local", || xmpp::encode_local(&id))?;
        check(
            enc.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'%' | b'_' | b'=' | b'\\')),
            || format!("{id:?} -> {enc:?}: not a lowercase localpart"),
        )?;
        let back = timed("decode_local", || xmpp::decode_local(&enc))?;
        check(back.as_deref() == Some(id.as_str()), || {
            format!("{id:?} -> {enc:?} -> {back:?}")
        })?;
        // any localpart decodes to the one id whose canonical form it is, or to none
        if let Some(d) = timed("decode_local", || xmpp::decode_local(&local))? {
            let again = xmpp::encode_local(&d);
            check(again == local, || {
                format!("{local:?} decodes to {d:?}, which encodes as {again:?}")
            })?;
        }
        Ok(())
    });
}
