//! Mail templates, English and Romanian, compiled in from
//! `templates/{en,ro}/<name>.txt`. A file is `Subject: ...`, a blank line,
//! then the plain-text body. `{name}` is replaced by the value of `name`
//! (`{{` and `}}` are literal braces). Rendering fails on a placeholder the
//! template does not declare, on a declared variable without a value, on a
//! value the template does not declare, and on control characters that
//! would break the mail (any in the subject; any but newline and tab in the
//! body).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::MailError;

/// The language a mail is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Ro,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Ro];

    /// ISO 639-1 code, as stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ro => "ro",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(code.trim()))
    }
}

/// The mails qcert sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// 45 days before expiry: renew by the deadline.
    RenewalReminder,
    /// 15 days before expiry (no renewal ordered): the last reminder.
    LastRenewalReminder,
    /// An order was placed; next step: pay it (price and payment link).
    OrderReceived,
    /// The payment arrived; next: the identity check within 24 hours.
    PaymentReceived,
    /// TOKEN: the identity check succeeded; next: upload the CSR.
    IdentityApproved,
    /// The identity check failed or was interrupted; link to resume it.
    IdentityRejected,
    /// CLOUD: link to enrol the authenticator the holder signs with.
    AuthenticatorInvitation,
    /// TOKEN: link to fetch the revocation password, PIN and PUK with the
    /// generation code from the kit envelope.
    SecretDelivery,
    /// CLOUD: link to fetch the revocation password with the generation
    /// code an RA officer gives.
    CloudSecretDelivery,
    /// The certificate was issued; link to download it.
    CertificateIssued,
    /// The certificate was revoked: when, why, by which channel.
    CertificateRevoked,
    /// A renewal was ordered; next: pay it (price and payment link).
    RenewalOrdered,
    /// The renewal's payment arrived; the new certificate follows on its day.
    RenewalPaid,
    /// A paid renewal was cancelled; the payment is refunded.
    RenewalCancelled,
}

impl Template {
    pub const ALL: [Template; 14] = [
        Template::RenewalReminder,
        Template::LastRenewalReminder,
        Template::OrderReceived,
        Template::PaymentReceived,
        Template::IdentityApproved,
        Template::IdentityRejected,
        Template::AuthenticatorInvitation,
        Template::SecretDelivery,
        Template::CloudSecretDelivery,
        Template::CertificateIssued,
        Template::CertificateRevoked,
        Template::RenewalOrdered,
        Template::RenewalPaid,
        Template::RenewalCancelled,
    ];

    /// Variables that are dates: given in RFC 3339, written as people
    /// write them in the mail's language ([`long_date`]).
    pub const DATE_VARIABLES: [&'static str; 3] = ["not_after", "deadline", "issue_at"];

    /// The file name (without `.txt`), also stored as the outbox row's kind.
    pub fn name(self) -> &'static str {
        match self {
            Template::RenewalReminder => "renewal-reminder",
            Template::LastRenewalReminder => "renewal-reminder-last",
            Template::OrderReceived => "order-received",
            Template::PaymentReceived => "payment-received",
            Template::IdentityApproved => "identity-approved",
            Template::IdentityRejected => "identity-rejected",
            Template::AuthenticatorInvitation => "authenticator-invitation",
            Template::SecretDelivery => "secret-delivery",
            Template::CloudSecretDelivery => "secret-delivery-cloud",
            Template::CertificateIssued => "certificate-issued",
            Template::CertificateRevoked => "certificate-revoked",
            Template::RenewalOrdered => "renewal-ordered",
            Template::RenewalPaid => "renewal-paid",
            Template::RenewalCancelled => "renewal-cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The variables the template takes, in every language; exactly these
    /// must be given to [`render`].
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Template::RenewalReminder | Template::LastRenewalReminder => {
                &["given_name", "serial", "not_after", "deadline", "renewal_url"]
            }
            Template::OrderReceived => &["given_name", "order_id", "order_url", "price", "payment_url"],
            Template::PaymentReceived => &["given_name", "order_id", "order_url"],
            Template::IdentityApproved => &["given_name", "order_id", "csr_url"],
            Template::IdentityRejected => &["given_name", "reason", "resume_url"],
            Template::AuthenticatorInvitation => &["given_name", "order_id", "enrol_url"],
            Template::SecretDelivery | Template::CloudSecretDelivery => &["given_name", "delivery_url"],
            Template::CertificateIssued => &["given_name", "serial", "not_after", "certificate_url"],
            Template::CertificateRevoked => &["given_name", "serial", "revoked_at", "reason", "channel"],
            Template::RenewalOrdered => &["given_name", "serial", "issue_at", "price", "payment_url", "renewal_url"],
            Template::RenewalPaid => &["given_name", "serial", "issue_at", "renewal_url"],
            Template::RenewalCancelled => &["given_name", "serial", "order_form_url"],
        }
    }

