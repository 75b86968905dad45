//! Node configuration as a XEP-0004 data form
//! (`http://jabber.org/protocol/pubsub#node_config`, XEP-0060 §16.4.3),
//! converted to and from the storage's [`NodeConfig`].
//!
//! Used by node configuration (XEP-0060 §8.2), node creation with options
//! (§8.1.3), publish-options preconditions (§7.1.5) and XEP-0227 imports.

use xmppd_proto::data_form::{DataForm, Field, FieldType, FormType};
use xmppd_storage::{AccessModel, NodeConfig, PublishModel, SendLastPublished};

use crate::PubsubError;

/// XEP-0060 §16.4.3: the `FORM_TYPE` of node configuration forms.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";

/// XEP-0060 §7.1.5: the `FORM_TYPE` of publish-options.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// The form of `config` (type `form` for a configuration request, XEP-0060
/// §8.2.1; type `submit` for an export).
pub fn to_form(config: &NodeConfig, form_type: FormType) -> DataForm {
    let boolean = |var: &str, label: &str, value: bool| {
        Field::new(var, FieldType::Boolean, label).with_value(if value { "1" } else { "0" })
    };
    let list = |var: &str, label: &str, value: &str, options: &[&str]| {
        let mut field = Field::new(var, FieldType::ListSingle, label).with_value(value);
        field.options = options.iter().map(|option| (None, (*option).to_owned())).collect();
        field
    };
    let max_items = config.max_items.map_or_else(|| "max".to_owned(), |max| max.to_string());
    let mut form = DataForm::new(form_type)
        .with_field(Field::form_type(NODE_CONFIG))
        .with_field(
            Field::new("pubsub#title", FieldType::TextSingle, "A friendly name for the node")
                .with_values(config.title.as_deref()),
        )
        .with_field(
            Field::new("pubsub#description", FieldType::TextSingle, "A description of the node")
                .with_values(config.description.as_deref()),
        )
        .with_field(
            Field::new("pubsub#type", FieldType::TextSingle, "The type of node data, usually its namespace")
                .with_values(config.payload_type.as_deref()),
        )
        .with_field(list(
            "pubsub#access_model",
            "Who may subscribe and retrieve items",
            config.access_model.as_str(),
            &["open", "presence", "roster", "whitelist"],
        ))
        .with_field(
            Field::new("pubsub#roster_groups_allowed", FieldType::ListMulti, "Roster groups allowed to subscribe")
                .with_values(&config.roster_groups_allowed),
        )
        .with_field(list(
            "pubsub#publish_model",
            "Who may publish items",
            config.publish_model.as_str(),
            &["publishers", "subscribers", "open"],
        ))
        .with_field(
            Field::new("pubsub#max_items", FieldType::TextSingle, "Max # of items to persist").with_value(&max_items),
        )
        .with_field(boolean("pubsub#persist_items", "Persist items to storage", config.persist_items))
        .with_field(list(
            "pubsub#send_last_published_item",
            "When to send the last published item",
            config.send_last_published_item.as_str(),
            &["never", "on_sub", "on_sub_and_presence"],
        ))
        .with_field(boolean(
            "pubsub#deliver_notifications",
            "Deliver event notifications",
            config.deliver_notifications,
        ))
        .with_field(boolean(
            "pubsub#deliver_payloads",
            "Deliver payloads with event notifications",
            config.deliver_payloads,
        ))
        .with_field(boolean(
            "pubsub#notify_retract",
            "Notify subscribers when items are removed",
            config.notify_retract,
        ))
        .with_field(boolean(
            "pubsub#notify_delete",
            "Notify subscribers when the node is deleted",
            config.notify_delete,
        ))
        .with_field(boolean(
            "pubsub#notify_config",
            "Notify subscribers when the configuration changes",
            config.notify_config,
        ));
    if form_type == FormType::Submit {
        // A submitted form carries values only (XEP-0004 §3.1).
        for field in &mut form.fields {
            field.label = None;
            field.options.clear();
            if field.var.as_deref() != Some(xmppd_proto::data_form::FORM_TYPE) {
                field.field_type = None;
            }
        }
    }
    form
}

