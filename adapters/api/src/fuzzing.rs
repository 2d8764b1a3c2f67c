//! The fuzz harness every crate's fuzz targets share (issue 16; feature `fuzzing`, for
//! tests only): how many cases run (`CAUSEWAY_FUZZ_CASES`), the time budget of one case,
//! failures shrunk and kept beside the calling crate's sources (`proptest-regressions/`),
//! and generators biased to what breaks parsers: odd Unicode, entities, runs thousands long,
//! markup nested thousands deep. Each crate adds its own vocabulary and targets.

use crate::{hostile, Content, Span, Style, TextKind};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Cases per target when `CAUSEWAY_FUZZ_CASES` is not set: the whole run stays short in CI.
pub const DEFAULT_CASES: u32 = 256;
/// The largest input generated.
pub const MAX_INPUT: usize = 64 * 1024;

pub fn cases() -> u32 {
    std::env::var("CAUSEWAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The longest one call on one input may take. Linear work on 64 KiB takes milliseconds,
/// quadratic work seconds; a debug build is some ten times slower than a release one.
pub fn budget() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(500)
    }
}

/// `f()`, failing the case when it took longer than `budget()`.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
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
pub fn fuzz<S>(
    source_file: &'static str,
    name: &'static str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        source_file: Some(source_file),
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
pub fn diff(a: &str, b: &str) -> String {
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
pub fn short(s: &str) -> String {
    let end = s.floor_char_boundary(300);
    format!("{:?}{}", &s[..end], if end < s.len() { "..." } else { "" })
}

/// Fail the case with `msg` unless `cond`.
pub fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// Characters parsers trip on: combining marks, bidi controls, joiners, BOM, U+FFFD,
/// non-characters, the last code point before the surrogates and the first after, NUL and
/// other controls, every line break, emoji sequences, case-folding oddities.
pub const ODD: &[&str] = &[
    "\u{301}",
    "e\u{301}\u{302}\u{303}\u{304}",
    "\u{336}",
    "\u{20e3}",
    "\u{202e}",
    "\u{202d}",
    "\u{200f}",
    "\u{2066}",
    "\u{2069}",
    "\u{200d}",
    "\u{200b}",
    "\u{feff}",
    "\u{fffd}",
    "\u{fdd0}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{1fffe}",
    "\u{10ffff}",
    "\u{d7ff}",
    "\u{e000}",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{c}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    "\r\r\n",
    "\t",
    "\u{a0}",
    "\u{3000}",
    "👩‍👩‍👧",
    "🏳️‍🌈",
    "🇫🇷",
    "👍🏽",
    "🎉",
    "é",
    "名前",
    "ß",
    "İ",
    "ﬀ",
    "𝔘",
    "ا",
    "עברית",
];

/// Text that looks like entities, well-formed or not.
pub const ENTITIES: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&#x1F389;",
    "&#xD;",
    "&#13;",
    "&#x0;",
    "&#0;",
    "&#xFFFE;",
    "&#x110000;",
    "&bogus;",
    "&",
    "&#",
    "&#x;",
    "&amp",
    "&#x1F389",
    "&&;;",
];

/// One piece of text: markup, odd characters, entities, words, any character, or one of
/// the contract's hostile texts.
pub fn piece(markup: &'static [&'static str]) -> BoxedStrategy<String> {
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
pub fn cap(mut s: String) -> String {
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
pub fn nest(pairs: &[(&str, &str)], depth: usize, inner: &str, mode: u8) -> String {
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
pub fn text(
    markup: &'static [&'static str],
    pairs: &'static [(&'static str, &'static str)],
) -> BoxedStrategy<String> {
    let mixed = vec(piece(markup), 0..40).prop_map(|v| v.concat()).boxed();
    let run_piece = prop_oneof![
        3 => select(markup),
        1 => select(ODD),
        1 => select(ENTITIES),
    ];
    let run = (run_piece, 1000..20_000usize)
        .prop_map(|(p, n)| p.repeat(n))
        .boxed();
    let nested = (
        vec(select(pairs), 1..4),
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

/// Content as any side may hand it to a writer: hostile text, spans on character
/// boundaries that may be empty, reversed, crossing, nested or past the end.
pub fn content(text: BoxedStrategy<String>, style: BoxedStrategy<Style>) -> BoxedStrategy<Content> {
    (
        text,
        vec((any::<Index>(), any::<Index>(), style), 0..12),
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

/// Cut points for an input of `len` bytes: sorted, deduplicated.
pub fn cuts(len: usize, at: &[Index]) -> Vec<usize> {
    let mut v: Vec<usize> = at.iter().map(|i| i.index(len + 1)).collect();
    v.sort_unstable();
    v.dedup();
    v
}
