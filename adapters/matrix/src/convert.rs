//! `org.matrix.custom.html` <-> [`Content`] (plain text + spans), read with a real HTML parser
//! (html5ever through scraper). Reply fallbacks (`<mx-reply>`) are dropped on the way in.

use crate::ids;
use causeway_api::{Content, Span, Style};
use ego_tree::NodeRef;
use scraper::{Html, Node};

#[derive(Default)]
struct Out {
    text: String,
    spans: Vec<Span>,
}

impl Out {
    fn span(&mut self, start: usize, style: Style) {
        let end = self.text.trim_end_matches('\n').len().max(start);
        if end > start {
            self.spans.push(Span { start, end, style });
        }
    }

    /// Start a block on its own line.
    fn line(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
    }
}

/// The most tags a formatted body may hold to be read as HTML; beyond, its plain `body`
/// is used. An HTML parser's work can grow with (formatting tags left open) x (text that
/// follows): html5ever re-creates every open formatting element for each later block, so
/// 5,000 `<b a=n>` and 8,000 `<p>x` (64 KiB) built tens of millions of nodes. No message
/// a person writes comes near this.
pub const MAX_TAGS: usize = 1000;

/// Whether a formatted body is within what is read as HTML (`MAX_TAGS`, 64 KiB).
pub fn html_is_tame(html: &str) -> bool {
    html.len() <= 64 * 1024 && html.bytes().filter(|b| *b == b'<').count() <= MAX_TAGS
}

/// The content of a formatted body.
pub fn from_html(html: &str) -> Content {
    let doc = Html::parse_fragment(html);
    let mut o = Out::default();
    for child in doc.tree.root().children() {
        walk(child, &mut o, false, 0);
    }
    let end = o.text.trim_end().len();
    o.text.truncate(end);
    for s in &mut o.spans {
        s.end = s.end.min(end);
    }
    o.spans.retain(|s| s.start < s.end);
    // Inner spans were pushed first: for equal ranges the outer one must come first.
    o.spans.reverse();
    o.spans
        .sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    Content {
        text: o.text,
        spans: o.spans,
        ..Content::default()
    }
}

/// Deeper markup is read as plain text (no recursion without bound on hostile input).
const MAX_DEPTH: usize = 64;

fn walk(node: NodeRef<'_, Node>, o: &mut Out, pre: bool, depth: usize) {
    if depth > MAX_DEPTH {
        // (its text and line breaks, read as anywhere else)
        for d in node.descendants() {
            match d.value() {
                Node::Text(t) => text(t, o, pre),
                Node::Element(e) if e.name() == "br" => o.text.push('\n'),
                _ => {}
            }
        }
        return;
    }
    match node.value() {
        Node::Text(t) => text(t, o, pre),
        Node::Element(e) => {
            let name = e.name();
            let children = |o: &mut Out, pre: bool| {
                for c in node.children() {
                    walk(c, o, pre, depth + 1);
                }
            };
            let start = o.text.len();
            match name {
                "mx-reply" | "script" | "style" | "head" => {}
                "br" => o.text.push('\n'),
                "strong" | "b" => {
                    children(o, pre);
                    o.span(start, Style::Bold);
                }
                "em" | "i" => {
                    children(o, pre);
                    o.span(start, Style::Italic);
                }
                "del" | "s" | "strike" => {
                    children(o, pre);
                    o.span(start, Style::Strike);
                }
                "code" if !pre => {
                    children(o, true);
                    o.span(start, Style::Code);
                }
                "pre" => {
                    o.line();
                    let start = o.text.len();
                    let lang = node.children().find_map(|c| match c.value() {
                        Node::Element(code) if code.name() == "code" => code
                            .attr("class")
                            .and_then(|cl| {
                                cl.split_whitespace()
                                    .find_map(|x| x.strip_prefix("language-"))
                            })
                            .map(str::to_string),
                        _ => None,
                    });
                    children(o, true);
                    while o.text.ends_with('\n') && o.text.len() > start {
                        o.text.pop();
                    }
                    o.span(start, Style::Pre(lang));
                    o.text.push('\n');
                }
                "blockquote" => {
                    o.line();
                    let start = o.text.len();
                    children(o, pre);
                    o.span(start, Style::Quote);
                    o.line();
                }
                "a" => {
                    children(o, pre);
                    let href = e.attr("href").unwrap_or("");
                    let user = href
                        .strip_prefix("https://matrix.to/#/")
                        .and_then(ids::remote_user);
                    match user {
                        Some(u) => o.span(start, Style::Mention(u)),
                        None if href.starts_with("https://") || href.starts_with("http://") => {
                            o.span(start, Style::Link(href.to_string()))
                        }
                        None => {}
                    }
                }
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                    o.line();
                    let start = o.text.len();
                    children(o, pre);
                    o.span(start, Style::Bold);
                    o.line();
                }
                "li" => {
                    o.line();
                    o.text.push_str("• ");
                    children(o, pre);
                    o.line();
                }
                "p" | "div" | "ul" | "ol" | "table" | "tr" | "hr" => {
                    o.line();
                    children(o, pre);
                    o.line();
                }
                "img" => o.text.push_str(e.attr("alt").unwrap_or("")),
                _ => children(o, pre),
            }
        }
        _ => {
            for c in node.children() {
                walk(c, o, pre, depth + 1);
            }
        }
    }
}

