//! XEP-0004: Data Forms (version 2.13.2) — the `<x xmlns='jabber:x:data'/>`
//! payload that ad-hoc commands (XEP-0050), service administration
//! (XEP-0133) and in-band registration (XEP-0077 §4) carry.
//!
//! Parsing is lenient where XEP-0004 lets the receiver infer things
//! (a missing field `type` is `text-single` in forms and "from context"
//! in submissions, §3.2; unknown field types are `text-single`, §3.3) and
//! strict only where a submission could otherwise be misread: a field
//! other than `fixed` without `var` (§3.2) and an unknown form `type`
//! (§3.1) are [`ProtoError::Invalid`]. Multi-item results (`<reported/>`,
//! `<item/>`, §3.4) are not modelled; nothing here needs them.

use xmppd_xml::Element;

use crate::{ProtoError, ns};

/// The `FORM_TYPE` hidden field naming a form's vocabulary (XEP-0068 §3).
pub const FORM_TYPE: &str = "FORM_TYPE";

/// The form `type` attribute (XEP-0004 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormType {
    /// The processing entity asks for data.
    Form,
    /// The submitting entity provides data.
    Submit,
    /// The submitting entity gave up.
    Cancel,
    /// Data returned by the processing entity.
    Result,
}

impl FormType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }

    /// Parses the attribute value.
    pub fn from_attr(value: &str) -> Option<FormType> {
        match value {
            "form" => Some(FormType::Form),
            "submit" => Some(FormType::Submit),
            "cancel" => Some(FormType::Cancel),
            "result" => Some(FormType::Result),
            _ => None,
        }
    }
}

/// A field `type` (XEP-0004 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `boolean`: "0"/"1"/"false"/"true".
    Boolean,
    /// `fixed`: descriptive text only.
    Fixed,
    /// `hidden`: returned unchanged (e.g. `FORM_TYPE`).
    Hidden,
    /// `jid-multi`: several JIDs.
    JidMulti,
    /// `jid-single`: one JID.
    JidSingle,
    /// `list-multi`: several options.
    ListMulti,
    /// `list-single`: one option.
    ListSingle,
    /// `text-multi`: several lines.
    TextMulti,
    /// `text-private`: one obscured line (passwords).
    TextPrivate,
    /// `text-single`: one line; the default (§3.3).
    TextSingle,
}

impl FieldType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }

    /// Parses the attribute value; an unknown type is `text-single`
    /// (§3.3: "MUST be assumed if [one] receives a field type it does not
    /// understand").
    pub fn from_attr(value: &str) -> FieldType {
        match value {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            _ => FieldType::TextSingle,
        }
    }
}

/// One `<field/>` (XEP-0004 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    /// The `var` attribute (absent only for `fixed` fields).
    pub var: Option<String>,
    /// The `type` attribute, if present.
    pub field_type: Option<FieldType>,
    /// The human-readable `label`.
    pub label: Option<String>,
    /// The `<desc/>` text.
    pub desc: Option<String>,
    /// `<required/>` is present.
    pub required: bool,
    /// The `<value/>` texts, in order.
    pub values: Vec<String>,
    /// `<option/>`s of list fields: (label, value).
    pub options: Vec<(Option<String>, String)>,
}

impl Field {
    /// A field `var` of `field_type` with a label.
    pub fn new(var: &str, field_type: FieldType, label: &str) -> Field {
        Field {
            var: Some(var.to_owned()),
            field_type: Some(field_type),
            label: (!label.is_empty()).then(|| label.to_owned()),
            ..Field::default()
        }
    }

    /// The hidden `FORM_TYPE` field (XEP-0068 §3).
    pub fn form_type(value: &str) -> Field {
        Field { var: Some(FORM_TYPE.to_owned()), field_type: Some(FieldType::Hidden), ..Field::default() }
            .with_value(value)
    }

    /// Marks the field `<required/>`.
    #[must_use]
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Appends a value.
    #[must_use]
    pub fn with_value(mut self, value: &str) -> Field {
        self.values.push(value.to_owned());
        self
    }

