//! XEP-0393 Message Styling: an XMPP body to network-neutral Content (text + spans) and
//! back. Blocks: preformatted (```), quotes (>). Spans: *strong*, _emphasis_, ~strike~,
//! `code`; a span opens at the start of a line, after whitespace or after another opening
//! directive, is not followed by whitespace, closes on the same line after a non-whitespace
//! character, and is never empty. Linear time in the input, whatever it holds: quotes nest
//! at most `MAX_QUOTE_DEPTH` levels (deeper `>` stay text), spans at most four (one per
//! directive), so neither the stack nor the work grows with what a sender nests.

use causeway_api::{Content, Span, Style};

const DIRECTIVES: [(char, Style); 4] = [
    ('*', Style::Bold),
    ('_', Style::Italic),
    ('~', Style::Strike),
    ('`', Style::Code),
];

/// The deepest quote read as a quote; below it, lines are text (`>` included). Each level
/// copies its lines once, so the work is at most this many times the body's length.
pub const MAX_QUOTE_DEPTH: usize = 8;

fn is_directive(c: char) -> bool {
    DIRECTIVES.iter().any(|(d, _)| *d == c)
}

/// Parse a body into text without markup and styled spans.
pub fn parse(body: &str) -> Content {
    // Most bodies hold no markup at all: nothing to parse.
    if !body.contains(|c| c == '>' || is_directive(c)) {
        return Content::text(body);
    }
    let mut out = Content::default();
    parse_blocks(body, 0, &mut out.text, &mut out.spans);
    out
}

fn parse_blocks(body: &str, depth: usize, text: &mut String, spans: &mut Vec<Span>) {
    let lines: Vec<&str> = body.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        if i > 0 {
            text.push('\n');
        }
        let line = lines[i];
        if let Some(hint) = line.strip_prefix("```") {
            // a preformatted block, to its closing line or the end of the message
            let lang = hint.trim();
            let lang = (!lang.is_empty()).then(|| lang.to_string());
            let start = text.len();
            let mut j = i + 1;
            while j < lines.len() && lines[j] != "```" {
                if j > i + 1 {
                    text.push('\n');
                }
                text.push_str(lines[j]);
                j += 1;
            }
            spans.push(Span {
                start,
                end: text.len(),
                style: Style::Pre(lang),
            });
            i = j + 1;
            continue;
        }
        if line.starts_with('>') && depth < MAX_QUOTE_DEPTH {
            let mut j = i;
            let mut inner = Vec::new();
            while j < lines.len() && lines[j].starts_with('>') {
                let l = &lines[j][1..];
                inner.push(l.strip_prefix(' ').unwrap_or(l));
                j += 1;
            }
            let start = text.len();
            let mut nested = Vec::new();
            let mut quoted = String::new();
            parse_blocks(&inner.join("\n"), depth + 1, &mut quoted, &mut nested);
            text.push_str(&quoted);
            spans.push(Span {
                start,
                end: text.len(),
                style: Style::Quote,
            });
            spans.extend(nested.into_iter().map(|s| Span {
                start: s.start + start,
                end: s.end + start,
                style: s.style,
            }));
            i = j;
            continue;
        }
        parse_line(line, text, spans);
        i += 1;
    }
}

/// Where each directive can close: `next[d][i]` = the first index >= i holding directive d
/// preceded by a non-whitespace character (or None).
fn closings(chars: &[char]) -> [Vec<Option<usize>>; 4] {
    let mut next: [Vec<Option<usize>>; 4] = Default::default();
    for (d, (c, _)) in DIRECTIVES.iter().enumerate() {
        let mut v = vec![None; chars.len() + 1];
        for i in (0..chars.len()).rev() {
            let closes = chars[i] == *c && i > 0 && !chars[i - 1].is_whitespace();
            v[i] = if closes { Some(i) } else { v[i + 1] };
        }
        next[d] = v;
    }
    next
}

fn parse_line(line: &str, text: &mut String, spans: &mut Vec<Span>) {
    if !line.contains(is_directive) {
        text.push_str(line);
        return;
    }
    let chars: Vec<char> = line.chars().collect();
    let next = closings(&chars);
    spans_in(&chars, &next, 0, chars.len(), text, spans);
}