/// A text node: as it is in `<pre>`; elsewhere with whitespace collapsed.
fn text(t: &str, o: &mut Out, pre: bool) {
    if pre {
        o.text.push_str(t);
    } else if !(t.trim().is_empty() && t.contains('\n')) {
        // Outside <pre>, line breaks in the source are spaces (<br> breaks lines).
        let mut last_space = o.text.ends_with([' ', '\n']) || o.text.is_empty();
        for c in t.chars() {
            if c.is_whitespace() {
                if !last_space {
                    o.text.push(' ');
                }
                last_space = true;
            } else {
                o.text.push(c);
                last_space = false;
            }
        }
    }
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // What a parser would not read back as it is: a CR becomes a line feed, a U+FEFF
            // starting the body is dropped as a byte order mark.
            '\r' => out.push_str("&#13;"),
            '\u{feff}' => out.push_str("&#xFEFF;"),
            _ => out.push(c),
        }
    }
}

/// The formatted body of a content, and the users it mentions (Matrix ids); None when it
/// has no markup (the plain body says it all).
pub fn to_html(c: &Content) -> Option<(String, Vec<String>)> {
    if c.spans.is_empty() {
        return None;
    }
    let spans = causeway_api::sorted_spans(&c.spans, c.text.len());
    let mut w = Writer {
        text: &c.text,
        out: String::new(),
        mentions: Vec::new(),
    };
    w.write(&spans, 0, c.text.len(), false);
    Some((w.out, w.mentions))
}

struct Writer<'a> {
    text: &'a str,
    out: String,
    mentions: Vec<String>,
}

impl Writer<'_> {
    fn write(&mut self, spans: &[Span], from: usize, to: usize, pre: bool) {
        let mut pos = from;
        for (s, inner) in causeway_api::outermost(spans) {
            self.plain(pos, s.start.max(pos), pre);
            self.styled(&s, &inner, pre);
            pos = s.end;
            // A block ends its line: the line break after it is not one more.
            let block = matches!(s.style, Style::Quote | Style::Pre(_));
            if block && !pre && self.text[pos..].starts_with('\n') {
                pos += 1;
            }
        }
        self.plain(pos, to, pre);
    }

    fn plain(&mut self, from: usize, to: usize, pre: bool) {
        let s = self.text.get(from..to).unwrap_or("");
        if pre {
            escape(s, &mut self.out);
            return;
        }
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.out.push_str("<br>");
            }
            escape(line, &mut self.out);
        }
    }

    fn styled(&mut self, s: &Span, inner: &[Span], pre: bool) {
        let (open, close): (String, &str) = match &s.style {
            Style::Bold => ("<strong>".into(), "</strong>"),
            Style::Italic => ("<em>".into(), "</em>"),
            Style::Strike => ("<del>".into(), "</del>"),
            Style::Code => ("<code>".into(), "</code>"),
            Style::Pre(lang) => {
                let class = lang
                    .as_ref()
                    .map(|l| {
                        let mut e = String::new();
                        escape(l, &mut e);
                        format!(" class=\"language-{e}\"")
                    })
                    .unwrap_or_default();
                self.out.push_str(&format!("<pre><code{class}>"));
                self.write(inner, s.start, s.end, true);
                self.out.push_str("</code></pre>");
                return;
            }
            Style::Quote => ("<blockquote>".into(), "</blockquote>"),
            Style::Link(url) => {
                let mut href = String::new();
                escape(url, &mut href);
                (format!("<a href=\"{href}\">"), "</a>")
            }
            Style::Mention(user) => match ids::mxid(user.as_str()) {
                Some(mx) => {
                    if !self.mentions.contains(&mx) {
                        self.mentions.push(mx.clone());
                    }
                    (format!("<a href=\"https://matrix.to/#/{mx}\">"), "</a>")
                }
                None => (String::new(), ""),
            },
        };
        self.out.push_str(&open);
        self.write(inner, s.start, s.end, pre || matches!(s.style, Style::Code));
        self.out.push_str(close);
    }
}