    fn source(self, language: Language) -> &'static str {
        macro_rules! pick {
            ($name:literal) => {
                match language {
                    Language::En => include_str!(concat!("../templates/en/", $name, ".txt")),
                    Language::Ro => include_str!(concat!("../templates/ro/", $name, ".txt")),
                }
            };
        }
        match self {
            Template::RenewalReminder => pick!("renewal-reminder"),
            Template::LastRenewalReminder => pick!("renewal-reminder-last"),
            Template::OrderReceived => pick!("order-received"),
            Template::PaymentReceived => pick!("payment-received"),
            Template::IdentityApproved => pick!("identity-approved"),
            Template::IdentityRejected => pick!("identity-rejected"),
            Template::AuthenticatorInvitation => pick!("authenticator-invitation"),
            Template::SecretDelivery => pick!("secret-delivery"),
            Template::CloudSecretDelivery => pick!("secret-delivery-cloud"),
            Template::CertificateIssued => pick!("certificate-issued"),
            Template::CertificateRevoked => pick!("certificate-revoked"),
            Template::RenewalOrdered => pick!("renewal-ordered"),
            Template::RenewalPaid => pick!("renewal-paid"),
            Template::RenewalCancelled => pick!("renewal-cancelled"),
        }
    }
}

/// A rendered mail: one-line subject and plain-text body (UTF-8, `\n` line ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Fill `template` in `language` with `vars`.
pub fn render(template: Template, language: Language, vars: &BTreeMap<String, String>) -> Result<Rendered, MailError> {
    let fail = |why: String| MailError::Template { template: template.name(), language: language.as_str(), why };
    let declared = template.variables();
    if let Some(extra) = vars.keys().find(|k| !declared.contains(&k.as_str())) {
        return Err(fail(format!("value given for {extra:?}, which the template does not take")));
    }
    if let Some(missing) = declared.iter().find(|d| !vars.contains_key(**d)) {
        return Err(fail(format!("no value for {{{missing}}}")));
    }
    let (subject, body) = split(template.source(language)).map_err(|why| fail(why.to_owned()))?;
    let subject = fill(subject, declared, vars).map_err(&fail)?;
    let body = fill(body, declared, vars).map_err(&fail)?;
    if subject.trim().is_empty() || subject.chars().any(char::is_control) {
        return Err(fail("the subject is empty or holds control characters (a value with a line break?)".into()));
    }
    if body.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(fail("the body holds control characters".into()));
    }
    Ok(Rendered { subject, body })
}

/// `Subject: <line>\n\n<body>` -> (subject, body).
fn split(source: &str) -> Result<(&str, &str), &'static str> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let rest = source.strip_prefix("Subject: ").ok_or("the file does not start with \"Subject: \"")?;
    let (subject, body) = rest.split_once('\n').ok_or("no body")?;
    let body = body.strip_prefix('\n').ok_or("no blank line after the subject")?;
    Ok((subject.trim_end_matches('\r'), body))
}

