//! Preparation and enforcement of the three JID parts (RFC 7622 §3.2–§3.4).
//!
//! The function names follow the RFC 6122 stringprep profiles they replace,
//! but the rules are those of RFC 7622: PRECIS (RFC 8264/8265) for the
//! localpart and resourcepart, IDNA (here UTS #46) for the domainpart.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, ErrorPolicy, Hyphens, ProcessingSuccess, Uts46};
use precis_core::profile::PrecisFastInvocation;
use precis_core::{Error as PrecisError, UnexpectedError};
use precis_profiles::{OpaqueString, UsernameCaseMapped};

use crate::error::JidError;

/// Maximum length of each JID part in octets, counted after enforcement
/// (RFC 7622 §3.2, §3.3, §3.4).
pub const MAX_PART_OCTETS: usize = 1023;

/// Inputs longer than this are rejected before any Unicode processing.
///
/// Width mapping, case mapping and NFC shrink a localpart or resourcepart by
/// at most a factor of three (a fullwidth letter becomes one ASCII octet; a
/// Hangul L+V+T sequence composes into one syllable), so a longer input can
/// never enforce to 1023 octets or fewer. For the domainpart, UTS #46 may
/// delete "ignored" code points; a domain padded with more than that is
/// rejected too. The cap bounds the work an attacker can cause per part.
const MAX_RAW_PART_OCTETS: usize = 4 * MAX_PART_OCTETS;

/// Maximum length of one DNS label in its A-label (ASCII) form
/// (RFC 1034 §3.1, RFC 5890 §2.3.1).
const MAX_LABEL_OCTETS: usize = 63;

/// Code points that RFC 7622 §3.3.1 prohibits in a localpart although the
/// PRECIS `IdentifierClass` allows them.
const LOCALPART_PROHIBITED: [char; 8] = ['"', '&', '\'', '/', ':', '<', '>', '@'];

/// Enforces the localpart rules of RFC 7622 §3.3: the PRECIS
/// `UsernameCaseMapped` profile (RFC 8265 §3.3: width mapping, case mapping,
/// NFC, the bidi rule), the additional prohibition of `" & ' / : < > @`
/// (§3.3.1) and the length of 1 to 1023 octets after enforcement.
///
/// Returns the enforced form, borrowed when the input already is enforced.
/// Suitable for a SASL username (RFC 6120 §6.3.7) mapped to a localpart.
pub fn nodeprep(localpart: &str) -> Result<Cow<'_, str>, JidError> {
    if localpart.is_empty() {
        return Err(JidError::EmptyLocalpart);
    }
    if localpart.len() > MAX_RAW_PART_OCTETS {
        return Err(JidError::LocalpartTooLong);
    }
    if is_prepared_ascii_localpart(localpart) {
        return Ok(Cow::Borrowed(localpart));
    }
    let enforced = enforce_stable::<UsernameCaseMapped>(localpart)
        .map_err(|error| JidError::InvalidLocalpart { code_point: offending_code_point(&error) })?;
    if let Some(prohibited) = enforced.chars().find(|c| LOCALPART_PROHIBITED.contains(c)) {
        return Err(JidError::InvalidLocalpart { code_point: Some(prohibited) });
    }
    if enforced.is_empty() {
        return Err(JidError::EmptyLocalpart);
    }
    if enforced.len() > MAX_PART_OCTETS {
        return Err(JidError::LocalpartTooLong);
    }
    Ok(enforced)
}

/// Enforces the resourcepart rules of RFC 7622 §3.4: the PRECIS
/// `OpaqueString` profile (RFC 8265 §4.2: non-ASCII spaces mapped to U+0020,
/// NFC) and the length of 1 to 1023 octets after enforcement.
///
/// Returns the enforced form, borrowed when the input already is enforced.
/// Suitable for a resource requested in resource binding (RFC 6120 §7.7).
pub fn resourceprep(resourcepart: &str) -> Result<Cow<'_, str>, JidError> {
    if resourcepart.is_empty() {
        return Err(JidError::EmptyResource);
    }
    if resourcepart.len() > MAX_RAW_PART_OCTETS {
        return Err(JidError::ResourceTooLong);
    }
    if resourcepart.len() <= MAX_PART_OCTETS && resourcepart.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        // Printable ASCII and U+0020 are valid in the FreeformClass and
        // unchanged by OpaqueString's mappings (RFC 8265 §4.2).
        return Ok(Cow::Borrowed(resourcepart));
    }
    let enforced = enforce_stable::<OpaqueString>(resourcepart)
        .map_err(|error| JidError::InvalidResource { code_point: offending_code_point(&error) })?;
    if enforced.is_empty() {
        return Err(JidError::EmptyResource);
    }
    if enforced.len() > MAX_PART_OCTETS {
        return Err(JidError::ResourceTooLong);
    }
    Ok(enforced)
}

