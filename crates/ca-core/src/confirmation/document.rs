//! The prefilled confirmation document: one A4 page in English and
//! Romanian with the certificate's subject, serial, validity and issuer,
//! and two empty signature fields (holder, QTSP) in an AcroForm.
//!
//! Deterministic: the bytes depend on the certificate only (no dates of
//! generation, a file identifier derived from the serial, fixed object
//! numbers), so the same certificate always gives the same document and
//! only its hash needs keeping.

use der::Decode;
use pdf_writer::types::{AnnotationFlags, FieldType};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::Digest;
use unicode_normalization::UnicodeNormalization;
use x509_cert::Certificate;

use crate::error::CaError;
use crate::x509::oid;

/// The holder's signature field (`/T`).
pub const HOLDER_FIELD: &str = "HolderSignature";
/// The QTSP's signature field (`/T`), filled by the countersign.
pub const QTSP_FIELD: &str = "QTSPSignature";

const CATALOG: Ref = Ref::new(1);
const PAGES: Ref = Ref::new(2);
const PAGE: Ref = Ref::new(3);
const CONTENT: Ref = Ref::new(4);
const FONT: Ref = Ref::new(5);
const FONT_BOLD: Ref = Ref::new(6);
const HOLDER: Ref = Ref::new(7);
const QTSP: Ref = Ref::new(8);
const INFO: Ref = Ref::new(9);
const ACROFORM: Ref = Ref::new(10);
const TO_UNICODE: Ref = Ref::new(11);

/// A4 in points.
const PAGE_BOX: Rect = Rect { x1: 0.0, y1: 0.0, x2: 595.0, y2: 842.0 };
/// The two signature boxes, side by side near the foot of the page.
pub(crate) const HOLDER_RECT: Rect = Rect { x1: 50.0, y1: 120.0, x2: 290.0, y2: 200.0 };
pub(crate) const QTSP_RECT: Rect = Rect { x1: 305.0, y1: 120.0, x2: 545.0, y2: 200.0 };

/// The facts of an end-entity certificate the document shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub given_name: String,
    pub surname: String,
    pub common_name: String,
    /// The subject's serialNumber attribute (semantics identifier).
    pub identifier: String,
    pub country: String,
    /// The certificate's serial, lowercase hex.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    /// The issuer as RFC 4514 text.
    pub issuer: String,
}

impl CertificateFacts {
    pub fn from_der(der: &[u8]) -> Result<CertificateFacts, CaError> {
        let cert = Certificate::from_der(der).map_err(CaError::encoding)?;
        let tbs = &cert.tbs_certificate;
        let attr = |wanted| {
            tbs.subject
                .0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .find(|a| a.oid == wanted)
                .and_then(|a| std::str::from_utf8(a.value.value()).ok())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(CertificateFacts {
            given_name: attr(oid::GIVEN_NAME),
            surname: attr(oid::SURNAME),
            common_name: attr(oid::COMMON_NAME),
            identifier: attr(oid::SERIAL_NUMBER),
            country: attr(oid::COUNTRY),
            serial: crate::ca::serial_hex(&tbs.serial_number),
            not_before: crate::x509::unix_seconds(&tbs.validity.not_before),
            not_after: crate::x509::unix_seconds(&tbs.validity.not_after),
            issuer: crate::x509::name_text(&tbs.issuer),
        })
    }

    /// `given_surname.pdf`, ASCII-folded: letters lose their marks (NFD,
    /// combining marks dropped; ß -> ss, æ -> ae, ø -> o, ł -> l, đ -> d,
    /// þ -> th, œ -> oe), lowercase; spaces become `-`, `-` stays, anything
    /// else is dropped. `certificate_<serial>.pdf` if nothing is left.
    pub fn file_name(&self) -> String {
        let (given, surname) = (ascii_fold(&self.given_name), ascii_fold(&self.surname));
        if given.is_empty() && surname.is_empty() {
            return format!("certificate_{}.pdf", self.serial);
        }
        format!("{given}_{surname}.pdf")
    }
}

fn ascii_fold(s: &str) -> String {
    let mut out = String::new();
    for c in s.nfd() {
        match c {
            'a'..='z' | '0'..='9' | '-' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            ' ' => out.push('-'),
            'ß' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'þ' | 'Þ' => out.push_str("th"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' => out.push('d'),
            'ı' => out.push('i'),
            _ => {}
        }
    }
    out
}

/// The prefilled document of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefilled {
    pub file_name: String,
    pub pdf: Vec<u8>,
}

impl Prefilled {
    pub fn sha256_hex(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.pdf))
    }
}

