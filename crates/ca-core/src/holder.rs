//! Validated holder data. Raw strings stop at the edge: the subject of a
//! certificate is built only from these types, never from a CSR.

use crate::error::CaError;

/// Upper bound X.520 gives commonName; the CN is "given-name surname".
const CN_MAX: usize = 64;

fn clean_text(field: &'static str, raw: &str, max: usize) -> Result<String, CaError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(CaError::field(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(CaError::field(field, format!("longer than {max} characters")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(CaError::field(field, "contains control characters"));
    }
    if !s.chars().any(char::is_alphabetic) {
        return Err(CaError::field(field, "contains no letter"));
    }
    Ok(s.to_owned())
}

/// A given name or surname as on the identity document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<PersonName, CaError> {
        clean_text(field, raw, CN_MAX).map(PersonName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address (ASCII, as rfc822Name must be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, CaError> {
        let s = raw.trim();
        let invalid = |why: &str| CaError::field("email", why.to_owned());
        if s.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if s.len() > 254 || !s.is_ascii() || s.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(invalid("must be at most 254 printable ASCII characters without spaces"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(invalid("must look like name@domain"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid("the part before @ is empty or too long"));
        }
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("the domain after @ is not a valid host name"));
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country([u8; 2]);

impl Country {
    pub fn parse(raw: &str) -> Result<Country, CaError> {
        match raw.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(CaError::field("country", "must be a two-letter ISO 3166 code such as RO")),
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// The natural-person semantics identifier of ETSI EN 319 412-1 5.1.3,
/// e.g. `PNORO-1234567890123`: type (PAS, IDC, PNO, TIN), country, '-', identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticsId(String);

impl SemanticsId {
    /// Accept a full identifier (`PNORO-123…`), or a bare national number,
    /// which becomes `PNO{country}-{number}`.
    pub fn parse(raw: &str, country: Country) -> Result<SemanticsId, CaError> {
        let s = raw.trim();
        let invalid = |why: String| CaError::field("id-number", why);
        if s.is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        let full = if s.len() > 6
            && s.as_bytes().get(5) == Some(&b'-')
            && s.get(..3).is_some_and(|t| ["PAS", "IDC", "PNO", "TIN"].contains(&t))
        {
            let cc = &s[3..5];
            if !cc.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(format!("{cc:?} is not a country code")));
            }
            s.to_owned()
        } else {
            format!("PNO{}-{s}", country.as_str())
        };
        let ident = full.get(6..).unwrap_or("");
        if ident.is_empty() || ident.len() > 58 {
            return Err(invalid("identifier must have 1 to 58 characters".into()));
        }
        if !ident.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/.".contains(&b)) {
            return Err(invalid("identifier may hold only letters, digits, '-', '/' and '.'".into()));
        }
        Ok(SemanticsId(full))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Validity a holder ordered: 1, 2 or 3 years (the profile may offer fewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityYears(u8);

impl ValidityYears {
    pub fn new(years: u32) -> Result<ValidityYears, CaError> {
        match years {
            1..=3 => Ok(ValidityYears(years as u8)),
            _ => Err(CaError::ValidityNotOffered(years, "1, 2 or 3".into())),
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

/// The validated identity a certificate is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub given_name: PersonName,
    pub surname: PersonName,
    pub email: Email,
    pub country: Country,
    pub semantics_id: SemanticsId,
}

impl Holder {
    /// Parse all fields, reporting the first bad one by name.
    pub fn parse(
        given_name: &str,
        surname: &str,
        email: &str,
        country: &str,
        id_number: &str,
    ) -> Result<Holder, CaError> {
        let country = Country::parse(country)?;
        let holder = Holder {
            given_name: PersonName::parse("given name", given_name)?,
            surname: PersonName::parse("surname", surname)?,
            email: Email::parse(email)?,
            country,
            semantics_id: SemanticsId::parse(id_number, country)?,
        };
        if holder.common_name().chars().count() > CN_MAX {
            return Err(CaError::field(
                "given name",
                format!("given name and surname together exceed {CN_MAX} characters"),
            ));
        }
        Ok(holder)
    }

    /// commonName: "given-name surname".
    pub fn common_name(&self) -> String {
        format!("{} {}", self.given_name.as_str(), self.surname.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_fields_are_checked_one_by_one() {
        let ok = Holder::parse(" Ana ", "Popescu", "Ana@Example.RO", "ro", "1234567890123").unwrap();
        assert_eq!(ok.semantics_id.as_str(), "PNORO-1234567890123");
        assert_eq!(ok.email.as_str(), "Ana@example.ro");
        assert_eq!(ok.common_name(), "Ana Popescu");
        let full = Holder::parse("Ana", "Popescu", "a@b.ro", "RO", "IDCHU-AB123").unwrap();
        assert_eq!(full.semantics_id.as_str(), "IDCHU-AB123");

        let cases = [
            (("", "P", "a@b.ro", "RO", "1"), "given name"),
            (("A", "  ", "a@b.ro", "RO", "1"), "surname"),
            (("A", "P\u{7}", "a@b.ro", "RO", "1"), "surname"),
            (("A", "P", "a@b", "RO", "1"), "email"),
            (("A", "P", "not an email", "RO", "1"), "email"),
            (("A", "P", "a@b.ro", "ROU", "1"), "country"),
            (("A", "P", "a@b.ro", "R1", "1"), "country"),
            (("A", "P", "a@b.ro", "RO", ""), "id-number"),
            (("A", "P", "a@b.ro", "RO", "12 34"), "id-number"),
            (("1234", "P", "a@b.ro", "RO", "1"), "given name"),
        ];
        for ((g, s, e, c, i), field) in cases {
            match Holder::parse(g, s, e, c, i) {
                Err(CaError::InvalidField { field: f, .. }) => assert_eq!(f, field, "{g:?} {s:?} {e:?} {c:?} {i:?}"),
                other => panic!("{g:?} {s:?} {e:?} {c:?} {i:?}: expected a refusal of {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_multi_byte_character_in_the_id_number_is_refused_not_a_panic() {
        // Found by the order_form fuzz target: byte 3 inside a character.
        for id in ["a\u{20ac}b-123", "\"J\u{fc}F-R-09AB12345"] {
            match Holder::parse("Ana", "Popescu", "a@b.ro", "RO", id) {
                Err(CaError::InvalidField { field: "id-number", .. }) => {}
                other => panic!("{id:?}: expected a refusal of id-number, got {other:?}"),
            }
        }
    }

    #[test]
    fn validity_is_one_to_three_years() {
        assert!(ValidityYears::new(0).is_err());
        assert!(ValidityYears::new(4).is_err());
        assert_eq!(ValidityYears::new(3).unwrap().get(), 3);
    }
}