    /// Appends several values.
    #[must_use]
    pub fn with_values<S: AsRef<str>>(mut self, values: impl IntoIterator<Item = S>) -> Field {
        self.values.extend(values.into_iter().map(|v| v.as_ref().to_owned()));
        self
    }

    /// The first value, if any.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    fn parse(el: &Element) -> Result<Field, ProtoError> {
        let field_type = el.attr("type").map(FieldType::from_attr);
        let var = el.attr("var").map(str::to_owned);
        if var.is_none() && field_type != Some(FieldType::Fixed) {
            return Err(invalid("a field other than `fixed` needs a `var` (XEP-0004 §3.2)"));
        }
        let mut field = Field { var, field_type, label: el.attr("label").map(str::to_owned), ..Field::default() };
        for child in el.children().filter(|c| c.ns() == ns::DATA_FORMS) {
            match child.name() {
                "desc" => field.desc = Some(child.text()),
                "required" => field.required = true,
                "value" => field.values.push(child.text()),
                "option" => {
                    let value = child.get_child("value", ns::DATA_FORMS).map(Element::text).unwrap_or_default();
                    field.options.push((child.attr("label").map(str::to_owned), value));
                }
                _ => {}
            }
        }
        Ok(field)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::builder("field", ns::DATA_FORMS)
            .attr_opt("var", self.var.as_deref())
            .attr_opt("type", self.field_type.map(FieldType::as_str))
            .attr_opt("label", self.label.as_deref())
            .build();
        if let Some(desc) = &self.desc {
            el.push_child(Element::builder("desc", ns::DATA_FORMS).text(desc).build());
        }
        if self.required {
            el.push_child(Element::new("required", ns::DATA_FORMS));
        }
        for value in &self.values {
            el.push_child(Element::builder("value", ns::DATA_FORMS).text(value).build());
        }
        for (label, value) in &self.options {
            el.push_child(
                Element::builder("option", ns::DATA_FORMS)
                    .attr_opt("label", label.as_deref())
                    .append(Element::builder("value", ns::DATA_FORMS).text(value).build())
                    .build(),
            );
        }
        el
    }
}

/// A data form (XEP-0004 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataForm {
    /// The form type (§3.1).
    pub form_type: FormType,
    /// `<title/>`.
    pub title: Option<String>,
    /// `<instructions/>` (several are allowed, §3).
    pub instructions: Vec<String>,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

impl DataForm {
    /// An empty form of `form_type`.
    pub fn new(form_type: FormType) -> DataForm {
        DataForm { form_type, title: None, instructions: Vec::new(), fields: Vec::new() }
    }

    /// Sets the title.
    #[must_use]
    pub fn with_title(mut self, title: &str) -> DataForm {
        self.title = Some(title.to_owned());
        self
    }

    /// Adds instructions.
    #[must_use]
    pub fn with_instructions(mut self, instructions: &str) -> DataForm {
        self.instructions.push(instructions.to_owned());
        self
    }

    /// Appends a field.
    #[must_use]
    pub fn with_field(mut self, field: Field) -> DataForm {
        self.fields.push(field);
        self
    }

    /// Parses `<x xmlns='jabber:x:data'/>`.
    pub fn parse(el: &Element) -> Result<DataForm, ProtoError> {
        if !el.is("x", ns::DATA_FORMS) {
            return Err(ProtoError::Mismatch("data form"));
        }
        let form_type = el
            .attr("type")
            .and_then(FormType::from_attr)
            .ok_or_else(|| invalid("the form `type` must be form, submit, cancel or result (XEP-0004 §3.1)"))?;
        let mut form = DataForm::new(form_type);
        for child in el.children().filter(|c| c.ns() == ns::DATA_FORMS) {
            match child.name() {
                "title" => form.title = Some(child.text()),
                "instructions" => form.instructions.push(child.text()),
                "field" => form.fields.push(Field::parse(child)?),
                _ => {}
            }
        }
        Ok(form)
    }

    /// The first data form among `parent`'s children, parsed.
    pub fn find_in(parent: &Element) -> Option<Result<DataForm, ProtoError>> {
        parent.get_child("x", ns::DATA_FORMS).map(DataForm::parse)
    }

