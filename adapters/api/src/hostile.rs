//! Hostile text for converters' tests: every converter (XEP-0393, Markdown, HTML, the XML
//! writer) must take any text a network or a client can send without panicking, and give
//! well-formed `Content` back. `texts` builds such text from pieces that trip parsers
//! (markup characters, unclosed and nested markup, entities, controls, characters of every
//! UTF-8 length, combining marks), in a fixed pseudo-random order so a failure repeats.

use crate::Content;

const PIECES: &[&str] = &[
    "*",
    "_",
    "~",
    "`",
    "```",
    ">",
    "> ",
    "|",
    "||",
    "\\",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "&",
    "'",
    "\"",
    "\n",
    "\r",
    "\r\n",
    "\t",
    " ",
    "  ",
    "\n\n",
    "#",
    "# ",
    "-",
    "- ",
    "1. ",
    ":",
    "/",
    "@",
    "!",
    "a",
    "word",
    "x y",
    "é",
    "名前",
    "🎉",
    "👩‍👩‍👧",
    "e\u{301}",
    "\u{202e}",
    "\u{200b}",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{1f}",
    "\u{7f}",
    "\u{85}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{fffd}",
    "\u{10ffff}",
    "&amp;",
    "&lt;",
    "&#x1;",
    "&#0;",
    "&bogus;",
    "&",
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    "<br>",
    "<br/>",
    "<p>",
    "</p>",
    "<a href=\"",
    "\">",
    "</a>",
    "<pre><code>",
    "</code></pre>",
    "<blockquote>",
    "</blockquote>",
    "<mx-reply>",
    "</mx-reply>",
    "<ul><li>",
    "</li></ul>",
    "<span data-mx-spoiler>",
    "</span>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "https://example.org/a_b*c",
    "<https://x.y>",
    "[t](https://x.y)",
    "<@123>",
    "<@!45>",
    "<#678>",
    "<@&9>",
    "<:e:1>",
    "<a:e:2>",
    "<t:1700000000:R>",
    "<t:99999999999999:F>",
    "@everyone",
    "@here",
    "||spoiler||",
    "**",
    "__",
    "~~",
    "***",
    "> > ",
    "```rust\n",
];

/// `n` texts of 1 to 40 pieces each, the same ones on every run.
pub fn texts(n: usize) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|_| {
            let len = 1 + (next() % 40) as usize;
            (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// Content's own rules: spans inside the text, on character boundaries, nested but never
/// crossing (an empty span is allowed: an empty code block). The broken rule, or Ok.
pub fn check_content(c: &Content) -> Result<(), String> {
    for s in &c.spans {
        if s.start > s.end || s.end > c.text.len() {
            return Err(format!("span {s:?} outside {} bytes", c.text.len()));
        }
        if !c.text.is_char_boundary(s.start) || !c.text.is_char_boundary(s.end) {
            return Err(format!("span {s:?} not on character boundaries"));
        }
    }
    for a in &c.spans {
        for b in &c.spans {
            if a.start < b.start && b.start < a.end && a.end < b.end {
                return Err(format!("spans {a:?} and {b:?} cross"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Span, Style};

    #[test]
    fn texts_repeat_and_cover_the_pieces() {
        let a = texts(500);
        assert_eq!(a, texts(500));
        assert!(a.iter().any(|t| t.contains('\u{1}')));
        assert!(a.iter().any(|t| t.contains("```")));
        assert!(a.iter().all(|t| !t.is_empty()));
    }

    #[test]
    fn broken_content_is_named() {
        let span = |start, end| Span {
            start,
            end,
            style: Style::Bold,
        };
        let c = |spans| Content {
            text: "aé bc".into(),
            spans,
            ..Content::default()
        };
        // (spans, broken)
        let cases = [
            (vec![span(0, 3), span(0, 1)], false),
            (vec![span(0, 2)], true),
            (vec![span(3, 3)], false),
            (vec![span(3, 1)], true),
            (vec![span(0, 9)], true),
            (vec![span(0, 4), span(3, 6)], true),
        ];
        for (spans, broken) in cases {
            assert_eq!(
                check_content(&c(spans.clone())).is_err(),
                broken,
                "{spans:?}"
            );
        }
    }
}
