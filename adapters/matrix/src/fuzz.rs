//! Fuzz targets of the Matrix adapter (issue 16): property tests, on stable Rust, over
//! `org.matrix.custom.html` read (`convert::from_html`) and written (`to_html`), mentions by
//! name (`add_mentions`), reply fallbacks of plain bodies (`strip_reply_fallback`), and
//! Matrix user ids and puppet localparts (`ids`): what Matrix users and homeservers send, and
//! what XMPP users send to Matrix.
//!
//! Inputs are biased to what breaks parsers: markup nested thousands deep, runs of one
//! character thousands long, odd Unicode (combining marks, bidi controls, joiners, U+FFFD,
//! non-characters, NUL and controls, every line break), entity-like text, and mixtures of
//! all. Each case is at most 64 KiB and must finish within `budget()`.
//!
//! Cases per target: `CAUSEWAY_FUZZ_CASES` (default `DEFAULT_CASES`, what CI runs);
//! `scripts/fuzz [cases]` runs all targets of the workspace long, in release mode. A failure
//! is shrunk and its seed saved in `proptest-regressions/fuzz.txt` (committed: the
//! regression inputs), which every run replays first.

use crate::{convert, ids};
use causeway_api::{hostile, Content, RemoteUserId, Span, Style, TextKind};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The harness (the same in every crate's fuzz module)

/// Cases per target when `CAUSEWAY_FUZZ_CASES` is not set: the whole run stays short in CI.
const DEFAULT_CASES: u32 = 256;
/// The largest input generated.
const MAX_INPUT: usize = 64 * 1024;

fn cases() -> u32 {
    std::env::var("CAUSEWAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The longest one call on one input may take. Linear work on 64 KiB takes milliseconds,
/// quadratic work seconds; a debug build is some ten times slower than a release one.
fn budget() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(500)
    }
}

/// `f()`, failing the case when it took longer than `budget()`.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    if took > budget() {
        return Err(TestCaseError::fail(format!("{what} took {took:?}")));
    }
    Ok(out)
}

/// Run one target: `cases()` inputs, failures shrunk and saved, a line saying how many
/// cases ran and how long they took (shown with `--nocapture`: scripts/fuzz).
fn fuzz<S>(name: &'static str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        test_name: Some(name),
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let ran = AtomicU32::new(0);
    let started = Instant::now();
    let result = TestRunner::new(config).run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    eprintln!(
        "fuzz {name}: {} cases in {:.2?}",
        ran.load(Ordering::Relaxed),
        started.elapsed()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => {
            // (the whole input may be 64 KiB: its start and size here, all of it in a file)
            let input = format!("{input:#?}");
            let file = std::env::temp_dir().join(format!("causeway-fuzz-{name}.txt"));
            let _ = std::fs::write(&file, &input);
            let mut end = input.len().min(4000);
            while !input.is_char_boundary(end) {
                end -= 1;
            }
            panic!(
                "fuzz target {name} failed: {why}\nminimal failing input ({} bytes as Debug, in {}): {}{}",
                input.len(),
                file.display(),
                &input[..end],
                if end < input.len() { " [...]" } else { "" }
            );
        }
        Err(e) => panic!("fuzz target {name}: {e}"),
    }
}

/// Where two texts first differ, with some text around it in each.
fn diff(a: &str, b: &str) -> String {
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let around = |s: &str| {
        let from = s.floor_char_boundary(at.saturating_sub(40));
        let to = s.ceil_char_boundary((at + 40).min(s.len()));
        format!("{:?}", &s[from..to])
    };
    format!(
        "first difference at byte {at} of {} / {}: {} / {}",
        a.len(),
        b.len(),
        around(a),
        around(b)
    )
}

/// Fail the case with `msg` unless `cond`.
fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

// ---------------------------------------------------------------------------------------
// Generators

