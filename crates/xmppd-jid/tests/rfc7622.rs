//! RFC 7622 conformance tests, mostly the examples of §3.5.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use xmppd_jid::{BareJid, DomainJid, FullJid, Jid, JidError, nameprep, nodeprep, resourceprep};

fn jid(input: &str) -> Jid {
    match input.parse::<Jid>() {
        Ok(jid) => jid,
        Err(error) => panic!("{input:?} should be valid: {error}"),
    }
}

/// RFC 7622 §3.5, "Examples": every address in the list of valid ones.
#[test]
fn rfc7622_valid_examples() {
    // (input, localpart, domainpart, resourcepart)
    let cases: &[(&str, Option<&str>, &str, Option<&str>)] = &[
        ("juliet@example.com", Some("juliet"), "example.com", None),
        ("juliet@example.com/foo", Some("juliet"), "example.com", Some("foo")),
        ("juliet@example.com/foo bar", Some("juliet"), "example.com", Some("foo bar")),
        ("juliet@example.com/foo@bar", Some("juliet"), "example.com", Some("foo@bar")),
        ("foo\\20bar@example.com", Some("foo\\20bar"), "example.com", None),
        ("fussball@example.com", Some("fussball"), "example.com", None),
        ("fu\u{df}ball@example.com", Some("fu\u{df}ball"), "example.com", None),
        ("\u{3c0}@example.com", Some("\u{3c0}"), "example.com", None),
        ("\u{3a3}@example.com/foo", Some("\u{3c3}"), "example.com", Some("foo")),
        ("\u{3c3}@example.com/foo", Some("\u{3c3}"), "example.com", Some("foo")),
        ("\u{3c2}@example.com/foo", Some("\u{3c2}"), "example.com", Some("foo")),
        ("king@example.com/\u{265a}", Some("king"), "example.com", Some("\u{265a}")),
        ("example.com", None, "example.com", None),
        ("example.com/foobar", None, "example.com", Some("foobar")),
        ("a.example.com/b@example.net", None, "a.example.com", Some("b@example.net")),
    ];
    for &(input, node, domain, resource) in cases {
        let parsed = jid(input);
        assert_eq!(parsed.node(), node, "{input}");
        assert_eq!(parsed.domain(), domain, "{input}");
        assert_eq!(parsed.resource(), resource, "{input}");
        assert_eq!(parsed.is_full(), resource.is_some(), "{input}");
    }
}

/// RFC 7622 §3.5: "fussball" and "fußball" are different localparts, and
/// GREEK CAPITAL LETTER SIGMA maps to the small sigma but not to the final
/// sigma.
#[test]
fn rfc7622_example_equivalences() {
    assert_ne!(jid("fussball@example.com"), jid("fu\u{df}ball@example.com"));
    assert_eq!(jid("\u{3a3}@example.com/foo"), jid("\u{3c3}@example.com/foo"));
    assert_ne!(jid("\u{3c3}@example.com/foo"), jid("\u{3c2}@example.com/foo"));
}

/// RFC 7622 §3.5: the list of invalid addresses, with the precise reason.
#[test]
fn rfc7622_invalid_examples() {
    let cases: &[(&str, JidError)] = &[
        ("\"juliet\"@example.com", JidError::InvalidLocalpart { code_point: Some('"') }),
        ("foo bar@example.com", JidError::InvalidLocalpart { code_point: Some(' ') }),
        ("juliet@example.com/", JidError::EmptyResource),
        ("@example.com/", JidError::EmptyLocalpart),
        ("henry\u{2163}@example.com", JidError::InvalidLocalpart { code_point: Some('\u{2163}') }),
        ("\u{265a}@example.com", JidError::InvalidLocalpart { code_point: Some('\u{265a}') }),
        ("juliet@", JidError::EmptyDomain),
        ("/foobar", JidError::EmptyDomain),
    ];
    for (input, expected) in cases {
        assert_eq!(input.parse::<Jid>().unwrap_err(), *expected, "{input}");
    }
}

