//! The countersign's PDF side: one incremental update after the holder's
//! that fills the QTSP's field. It adds the signature dictionary
//! (`ETSI.CAdES.detached`, `/M` = now), an appearance stream and its font,
//! redefines the QTSP field (same dictionary plus `/V` and `/AP`) and, if
//! needed, the AcroForm (`/SigFlags 3`); its cross-reference section has the
//! holder's kind (table or stream). [`prepare`] lays the update out with a
//! zeroed `/Contents` of fixed size and gives the SHA-384 of the signed
//! byte ranges; [`Prepared::finish`] puts the CMS in.

use std::io::Write as _;

use lopdf::{Dictionary, Document, Object, ObjectId};
use sha2::Digest;

use super::document::QTSP_FIELD;
use crate::error::CaError;

/// Bytes reserved for the countersign's CMS (seal and issuing CA
/// certificates, the signature, the time-stamp token with the TSA's
/// certificate: about 5 KiB with P-384 keys).
pub const RESERVED: usize = 16 * 1024;

const BYTE_RANGE_PLACEHOLDER: &[u8] = b"[0 0000000000 0000000000 0000000000]";

/// What the seal shows in its appearance and dictionary.
#[derive(Debug, Clone)]
pub struct SealFacts<'a> {
    /// The seal certificate's common name.
    pub name: &'a str,
    /// Signing time (the `/M` entry), Unix seconds.
    pub at: i64,
}

/// The countersigned file with its `/Contents` still zero.
#[derive(Debug, Clone)]
pub struct Prepared {
    bytes: Vec<u8>,
    /// Offsets of `<` and just after `>` of `/Contents`.
    gap: (usize, usize),
    /// SHA-384 of everything but the gap.
    pub digest: Vec<u8>,
}

impl Prepared {
    /// The file with `cms` (DER SignedData) in its `/Contents`.
    pub fn finish(mut self, cms: &[u8]) -> Result<Vec<u8>, CaError> {
        if cms.len() > RESERVED {
            return Err(CaError::Internal(format!("the seal's CMS ({} bytes) exceeds {RESERVED}", cms.len())));
        }
        let hex = hex::encode_upper(cms);
        let slot = self
            .bytes
            .get_mut(self.gap.0 + 1..self.gap.0 + 1 + hex.len())
            .ok_or_else(|| CaError::Internal("the /Contents slot is outside the file".into()))?;
        slot.copy_from_slice(hex.as_bytes());
        Ok(self.bytes)
    }
}

