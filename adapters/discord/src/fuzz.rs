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
use causeway_api::fuzzing::{self, *};
use causeway_api::{hostile, Content, RemoteUserId, Style};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

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

fn text() -> BoxedStrategy<String> {
    fuzzing::text(MARKDOWN, NESTS)
}

/// Content as the core hands it to the adapter (`fuzzing::content`).
fn content() -> BoxedStrategy<Content> {
    fuzzing::content(text(), style())
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