#[test]
fn empty_and_degenerate_inputs() {
    assert_eq!("".parse::<Jid>().unwrap_err(), JidError::EmptyDomain);
    assert_eq!("@".parse::<Jid>().unwrap_err(), JidError::EmptyLocalpart);
    assert_eq!("/".parse::<Jid>().unwrap_err(), JidError::EmptyDomain);
    assert_eq!(".".parse::<Jid>().unwrap_err(), JidError::EmptyDomain);
    assert_eq!("a@.".parse::<Jid>().unwrap_err(), JidError::EmptyDomain);
    assert_eq!("a@b@c".parse::<Jid>().unwrap_err(), JidError::InvalidDomain);
    assert_eq!("a@example.com/b/c".parse::<Jid>().unwrap().resource(), Some("b/c"));
}

/// RFC 7622 §3.3.2: the localpart is case-mapped; the domainpart is
/// lower-cased (§3.2.2); the resourcepart keeps its case (§3.4.2).
#[test]
fn case_mapping() {
    assert_eq!(jid("Juliet@Example.COM"), jid("juliet@example.com"));
    assert_eq!(jid("Juliet@Example.COM").as_str(), "juliet@example.com");
    assert_eq!(jid("JULIET@EXAMPLE.COM/Balcony").resource(), Some("Balcony"));
    assert_ne!(jid("juliet@example.com/Balcony"), jid("juliet@example.com/balcony"));
}

/// RFC 8265 §3.3.2 step 1: fullwidth and halfwidth characters in the
/// localpart are mapped to their decomposition; UTS #46 does the same for
/// the domainpart.
#[test]
fn width_mapping() {
    let fullwidth = "\u{ff2a}\u{ff55}\u{ff4c}\u{ff49}\u{ff45}\u{ff54}@example\u{ff0e}\u{ff43}\u{ff4f}\u{ff4d}";
    assert_eq!(jid(fullwidth).as_str(), "juliet@example.com");
    assert_eq!(nodeprep("\u{ff41}\u{ff42}").unwrap(), "ab");
    // The resourcepart (OpaqueString) does not width-map, but it does map
    // non-ASCII spaces to U+0020 (RFC 8265 §4.2.2).
    assert_eq!(jid("a@example.com/\u{ff41}\u{3000}b").resource(), Some("\u{ff41} b"));
}

/// RFC 7622 §3.3.1 and §8.3 (confusables): visually similar characters from
/// different scripts are different addresses; enforcement does not fold
/// them.
#[test]
fn confusables_are_distinct() {
    let latin = jid("paypal@example.com");
    let cyrillic_a = jid("p\u{430}ypal@example.com");
    assert_ne!(latin, cyrillic_a);
    let omicron = jid("\u{3bf}@example.com");
    assert_ne!(jid("o@example.com"), omicron);
    // U+2126 OHM SIGN changes under NFKC casefolding ("Unstable", RFC 8264
    // §9.3), so IdentifierClass disallows it rather than mapping it to omega.
    assert_eq!(
        "\u{2126}@example.com".parse::<Jid>().unwrap_err(),
        JidError::InvalidLocalpart { code_point: Some('\u{2126}') }
    );
}