/// Enforces the domainpart rules of RFC 7622 §3.2.
///
/// - One trailing dot is stripped before anything else (§3.2).
/// - An IPv4 address (RFC 3986 `IPv4address`) is kept as is.
/// - An IPv6 address in brackets (RFC 3986 `IP-literal`) is kept in its
///   RFC 5952 canonical text form, e.g. `[::1]`. Zone identifiers
///   (RFC 6874) and `IPvFuture` literals are rejected.
/// - Anything else is a domain name: it goes through UTS #46 processing
///   (width and case mapping, NFC, A-labels decoded) with the STD3 ASCII
///   rules and no hyphen in a label's first or last position, and is stored
///   in U-label form so that A-label and U-label spellings compare equal
///   (§3.2.1–§3.2.3). Empty labels and labels longer than 63 octets in
///   A-label form are rejected.
/// - The result is 1 to 1023 octets long.
///
/// Note: the `idna` crate implements UTS #46, which is more permissive than
/// IDNA2008 (RFC 5892) for some symbols (e.g. U+265A BLACK CHESS KING).
pub fn nameprep(domainpart: &str) -> Result<Cow<'_, str>, JidError> {
    let domain = domainpart.strip_suffix('.').unwrap_or(domainpart);
    if domain.is_empty() {
        return Err(JidError::EmptyDomain);
    }
    if domain.len() > MAX_RAW_PART_OCTETS {
        return Err(JidError::DomainTooLong);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        return prepare_ipv6_literal(domain, literal);
    }
    if domain.parse::<Ipv4Addr>().is_ok() {
        return Ok(Cow::Borrowed(domain));
    }
    if is_prepared_ascii_domain(domain) {
        return Ok(Cow::Borrowed(domain));
    }
    prepare_domain_name(domain)
}

/// Validates and canonicalises `[IPv6address]`; `literal` is `domain`
/// without its opening bracket.
fn prepare_ipv6_literal<'a>(domain: &'a str, literal: &str) -> Result<Cow<'a, str>, JidError> {
    let address: Ipv6Addr =
        literal.strip_suffix(']').and_then(|inner| inner.parse().ok()).ok_or(JidError::InvalidDomain)?;
    let canonical = format!("[{address}]");
    if canonical == domain { Ok(Cow::Borrowed(domain)) } else { Ok(Cow::Owned(canonical)) }
}

/// Fast path for the common case, with the same result as the PRECIS
/// enforcement: printable ASCII other than uppercase letters and the
/// characters RFC 7622 §3.3.1 prohibits is valid in the IdentifierClass and
/// left unchanged by UsernameCaseMapped (RFC 8265 §3.3).
fn is_prepared_ascii_localpart(localpart: &str) -> bool {
    localpart.len() <= MAX_PART_OCTETS
        && localpart.bytes().all(|b| {
            (0x21..=0x7e).contains(&b) && !b.is_ascii_uppercase() && !LOCALPART_PROHIBITED.contains(&char::from(b))
        })
}

/// Fast path for lowercase LDH domain names, which UTS #46 leaves as they
/// are: labels of `a-z`, `0-9` and `-`, 1 to 63 octets, no hyphen at either
/// end, and no `xn--` label (those need Punycode validation).
fn is_prepared_ascii_domain(domain: &str) -> bool {
    domain.len() <= MAX_PART_OCTETS
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_OCTETS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && !label.starts_with("xn--")
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Runs UTS #46 ToUnicode on a domain name and checks its labels.
fn prepare_domain_name(domain: &str) -> Result<Cow<'_, str>, JidError> {
    let mut unicode = String::new();
    let mut ascii = String::new();
    let outcome = Uts46::new().process(
        domain.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
        ErrorPolicy::FailFast,
        |_, _, _| true,
        &mut unicode,
        Some(&mut ascii),
    );
    let prepared = match outcome {
        Ok(ProcessingSuccess::Passthrough) => Cow::Borrowed(domain),
        Ok(ProcessingSuccess::WroteToSink) => Cow::Owned(unicode),
        Err(_) => return Err(JidError::InvalidDomain),
    };
    // The ASCII sink only receives output when the Unicode output is not
    // ASCII; otherwise the Unicode output is the ToASCII form as well.
    let ascii_form: &str = if ascii.is_empty() { &prepared } else { &ascii };
    let labels_ok = ascii_form.split('.').all(|label| !label.is_empty() && label.len() <= MAX_LABEL_OCTETS);
    if !labels_ok {
        return Err(JidError::InvalidDomain);
    }
    if prepared.is_empty() {
        return Err(JidError::EmptyDomain);
    }
    if prepared.len() > MAX_PART_OCTETS {
        return Err(JidError::DomainTooLong);
    }
    Ok(prepared)
}