/// Characters parsers trip on: combining marks, bidi controls, joiners, BOM, U+FFFD,
/// non-characters, the last code point before the surrogates and the first after, NUL and
/// other controls, every line break, emoji sequences, case-folding oddities.
const ODD: &[&str] = &[
    "\u{301}",
    "e\u{301}\u{302}\u{303}\u{304}",
    "\u{336}",
    "\u{20e3}",
    "\u{202e}",
    "\u{200f}",
    "\u{2066}",
    "\u{200d}",
    "\u{200b}",
    "\u{feff}",
    "\u{fffd}",
    "\u{fdd0}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{10ffff}",
    "\u{d7ff}",
    "\u{e000}",
    "\u{0}",
    "\u{1}",
    "\u{b}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    "\t",
    "\u{a0}",
    "\u{3000}",
    "👩‍👩‍👧",
    "🏳️‍🌈",
    "👍🏽",
    "é",
    "名前",
    "İ",
    "ﬀ",
    "𝔘",
    "עברית",
];

/// Text that looks like entities, well-formed or not.
const ENTITIES: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&#x1F389;",
    "&#xD;",
    "&#0;",
    "&bogus;",
    "&",
    "&#",
    "&amp",
];

/// HTML as Matrix clients write it, tags broken and unknown, attributes hostile.
const HTML: &[&str] = &[
    "<b>",
    "</b>",
    "<strong>",
    "</strong>",
    "<i>",
    "</i>",
    "<em>",
    "</em>",
    "<del>",
    "</del>",
    "<s>",
    "<strike>",
    "<code>",
    "</code>",
    "<pre>",
    "</pre>",
    "<pre><code class=\"language-rust\">",
    "<pre><code class=\"language-\">",
    "</code></pre>",
    "<blockquote>",
    "</blockquote>",
    "<mx-reply>",
    "</mx-reply>",
    "<a href=\"https://x.y\">",
    "<a href=\"https://matrix.to/#/@alice:example.org\">",
    "<a href=\"https://matrix.to/#/@Alice:x\">",
    "<a href=\"https://matrix.to/#/@a%b:x\">",
    "<a href=\"javascript:alert(1)\">",
    "<a href='https://x.y/\"'>",
    "<a>",
    "</a>",
    "<br>",
    "<br/>",
    "</br>",
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<ul>",
    "<ol>",
    "<li>",
    "</li>",
    "</ul>",
    "<h1>",
    "</h1>",
    "<h6>",
    "<hr>",
    "<table><tr><td>",
    "</td></tr></table>",
    "<img alt=\":party:\" src=\"mxc://x/y\">",
    "<img>",
    "<script>",
    "</script>",
    "<style>",
    "<head>",
    "<span data-mx-spoiler>",
    "</span>",
    "<font color=red>",
    "<svg><math>",
    "<template>",
    "<select><option>",
    "<textarea>",
    "<plaintext>",
    "<xmp>",
    "<noscript>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE html>",
    "<?xml?>",
    "<",
    ">",
    "</",
    "/>",
    "<b a=1>",
    "<b/>",
    "&",
    "&nbsp;",
    "&#x0;",
    "&#xD800;",
    "&#1114112;",
    "&NotAnEntity;",
    " ",
    "\n",
    "\n\n",
    "x",
    "word",
    "@Alice",
    "@al",
    "Al:",
    "> ",
];

/// HTML nested: (opening, closing).
const NESTS: &[(&str, &str)] = &[
    ("<b>", "</b>"),
    ("<i>", "</i>"),
    ("<blockquote>", "</blockquote>"),
    ("<a href=\"https://x.y\">", "</a>"),
    ("<pre><code>", "</code></pre>"),
    ("<ul><li>", "</li></ul>"),
    ("<mx-reply>", "</mx-reply>"),
    ("<p>", ""),
    ("<b a=1>", ""),
    ("<div>", "</div>"),
    ("<table><tr><td>", ""),
    ("<code>", "</code>"),
    ("<h1>", "</h1>"),
    ("<span>", "</span>"),
    ("<li>", ""),
];