fn pdf_date(unix: i64) -> String {
    let format = time::macros::format_description!("D:[year][month][day][hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

/// A PDF literal string of ASCII text (other characters become `?`).
fn literal(text: &str) -> String {
    let mut out = String::from("(");
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// Serialise a lopdf object (no streams: they are never inlined).
pub(crate) fn write_object(out: &mut Vec<u8>, o: &Object) -> Result<(), CaError> {
    match o {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Object::Real(r) => {
            let text = format!("{r:.4}");
            out.extend_from_slice(text.trim_end_matches('0').trim_end_matches('.').as_bytes());
        }
        Object::Name(n) => {
            out.push(b'/');
            for b in n {
                if b.is_ascii_graphic() && !b"()<>[]{}/%#".contains(b) {
                    out.push(*b);
                } else {
                    out.extend_from_slice(format!("#{b:02X}").as_bytes());
                }
            }
        }
        Object::String(s, _) => {
            out.push(b'<');
            out.extend_from_slice(hex::encode_upper(s).as_bytes());
            out.push(b'>');
        }
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_object(out, item)?;
            }
            out.push(b']');
        }
        Object::Dictionary(d) => write_dict(out, d)?,
        Object::Reference((n, g)) => out.extend_from_slice(format!("{n} {g} R").as_bytes()),
        Object::Stream(_) => return Err(CaError::Internal("a stream inside a dictionary".into())),
    }
    Ok(())
}

fn write_dict(out: &mut Vec<u8>, d: &Dictionary) -> Result<(), CaError> {
    out.extend_from_slice(b"<<");
    for (k, v) in d.iter() {
        write_object(out, &Object::Name(k.clone()))?;
        out.push(b' ');
        write_object(out, v)?;
    }
    out.extend_from_slice(b">>");
    Ok(())
}

/// The QTSP field's and AcroForm's ids in `doc`.
fn qtsp_field(doc: &Document) -> Result<(ObjectId, Dictionary, ObjectId, Dictionary), CaError> {
    let internal = |what: &str| CaError::Internal(format!("the signed document has no {what}"));
    let catalog = doc.catalog().map_err(|_| internal("catalog"))?;
    let form_id = catalog.get(b"AcroForm").and_then(Object::as_reference).map_err(|_| internal("AcroForm"))?;
    let form = doc.get_object(form_id).and_then(Object::as_dict).map_err(|_| internal("AcroForm"))?;
    let fields = form.get(b"Fields").and_then(Object::as_array).map_err(|_| internal("form fields"))?;
    for id in fields.iter().filter_map(|f| f.as_reference().ok()) {
        let Ok(field) = doc.get_object(id).and_then(Object::as_dict) else { continue };
        if field.get(b"T").and_then(Object::as_str).is_ok_and(|t| t == QTSP_FIELD.as_bytes()) {
            if field.has(b"V") {
                return Err(CaError::Internal("the QTSP's field is already signed".into()));
            }
            return Ok((id, field.clone(), form_id, form.clone()));
        }
    }
    Err(internal("QTSP signature field"))
}

/// Lay out the countersign update after `signed` (the checked upload).
pub fn prepare(signed: &[u8], seal: &SealFacts<'_>) -> Result<Prepared, CaError> {
    let doc = Document::load_mem(signed).map_err(|e| CaError::Internal(format!("the signed document: {e}")))?;
    let (field_id, mut field, form_id, mut form) = qtsp_field(&doc)?;
    let rect: Vec<f32> = field
        .get(b"Rect")
        .and_then(Object::as_array)
        .map(|r| r.iter().filter_map(|n| n.as_float().ok()).collect())
        .unwrap_or_default();
    let (width, height) = match rect.as_slice() {
        [x1, y1, x2, y2] => ((x2 - x1).abs(), (y2 - y1).abs()),
        _ => (0.0, 0.0),
    };
    let first_new = doc.max_id + 1;
    let (sig_id, ap_id, font_id) = ((first_new, 0), (first_new + 1, 0), (first_new + 2, 0));

    field.set("V", Object::Reference(sig_id));
    let mut ap = Dictionary::new();
    ap.set("N", Object::Reference(ap_id));
    field.set("AP", Object::Dictionary(ap));
    let mut objects: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    let mut body = Vec::new();
    write_dict(&mut body, &field)?;
    objects.push((field_id, body));
    if form.get(b"SigFlags").and_then(Object::as_i64).ok() != Some(3) {
        form.set("SigFlags", Object::Integer(3));
        let mut body = Vec::new();
        write_dict(&mut body, &form)?;
        objects.push((form_id, body));
    }

    let mut sig = Vec::new();
    write!(
        sig,
        "<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/M{}/Name{}/Reason{}/ByteRange",
        literal(&pdf_date(seal.at)),
        literal(seal.name),
        literal("Confirmation countersigned by the QTSP / Confirmare contrasemnata de prestatorul calificat"),
    )
    .map_err(CaError::encoding)?;
    sig.extend_from_slice(BYTE_RANGE_PLACEHOLDER);
    sig.extend_from_slice(b"/Contents<");
    sig.resize(sig.len() + 2 * RESERVED, b'0');
    sig.extend_from_slice(b">>>");
    objects.push((sig_id, sig));

    let text = [
        ("F1", 8.0, "Countersigned by / Contrasemnat de:"),
        ("F1", 9.0, seal.name),
        ("F1", 8.0, &pdf_date(seal.at).replace("D:", "")),
    ];
    let mut content = String::new();
    let mut y = height - 14.0;
    for (font, size, line) in text {
        content.push_str(&format!("BT /{font} {size} Tf 6 {y:.1} Td {} Tj ET\n", literal(line)));
        y -= size + 5.0;
    }
    let mut appearance = Vec::new();
    write!(
        appearance,
        "<</Type/XObject/Subtype/Form/BBox[0 0 {width:.1} {height:.1}]/Resources<</Font<</F1 {} 0 R>>>>/Length {}>>\nstream\n{content}\nendstream",
        font_id.0,
        content.len(),
    )
    .map_err(CaError::encoding)?;
    objects.push((ap_id, appearance));
    objects.push((font_id, b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>".to_vec()));
    objects.sort_by_key(|(id, _)| *id);

    let mut out = signed.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets = Vec::new();
    for (id, body) in &objects {
        offsets.push((id.0, out.len()));
        out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let mut trailer = Dictionary::new();
    for key in [&b"Root"[..], b"Info", b"ID"] {
        if let Ok(v) = doc.trailer.get(key) {
            trailer.set(key.to_vec(), v.clone());
        }
    }
    trailer.set("Prev", Object::Integer(i64::try_from(doc.xref_start).map_err(CaError::encoding)?));
    let holder_used_stream = !signed.get(doc.xref_start..).is_some_and(|s| s.starts_with(b"xref"));
    write_xref(&mut out, &offsets, trailer, first_new + 3, holder_used_stream)?;

    let start = find(&out, b"/Contents<", signed.len())
        .ok_or_else(|| CaError::Internal("the /Contents slot is missing".into()))?
        + b"/Contents".len();
    let end = start + 2 * RESERVED + 2;
    let ranges = format!("[0 {start:010} {end:010} {:010}]", out.len() - end);
    let at = find(&out, BYTE_RANGE_PLACEHOLDER, signed.len())
        .ok_or_else(|| CaError::Internal("the /ByteRange slot is missing".into()))?;
    out.get_mut(at..at + ranges.len())
        .ok_or_else(|| CaError::Internal("the /ByteRange slot is outside the file".into()))?
        .copy_from_slice(ranges.as_bytes());
    let mut hash = sha2::Sha384::new();
    hash.update(out.get(..start).unwrap_or_default());
    hash.update(out.get(end..).unwrap_or_default());
    Ok(Prepared { bytes: out, gap: (start, end), digest: hash.finalize().to_vec() })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Consecutive runs of object numbers: (first, offsets).
fn runs(offsets: &[(u32, usize)]) -> Vec<(u32, Vec<usize>)> {
    let mut runs: Vec<(u32, Vec<usize>)> = Vec::new();
    for (id, offset) in offsets {
        match runs.last_mut() {
            Some((first, list)) if *first + u32::try_from(list.len()).unwrap_or(u32::MAX) == *id => list.push(*offset),
            _ => runs.push((*id, vec![*offset])),
        }
    }
    runs
}

/// The update's cross-reference section, trailer and `startxref`: a table,
/// or (after a holder's xref stream) an uncompressed xref stream.
fn write_xref(
    out: &mut Vec<u8>,
    offsets: &[(u32, usize)],
    mut trailer: Dictionary,
    size: u32,
    as_stream: bool,
) -> Result<(), CaError> {
    let xref_at = out.len();
    if as_stream {
        let mut offsets = offsets.to_vec();
        offsets.push((size, xref_at));
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (first, list) in runs(&offsets) {
            index.push(Object::Integer(i64::from(first)));
            index.push(Object::Integer(i64::try_from(list.len()).map_err(CaError::encoding)?));
            for offset in list {
                data.push(1u8);
                data.extend_from_slice(&u32::try_from(offset).map_err(CaError::encoding)?.to_be_bytes());
                data.extend_from_slice(&[0, 0]);
            }
        }
        trailer.set("Type", Object::Name(b"XRef".to_vec()));
        trailer.set("Size", Object::Integer(i64::from(size) + 1));
        trailer.set("Index", Object::Array(index));
        trailer.set("W", Object::Array(vec![Object::Integer(1), Object::Integer(4), Object::Integer(2)]));
        trailer.set("Length", Object::Integer(i64::try_from(data.len()).map_err(CaError::encoding)?));
        out.extend_from_slice(format!("{size} 0 obj\n").as_bytes());
        write_dict(out, &trailer)?;
        out.extend_from_slice(b"\nstream\n");
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    } else {
        out.extend_from_slice(b"xref\n");
        for (first, list) in runs(offsets) {
            out.extend_from_slice(format!("{first} {}\n", list.len()).as_bytes());
            for offset in list {
                out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
            }
        }
        trailer.set("Size", Object::Integer(i64::from(size)));
        out.extend_from_slice(b"trailer\n");
        write_dict(out, &trailer)?;
        out.push(b'\n');
    }
    out.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
    Ok(())
}
