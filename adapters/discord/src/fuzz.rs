//! Fuzz targets of the Discord adapter (issue 16): property tests, on stable Rust, over
//! Discord markdown read (`markdown::parse`), written (`render`) and cut into messages
//! (`split`): what Discord users send and what XMPP users send to Discord.
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

use crate::markdown::{self, Mentionable, Names};
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

/// `s` as Debug, cut after 300 bytes.
fn short(s: &str) -> String {
    let end = s.floor_char_boundary(300);
    format!("{:?}{}", &s[..end], if end < s.len() { "..." } else { "" })
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

/// Discord markdown, mentions, timestamps, emoji, links, and what surrounds them.
const MARKDOWN: &[&str] = &[
    "**",
    "*",
    "__",
    "_",
    "~~",
    "~",
    "||",
    "`",
    "``",
    "```",
    "```rust\n",
    "```\n",
    "\n```",
    ">",
    "> ",
    ">>> ",
    "#",
    "# ",
    "## ",
    "### ",
    "-# ",
    "- ",
    "\\",
    "\\*",
    "\\_",
    "[",
    "]",
    "(",
    ")",
    "](",
    "[t](https://x.y)",
    "[t](<https://x.y>)",
    "<",
    ">",
    "<@123>",
    "<@!45>",
    "<@&9>",
    "<#678>",
    "<#>",
    "<@>",
    "<t:1700000000:R>",
    "<t:-99999999999999999>",
    "<t:9223372036854775807>",
    "<t:99999999999999999999>",
    "<:e:1>",
    "<a:e:2>",
    "<::1>",
    "</cmd:3>",
    "</:>",
    "<https://x.y>",
    "https://x.y/a_b*c",
    "http://",
    "https://",
    "@everyone",
    "@here",
    "@",
    "@Alice",
    "@alice",
    "Alice:",
    "Alice,",
    " ",
    "  ",
    "\n",
    "\n\n",
    "x",
    "word",
    "snake_case",
    "2*3",
];

/// Markdown nested: (opening, closing).
const NESTS: &[(&str, &str)] = &[
    ("**", "**"),
    ("*", "*"),
    ("_", "_"),
    ("__", "__"),
    ("~~", "~~"),
    ("||", "||"),
    ("`", "`"),
    ("[", "](https://x.y)"),
    ("> ", ""),
    (">>> ", ""),
    ("<", ">"),
    ("\\", ""),
    ("# ", ""),
    ("*", ""),
    ("[", "]("),
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
    let mixed = vec(piece(MARKDOWN), 0..40).prop_map(|v| v.concat()).boxed();
    let run_piece = prop_oneof![
        3 => select(MARKDOWN),
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
    vec(piece(MARKDOWN), 0..5).prop_map(|v| v.concat()).boxed()
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
        1 => prop_oneof![short_text(), "[0-9]{1,20}"].prop_map(|s| Style::Mention(RemoteUserId::new(s))),
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

/// Members who can be mentioned: (display name, user id), names hostile.
fn members() -> BoxedStrategy<Vec<(String, String)>> {
    vec(
        (
            prop_oneof![
                3 => select(vec!["Alice", "alice", "Al", "Bob Smith", "é", "", "@", "**b**", "a:b", "x"]).prop_map(String::from),
                1 => short_text(),
            ],
            "[0-9]{1,20}",
        ),
        0..5,
    )
    .boxed()
}

/// Names for the ids in a message: some known, with hostile names (on one line: Discord's
/// names have no line breaks).
struct Known;

impl Names for Known {
    fn user(&self, id: &str) -> Option<String> {
        match id {
            "123" => Some("Alice".into()),
            "45" => Some("**not bold** <@123> `x".into()),
            _ => None,
        }
    }
    fn channel(&self, id: &str) -> Option<String> {
        (id == "678").then(|| "general > *quoted".into())
    }
    fn role(&self, id: &str) -> Option<String> {
        (id == "9").then(|| "mods\u{202e}".into())
    }
}

// ---------------------------------------------------------------------------------------
// Targets

/// Whether `got` is the text of `c` but for line breaks before or after its blocks: code
/// blocks and quotes start and end lines in markdown, wherever they were in the text.
fn same_but_block_breaks(c: &Content, got: &str) -> bool {
    let edges: std::collections::HashSet<usize> = c
        .spans
        .iter()
        .filter(|s| matches!(s.style, Style::Pre(_) | Style::Quote))
        .flat_map(|s| [s.start, s.end])
        .collect();
    let (a, b) = (c.text.as_bytes(), got.as_bytes());
    let breaks = |s: &[u8]| s.iter().take_while(|&&x| x == b'\n').count();
    let (mut i, mut j) = (0, 0);
    loop {
        if edges.contains(&i) {
            let (ka, kb) = (breaks(&a[i..]), breaks(&b[j..]));
            if kb < ka {
                return false;
            }
            (i, j) = (i + ka, j + kb);
        }
        match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => (i, j) = (i + 1, j + 1),
            _ => return false,
        }
    }
}

#[test]
fn fuzz_markdown_parse() {
    fuzz("markdown_parse", text(), |md| {
        let c = timed("parse", || markdown::parse(&md, &Known))?;
        hostile::check_content(&c).map_err(TestCaseError::fail)?;
        for s in &c.spans {
            if let Style::Mention(id) = &s.style {
                check(id.as_str().bytes().all(|b| b.is_ascii_digit()), || {
                    format!("mention of {id:?}")
                })?;
            }
        }
        Ok(())
    });
}

/// A Discord message read, written back as markdown and read again keeps its text (but
/// for line breaks around blocks, and U+200B the writer puts in ``` inside a code block).
/// Not a path messages take (what is read from Discord is written for XMPP), but where the
/// reader and the writer disagree on markdown.
#[test]
#[ignore = "finding: the writer cannot express all the reader makes (adjacent inline spans, \
            code blocks inside inline spans, nested links): see issue 16"]
fn fuzz_markdown_round_trip() {
    fuzz("markdown_round_trip", text(), |md| {
        // (messages Discord sends: at most 4,000 characters)
        if md.chars().count() > 4000 {
            return Ok(());
        }
        let c = timed("parse", || markdown::parse(&md, &Known))?;
        let (back, _) = timed("render", || {
            markdown::render(&c, &Mentionable { names: &[] })
        })?;
        let again = timed("parse rendered", || markdown::parse(&back, &Known))?;
        let fence = |t: &str| t.replace("`\u{200b}``", "```");
        let c = Content {
            text: fence(&c.text),
            ..c
        };
        check(same_but_block_breaks(&c, &fence(&again.text)), || {
            format!(
                "the text read, rendered ({}) and read again: {}",
                short(&back),
                diff(&c.text, &again.text)
            )
        })
    });
}

#[test]
fn fuzz_markdown_render_plain() {
    fuzz("markdown_render_plain", text(), |t| {
        // plain text from XMPP: every metacharacter escaped, so Discord shows it as it is
        let (md, mentioned) = timed("render", || {
            markdown::render(&Content::text(t.clone()), &Mentionable { names: &[] })
        })?;
        check(mentioned.is_empty(), || format!("mentions {mentioned:?}"))?;
        let read = timed("parse", || markdown::parse(&md, &Known))?;
        check(read.text == t && read.spans.is_empty(), || {
            format!("spans {:?}; {}", read.spans, diff(&t, &read.text))
        })
    });
}

#[test]
fn fuzz_markdown_render() {
    fuzz("markdown_render", (content(), members()), |(c, names)| {
        let who = Mentionable { names: &names };
        let (md, mentioned) = timed("render", || markdown::render(&c, &who))?;
        // only members, and users the content names, are mentioned
        for id in &mentioned {
            let known = names.iter().any(|(_, i)| i == id)
                || c.spans
                    .iter()
                    .any(|s| s.style == Style::Mention(RemoteUserId::new(id.clone())));
            check(known, || format!("{id:?} mentioned"))?;
        }
        let read = timed("parse", || markdown::parse(&md, &Known))?;
        hostile::check_content(&read).map_err(TestCaseError::fail)
    });
}

/// `parts` rebuild `md`: each part in turn, with the line break or space cut at between
/// two parts dropped.
fn rebuilds(md: &str, parts: &[String]) -> bool {
    let mut rest = md;
    for (k, p) in parts.iter().enumerate() {
        let Some(after) = rest.strip_prefix(p.as_str()) else {
            return false;
        };
        rest = after;
        if k + 1 < parts.len() {
            rest = rest.strip_prefix(['\n', ' ']).unwrap_or(rest);
        }
    }
    rest.is_empty()
}

#[test]
fn fuzz_markdown_split() {
    let max = prop_oneof![0..64usize, 64..2001usize];
    fuzz("markdown_split", (text(), max), |(md, max)| {
        let parts = timed("split", || markdown::split(&md, max))?;
        let limit = max.max(16);
        for p in &parts {
            let n = p.chars().count();
            check(n <= limit, || {
                format!("a part of {n} characters over {limit}")
            })?;
        }
        if !md.contains("```") {
            check(rebuilds(&md, &parts), || {
                "the parts do not rebuild the message".into()
            })?;
        }
        Ok(())
    });
}
