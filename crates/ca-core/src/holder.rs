//! Validated holder data. Raw strings stop at the edge: the subject of a
//! certificate is built only from these types, never from a CSR.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::error::CaError;

/// Upper bound X.520 gives commonName; the CN is "given-name surname".
const CN_MAX: usize = 64;

/// Longest raw identifier looked at (serialNumber is at most 64 characters).
const SEMANTICS_MAX: usize = 64;

/// A character a name may hold: a letter (Lu, Ll, Lt, Lm, Lo), a combining
/// mark (Mn, Mc, Me), a space, a hyphen, an apostrophe (' or ’) or a period.
/// Everything else is refused, notably digits, symbols, control and format
/// characters (bidi overrides and isolates, zero-width spaces and joiners),
/// line breaks and other spaces.
fn name_char(c: char) -> bool {
    matches!(c, ' ' | '-' | '\'' | '\u{2019}' | '.')
        || matches!(c.general_category_group(), GeneralCategoryGroup::Letter | GeneralCategoryGroup::Mark)
}

/// A name as it goes into a subject and into mails: NFC, trimmed, at most
/// `max` characters of [`name_char`], beginning with a letter, no two
/// spaces in a row. Messages name what is wrong, never the value.
fn clean_name(field: &'static str, raw: &str, max: usize) -> Result<String, CaError> {
    // Bound the work before normalising (a body is at most 16 KiB anyway).
    if raw.chars().count() > 4 * max {
        return Err(CaError::field(field, format!("longer than {max} characters")));
    }
    let s: String = raw.trim().nfc().collect();
    if s.is_empty() {
        return Err(CaError::field(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(CaError::field(field, format!("longer than {max} characters")));
    }
    if !s.chars().all(name_char) {
        return Err(CaError::field(
            field,
            "may hold only letters, combining marks, spaces, hyphens, apostrophes and periods",
        ));
    }
    if s.chars().next().is_none_or(|c| c.general_category_group() != GeneralCategoryGroup::Letter) {
        return Err(CaError::field(field, "must begin with a letter"));
    }
    if s.contains("  ") {
        return Err(CaError::field(field, "has two spaces in a row"));
    }
    Ok(s)
}

/// A given name or surname as on the identity document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<PersonName, CaError> {
        clean_name(field, raw, CN_MAX).map(PersonName)
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

    /// The mailbox this address reaches, for counting orders per address:
    /// lower case, without a `+tag` in the local part.
    pub fn mailbox_key(&self) -> String {
        let lower = self.0.to_ascii_lowercase();
        match lower.rsplit_once('@') {
            Some((local, domain)) => {
                let local = local.split_once('+').map_or(local, |(base, _)| base);
                format!("{local}@{domain}")
            }
            None => lower,
        }
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes (249, as in Debian's
/// iso-codes 4.15), sorted. User-assigned codes (AA, QM-QZ, XA-XZ, ZZ),
/// reserved ones (EU, UK, …) and deleted ones are not countries here.
const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", //
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW",
    "BY", "BZ", //
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY",
    "CZ", //
    "DE", "DJ", "DK", "DM", "DO", "DZ", //
    "EC", "EE", "EG", "EH", "ER", "ES", "ET", //
    "FI", "FJ", "FK", "FM", "FO", "FR", //
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW",
    "GY", //
    "HK", "HM", "HN", "HR", "HT", "HU", //
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", //
    "JE", "JM", "JO", "JP", //
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", //
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", //
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV",
    "MW", "MX", "MY", "MZ", //
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", //
    "OM", //
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", //
    "QA", //
    "RE", "RO", "RS", "RU", "RW", //
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX",
    "SY", "SZ", //
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", //
    "UA", "UG", "UM", "US", "UY", "UZ", //
    "VA", "VC", "VE", "VG", "VI", "VN", "VU", //
    "WF", "WS", //
    "YE", "YT", //
    "ZA", "ZM", "ZW",
];

/// ISO 3166-1 alpha-2 country code, one of [`ISO_3166_ALPHA2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country([u8; 2]);

impl Country {
    /// A code of the embedded list, in either case (`ro` is `RO`).
    pub fn parse(raw: &str) -> Result<Country, CaError> {
        Country::code(raw.trim())
            .ok_or_else(|| CaError::field("country", "must be an ISO 3166-1 alpha-2 country code such as RO"))
    }

    fn code(s: &str) -> Option<Country> {
        let [a, b] = s.as_bytes() else { return None };
        let c = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        let text = std::str::from_utf8(&c).ok()?;
        ISO_3166_ALPHA2.binary_search(&text).is_ok().then_some(Country(c))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// The type of a natural-person semantics identifier (ETSI EN 319 412-1 5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdType {
    /// Passport number.
    Pas,
    /// Identity card number.
    Idc,
    /// National personal number.
    Pno,
    /// Tax identification number (EU TIN).
    Tin,
}

impl IdType {
    fn parse(s: &str) -> Option<IdType> {
        match s.to_ascii_uppercase().as_str() {
            "PAS" => Some(IdType::Pas),
            "IDC" => Some(IdType::Idc),
            "PNO" => Some(IdType::Pno),
            "TIN" => Some(IdType::Tin),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            IdType::Pas => "PAS",
            IdType::Idc => "IDC",
            IdType::Pno => "PNO",
            IdType::Tin => "TIN",
        }
    }
}

/// Weights of the Romanian CNP's check digit.
const CNP_WEIGHTS: [u32; 12] = [2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9];

/// A Romanian personal numeric code (CNP, `S YY MM DD JJ NNN C`): 13 digits,
/// sex and century digit S 1-9, a real birth date, and the check digit C
/// (the weighted sum of the first 12 digits with 279146358279, mod 11; 10
/// counts as 1). S 1/2: 1900s, 3/4: 1800s, 5/6: 2000s; 7/8 (residents) and
/// 9 (foreigners) say no century, so the date must exist in the 1900s or
/// the 2000s. The county (JJ) and the serial (NNN) are not checked.
fn check_cnp(s: &str) -> Result<(), &'static str> {
    let digits: Vec<u32> = s.chars().map(|c| c.to_digit(10)).collect::<Option<_>>().ok_or("must be 13 digits")?;
    let Ok([sex, y1, y2, m1, m2, d1, d2, _, _, _, _, _, check]) = <[u32; 13]>::try_from(digits.as_slice()) else {
        return Err("must be 13 digits");
    };
    let (yy, mm, dd) = (y1 * 10 + y2, m1 * 10 + m2, d1 * 10 + d2);
    let centuries: &[u32] = match sex {
        1 | 2 => &[1900],
        3 | 4 => &[1800],
        5 | 6 => &[2000],
        7..=9 => &[1900, 2000],
        _ => return Err("has no valid sex digit (the first digit is 1 to 9)"),
    };
    let month = u8::try_from(mm).ok().and_then(|m| time::Month::try_from(m).ok()).ok_or("holds no valid birth date")?;
    let day = u8::try_from(dd).map_err(|_| "holds no valid birth date")?;
    let real = centuries
        .iter()
        .any(|c| i32::try_from(c + yy).is_ok_and(|year| time::Date::from_calendar_date(year, month, day).is_ok()));
    if !real {
        return Err("holds no valid birth date");
    }
    let sum: u32 = digits.iter().zip(CNP_WEIGHTS).map(|(d, w)| d * w).sum();
    let expected = match sum % 11 {
        10 => 1,
        r => r,
    };
    if expected != check {
        return Err("has a wrong check digit");
    }
    Ok(())
}

/// The identifier part of any other semantics identifier: 4 to 30
/// characters, letters A-Z (stored upper case) and digits, at least one
/// digit, with single '-', '/' or '.' between them (not first or last).
fn clean_identifier(ident: &str) -> Result<String, &'static str> {
    const WHAT: &str = "must be 4 to 30 letters A-Z and digits (at least one digit), \
                        with single '-', '/' or '.' between them";
    let s = ident.to_ascii_uppercase();
    let len = s.chars().count();
    let separator = |c: char| matches!(c, '-' | '/' | '.');
    let chars_ok = s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || separator(c));
    let ends_ok = !s.starts_with(separator) && !s.ends_with(separator);
    let no_double = !s.chars().zip(s.chars().skip(1)).any(|(a, b)| separator(a) && separator(b));
    if !(4..=30).contains(&len) || !chars_ok || !ends_ok || !no_double || !s.chars().any(|c| c.is_ascii_digit()) {
        return Err(WHAT);
    }
    Ok(s)
}

/// The natural-person semantics identifier of ETSI EN 319 412-1 5.1.3,
/// e.g. `PNORO-1900101123457`: type (PAS, IDC, PNO, TIN), ISO 3166-1
/// country, '-', identifier. `PNORO` must be a valid CNP ([`check_cnp`]);
/// every other one follows [`clean_identifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticsId(String);

impl SemanticsId {
    /// Accept a full identifier (`PNORO-190…`, `PASDE-C01X00T47`), or a bare
    /// national number, which becomes `PNO{country}-{number}`.
    pub fn parse(raw: &str, country: Country) -> Result<SemanticsId, CaError> {
        let invalid = |why: &str| CaError::field("id-number", why.to_owned());
        let s = raw.trim();
        if s.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if s.chars().count() > SEMANTICS_MAX {
            return Err(invalid("longer than 64 characters"));
        }
        // `get` (not indexing): a multi-byte character is no prefix, never a panic.
        let prefix = (s.get(5..6) == Some("-")).then(|| s.get(..3).and_then(IdType::parse)).flatten();
        let (kind, cc, ident) = match prefix {
            Some(kind) => {
                let cc = s.get(3..5).and_then(Country::code).ok_or_else(|| {
                    invalid("the country after the identifier type is not an ISO 3166-1 alpha-2 code")
                })?;
                (kind, cc, s.get(6..).unwrap_or_default())
            }
            None => (IdType::Pno, country, s),
        };
        let ident = if kind == IdType::Pno && cc.as_str() == "RO" {
            check_cnp(ident).map_err(|why| invalid(&format!("a Romanian personal number (CNP) {why}")))?;
            ident.to_owned()
        } else {
            clean_identifier(ident).map_err(|why| invalid(&format!("the identifier {why}")))?
        };
        Ok(SemanticsId(format!("{}{}-{ident}", kind.as_str(), cc.as_str())))
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

    /// A CNP with its check digit, computed here apart from `check_cnp`.
    fn cnp(first12: &str) -> String {
        let w = "279146358279".bytes().map(|b| u32::from(b - b'0'));
        let sum: u32 = first12.bytes().map(|b| u32::from(b - b'0')).zip(w).map(|(d, w)| d * w).sum();
        format!("{first12}{}", if sum % 11 == 10 { 1 } else { sum % 11 })
    }

    fn refused_field(r: Result<Holder, CaError>) -> &'static str {
        match r {
            Err(CaError::InvalidField { field, .. }) => field,
            other => panic!("expected a refused field, got {other:?}"),
        }
    }

    #[test]
    fn holder_fields_are_checked_one_by_one() {
        let ok = Holder::parse(" Ana ", "Popescu", "Ana@Example.RO", "ro", "1900101123457").unwrap();
        assert_eq!(ok.semantics_id.as_str(), "PNORO-1900101123457");
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
            (("A", "P", "a@b.ro", "XX", "1"), "country"),
            (("A", "P", "a@b.ro", "RO", ""), "id-number"),
            (("A", "P", "a@b.ro", "RO", "12 34"), "id-number"),
            (("A", "P", "a@b.ro", "RO", "123"), "id-number"),
            (("1234", "P", "a@b.ro", "RO", "1"), "given name"),
        ];
        for ((g, s, e, c, i), field) in cases {
            assert_eq!(refused_field(Holder::parse(g, s, e, c, i)), field, "{g:?} {s:?} {e:?} {c:?} {i:?}");
        }
    }

    #[test]
    fn countries_are_the_iso_3166_list() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w.first() < w.get(1)), "sorted, no duplicates");
        for ok in ["RO", "ro", "De", "GB", "AX", "SS", "ZW"] {
            assert!(Country::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["XX", "UK", "EU", "ZZ", "AA", "QM", "R", "ROU", "R€", "€", "", "R\u{301}"] {
            assert!(Country::parse(bad).is_err(), "{bad:?}");
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
    fn romanian_personal_numbers_carry_their_check_digit() {
        let good = ["1900101123457", "2850101123453", &cnp("500022912345"), &cnp("704022912345"), &cnp("300010112345")];
        for g in good {
            assert_eq!(SemanticsId::parse(g, Country::parse("RO").unwrap()).unwrap().as_str(), format!("PNORO-{g}"));
            assert!(SemanticsId::parse(&format!("PNORO-{g}"), Country::parse("DE").unwrap()).is_ok(), "{g}");
        }
        let ro = Country::parse("RO").unwrap();
        let why = |s: &str| match SemanticsId::parse(s, ro) {
            Err(CaError::InvalidField { field: "id-number", reason }) => reason,
            other => panic!("{s:?}: expected a refusal, got {other:?}"),
        };
        assert!(why("1900101123450").contains("check digit"));
        assert!(why("1234567890123").contains("birth date"), "month 45");
        assert!(why(&cnp("190023012345")).contains("birth date"), "30 February");
        assert!(why(&cnp("100022912345")).contains("birth date"), "1900 was not a leap year");
        assert!(why(&cnp("090010112345")).contains("sex digit"));
        assert!(why("190010112345").contains("13 digits"));
        assert!(why("19001011234570").contains("13 digits"));
        assert!(why("PNORO-19001O1123457").contains("13 digits"));
        for s in ["1900101123450", "PNORO-1900101123450"] {
            assert!(!why(s).contains("1900101"), "the value is never echoed");
        }
    }

    #[test]
    fn other_identifiers_follow_the_documented_format() {
        let ro = Country::parse("RO").unwrap();
        let ok = |s: &str| SemanticsId::parse(s, ro).map(|i| i.as_str().to_owned());
        assert_eq!(ok("PASDE-c01x00t47").unwrap(), "PASDE-C01X00T47");
        assert_eq!(ok("idcit-CA00000AA").unwrap(), "IDCIT-CA00000AA");
        assert_eq!(ok("TINBE-85.07.30-033.28").unwrap(), "TINBE-85.07.30-033.28");
        assert_eq!(
            SemanticsId::parse("010190-1234", Country::parse("DK").unwrap()).unwrap().as_str(),
            "PNODK-010190-1234"
        );
        for bad in [
            "PASXX-C01X00T47", // no such country
            "PASDE-ABCDEFG",   // no digit
            "PASDE-12",        // too short
            "PASDE-1--2345",   // double separator
            "PASDE--12345",    // leading separator
            "PASDE-12345.",    // trailing separator
            "PASDE-12 345",    // space
            "PASDE-1234€",     // not ASCII
            "PASDE-",          // empty
            "PASD€-12345",     // multi-byte inside the prefix: no panic
            "a€b-123",         // the reported panic
            "€€€€€€€€",
            "PNO€RO-1900101123457",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
        assert!(ok(&"1".repeat(65)).is_err());
        assert!(ok(&format!("PASDE-{}", "1".repeat(31))).is_err());
    }

    #[test]
    fn names_hold_letters_marks_and_a_few_separators_in_nfc() {
        let name = |s: &str| PersonName::parse("given name", s).map(|n| n.as_str().to_owned());
        for ok in ["Ana-Maria", "O'Brien", "D’Arcy", "St. John", "Ştefan", "Łukasz", "Ζωή", "Иван", "李", "Nguyễn"]
        {
            assert_eq!(name(ok).unwrap(), ok, "{ok}");
        }
        // A decomposed "Ș" (S + combining comma below) is stored composed.
        assert_eq!(name("S\u{326}tefan").unwrap(), "\u{218}tefan");
        for bad in [
            "Ana\u{202E}lirpA", // right-to-left override
            "An\u{200B}a",      // zero-width space
            "An\u{200D}a",      // zero-width joiner
            "An\u{2066}a",      // left-to-right isolate
            "Ana\u{0}",         // NUL
            "Ana\nBcc: x",      // line break
            "Ana\u{a0}Maria",   // no-break space
            "Ana  Maria",       // two spaces
            "Ana2",             // digit
            "Ana<b>",           // symbol
            "Ana😀",            // emoji
            "-Ana",             // begins with a separator
            "\u{301}Ana",       // begins with a mark
            "'",
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
        assert!(name(&"a".repeat(65)).is_err());
        assert!(name(&"a".repeat(64)).is_ok());
        assert!(name(&"€".repeat(10_000)).is_err());
    }

    #[test]
    fn mailbox_keys_fold_case_and_tags() {
        let key = |s: &str| Email::parse(s).unwrap().mailbox_key();
        assert_eq!(key("Ana+promo@Example.RO"), "ana@example.ro");
        assert_eq!(key("ana@example.ro"), "ana@example.ro");
    }

    #[test]
    fn validity_is_one_to_three_years() {
        assert!(ValidityYears::new(0).is_err());
        assert!(ValidityYears::new(4).is_err());
        assert_eq!(ValidityYears::new(3).unwrap().get(), 3);
    }
}