/// How a form is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// An unknown field or a bad value is an error (configuration and
    /// creation requests, XEP-0060 §8.2.5.3).
    Strict,
    /// Unknown fields are skipped (XEP-0227 §4.10.1: "importers SHOULD
    /// ignore node configuration options that the target server
    /// implementation doesn't recognise"); bad values are still errors.
    IgnoreUnknown,
}

/// `base` with the fields of a submitted configuration form applied.
/// `max_items_limit` caps `pubsub#max_items` (`max` becomes `None`, the
/// node's own ceiling being enforced by the service).
pub fn apply_form(
    base: &NodeConfig,
    form: &DataForm,
    max_items_limit: u32,
    strictness: Strictness,
) -> Result<NodeConfig, PubsubError> {
    let mut config = base.clone();
    for field in &form.fields {
        let Some(var) = field.var.as_deref() else { continue };
        let value = field.value().unwrap_or_default();
        let invalid = || PubsubError::InvalidOption { var: var.to_owned(), value: value.to_owned() };
        match var {
            xmppd_proto::data_form::FORM_TYPE => {}
            "pubsub#title" => config.title = non_empty(value),
            "pubsub#description" => config.description = non_empty(value),
            "pubsub#type" => config.payload_type = non_empty(value),
            "pubsub#access_model" => config.access_model = AccessModel::parse(value).ok_or_else(invalid)?,
            "pubsub#roster_groups_allowed" => {
                config.roster_groups_allowed = field.values.iter().filter(|group| !group.is_empty()).cloned().collect();
            }
            "pubsub#publish_model" => config.publish_model = PublishModel::parse(value).ok_or_else(invalid)?,
            "pubsub#max_items" => config.max_items = parse_max_items(value, max_items_limit).ok_or_else(invalid)?,
            "pubsub#persist_items" => config.persist_items = parse_bool(value).ok_or_else(invalid)?,
            "pubsub#send_last_published_item" => {
                config.send_last_published_item = SendLastPublished::parse(value).ok_or_else(invalid)?;
            }
            "pubsub#deliver_notifications" => config.deliver_notifications = parse_bool(value).ok_or_else(invalid)?,
            "pubsub#deliver_payloads" => config.deliver_payloads = parse_bool(value).ok_or_else(invalid)?,
            "pubsub#notify_retract" => config.notify_retract = parse_bool(value).ok_or_else(invalid)?,
            "pubsub#notify_delete" => config.notify_delete = parse_bool(value).ok_or_else(invalid)?,
            "pubsub#notify_config" => config.notify_config = parse_bool(value).ok_or_else(invalid)?,
            // Accepted and ignored: options every PEP node has with one
            // fixed value here.
            "pubsub#notify_sub"
            | "pubsub#presence_based_delivery"
            | "pubsub#subscribe"
            | "pubsub#itemreply"
            | "pubsub#notification_type"
            | "pubsub#purge_offline"
            | "pubsub#node_type"
            | "pubsub#children"
            | "pubsub#collection"
            | "pubsub#body_xslt"
            | "pubsub#dataform_xslt"
            | "pubsub#language"
            | "pubsub#max_payload_size"
            | "pubsub#item_expire"
            | "pubsub#replyto"
            | "pubsub#replyroom"
            | "pubsub#contact"
            | "pubsub#show_values" => {}
            _ if strictness == Strictness::IgnoreUnknown => {}
            _ => return Err(PubsubError::UnknownOption(var.to_owned())),
        }
    }
    Ok(config)
}

