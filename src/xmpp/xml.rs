//! Small helpers over minidom's attribute API (which wants validated names).

use tokio_xmpp::minidom::rxml::{Namespace, NcName};
use tokio_xmpp::minidom::{Element, ElementBuilder, IntoAttributeValue};

pub(crate) trait Attrs {
    /// Set an attribute in no namespace; names are constants of this crate.
    fn at(self, name: &str, value: impl IntoAttributeValue) -> Self;
}

impl Attrs for ElementBuilder {
    fn at(self, name: &str, value: impl IntoAttributeValue) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value),
            Err(_) => self,
        }
    }
}

pub(crate) fn set_attr(el: &mut Element, name: &str, value: impl IntoAttributeValue) {
    if let Ok(n) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, n, value);
    }
}

/// The same stanza with the component stream's namespace replaced by jabber:client, as
/// XEP-0297 wants for forwarded stanzas (MAM results). Other namespaces are kept.
pub(crate) fn as_client(el: &Element) -> Element {
    let ns = el.ns();
    let target = if ns == super::ns::STREAM {
        "jabber:client".to_string()
    } else {
        ns
    };
    let mut out = Element::builder(el.name(), target).build();
    for ((attr_ns, name), value) in el.attrs() {
        out.set_attr(attr_ns.clone(), name.clone(), value.to_string());
    }
    for node in el.nodes() {
        match node {
            tokio_xmpp::minidom::Node::Element(c) => {
                out.append_child(as_client(c));
            }
            tokio_xmpp::minidom::Node::Text(t) => out.append_text_node(t.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_namespace_becomes_client_namespace() {
        let el: Element = "<message xmlns='jabber:component:accept' type='groupchat' id='a'><body>hi &amp; bye</body><stanza-id xmlns='urn:xmpp:sid:0' id='s'/></message>"
            .parse()
            .expect("xml");
        let c = as_client(&el);
        assert_eq!(c.ns(), "jabber:client");
        assert_eq!(c.attr("id"), Some("a"));
        assert_eq!(
            c.get_child("body", "jabber:client").map(|b| b.text()),
            Some("hi & bye".into())
        );
        assert!(c.get_child("stanza-id", "urn:xmpp:sid:0").is_some());
    }
}