fn fill(text: &str, declared: &[&str], vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err("a lone '}' (write '}}' for a brace)".into()),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' => name.push(c),
                        _ => return Err(format!("a '{{' not closed by a placeholder name after {{{name}")),
                    }
                }
                if !declared.contains(&name.as_str()) {
                    return Err(format!("unknown placeholder {{{name}}}"));
                }
                let value = vars.get(&name).ok_or_else(|| format!("no value for {{{name}}}"))?;
                out.push_str(value);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A date as people write it, in UTC: `2 December 2028` / `2 decembrie 2028`.
pub fn long_date(t: time::OffsetDateTime, language: Language) -> String {
    qcert_ca_core::clock::long_date(t, matches!(language, Language::Ro))
}

/// [`long_date`] of an RFC 3339 time; None if it is not one.
pub fn long_date_rfc3339(value: &str, language: Language) -> Option<String> {
    let t = time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    Some(long_date(t, language))
}

/// Shorthand for a variable map: `vars([("serial", "01ab"), ...])`.
pub fn vars<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn sample(template: Template) -> BTreeMap<String, String> {
        vars(template.variables().iter().map(|v| (*v, format!("<{v}>"))))
    }

    #[test]
    fn every_template_renders_in_every_language_with_its_declared_variables() {
        for template in Template::ALL {
            for language in Language::ALL {
                let r = render(template, language, &sample(template))
                    .unwrap_or_else(|e| panic!("{} {}: {e}", template.name(), language.as_str()));
                assert!(!r.subject.trim().is_empty());
                assert!(!r.body.trim().is_empty());
                let all = format!("{}\n{}", r.subject, r.body);
                // Every declared variable is used in every language, and no
                // placeholder is left over.
                for v in template.variables() {
                    assert!(
                        all.contains(&format!("<{v}>")),
                        "{} {} does not use {{{v}}}",
                        template.name(),
                        language.as_str()
                    );
                }
                assert!(!all.contains('{') && !all.contains('}'), "{} {}: {all}", template.name(), language.as_str());
                assert_eq!(Template::parse(template.name()), Some(template));
            }
        }
    }

    #[test]
    fn romanian_uses_comma_below_diacritics() {
        let mut seen = String::new();
        for template in Template::ALL {
            let r = render(template, Language::Ro, &sample(template)).unwrap();
            assert!(!r.body.contains(['ş', 'ţ', 'Ş', 'Ţ']), "cedilla forms in {}", template.name());
            seen.push_str(&r.body);
        }
        for c in ['ă', 'â', 'î', 'ș', 'ț'] {
            assert!(seen.contains(c), "no {c} in any Romanian template");
        }
    }

    #[test]
    fn missing_extra_and_unknown_values_are_errors() {
        let t = Template::RenewalReminder;
        let mut v = sample(t);
        v.remove("serial");
        assert!(matches!(render(t, Language::En, &v), Err(MailError::Template { .. })));
        let mut v = sample(t);
        v.insert("serail".into(), "x".into());
        assert!(matches!(render(t, Language::Ro, &v), Err(MailError::Template { .. })));
        assert!(fill("a {nope} b", &["yes"], &vars([("yes", "1")])).is_err());
        assert!(fill("a {yes b", &["yes"], &vars([("yes", "1")])).is_err());
        assert!(fill("a } b", &[], &BTreeMap::new()).is_err());
        assert_eq!(fill("{{x}} {yes}", &["yes"], &vars([("yes", "1")])).unwrap(), "{x} 1");
    }

    #[test]
    fn values_cannot_inject_headers() {
        let t = Template::CertificateIssued;
        let mut v = sample(t);
        v.insert("serial".into(), "01\r\nBcc: victim@example.org".into());
        assert!(render(t, Language::En, &v).is_err());
        // A line break in a body-only value is fine (e.g. a multi-line reason).
        let t = Template::IdentityRejected;
        let mut v = sample(t);
        v.insert("reason".into(), "document unreadable\nplease retry".into());
        assert!(render(t, Language::En, &v).is_ok());
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(split("Hello\n\nbody").is_err());
        assert!(split("Subject: x\nbody").is_err());
        assert_eq!(split("Subject: x\n\nbody\n").unwrap(), ("x", "body\n"));
    }

    #[test]
    fn mails_a_cloud_holder_gets_speak_of_no_kit_and_no_csr() {
        let cloud =
            Template::ALL.into_iter().filter(|t| !matches!(t, Template::IdentityApproved | Template::SecretDelivery));
        for template in cloud {
            for language in Language::ALL {
                let r = render(template, language, &sample(template)).unwrap();
                let all = format!("{}\n{}", r.subject, r.body).to_lowercase();
                for word in ["kit", "csr", "signing request", "cerere de certificat", "token"] {
                    assert!(!all.contains(word), "{} {} mentions {word:?}", template.name(), language.as_str());
                }
            }
        }
    }

    #[test]
    fn every_mail_names_its_next_step_and_the_last_reminder_says_so() {
        for template in Template::ALL {
            let (en, ro) = (
                render(template, Language::En, &sample(template)).unwrap().body,
                render(template, Language::Ro, &sample(template)).unwrap().body,
            );
            assert!(en.contains("Next step:"), "{} en", template.name());
            assert!(ro.contains("Următorul pas:"), "{} ro", template.name());
        }
        let first = render(Template::RenewalReminder, Language::En, &sample(Template::RenewalReminder)).unwrap();
        let last = render(Template::LastRenewalReminder, Language::En, &sample(Template::LastRenewalReminder)).unwrap();
        assert_ne!(first.body, last.body);
        assert!(last.subject.starts_with("Last reminder") && last.body.contains("the last reminder"));
        assert!(!first.body.contains("last reminder"));
        let last_ro =
            render(Template::LastRenewalReminder, Language::Ro, &sample(Template::LastRenewalReminder)).unwrap();
        assert!(last_ro.subject.starts_with("Ultima amintire") && last_ro.body.contains("ultima amintire"));
        for t in [Template::RenewalReminder, Template::LastRenewalReminder] {
            for l in Language::ALL {
                assert!(
                    render(t, l, &sample(t)).unwrap().body.contains("<deadline>"),
                    "{} states the deadline",
                    t.name()
                );
            }
        }
        let order = render(Template::OrderReceived, Language::En, &sample(Template::OrderReceived)).unwrap();
        assert!(
            order.body.contains("pay the order")
                && order.body.contains("<price>")
                && order.body.contains("<payment_url>")
        );
        assert!(!order.body.contains("Next step: the identity check"));
    }

    #[test]
    fn dates_are_written_as_people_write_them() {
        use time::macros::datetime;
        let t = datetime!(2028-12-02 23:30 UTC);
        assert_eq!(long_date(t, Language::En), "2 December 2028");
        assert_eq!(long_date(t, Language::Ro), "2 decembrie 2028");
        // UTC, whatever offset the value carries.
        assert_eq!(long_date(datetime!(2029-01-01 01:00 +02:00), Language::Ro), "31 decembrie 2028");
        let all: Vec<String> = (1..=12u8)
            .map(|m| {
                let d = time::Date::from_calendar_date(2027, time::Month::try_from(m).unwrap(), 15).unwrap();
                long_date(d.midnight().assume_utc(), Language::Ro)
            })
            .collect();
        assert_eq!(all[0], "15 ianuarie 2027");
        assert_eq!(all[4], "15 mai 2027");
        assert_eq!(all[10], "15 noiembrie 2027");
        assert_eq!(long_date(datetime!(2027-07-01 0:00 UTC), Language::En), "1 July 2027");
        assert_eq!(long_date_rfc3339("2028-12-02T10:00:00Z", Language::En).as_deref(), Some("2 December 2028"));
        assert_eq!(long_date_rfc3339("2 Dec 2028", Language::En), None);
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Language::parse("RO"), Some(Language::Ro));
        assert_eq!(Language::parse("de"), None);
    }
}