/// XEP-0060 §7.1.5: whether every publish-option equals the node's
/// configuration. `pubsub#max_items=max` matches a node whose limit is
/// `max`; Prosody and ejabberd compare the same way. Unknown options never
/// match (the precondition cannot be shown to hold).
pub fn preconditions_hold(config: &NodeConfig, options: &DataForm, max_items_limit: u32) -> bool {
    let sorted = |config: &NodeConfig| {
        let mut config = config.clone();
        config.roster_groups_allowed.sort();
        config
    };
    match apply_form(config, options, max_items_limit, Strictness::Strict) {
        // Roster groups are a set: their order does not matter.
        Ok(wanted) => sorted(&wanted) == sorted(config),
        Err(_) => false,
    }
}

/// XEP-0004 §3.3 boolean: `0`, `1`, `false`, `true`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `pubsub#max_items`: a positive count up to `limit`, or `max`
/// (XEP-0060 §16.4.3, as revised in 1.15.0). Larger counts are refused.
fn parse_max_items(value: &str, limit: u32) -> Option<Option<u32>> {
    if value == "max" {
        return Some(None);
    }
    let count: u32 = value.parse().ok()?;
    (1..=limit).contains(&count).then_some(Some(count))
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(fields: &[(&str, &str)]) -> DataForm {
        let mut form = DataForm::new(FormType::Submit).with_field(Field::form_type(NODE_CONFIG));
        for (var, value) in fields {
            form = form.with_field(Field { var: Some((*var).to_owned()), ..Field::default() }.with_value(value));
        }
        form
    }

    #[test]
    fn form_round_trips() {
        let config = NodeConfig {
            access_model: AccessModel::Roster,
            max_items: None,
            roster_groups_allowed: vec!["Friends".into(), "Work".into()],
            title: Some("Bookmarks".into()),
            notify_config: true,
            ..NodeConfig::default()
        };
        for form_type in [FormType::Form, FormType::Submit] {
            let form = to_form(&config, form_type);
            let parsed = DataForm::parse(&form.to_element()).expect("our own form parses");
            let applied = apply_form(&NodeConfig::default(), &parsed, 1000, Strictness::Strict);
            assert_eq!(applied.ok(), Some(config.clone()), "{form_type:?}");
        }
    }

    #[test]
    fn values_are_checked() {
        let base = NodeConfig::default();
        let applied = apply_form(
            &base,
            &submit(&[("pubsub#max_items", "10"), ("pubsub#persist_items", "true")]),
            100,
            Strictness::Strict,
        );
        assert_eq!(applied.ok().map(|c| c.max_items), Some(Some(10)));
        for (var, value) in [
            ("pubsub#access_model", "friends"),
            ("pubsub#max_items", "0"),
            ("pubsub#max_items", "101"),
            ("pubsub#max_items", "-1"),
            ("pubsub#persist_items", "yes"),
        ] {
            let result = apply_form(&base, &submit(&[(var, value)]), 100, Strictness::IgnoreUnknown);
            assert!(matches!(result, Err(PubsubError::InvalidOption { .. })), "{var}={value}: {result:?}");
        }
        let unknown = submit(&[("x-custom#thing", "1")]);
        assert!(matches!(apply_form(&base, &unknown, 100, Strictness::Strict), Err(PubsubError::UnknownOption(_))));
        assert_eq!(apply_form(&base, &unknown, 100, Strictness::IgnoreUnknown).ok(), Some(base));
    }

    #[test]
    fn preconditions() {
        let open_max = NodeConfig { access_model: AccessModel::Open, max_items: None, ..NodeConfig::default() };
        let options = submit(&[("pubsub#access_model", "open"), ("pubsub#max_items", "max")]);
        assert!(preconditions_hold(&open_max, &options, 1000));
        assert!(!preconditions_hold(&NodeConfig::default(), &options, 1000));
        let whitelist = submit(&[("pubsub#access_model", "whitelist")]);
        assert!(!preconditions_hold(&open_max, &whitelist, 1000));
        assert!(preconditions_hold(&open_max, &submit(&[]), 1000));
    }
}
