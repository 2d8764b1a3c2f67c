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