/// RFC 7622 §3.2, §3.3, §3.4: each part is at most 1023 octets, counted after
/// enforcement.
#[test]
fn length_limits() {
    let max = "a".repeat(1023);
    let over = "a".repeat(1024);
    assert_eq!(jid(&format!("{max}@example.com")).node(), Some(max.as_str()));
    assert_eq!(format!("{over}@example.com").parse::<Jid>().unwrap_err(), JidError::LocalpartTooLong);
    assert_eq!(jid(&format!("a@example.com/{max}")).resource(), Some(max.as_str()));
    assert_eq!(format!("a@example.com/{over}").parse::<Jid>().unwrap_err(), JidError::ResourceTooLong);

    // 1023 fullwidth letters (3069 octets) enforce to 1023 octets.
    let wide = "\u{ff41}".repeat(1023);
    assert_eq!(jid(&format!("{wide}@example.com")).node(), Some(max.as_str()));
    // Multi-octet characters count in octets, not characters.
    let two_octets = "\u{e9}".repeat(512);
    assert_eq!(format!("{two_octets}@example.com").parse::<Jid>().unwrap_err(), JidError::LocalpartTooLong);

    // 16 labels of 63 octets and 15 dots: 1023 octets.
    let label = "a".repeat(63);
    let longest_domain = vec![label.as_str(); 16].join(".");
    assert_eq!(longest_domain.len(), 1023);
    assert_eq!(jid(&longest_domain).domain(), longest_domain);
    assert_eq!(jid(&format!("{longest_domain}.")).domain(), longest_domain);
    let mut labels = vec![label.as_str(); 15];
    labels.push(&label[..31]);
    labels.push(&label[..32]);
    let too_long_domain = labels.join(".");
    assert_eq!(too_long_domain.len(), 1024);
    assert_eq!(too_long_domain.parse::<Jid>().unwrap_err(), JidError::DomainTooLong);

    // Huge inputs fail fast and without panicking.
    let huge = "a".repeat(1 << 20);
    assert_eq!(format!("{huge}@example.com").parse::<Jid>().unwrap_err(), JidError::LocalpartTooLong);
    assert_eq!(huge.parse::<Jid>().unwrap_err(), JidError::DomainTooLong);
    assert_eq!(format!("a@example.com/{huge}").parse::<Jid>().unwrap_err(), JidError::ResourceTooLong);
}

/// RFC 7622 §3.2: an IPv4 address or a bracketed IPv6 address may be the
/// domainpart.
#[test]
fn ip_literal_domains() {
    let v4 = jid("juliet@192.0.2.1/balcony");
    assert_eq!(v4.domain(), "192.0.2.1");
    assert_eq!(v4.node(), Some("juliet"));

    let v6 = jid("juliet@[2001:DB8::1]/balcony");
    assert_eq!(v6.domain(), "[2001:db8::1]");
    assert_eq!(v6.resource(), Some("balcony"));
    assert_eq!(v6, jid("juliet@[2001:db8:0:0:0:0:0:1]/balcony"));
    assert_eq!(jid("[::1]").domain(), "[::1]");
    assert_eq!(jid("[::ffff:192.0.2.1]").domain(), "[::ffff:192.0.2.1]");

    for invalid in ["juliet@[::1", "juliet@::1", "[::1]x", "[2001:db8::g]", "[]"] {
        assert_eq!(invalid.parse::<Jid>().unwrap_err(), JidError::InvalidDomain, "{invalid}");
    }
}

/// RFC 7622 §3.2: one trailing dot is stripped before anything else.
#[test]
fn trailing_dot() {
    assert_eq!(jid("juliet@example.com./foo"), jid("juliet@example.com/foo"));
    assert_eq!(jid("example.com.").as_str(), "example.com");
    assert_eq!(jid("192.0.2.1.").domain(), "192.0.2.1");
    assert_eq!("example.com..".parse::<Jid>().unwrap_err(), JidError::InvalidDomain);
    assert_eq!("a..example.com".parse::<Jid>().unwrap_err(), JidError::InvalidDomain);
    assert_eq!(".example.com".parse::<Jid>().unwrap_err(), JidError::InvalidDomain);
}

/// RFC 7622 §3.2.1: A-labels are converted to U-labels, so both spellings
/// are the same address.
#[test]
fn a_label_equals_u_label() {
    let a_label = jid("juliet@xn--mnchen-3ya.example/foo");
    let u_label = jid("juliet@m\u{fc}nchen.example/foo");
    assert_eq!(a_label, u_label);
    assert_eq!(a_label.domain(), "m\u{fc}nchen.example");
    assert_eq!(jid("XN--MNCHEN-3YA.example"), jid("M\u{dc}NCHEN.example"));
    let mut set = HashSet::new();
    set.insert(a_label);
    assert!(set.contains(&u_label));
}