fn spans_in(
    chars: &[char],
    next: &[Vec<Option<usize>>; 4],
    from: usize,
    to: usize,
    text: &mut String,
    spans: &mut Vec<Span>,
) {
    let mut i = from;
    while i < to {
        let c = chars[i];
        let d = DIRECTIVES.iter().position(|(dc, _)| *dc == c);
        let opens = i == from || chars[i - 1].is_whitespace();
        let followed = i + 1 < to && !chars[i + 1].is_whitespace();
        let close = match d {
            Some(d) if opens && followed => next[d][i + 2].filter(|j| *j < to),
            _ => None,
        };
        match (d, close) {
            (Some(d), Some(j)) => {
                let start = text.len();
                if DIRECTIVES[d].1 == Style::Code {
                    text.extend(&chars[i + 1..j]);
                } else {
                    spans_in(chars, next, i + 1, j, text, spans);
                }
                spans.push(Span {
                    start,
                    end: text.len(),
                    style: DIRECTIVES[d].1.clone(),
                });
                i = j + 1;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// Write Content as a XEP-0393 body. The flag says the body must be marked
/// `<unstyled/>`: plain text that clients would otherwise show styled.
pub fn write(content: &Content) -> (String, bool) {
    let text = &content.text;
    // (byte position, order, marker)
    let mut marks: Vec<(usize, (u8, usize, usize), String)> = Vec::new();
    for (idx, s) in content.spans.iter().enumerate() {
        let (Some(inner), true) = (text.get(s.start..s.end), s.start < s.end) else {
            continue;
        };
        // at one position: closings first (inner first), then openings (outer first); spans
        // over the same range close in the reverse order they opened
        let close_key = (0, usize::MAX - s.start, usize::MAX - idx);
        let open_key = (1, usize::MAX - s.end, idx);
        let inline = |m: &str, marks: &mut Vec<_>| {
            // markers hug the text: whitespace stays outside
            let lead = inner.len() - inner.trim_start().len();
            let trail = inner.len() - inner.trim_end().len();
            if inner.trim().is_empty() || inner.contains('\n') {
                return;
            }
            marks.push((s.start + lead, open_key, m.to_string()));
            marks.push((s.end - trail, close_key, m.to_string()));
        };
        match &s.style {
            Style::Bold => inline("*", &mut marks),
            Style::Italic => inline("_", &mut marks),
            Style::Strike => inline("~", &mut marks),
            Style::Code => inline("`", &mut marks),
            Style::Pre(lang) => {
                let before = if s.start > 0 && !text[..s.start].ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                let after = if s.end < text.len() && !text[s.end..].starts_with('\n') {
                    "\n"
                } else {
                    ""
                };
                let lang = lang.as_deref().unwrap_or("");
                marks.push((s.start, open_key, format!("{before}```{lang}\n")));
                marks.push((s.end, close_key, format!("\n```{after}")));
            }
            Style::Quote => {
                marks.push((s.start, open_key, "> ".into()));
                for (k, _) in inner.match_indices('\n') {
                    marks.push((s.start + k + 1, open_key, "> ".into()));
                }
            }
            Style::Link(url) if inner != url.as_str() => {
                marks.push((s.end, close_key, format!(" <{url}>")));
            }
            Style::Link(_) | Style::Mention(_) => {}
        }
    }
    marks.sort_by_key(|m| (m.0, m.1));
    let mut out = String::with_capacity(text.len() + marks.len() * 2);
    let mut at = 0;
    for (pos, _, m) in marks {
        out.push_str(&text[at..pos]);
        out.push_str(&m);
        at = pos;
    }
    out.push_str(&text[at..]);
    let unstyled = content.spans.is_empty() && !parse(&out).spans.is_empty();
    (out, unstyled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any body a client or a network sends: no panic, well-formed content, and writing it
    /// back gives the same text and styles.
    #[test]
    fn hostile_text_converts_without_panic() {
        for t in causeway_api::hostile::texts(3000) {
            let c = parse(&t);
            causeway_api::hostile::check_content(&c).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            let (written, _) = write(&c);
            let again = parse(&written);
            assert_eq!(again.text, c.text, "{t:?} -> {written:?}");
        }
    }

    fn spans(c: &Content) -> Vec<(String, Style)> {
        let mut v = c.styled_texts();
        v.sort_by_key(|(t, s)| (t.clone(), format!("{s:?}")));
        v
    }

    #[test]
    fn bodies_parse() {
        use Style::*;
        type Case<'a> = (&'a str, &'a str, Vec<(&'a str, Style)>);
        let cases: Vec<Case> = vec![
            ("plain", "plain", vec![]),
            ("", "", vec![]),
            ("two\nlines\n", "two\nlines\n", vec![]),
            ("a > b, 1 < 2", "a > b, 1 < 2", vec![]),
            (
                "> *q*\nplain line",
                "q\nplain line",
                vec![("q", Bold), ("q", Quote)],
            ),
            ("*bold* text", "bold text", vec![("bold", Bold)]),
            (
                "a _b_ ~c~ `d`",
                "a b c d",
                vec![("b", Italic), ("c", Strike), ("d", Code)],
            ),
            ("*_both_*", "both", vec![("both", Bold), ("both", Italic)]),
            ("`*not bold*`", "*not bold*", vec![("*not bold*", Code)]),
            // not spans: unclosed, empty, whitespace after opening or before closing, mid-word
            ("*unclosed", "*unclosed", vec![]),
            ("**", "**", vec![]),
            ("* not*", "* not*", vec![]),
            ("*not *", "*not *", vec![]),
            ("2*3*4", "2*3*4", vec![]),
            ("*a\nb*", "*a\nb*", vec![]),
            // blocks
            (
                "```rust\nlet *x* = 1;\n```\nafter",
                "let *x* = 1;\nafter",
                vec![("let *x* = 1;", Pre(Some("rust".into())))],
            ),
            (
                "```\nunclosed\nblock",
                "unclosed\nblock",
                vec![("unclosed\nblock", Pre(None))],
            ),
            (
                "> quoted *b*\n> more\nreply",
                "quoted b\nmore\nreply",
                vec![("b", Bold), ("quoted b\nmore", Quote)],
            ),
            (">> deep", "deep", vec![("deep", Quote), ("deep", Quote)]),
            // multi-byte text keeps character boundaries
            ("é *ü😀* ß", "é ü😀 ß", vec![("ü😀", Bold)]),
        ];
        for (body, text, want) in cases {
            let c = parse(body);
            assert_eq!(c.text, text, "{body:?}");
            let mut want: Vec<(String, Style)> =
                want.into_iter().map(|(t, s)| (t.to_string(), s)).collect();
            want.sort_by_key(|(t, s)| (t.clone(), format!("{s:?}")));
            assert_eq!(spans(&c), want, "{body:?}");
        }
    }

    #[test]
    fn writing_then_parsing_gives_the_content_back() {
        for body in [
            "*bold* and _it_ and ~gone~ and `code`",
            "*_both_*",
            "> a quote\n> two lines\nanswer",
            "```py\nprint(1)\n```\ntext after",
            "é *ü😀* ß",
            "plain text",
        ] {
            let c = parse(body);
            let (written, unstyled) = write(&c);
            assert!(!unstyled, "{body:?}");
            let again = parse(&written);
            assert_eq!(again.text, c.text, "{body:?} -> {written:?}");
            assert_eq!(spans(&again), spans(&c), "{body:?} -> {written:?}");
        }
    }

    #[test]
    fn writer_handles_what_parsing_never_makes() {
        let mut c = Content::text("see the docs now");
        c.spans.push(Span {
            start: 8,
            end: 12,
            style: Style::Link("https://x.example/d".into()),
        });
        c.spans.push(Span {
            start: 3,
            end: 8,
            style: Style::Bold,
        }); // " the " hugs "the"
        c.spans.push(Span {
            start: 0,
            end: 99,
            style: Style::Italic,
        }); // out of range: ignored
        let (w, _) = write(&c);
        assert_eq!(w, "see *the* docs <https://x.example/d> now");
        // plain text that would render styled is flagged
        assert_eq!(
            write(&Content::text("a *b* c")),
            ("a *b* c".to_string(), true)
        );
        assert_eq!(write(&Content::text("2*3*4")), ("2*3*4".to_string(), false));
    }

    /// A run of `>` (one quote level each) neither grows the stack nor the work: parsed on
    /// a thread with a small stack, quotes stop at MAX_QUOTE_DEPTH and the rest is text.
    #[test]
    fn deep_quotes_are_capped() {
        let run = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                for (levels, tail) in [(60_000, " hi"), (20_000, "\n> b"), (9, "x")] {
                    let body = ">".repeat(levels) + tail;
                    let t = std::time::Instant::now();
                    let c = parse(&body);
                    assert!(t.elapsed() < std::time::Duration::from_secs(2), "{levels}");
                    let quotes = c.spans.iter().filter(|s| s.style == Style::Quote).count();
                    assert!(quotes <= MAX_QUOTE_DEPTH + 1, "{levels}: {quotes}");
                    let kept = levels - MAX_QUOTE_DEPTH;
                    assert!(c.text.starts_with(&">".repeat(kept)), "{levels}");
                    let (written, _) = write(&c);
                    assert_eq!(parse(&written).text, c.text, "{levels}");
                }
            })
            .expect("thread");
        run.join().expect("no stack overflow");
        // within the cap, quotes are quotes
        let c = parse(&(">".repeat(MAX_QUOTE_DEPTH) + " deep"));
        assert_eq!(c.text, "deep");
        assert_eq!(c.spans.len(), MAX_QUOTE_DEPTH);
    }

    #[test]
    fn hostile_input_stays_linear_and_panic_free() {
        let huge = "*a ".repeat(100_000) + &"_ ".repeat(100_000) + &"`x ".repeat(50_000);
        let t = std::time::Instant::now();
        let c = parse(&huge);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(c.text.len(), huge.len(), "nothing styled, nothing lost");
        for odd in [
            "*", "_", "`", "```", ">", "> ", "\n\n", "*\n*", "~~~", "*😀", "😀*", "`é`é`",
        ] {
            let c = parse(odd);
            let _ = write(&c);
            for s in &c.spans {
                assert!(c.text.is_char_boundary(s.start) && c.text.is_char_boundary(s.end));
            }
        }
    }
}