/// One piece of text: markup, odd characters, entities, words, any character, or one of
/// the contract's hostile texts.
fn piece(markup: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(markup).prop_map(String::from),
        3 => select(ODD).prop_map(String::from),
        1 => select(ENTITIES).prop_map(String::from),
        2 => "[a-zA-Z0-9]{1,6}",
        1 => any::<char>().prop_map(String::from),
        1 => select(hostile::texts(512)),
    ]
    .boxed()
}

/// `s` cut to at most `MAX_INPUT` bytes, on a character boundary.
fn cap(mut s: String) -> String {
    if s.len() > MAX_INPUT {
        let mut end = MAX_INPUT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Markup nested `depth` levels around `inner`, cycling through `pairs`. Mode 0: closed in
/// order; 1: never closed; 2: closed in the wrong order; 3: text between every level.
fn nest(pairs: &[(&str, &str)], depth: usize, inner: &str, mode: u8) -> String {
    let at = |i: usize| pairs[i % pairs.len()];
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(at(i).0);
        if mode == 3 {
            s.push_str(inner);
        }
    }
    s.push_str(inner);
    match mode {
        1 => {}
        2 => (0..depth).for_each(|i| s.push_str(at(i).1)),
        _ => (0..depth).rev().for_each(|i| s.push_str(at(i).1)),
    }
    s
}

/// Text biased to what breaks parsers: pieces mixed, a run of one piece thousands long,
/// markup nested thousands deep, and mixtures of those; at most 64 KiB.
fn text() -> BoxedStrategy<String> {
    let mixed = vec(piece(HTML), 0..40).prop_map(|v| v.concat()).boxed();
    let run_piece = prop_oneof![
        3 => select(HTML),
        1 => select(ODD),
        1 => select(ENTITIES),
    ];
    let run = (run_piece, 1000..20_000usize)
        .prop_map(|(p, n)| p.repeat(n))
        .boxed();
    let nested = (
        vec(select(NESTS), 1..4),
        1..3000usize,
        mixed.clone(),
        0..4u8,
    )
        .prop_map(|(pairs, depth, inner, mode)| nest(&pairs, depth, &inner, mode))
        .boxed();
    let mixture = vec(
        prop_oneof![
            4 => mixed.clone(),
            1 => run.clone(),
            1 => nested.clone(),
        ],
        1..5,
    )
    .prop_map(|v| v.concat())
    .boxed();
    prop_oneof![
        6 => mixed,
        1 => run,
        2 => nested,
        2 => mixture,
    ]
    .prop_map(cap)
    .boxed()
}

/// Short hostile text (names, URLs, ids).
fn short_text() -> BoxedStrategy<String> {
    vec(piece(HTML), 0..5).prop_map(|v| v.concat()).boxed()
}

/// Matrix user ids, well-formed (as the spec has them, and historical ones) or not.
fn mxid_like() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "@[a-z0-9._=/+-]{1,20}:[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        2 => "@[!-9;-~]{1,20}:[a-zA-Z0-9.-]{1,20}",
        1 => "@[a-z]{1,8}:\\[[0-9a-f:]{2,16}\\](:[0-9]{1,5})?",
        1 => "[@!#$+%]?[a-zA-Z0-9%:@._=/+-]{0,24}",
        1 => short_text(),
    ]
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
        1 => prop_oneof![
            mxid_like(),
            "[a-z0-9._=-]{1,12}%[a-z0-9.-]{1,12}",
        ]
        .prop_map(|s| Style::Mention(RemoteUserId::new(s))),
    ]
    .boxed()
}