#[test]
fn invalid_domain_names() {
    for invalid in [
        "exa mple.com",
        "exa_mple.com",
        "-example.com",
        "example-.com",
        "exa\u{ff0f}mple.com",
        "exa\u{0}mple.com",
        "xn--a.example",
        "a@b:5222",
    ] {
        assert_eq!(invalid.parse::<Jid>().unwrap_err(), JidError::InvalidDomain, "{invalid:?}");
    }
    assert_eq!(format!("{}.example", "a".repeat(64)).parse::<Jid>().unwrap_err(), JidError::InvalidDomain);
}

#[test]
fn typed_parsing() {
    assert_eq!("juliet@example.com/foo".parse::<BareJid>().unwrap_err(), JidError::UnexpectedResource);
    assert_eq!("juliet@example.com".parse::<FullJid>().unwrap_err(), JidError::MissingResource);
    assert_eq!("juliet@example.com".parse::<DomainJid>().unwrap_err(), JidError::UnexpectedLocalpart);
    assert_eq!("example.com/foo".parse::<DomainJid>().unwrap_err(), JidError::UnexpectedResource);

    let full = FullJid::try_from("Juliet@Example.com/Foo").unwrap();
    assert_eq!(full.as_str(), "juliet@example.com/Foo");
    assert_eq!(full.node(), Some("juliet"));
    assert_eq!(full.domain(), "example.com");
    assert_eq!(full.resource(), "Foo");
    assert_eq!(full.bare_str(), "juliet@example.com");

    let bare = BareJid::try_from("Juliet@Example.com").unwrap();
    assert_eq!(bare.node(), Some("juliet"));
    assert_eq!(bare.domain(), "example.com");
    assert!(!bare.is_domain());

    let domain = DomainJid::try_from(String::from("Example.com.")).unwrap();
    assert_eq!(domain.as_str(), "example.com");
    assert_eq!(domain.domain(), "example.com");
    assert_eq!(domain.node(), None);
    assert_eq!(domain.resource(), None);
}

#[test]
fn conversions() {
    let full: FullJid = "juliet@example.com/balcony".parse().unwrap();
    let bare = full.to_bare();
    assert_eq!(bare.as_str(), "juliet@example.com");
    assert_eq!(bare.node(), Some("juliet"));
    assert_eq!(full.to_domain_jid().as_str(), "example.com");

    let jid = Jid::from(full.clone());
    assert_eq!(jid, full);
    assert_eq!(jid.to_bare(), bare);
    assert_eq!(jid.bare_str(), "juliet@example.com");
    assert_eq!(jid.as_full(), Some(&full));
    assert_eq!(jid.as_bare(), None);
    assert_eq!(jid.clone().try_into_full().unwrap(), full);
    assert_eq!(FullJid::try_from(jid.clone()).unwrap(), full);
    assert_eq!(BareJid::try_from(jid).unwrap_err(), JidError::UnexpectedResource);

    let bare_jid = Jid::from(bare.clone());
    assert!(bare_jid.is_bare());
    assert_eq!(bare_jid.clone().try_into_full().unwrap_err(), bare);
    assert_eq!(FullJid::try_from(bare_jid.clone()).unwrap_err(), JidError::MissingResource);
    assert_eq!(BareJid::try_from(bare_jid).unwrap(), bare);

    let with = bare.with_resource("orchard\u{3000}tree").unwrap();
    assert_eq!(with.as_str(), "juliet@example.com/orchard tree");
    assert_eq!(with.resource(), "orchard tree");
    assert_eq!(with.node(), Some("juliet"));
    assert_eq!(with.domain(), "example.com");
    assert_eq!(bare.with_resource("").unwrap_err(), JidError::EmptyResource);

    let domain: DomainJid = "example.com".parse().unwrap();
    let domain_bare = BareJid::from(domain.clone());
    assert!(domain_bare.is_domain());
    assert_eq!(domain_bare, domain);
    assert_eq!(DomainJid::try_from(domain_bare).unwrap(), domain);
    assert_eq!(DomainJid::try_from(bare).unwrap_err(), JidError::UnexpectedLocalpart);
    assert_eq!(Jid::from(domain.clone()).as_str(), "example.com");
    let component_full = domain.with_resource("r").unwrap();
    assert_eq!(component_full.as_str(), "example.com/r");
    assert_eq!(component_full.node(), None);
    assert_eq!(component_full.domain(), "example.com");
}