/// Build the prefilled document of the certificate `der`.
pub fn prefilled(der: &[u8]) -> Result<Prefilled, CaError> {
    Ok(prefilled_from(&CertificateFacts::from_der(der)?))
}

/// The prefilled document showing `facts`.
pub fn prefilled_from(facts: &CertificateFacts) -> Prefilled {
    Prefilled { file_name: facts.file_name(), pdf: render(facts) }
}

fn date(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

/// Letters outside WinAnsi that Romanian (and Hungarian) names need, put at
/// the codes 0x80.. by the font's /Differences; the glyph names are in the
/// standard Helvetica character set.
const EXTRA_GLYPHS: [(char, &str); 14] = [
    ('ă', "abreve"),
    ('Ă', "Abreve"),
    ('ș', "scommaaccent"),
    ('Ș', "Scommaaccent"),
    ('ț', "tcommaaccent"),
    ('Ț', "Tcommaaccent"),
    ('ş', "scedilla"),
    ('Ş', "Scedilla"),
    ('ţ', "tcedilla"),
    ('Ţ', "Tcedilla"),
    ('ő', "ohungarumlaut"),
    ('Ő', "Ohungarumlaut"),
    ('ű', "uhungarumlaut"),
    ('Ű', "Uhungarumlaut"),
];
const EXTRA_FIRST_CODE: u8 = 0x80;

/// The fonts' /ToUnicode CMap: text extraction and search give the letters
/// shown (the Adobe Glyph List maps `Tcommaaccent` to U+0162, T with
/// cedilla, so the encoding alone would not).
fn to_unicode_cmap() -> Vec<u8> {
    let mut chars = String::new();
    for (i, (c, _)) in EXTRA_GLYPHS.iter().enumerate() {
        chars.push_str(&format!("<{:02X}> <{:04X}>\n", usize::from(EXTRA_FIRST_CODE) + i, u32::from(*c)));
    }
    format!(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<00> <FF>\nendcodespacerange\n\
         2 beginbfrange\n<20> <7E> <0020>\n<A0> <FF> <00A0>\nendbfrange\n\
         {} beginbfchar\n{chars}endbfchar\n\
         endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n",
        EXTRA_GLYPHS.len()
    )
    .into_bytes()
}

/// Text in the fonts' encoding: ASCII and Latin-1 as in WinAnsi, the
/// letters of [`EXTRA_GLYPHS`] at their codes, anything else without its
/// marks (or `?`).
fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.nfc() {
        if let Some(i) = EXTRA_GLYPHS.iter().position(|(g, _)| *g == c) {
            out.push(EXTRA_FIRST_CODE + u8::try_from(i).unwrap_or(0));
        } else if let Some(b) = u8::try_from(u32::from(c)).ok().filter(|b| (0x20..0x7f).contains(b) || *b >= 0xa0) {
            out.push(b);
        } else {
            let folded: Vec<u8> = c.nfd().filter(|d| d.is_ascii_graphic() || *d == ' ').map(|d| d as u8).collect();
            if folded.is_empty() {
                out.push(b'?');
            } else {
                out.extend(folded);
            }
        }
    }
    out
}

/// Split `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

struct Writer {
    content: Content,
    y: f32,
}

impl Writer {
    fn text(&mut self, font: &[u8], size: f32, x: f32, text: &str) {
        self.content.begin_text();
        self.content.set_font(Name(font), size);
        self.content.next_line(x, self.y);
        self.content.show(Str(&encode(text)));
        self.content.end_text();
        self.y -= size * 1.35;
    }

    fn paragraph(&mut self, size: f32, text: &str) {
        for line in wrap(text, 95) {
            self.text(b"F1", size, 50.0, &line);
        }
        self.y -= size * 0.6;
    }