    /// Serialises the form.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("x", ns::DATA_FORMS).attr("type", self.form_type.as_str()).build();
        if let Some(title) = &self.title {
            el.push_child(Element::builder("title", ns::DATA_FORMS).text(title).build());
        }
        for instructions in &self.instructions {
            el.push_child(Element::builder("instructions", ns::DATA_FORMS).text(instructions).build());
        }
        for field in &self.fields {
            el.push_child(field.to_element());
        }
        el
    }

    /// The field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of field `var`, trimmed; `None` when the field is
    /// absent or its value empty (XEP-0004 §3.6 leaves "empty" and "absent"
    /// to the using protocol; every user here treats them alike).
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var).and_then(Field::value).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The non-empty values of field `var`, trimmed.
    pub fn values(&self, var: &str) -> Vec<&str> {
        self.field(var)
            .map(|f| f.values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The value of the hidden `FORM_TYPE` field (XEP-0068 §3).
    pub fn form_type_value(&self) -> Option<&str> {
        self.value(FORM_TYPE)
    }
}

fn invalid(reason: &str) -> ProtoError {
    ProtoError::Invalid { what: "data form", reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<DataForm, ProtoError> {
        let el = Element::parse_standalone(xml.as_bytes(), ns::CLIENT).map_err(|e| invalid(&e.to_string()))?;
        DataForm::parse(&el)
    }

    #[test]
    fn parses_a_submission() {
        let form = parse(
            "<x xmlns='jabber:x:data' type='submit'>\
               <field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>\
               <field var='accountjids'><value>a@example.org</value><value> </value><value>b@example.org</value></field>\
               <field var='password'><value> s3cret </value></field>\
               <field var='empty'><value/></field>\
             </x>",
        );
        let form = form.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(form.form_type, FormType::Submit);
        assert_eq!(form.form_type_value(), Some("http://jabber.org/protocol/admin"));
        assert_eq!(form.values("accountjids"), ["a@example.org", "b@example.org"]);
        assert_eq!(form.value("password"), Some("s3cret"));
        assert_eq!(form.value("empty"), None);
        assert_eq!(form.value("missing"), None);
        assert!(form.values("missing").is_empty());
    }

    #[test]
    fn rejects_what_cannot_be_read() {
        assert!(matches!(parse("<x xmlns='jabber:x:data'/>"), Err(ProtoError::Invalid { .. })));
        assert!(matches!(parse("<x xmlns='jabber:x:data' type='bogus'/>"), Err(ProtoError::Invalid { .. })));
        assert!(matches!(
            parse("<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>"),
            Err(ProtoError::Invalid { .. })
        ));
        assert!(matches!(parse("<x xmlns='urn:other' type='submit'/>"), Err(ProtoError::Mismatch(_))));
        // A fixed field may go without var; unknown types are text-single.
        let form = parse(
            "<x xmlns='jabber:x:data' type='form'><field type='fixed'><value>Hi</value></field>\
             <field var='a' type='future-type'/></x>",
        );
        let form = form.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(form.fields[1].field_type, Some(FieldType::TextSingle));
    }

    #[test]
    fn roundtrip() {
        let form = DataForm::new(FormType::Form)
            .with_title("Adding a User")
            .with_instructions("Fill out this form to add a user.")
            .with_field(Field::form_type("http://jabber.org/protocol/admin"))
            .with_field(Field::new("accountjid", FieldType::JidSingle, "The Jabber ID").required())
            .with_field(Field {
                options: vec![(Some("25".into()), "25".into()), (None, "none".into())],
                ..Field::new("max_items", FieldType::ListSingle, "Maximum")
            });
        let el = form.to_element();
        let bytes = el.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("<x xmlns='jabber:x:data' type='form'><title>Adding a User</title>"), "{text}");
        assert!(text.contains("<field var='accountjid' type='jid-single' label='The Jabber ID'><required/></field>"));
        assert_eq!(DataForm::parse(&el).ok(), Some(form));
    }
}