#[test]
fn from_parts() {
    let bare = BareJid::from_parts(Some("Juliet"), "Example.com.").unwrap();
    assert_eq!(bare.as_str(), "juliet@example.com");
    assert_eq!(BareJid::from_parts(None, "example.com").unwrap().as_str(), "example.com");
    // A part that contains a separator is rejected, not re-parsed.
    assert_eq!(
        BareJid::from_parts(Some("a@b"), "example.com").unwrap_err(),
        JidError::InvalidLocalpart { code_point: Some('@') }
    );
    assert_eq!(BareJid::from_parts(Some("a"), "example.com/x").unwrap_err(), JidError::InvalidDomain);
    assert_eq!(BareJid::from_parts(Some(""), "example.com").unwrap_err(), JidError::EmptyLocalpart);
    let full = FullJid::from_parts(None, "example.com", "a/b").unwrap();
    assert_eq!(full.resource(), "a/b");
    assert_eq!(full.as_str(), "example.com/a/b");
    let jid = Jid::from_parts(Some("x"), "example.com", None).unwrap();
    assert!(jid.is_bare());
}

#[test]
fn ordering_hashing_and_formatting() {
    let mut set = HashSet::new();
    set.insert(jid("Juliet@Example.COM"));
    set.insert(jid("juliet@example.com"));
    set.insert(jid("juliet@example.com."));
    assert_eq!(set.len(), 1);

    let mut list = [jid("b@example.com"), jid("A@example.com"), jid("example.com")];
    list.sort();
    let texts: Vec<&str> = list.iter().map(Jid::as_str).collect();
    assert_eq!(texts, ["a@example.com", "b@example.com", "example.com"]);

    let full: FullJid = "juliet@example.com/foo".parse().unwrap();
    assert_eq!(full.to_string(), "juliet@example.com/foo");
    assert_eq!(format!("{full:?}"), "FullJid(\"juliet@example.com/foo\")");
    assert_eq!(full.as_ref(), "juliet@example.com/foo");
}

/// RFC 8264 §7: the code point rules apply after normalisation. U+0387 GREEK
/// ANO TELEIA normalises to U+00B7 MIDDLE DOT, which is valid only between
/// two "l" (RFC 5892 Appendix A.3).
#[test]
fn code_point_rules_apply_after_normalisation() {
    assert!(matches!("a@example.com/\u{387}".parse::<Jid>(), Err(JidError::InvalidResource { .. })));
    assert_eq!(jid("a@example.com/l\u{387}l").resource(), Some("l\u{b7}l"));
}

#[test]
fn part_functions() {
    assert_eq!(nodeprep("Juliet").unwrap(), "juliet");
    assert_eq!(nodeprep("").unwrap_err(), JidError::EmptyLocalpart);
    assert_eq!(resourceprep("Foo Bar").unwrap(), "Foo Bar");
    assert_eq!(resourceprep("").unwrap_err(), JidError::EmptyResource);
    assert_eq!(nameprep("Example.COM.").unwrap(), "example.com");
    assert_eq!(nameprep("").unwrap_err(), JidError::EmptyDomain);
    assert_eq!(nameprep("xn--mnchen-3ya.example").unwrap(), "m\u{fc}nchen.example");
}

#[test]
fn error_messages_name_the_code_point() {
    let error = "\u{265a}@example.com".parse::<Jid>().unwrap_err();
    assert_eq!(error.to_string(), "invalid localpart (code point U+265A)");
    assert_eq!(JidError::EmptyDomain.to_string(), "domainpart is empty");
}