    /// A labelled value: the English and Romanian labels, the value beside them.
    fn fact(&mut self, en: &str, ro: &str, value: &str) {
        let top = self.y;
        self.text(b"F2", 9.5, 50.0, en);
        self.text(b"F1", 8.5, 50.0, ro);
        let bottom = self.y;
        self.y = top;
        for line in wrap(value, 62) {
            self.text(b"F1", 10.0, 215.0, &line);
        }
        self.y = self.y.min(bottom) - 4.0;
    }
}

fn render(f: &CertificateFacts) -> Vec<u8> {
    let mut w = Writer { content: Content::new(), y: 780.0 };
    w.text(b"F2", 15.0, 50.0, "Confirmation of receipt of the qualified certificate");
    w.text(b"F2", 13.0, 50.0, "Confirmare de primire a certificatului calificat");
    w.y -= 10.0;
    w.paragraph(
        10.0,
        &format!(
            "I, {}, confirm that I received the qualified electronic signature certificate described below, \
             that its data are correct and that I accept the terms and conditions under which it was issued.",
            f.common_name
        ),
    );
    w.paragraph(
        10.0,
        &format!(
            "Subsemnatul/Subsemnata {}, confirm că am primit certificatul calificat pentru semnătură electronică \
             descris mai jos, că datele sale sunt corecte și că accept termenii și condițiile în care a fost emis.",
            f.common_name
        ),
    );
    w.y -= 6.0;
    w.fact("Holder", "Titular", &f.common_name);
    w.fact("Given name", "Prenume", &f.given_name);
    w.fact("Surname", "Nume", &f.surname);
    w.fact("Identifier", "Identificator", &f.identifier);
    w.fact("Country", "Țara", &f.country);
    w.fact("Serial number", "Număr de serie", &f.serial);
    w.fact("Valid from", "Valabil de la", &date(f.not_before));
    w.fact("Valid until", "Valabil până la", &date(f.not_after));
    w.fact("Issuer", "Emitent", &f.issuer);
    w.y = HOLDER_RECT.y2 + 30.0;
    let labels = w.y;
    w.text(b"F2", 9.5, HOLDER_RECT.x1, "Holder's signature");
    w.text(b"F1", 8.5, HOLDER_RECT.x1, "Semnătura titularului");
    w.y = labels;
    w.text(b"F2", 9.5, QTSP_RECT.x1, "Countersigned by the QTSP");
    w.text(b"F1", 8.5, QTSP_RECT.x1, "Contrasemnat de prestatorul calificat");
    w.y = 80.0;
    w.paragraph(
        8.0,
        "Sign in the holder's field with the key of this certificate (for example in Adobe Reader) and upload \
         the signed file unchanged; the QTSP countersigns it and returns it as confirmare.pdf.",
    );
    w.paragraph(
        8.0,
        "Semnați în câmpul titularului cu cheia acestui certificat (de exemplu în Adobe Reader) și încărcați \
         fișierul semnat nemodificat; prestatorul îl contrasemnează și îl returnează ca confirmare.pdf.",
    );
    for r in [HOLDER_RECT, QTSP_RECT] {
        w.content.set_line_width(0.75);
        w.content.rect(r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1);
        w.content.stroke();
    }
    let content = w.content.finish();

    let mut pdf = Pdf::new();
    pdf.set_version(1, 7);
    let id = sha2::Sha256::digest(format!("qcert confirmation {}", f.serial).as_bytes());
    let id = id.get(..16).unwrap_or_default().to_vec();
    pdf.set_file_id((id.clone(), id));
    pdf.catalog(CATALOG).pages(PAGES).pair(Name(b"AcroForm"), ACROFORM);
    // SigFlags SignaturesExist | AppendOnly from the start: viewers save the
    // holder's signature as an incremental update, and the signing adds
    // nothing to the AcroForm (pyHanko's diff policy would call a new
    // /SigFlags suspicious).
    pdf.indirect(ACROFORM)
        .start::<pdf_writer::writers::Form>()
        .fields([HOLDER, QTSP])
        .sig_flags(pdf_writer::types::SigFlags::SIGNATURES_EXIST | pdf_writer::types::SigFlags::APPEND_ONLY);
    pdf.pages(PAGES).kids([PAGE]).count(1);
    let mut page = pdf.page(PAGE);
    page.parent(PAGES).media_box(PAGE_BOX).contents(CONTENT).annotations([HOLDER, QTSP]);
    page.resources().fonts().pair(Name(b"F1"), FONT).pair(Name(b"F2"), FONT_BOLD);
    page.finish();
    pdf.stream(CONTENT, &content);
    for (id, base) in [(FONT, &b"Helvetica"[..]), (FONT_BOLD, &b"Helvetica-Bold"[..])] {
        let mut font = pdf.type1_font(id);
        font.base_font(Name(base)).to_unicode(TO_UNICODE);
        let mut encoding = font.encoding_custom();
        encoding.base_encoding(Name(b"WinAnsiEncoding"));
        encoding.differences().consecutive(EXTRA_FIRST_CODE, EXTRA_GLYPHS.iter().map(|(_, n)| Name(n.as_bytes())));
    }
    for (id, name, rect) in [(HOLDER, HOLDER_FIELD, HOLDER_RECT), (QTSP, QTSP_FIELD, QTSP_RECT)] {
        let mut field = pdf.form_field(id);
        field.field_type(FieldType::Signature).partial_name(TextStr(name));
        let mut annot = field.into_annotation();
        annot.rect(rect).page(PAGE).flags(AnnotationFlags::PRINT);
    }
    pdf.stream(TO_UNICODE, &to_unicode_cmap());
    pdf.document_info(INFO)
        .title(TextStr(&format!("Confirmation document / Document de confirmare {}", f.serial)))
        .producer(TextStr("qcert"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CertificateFacts {
        CertificateFacts {
            given_name: "Ștefan".into(),
            surname: "Țurcanu".into(),
            common_name: "Ștefan Țurcanu".into(),
            identifier: "PNORO-1850101123453".into(),
            country: "RO".into(),
            serial: "3f00aa".into(),
            not_before: 1_800_000_000,
            not_after: 1_831_536_000,
            issuer: "CN=qcert Issuing CA,O=qcert".into(),
        }
    }

    #[test]
    fn the_same_facts_give_the_same_bytes_and_two_empty_signature_fields() {
        let pdf = render(&sample());
        assert_eq!(pdf, render(&sample()));
        assert_ne!(pdf, render(&CertificateFacts { serial: "3f00ab".into(), ..sample() }));
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let catalog = doc.catalog().unwrap();
        let form = doc.get_object(catalog.get(b"AcroForm").unwrap().as_reference().unwrap()).unwrap();
        let fields = form.as_dict().unwrap().get(b"Fields").unwrap().as_array().unwrap();
        let names: Vec<Vec<u8>> = fields
            .iter()
            .map(|f| {
                let d = doc.get_object(f.as_reference().unwrap()).unwrap().as_dict().unwrap();
                assert_eq!(d.get(b"FT").unwrap().as_name().unwrap(), b"Sig");
                assert!(!d.has(b"V"));
                d.get(b"T").unwrap().as_str().unwrap().to_vec()
            })
            .collect();
        assert_eq!(names, vec![HOLDER_FIELD.as_bytes().to_vec(), QTSP_FIELD.as_bytes().to_vec()]);
    }

    #[test]
    fn file_names_fold_to_ascii() {
        let facts = |g: &str, s: &str| CertificateFacts {
            given_name: g.into(),
            surname: s.into(),
            common_name: String::new(),
            identifier: String::new(),
            country: String::new(),
            serial: "0a1b".into(),
            not_before: 0,
            not_after: 0,
            issuer: String::new(),
        };
        assert_eq!(facts("Ștefan", "Țurcanu").file_name(), "stefan_turcanu.pdf");
        assert_eq!(facts("Ana-Maria", "Popescu Ionescu").file_name(), "ana-maria_popescu-ionescu.pdf");
        assert_eq!(facts("Zoë", "O’Brien").file_name(), "zoe_obrien.pdf");
        assert_eq!(facts("Łucja", "Groß").file_name(), "lucja_gross.pdf");
        assert_eq!(facts("Ὀδυσσεύς", "").file_name(), "certificate_0a1b.pdf");
    }

    #[test]
    fn romanian_letters_are_in_the_font_encoding() {
        assert_eq!(encode("Aă Ș"), vec![b'A', 0x80, b' ', 0x83]);
        assert_eq!(encode("é"), vec![0xe9]);
        assert_eq!(encode("ḁ→"), vec![b'a', b'?']);
    }

    #[test]
    fn lines_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
    }
}
