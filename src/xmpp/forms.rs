//! XEP-0004 data forms as plain data: what the gateway asks (registration, commands) and
//! what a client submitted.

use super::ns;
use super::{set_attr, Attrs};
use std::collections::BTreeMap;
use tokio_xmpp::minidom::Element;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    TextSingle,
    TextPrivate,
    TextMulti,
    /// One of (value, label).
    ListSingle(Vec<(String, String)>),
    Fixed,
    Hidden,
    JidSingle,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub var: String,
    pub label: String,
    pub kind: FieldKind,
    pub values: Vec<String>,
    pub required: bool,
}

impl Field {
    pub fn new(var: &str, label: &str, kind: FieldKind) -> Field {
        Field {
            var: var.into(),
            label: label.into(),
            kind,
            values: Vec::new(),
            required: false,
        }
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub fn value(mut self, v: impl Into<String>) -> Field {
        self.values.push(v.into());
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Form {
    /// "form" (asks) or "result" (tells).
    pub result: bool,
    pub title: String,
    pub instructions: String,
    pub form_type: Option<String>,
    pub fields: Vec<Field>,
}

pub fn element(form: &Form) -> Element {
    let mut x = Element::builder("x", ns::DATA)
        .at("type", if form.result { "result" } else { "form" })
        .build();
    if !form.title.is_empty() {
        x.append_child(
            Element::builder("title", ns::DATA)
                .append(form.title.as_str())
                .build(),
        );
    }
    if !form.instructions.is_empty() {
        x.append_child(
            Element::builder("instructions", ns::DATA)
                .append(form.instructions.as_str())
                .build(),
        );
    }
    if let Some(ft) = &form.form_type {
        x.append_child(field_element(
            &Field::new("FORM_TYPE", "", FieldKind::Hidden).value(ft.as_str()),
        ));
    }
    for f in &form.fields {
        x.append_child(field_element(f));
    }
    x
}

fn field_element(f: &Field) -> Element {
    let typ = match &f.kind {
        FieldKind::TextSingle => "text-single",
        FieldKind::TextPrivate => "text-private",
        FieldKind::TextMulti => "text-multi",
        FieldKind::ListSingle(_) => "list-single",
        FieldKind::Fixed => "fixed",
        FieldKind::Hidden => "hidden",
        FieldKind::JidSingle => "jid-single",
    };
    let mut el = Element::builder("field", ns::DATA).at("type", typ).build();
    if !f.var.is_empty() {
        set_attr(&mut el, "var", f.var.as_str());
    }
    if !f.label.is_empty() {
        set_attr(&mut el, "label", f.label.as_str());
    }
    if f.required {
        el.append_child(Element::builder("required", ns::DATA).build());
    }
    if let FieldKind::ListSingle(options) = &f.kind {
        for (value, label) in options {
            el.append_child(
                Element::builder("option", ns::DATA)
                    .at("label", label.as_str())
                    .append(
                        Element::builder("value", ns::DATA)
                            .append(value.as_str())
                            .build(),
                    )
                    .build(),
            );
        }
    }
    for v in &f.values {
        el.append_child(
            Element::builder("value", ns::DATA)
                .append(v.as_str())
                .build(),
        );
    }
    el
}

/// The values of a submitted form, by field var (one value per field: multi-line text
/// joined by newlines). None when `x` is not a submitted form.
pub fn submitted(x: &Element) -> Option<BTreeMap<String, String>> {
    if !x.is("x", ns::DATA) || x.attr("type") != Some("submit") {
        return None;
    }
    Some(
        x.children()
            .filter(|f| f.is("field", ns::DATA))
            .filter_map(|f| {
                let var = f.attr("var")?.to_string();
                let values: Vec<String> = f
                    .children()
                    .filter(|v| v.is("value", ns::DATA))
                    .map(|v| v.text())
                    .collect();
                Some((var, values.join("\n")))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_render_and_submissions_parse() {
        let form = Form {
            title: "Log in".into(),
            form_type: Some("jabber:iq:register".into()),
            fields: vec![
                Field::new("username", "Username", FieldKind::TextSingle).required(),
                Field::new("password", "Password", FieldKind::TextPrivate).required(),
                Field::new(
                    "space",
                    "Space",
                    FieldKind::ListSingle(vec![("s1".into(), "One".into())]),
                ),
            ],
            ..Form::default()
        };
        let xml = String::from(&element(&form));
        for part in [
            "type='form'",
            "var='FORM_TYPE'",
            "type='text-private'",
            "<required",
            "label='One'",
        ] {
            assert!(xml.contains(part), "{part} in {xml}");
        }
        let sub: Element = "<x xmlns='jabber:x:data' type='submit'><field var='username'><value>al</value></field><field var='notes'><value>a</value><value>b</value></field><field><value>no var</value></field></x>"
            .parse()
            .expect("xml");
        let got = submitted(&sub).expect("submitted");
        assert_eq!(got.get("username").map(String::as_str), Some("al"));
        assert_eq!(got.get("notes").map(String::as_str), Some("a\nb"));
        assert_eq!(got.len(), 2);
        let cancel: Element = "<x xmlns='jabber:x:data' type='cancel'/>"
            .parse()
            .expect("xml");
        assert!(submitted(&cancel).is_none());
    }
}