/// `@Name` anywhere and `Name:` / `Name,` at the start, naming a member (longest name first,
/// any case), become mentions; text already styled is left alone.
pub fn add_mentions(c: &mut Content, names: &[(String, String)]) {
    let free =
        |spans: &[Span], a: usize, b: usize| spans.iter().all(|s| s.end <= a || s.start >= b);
    let matches = |at: usize, name: &str| {
        c.text
            .get(at..at + name.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
    };
    let mut found: Vec<Span> = Vec::new();
    if let Some((name, id)) = names.iter().find(|(n, _)| {
        !n.is_empty()
            && matches(0, n)
            && matches!(c.text.as_bytes().get(n.len()), Some(b':' | b','))
    }) {
        if let Some(u) = ids::remote_user(id) {
            found.push(Span {
                start: 0,
                end: name.len(),
                style: Style::Mention(u),
            });
        }
    }
    for (at, _) in c.text.match_indices('@') {
        // an address (mail@al) is no mention
        if c.text[..at].ends_with(|ch: char| ch.is_alphanumeric()) {
            continue;
        }
        let hit = names.iter().find(|(n, _)| {
            !n.is_empty()
                && matches(at + 1, n)
                && !c.text[at + 1 + n.len()..].starts_with(|ch: char| ch.is_alphanumeric())
        });
        if let Some((name, id)) = hit {
            let end = at + 1 + name.len();
            if let (Some(u), true) = (ids::remote_user(id), free(&found, at, end)) {
                found.push(Span {
                    start: at,
                    end,
                    style: Style::Mention(u),
                });
            }
        }
    }
    found.retain(|s| free(&c.spans, s.start, s.end));
    c.spans.extend(found);
    c.spans
        .sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
}

/// A plain body without the reply fallback (`> <@user> ...` lines and the blank line after).
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    match body.find("\n\n") {
        Some(i) if body[..i].lines().all(|l| l.starts_with('>')) => &body[i + 2..],
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mention(user: &str) -> Style {
        Style::Mention(causeway_api::RemoteUserId::new(user))
    }

    /// Any HTML or text from Matrix or XMPP: no panic, well-formed content both ways.
    #[test]
    fn hostile_text_converts_without_panic() {
        for t in causeway_api::hostile::texts(3000) {
            let c = from_html(&t);
            causeway_api::hostile::check_content(&c).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            let _ = to_html(&c);
            let _ = to_html(&Content::text(t.clone()));
            assert!(t.ends_with(strip_reply_fallback(&t)), "{t:?}");
        }
    }

    #[test]
    fn reads_html() {
        use Style::*;
        type Case<'a> = (&'a str, &'a str, Vec<(&'a str, Style)>);
        let cases: Vec<Case> = vec![
            ("plain &amp; simple", "plain & simple", vec![]),
            (
                "<strong>b</strong> <em>i</em> <del>s</del> <code>c&lt;</code>",
                "b i s c<",
                vec![("b", Bold), ("i", Italic), ("s", Strike), ("c<", Code)],
            ),
            (
                "<pre><code class=\"language-rust\">fn a() {\n}\n</code></pre>after",
                "fn a() {\n}\nafter",
                vec![("fn a() {\n}", Pre(Some("rust".into())))],
            ),
            (
                "<blockquote>quoted</blockquote>reply",
                "quoted\nreply",
                vec![("quoted", Quote)],
            ),
            (
                "<mx-reply><blockquote>old</blockquote></mx-reply>answer",
                "answer",
                vec![],
            ),
            (
                "hi <a href=\"https://matrix.to/#/@alice:example.org\">Alice</a>!",
                "hi Alice!",
                vec![("Alice", mention("alice%example.org"))],
            ),
            (
                "<a href=\"https://e.org/x\">site</a>",
                "site",
                vec![("site", Link("https://e.org/x".into()))],
            ),
            ("<a href=\"javascript:x\">bad</a>", "bad", vec![]),
            ("a<br>b<br/>c", "a\nb\nc", vec![]),
            ("<p>one</p>\n<p>two</p>", "one\ntwo", vec![]),
            ("<ul><li>x</li><li>y</li></ul>", "• x\n• y", vec![]),
            ("<h1>Title</h1>text", "Title\ntext", vec![("Title", Bold)]),
            (
                "<b><i>both</i></b>",
                "both",
                vec![("both", Bold), ("both", Italic)],
            ),
            ("<img alt=\":party:\" src=\"mxc://x/y\">", ":party:", vec![]),
            ("<strong>unclosed", "unclosed", vec![("unclosed", Bold)]),
            ("<script>alert(1)</script>ok", "ok", vec![]),
        ];
        for (html, text, want) in cases {
            let c = from_html(html);
            assert_eq!(c.text, text, "text of {html:?}");
            let want: Vec<(String, Style)> =
                want.into_iter().map(|(t, s)| (t.to_string(), s)).collect();
            assert_eq!(c.styled_texts(), want, "spans of {html:?}");
        }
    }

    #[test]
    fn writes_html() {
        use Style::*;
        let c = |text: &str, spans: Vec<(usize, usize, Style)>| Content {
            text: text.into(),
            spans: spans
                .into_iter()
                .map(|(start, end, style)| Span { start, end, style })
                .collect(),
            ..Content::default()
        };
        let cases: Vec<(Content, Option<&str>, Vec<&str>)> = vec![
            (c("plain <b>", vec![]), None, vec![]),
            (
                c("bold & it", vec![(0, 4, Bold), (7, 9, Italic)]),
                Some("<strong>bold</strong> &amp; <em>it</em>"),
                vec![],
            ),
            (
                c("a\nb", vec![(0, 1, Strike)]),
                Some("<del>a</del><br>b"),
                vec![],
            ),
            (
                c("x<y", vec![(0, 3, Code)]),
                Some("<code>x&lt;y</code>"),
                vec![],
            ),
            (
                c("l1\nl2", vec![(0, 5, Pre(Some("py".into())))]),
                Some("<pre><code class=\"language-py\">l1\nl2</code></pre>"),
                vec![],
            ),
            (
                c("q", vec![(0, 1, Quote)]),
                Some("<blockquote>q</blockquote>"),
                vec![],
            ),
            (
                c(
                    "site",
                    vec![(0, 4, Link("https://e.org/?a=1&b=\"2\"".into()))],
                ),
                Some("<a href=\"https://e.org/?a=1&amp;b=&quot;2&quot;\">site</a>"),
                vec![],
            ),
            (
                c("hi Alice", vec![(3, 8, mention("alice%example.org"))]),
                Some("hi <a href=\"https://matrix.to/#/@alice:example.org\">Alice</a>"),
                vec!["@alice:example.org"],
            ),
        ];
        for (content, html, mentions) in cases {
            let got = to_html(&content);
            assert_eq!(
                got.as_ref().map(|g| g.0.as_str()),
                html,
                "{:?}",
                content.text
            );
            assert_eq!(got.map(|g| g.1).unwrap_or_default(), mentions);
        }
    }

    #[test]
    fn round_trips() {
        for html in [
            "<strong>b</strong> and <em>i</em>",
            "<blockquote>q</blockquote>x",
            "<code>c</code> <a href=\"https://e.org\">l</a>",
        ] {
            let c = from_html(html);
            let (back, _) = to_html(&c).expect("markup");
            assert_eq!(from_html(&back), c, "{html} -> {back}");
        }
    }

    #[test]
    fn mentions_by_name() {
        let names = vec![
            ("Alice A".to_string(), "@alice:x".to_string()),
            ("Al".to_string(), "@al:x".to_string()),
        ];
        for (text, want) in [
            ("hi @alice a!", vec![("@alice a", "alice%x")]),
            (
                "Al: look at @Alice A",
                vec![("Al", "al%x"), ("@Alice A", "alice%x")],
            ),
            ("@Alicia", vec![]),
            ("mail@al", vec![]),
            ("(@al)", vec![("@al", "al%x")]),
            ("no one", vec![]),
        ] {
            let mut c = Content::text(text);
            add_mentions(&mut c, &names);
            let got: Vec<(String, String)> = c
                .spans
                .iter()
                .map(|s| match &s.style {
                    Style::Mention(u) => (c.span_text(s).to_string(), u.to_string()),
                    other => panic!("{other:?}"),
                })
                .collect();
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn reply_fallbacks() {
        for (body, want) in [
            ("> <@a:x> old\n> more\n\nnew", "new"),
            ("no fallback", "no fallback"),
            ("> quote only", "> quote only"),
        ] {
            assert_eq!(strip_reply_fallback(body), want);
        }
    }

    /// What an HTML parser changes in text (a CR, a U+FEFF starting the body) is written as
    /// character references; text nested deeper than MAX_DEPTH is read like any other.
    #[test]
    fn text_reads_back_as_written() {
        let c = Content {
            text: "\u{feff}a\rb".into(),
            spans: vec![Span {
                start: 0,
                end: 6,
                style: Style::Code,
            }],
            ..Content::default()
        };
        let (html, _) = to_html(&c).expect("markup");
        assert_eq!(html, "<code>&#xFEFF;a&#13;b</code>");
        assert_eq!(from_html(&html).text, c.text);
        let deep = "<b>".repeat(MAX_DEPTH + 5) + "a<br>b  \n c";
        assert_eq!(from_html(&deep).text, "a\nb c");
    }

    #[test]
    fn hostile_html_is_bounded() {
        let html = "<b>".repeat(20_000) + &"x".repeat(1000);
        let t = std::time::Instant::now();
        let c = from_html(&html);
        assert!(c.text.ends_with('x'));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