/// Applies a PRECIS profile's enforcement and then checks that the result
/// is itself valid and stable under the profile.
///
/// RFC 8264 §7 applies the string class's code point rules *after* the
/// mappings and normalisation, whereas `precis-profiles` checks them on the
/// input first. A character such as U+0387 GREEK ANO TELEIA passes that
/// check but normalises to U+00B7 MIDDLE DOT, which is only valid in
/// context; enforcing the output again catches this, and guarantees that an
/// enforced part is a fixed point (re-parsing a stored JID gives the same
/// JID).
fn enforce_stable<Profile: PrecisFastInvocation>(input: &str) -> Result<Cow<'_, str>, PrecisError> {
    let enforced = Profile::enforce(input)?;
    let again = Profile::enforce(enforced.as_ref())?;
    if again != enforced {
        return Err(PrecisError::Invalid);
    }
    Ok(enforced)
}

/// Extracts the code point a PRECIS error blames, if any.
fn offending_code_point(error: &PrecisError) -> Option<char> {
    let info = match error {
        PrecisError::BadCodepoint(info) => info,
        PrecisError::Unexpected(
            UnexpectedError::ContextRuleNotApplicable(info) | UnexpectedError::MissingContextRule(info),
        ) => info,
        _ => return None,
    };
    char::from_u32(info.cp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The ASCII fast paths agree with full PRECIS / UTS #46 processing.
    #[test]
    fn ascii_fast_paths_agree_with_full_processing() {
        let alphabet: Vec<char> = (0x20u8..=0x7e).map(char::from).collect();
        let mut inputs: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
        for a in &alphabet {
            for b in ['a', 'Z', '-', '.', '0'] {
                inputs.push(format!("{a}{b}"));
                inputs.push(format!("{b}{a}x"));
            }
        }
        inputs.extend(
            ["xn--mnchen-3ya", "a.xn--mnchen-3ya.de", "-a", "a-", "a..b", "localhost", "example.com"].map(String::from),
        );
        for input in &inputs {
            if is_prepared_ascii_localpart(input) {
                let slow = enforce_stable::<UsernameCaseMapped>(input).unwrap();
                assert_eq!(slow, input.as_str(), "localpart {input:?}");
            }
            if input.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                let slow = enforce_stable::<OpaqueString>(input).unwrap();
                assert_eq!(slow, input.as_str(), "resourcepart {input:?}");
            }
            if is_prepared_ascii_domain(input) {
                assert_eq!(prepare_domain_name(input).unwrap(), input.as_str(), "domain {input:?}");
            }
        }
    }

    #[test]
    fn nodeprep_maps_case_and_width() {
        assert_eq!(nodeprep("Juliet").unwrap(), "juliet");
        assert_eq!(nodeprep("\u{FF2A}\u{FF55}\u{FF4C}").unwrap(), "jul");
        assert!(matches!(nodeprep("juliet").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn nodeprep_rejects_each_prohibited_character() {
        for c in LOCALPART_PROHIBITED {
            let input = format!("a{c}b");
            assert_eq!(nodeprep(&input), Err(JidError::InvalidLocalpart { code_point: Some(c) }), "{input}");
        }
        // FULLWIDTH COMMERCIAL AT width-maps to '@', which is prohibited.
        assert_eq!(nodeprep("a\u{FF20}b"), Err(JidError::InvalidLocalpart { code_point: Some('@') }));
    }

    #[test]
    fn nodeprep_reports_offending_code_point() {
        assert_eq!(nodeprep("foo bar"), Err(JidError::InvalidLocalpart { code_point: Some(' ') }));
    }

    #[test]
    fn resourceprep_maps_non_ascii_space() {
        assert_eq!(resourceprep("foo\u{3000}bar").unwrap(), "foo bar");
        assert!(matches!(resourceprep("foo").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn resourceprep_rejects_controls() {
        assert_eq!(resourceprep("a\u{7}b"), Err(JidError::InvalidResource { code_point: Some('\u{7}') }));
    }

    #[test]
    fn nameprep_ipv6_is_canonicalised() {
        assert_eq!(nameprep("[2001:DB8:0:0::1]").unwrap(), "[2001:db8::1]");
        assert!(matches!(nameprep("[::1]").unwrap(), Cow::Borrowed(_)));
        assert_eq!(nameprep("[::1"), Err(JidError::InvalidDomain));
        assert_eq!(nameprep("[fe80::1%25eth0]"), Err(JidError::InvalidDomain));
        assert_eq!(nameprep("[v1.fe80::a+en1]"), Err(JidError::InvalidDomain));
        assert_eq!(nameprep("[1.2.3.4]"), Err(JidError::InvalidDomain));
    }

    #[test]
    fn nameprep_label_length() {
        let ok = format!("{}.example", "a".repeat(63));
        assert_eq!(nameprep(&ok).unwrap(), ok);
        let too_long = format!("{}.example", "a".repeat(64));
        assert_eq!(nameprep(&too_long), Err(JidError::InvalidDomain));
    }
}