/// Content as the core hands it to the adapter: hostile text, spans on character
/// boundaries that may be empty, reversed, crossing, nested or past the end.
fn content() -> BoxedStrategy<Content> {
    (
        text(),
        vec((any::<Index>(), any::<Index>(), style()), 0..12),
        any::<bool>(),
        0..3u8,
    )
        .prop_map(|(text, spans, emote, past_end)| {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let n = spans.len();
            let spans = spans
                .into_iter()
                .enumerate()
                .map(|(k, (a, b, style))| Span {
                    start: bounds[a.index(bounds.len())],
                    // (the last one past the end of the text, sometimes)
                    end: match (k + 1 == n, past_end) {
                        (true, 1..) => text.len() + past_end as usize,
                        _ => bounds[b.index(bounds.len())],
                    },
                    style,
                })
                .collect();
            Content {
                text,
                spans,
                kind: if emote {
                    TextKind::Emote
                } else {
                    TextKind::Normal
                },
                ..Content::default()
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Targets

#[test]
fn fuzz_from_html() {
    fuzz("from_html", text(), |html| {
        // as events.rs reads a formatted body: HTML only when tame, else the plain body
        if !convert::html_is_tame(&html) {
            let plain = timed("strip_reply_fallback", || {
                convert::strip_reply_fallback(&html)
            })?;
            return check(html.ends_with(plain), || "not a suffix".into());
        }
        let c = timed("from_html", || convert::from_html(&html))?;
        hostile::check_content(&c).map_err(TestCaseError::fail)?;
        check(c.text.trim_end() == c.text, || {
            "trailing whitespace kept".into()
        })?;
        // and written back (as what an XMPP user was shown)
        if let Some((back, _)) = timed("to_html", || convert::to_html(&c))? {
            let again = timed("from_html written", || convert::from_html(&back))?;
            hostile::check_content(&again).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
}

/// A Matrix body read, written back as HTML and read again keeps its text. Not a path
/// messages take (what is read from Matrix is written for XMPP), but where the reader and
/// the writer disagree on HTML.
#[test]
#[ignore = "finding: blocks inside inline spans or blocks (`<code><pre>`, `<pre>` in `<pre>`) \
            gain or lose a line break when written and read again"]
fn fuzz_from_html_round_trip() {
    fuzz("from_html_round_trip", text(), |html| {
        if !convert::html_is_tame(&html) {
            return Ok(());
        }
        let c = timed("from_html", || convert::from_html(&html))?;
        if let Some((back, _)) = timed("to_html", || convert::to_html(&c))? {
            let again = timed("from_html written", || convert::from_html(&back))?;
            check(again.text == c.text, || {
                format!(
                    "the text read, written and read again: {}",
                    diff(&c.text, &again.text)
                )
            })?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_to_html() {
    fuzz("to_html", content(), |c| {
        let Some((html, mentions)) = timed("to_html", || convert::to_html(&c))? else {
            return check(c.spans.is_empty(), || "spans and no HTML".into());
        };
        for m in &mentions {
            check(ids::remote_user(m).is_some(), || {
                format!("mentions {m:?}, not a user id")
            })?;
        }
        let read = timed("from_html", || convert::from_html(&html))?;
        hostile::check_content(&read).map_err(TestCaseError::fail)
    });
}

/// Members by display name: (name, Matrix id), names hostile.
fn members() -> BoxedStrategy<Vec<(String, String)>> {
    vec(
        (
            prop_oneof![
                3 => select(vec!["Alice", "alice", "Al", "Alice A", "é", "", "@", "a:b", "x", "İ"]).prop_map(String::from),
                1 => short_text(),
            ],
            mxid_like(),
        ),
        0..5,
    )
    .boxed()
}

#[test]
fn fuzz_add_mentions() {
    let strategy = (content(), members(), any::<bool>());
    fuzz("add_mentions", strategy, |(mut c, names, keep_spans)| {
        if !keep_spans {
            c.spans.clear();
        }
        // (from well-formed content: the contract's)
        c.spans
            .retain(|s| s.start <= s.end && s.end <= c.text.len());
        let before = c.spans.clone();
        let valid = hostile::check_content(&c).is_ok();
        timed("add_mentions", || convert::add_mentions(&mut c, &names))?;
        if valid {
            hostile::check_content(&c).map_err(TestCaseError::fail)?;
        }
        // the spans there were stay, and each one added mentions a member by a valid id
        for s in &before {
            check(c.spans.contains(s), || format!("{s:?} lost"))?;
        }
        for s in c.spans.iter().filter(|s| !before.contains(s)) {
            let Style::Mention(u) = &s.style else {
                return Err(TestCaseError::fail(format!("{s:?} added")));
            };
            let named = names
                .iter()
                .any(|(_, id)| ids::remote_user(id).as_ref() == Some(u));
            check(named, || format!("{u:?} mentioned"))?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_strip_reply_fallback() {
    let body = prop_oneof![
        1 => text(),
        1 => (vec(short_text(), 0..4), text()).prop_map(|(quoted, rest)| {
            let mut s: String = quoted.iter().map(|q| format!("> {q}\n")).collect();
            s.push('\n');
            s.push_str(&rest);
            s
        }),
    ];
    fuzz("strip_reply_fallback", body, |body| {
        let kept = timed("strip_reply_fallback", || {
            convert::strip_reply_fallback(&body)
        })?;
        check(body.ends_with(kept), || "not a suffix".into())?;
        if kept.len() < body.len() {
            let cut = &body[..body.len() - kept.len()];
            check(
                cut.starts_with("> ")
                    && cut.ends_with("\n\n")
                    && cut[..cut.len() - 2].lines().all(|l| l.starts_with('>')),
                || format!("cut {cut:?}"),
            )?;
        }
        Ok(())
    });
}

/// A Matrix user (as the homeserver names it) as a remote id, and back.
#[test]
#[ignore = "finding: users with historical localparts (`@Alice:x`, `@&:x`) become remote ids \
            that `mxid` refuses: they cannot be mentioned or addressed from XMPP"]
fn fuzz_ids_users() {
    fuzz("ids_users", mxid_like(), |mx| {
        if let Some(u) = timed("remote_user", || ids::remote_user(&mx))? {
            let back = ids::mxid(u.as_str());
            check(back.as_deref() == Some(mx.as_str()), || {
                format!("{mx:?} -> {u:?} -> {back:?}")
            })?;
        }
        Ok(())
    });
}

/// A remote id as a Matrix user: a valid user id, that maps back.
#[test]
fn fuzz_ids_mxid() {
    let remote = prop_oneof![
        1 => mxid_like(),
        1 => (mxid_like(), mxid_like()).prop_map(|(a, b)| format!("{}%{}", a.trim_start_matches('@'), b)),
        1 => "[a-z0-9._=/+-]{1,8}%[a-z0-9.:%\\[\\]-]{0,12}",
    ];
    fuzz("ids_mxid", remote, |user| {
        if let Some(m) = timed("mxid", || ids::mxid(&user))? {
            let back = ids::remote_user(&m);
            check(back.is_some(), || {
                format!("{user:?} -> {m:?}, not a user id")
            })?;
            if !user.starts_with('@') {
                check(
                    back.as_ref().map(|b| b.as_str()) == Some(user.as_str()),
                    || format!("{user:?} -> {m:?} -> {back:?}"),
                )?;
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_ids_puppets() {
    let jid = prop_oneof![
        2 => "[a-zA-Z0-9._=%+-]{1,12}@[a-zA-Z0-9.-]{1,12}",
        1 => (short_text(), short_text()).prop_map(|(a, b)| format!("{a}@{b}")),
        1 => short_text(),
    ];
    let prefix = select(vec!["_xmpp_", "", "x=", "_"]);
    let strategy = (jid, prefix, short_text());
    fuzz("ids_puppets", strategy, |(jid, prefix, local)| {
        // a puppet's localpart and back
        let lp = timed("puppet_localpart", || ids::puppet_localpart(prefix, &jid))?;
        check(
            lp[prefix.len()..]
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' | b'=')),
            || format!("{jid:?} -> {lp:?}"),
        )?;
        let back = timed("puppet_jid", || ids::puppet_jid(prefix, &lp))?;
        let want = jid.to_lowercase();
        if want.contains('@') {
            check(back.as_deref() == Some(want.as_str()), || {
                format!("{jid:?} -> {lp:?} -> {back:?}")
            })?;
        }
        // any localpart: no panic
        let _ = timed("puppet_jid", || ids::puppet_jid(prefix, &local))?;
        Ok(())
    });
}
