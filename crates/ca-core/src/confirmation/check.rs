//! The upload check: a holder's signed confirmation document is our exact
//! prefilled bytes followed by exactly one incremental update, and that
//! update only fills the holder's signature field.
//!
//! What each increment *redefines* is judged, not only the signature: a
//! PDF can pass a signature check and still have its page changed in an
//! increment before the signature. So the document as the update leaves
//! it is compared object by object with the document we handed out:
//! - new objects must hang off the holder's field (its signature
//!   dictionary `/V`, its appearance `/AP` and what that uses), or be the
//!   document's XMP metadata stream (`/Type /Metadata`, named by the
//!   catalog: signing tools such as pyHanko update it) or the update's
//!   cross-reference stream;
//! - redefined objects may be the holder's field (only `/V`, `/AP`, `/AS`
//!   differ), the AcroForm (only `/SigFlags`, `/DR`, `/DA` differ; the
//!   fields stay ours), the catalog (only `/AcroForm`, `/Version`,
//!   `/Extensions` for the signature's developer extension and `/Metadata`
//!   differ; the AcroForm stays ours), the page
//!   (only `/Annots`, which must still name our two widgets and nothing
//!   else) and the document information dictionary (metadata only);
//! - nothing may be deleted, nothing else redefined (page content, fonts,
//!   resources, the QTSP's field: all refused).
//!
//! Then the holder's `/V`: `/SubFilter` `adbe.pkcs7.detached` or
//! `ETSI.CAdES.detached`, `/ByteRange [0 a b c]` covering the whole file
//! but the `/Contents` hex string, which lies in the update. The CMS inside
//! is verified by the caller against the registry's certificate.

use std::collections::{BTreeSet, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};
use sha2::Digest;

use super::document::{HOLDER_FIELD, QTSP_FIELD};
use crate::error::CaError;

/// Largest upload accepted, in bytes.
pub const MAX_UPLOAD: usize = 2 * 1024 * 1024;

/// What the check found in an acceptable upload.
#[derive(Debug, Clone)]
pub struct HolderSignature {
    /// The CMS SignedData (DER, without the zero padding of `/Contents`).
    pub cms: Vec<u8>,
    /// The two signed byte ranges `(offset, length)`.
    pub ranges: [(usize, usize); 2],
    /// `/SubFilter` of the signature dictionary.
    pub sub_filter: String,
}

impl HolderSignature {
    /// The signed bytes of `upload`, in order.
    pub fn signed_parts<'a>(&self, upload: &'a [u8]) -> Vec<&'a [u8]> {
        self.ranges.iter().filter_map(|(from, len)| upload.get(*from..from.saturating_add(*len))).collect()
    }
}

fn refuse(why: impl Into<String>) -> CaError {
    CaError::DocumentRefused(why.into())
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Check `upload` against the prefilled document (its SHA-256 hex and length).
pub fn check_upload(upload: &[u8], prefilled_sha256: &str, prefilled_size: usize) -> Result<HolderSignature, CaError> {
    if upload.len() > MAX_UPLOAD {
        return Err(refuse(format!("the file is larger than {MAX_UPLOAD} bytes")));
    }
    let ours = upload
        .get(..prefilled_size)
        .filter(|head| hex::encode(sha2::Sha256::digest(head)) == prefilled_sha256)
        .ok_or_else(|| {
            refuse(
                "the file does not start with the confirmation document downloaded for this certificate: \
                 download it again and sign it without changing or re-saving it",
            )
        })?;
    let tail = upload.get(prefilled_size..).unwrap_or_default();
    if tail.trim_ascii().is_empty() {
        return Err(refuse("the document is not signed: sign the holder's signature field, then upload it"));
    }
    let updates = count(tail, b"%%EOF");
    if !tail.trim_ascii_end().ends_with(b"%%EOF") {
        return Err(refuse("the file is truncated (it does not end with a complete PDF update)"));
    }
    if updates != 1 || count(tail, b"startxref") != 1 {
        return Err(refuse(format!(
            "the file has {updates} updates after the downloaded document; exactly one, the holder's signature, is \
             accepted (nothing may be changed before signing)"
        )));
    }

    let before = Document::load_mem(ours).map_err(|e| CaError::Internal(format!("the prefilled document: {e}")))?;
    // lopdf is a third-party parser of outsider input: a panic in it is a
    // refusal too, never a dropped connection.
    let unreadable = || refuse("the file is not a readable PDF (truncated or damaged)");
    let after =
        std::panic::catch_unwind(|| Document::load_mem(upload)).map_err(|_| unreadable())?.map_err(|_| unreadable())?;
    if after.trailer.has(b"Encrypt") {
        return Err(refuse("the file is encrypted"));
    }
    if after.xref_start < prefilled_size || prev_of_last_xref(upload, after.xref_start) != Some(before.xref_start) {
        return Err(refuse("the update does not continue the downloaded document"));
    }

    let layout = Layout::of(&before)?;
    let holder = after
        .get_object(layout.holder)
        .and_then(Object::as_dict)
        .map_err(|_| refuse("the holder's signature field is missing"))?;
    let mut allowed_new = hanging_off(&after, holder, &before);
    allowed_new.extend(new_metadata(&after, &before));
    compare(&before, &after, &layout, &allowed_new)?;
    signature(&after, holder, upload, prefilled_size)
}

/// The `/Prev` of the cross-reference section at `xref_start` (a table's
/// trailer or an xref stream's dictionary).
fn prev_of_last_xref(upload: &[u8], xref_start: usize) -> Option<usize> {
    let section = upload.get(xref_start..)?;
    let at = section.windows(5).position(|w| w == b"/Prev")?;
    let rest = section.get(at + 5..)?;
    let digits: Vec<u8> =
        rest.iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Where our document keeps what the holder may touch.
struct Layout {
    catalog: ObjectId,
    acroform: ObjectId,
    page: ObjectId,
    holder: ObjectId,
    qtsp: ObjectId,
    info: Option<ObjectId>,
}

impl Layout {
    fn of(doc: &Document) -> Result<Layout, CaError> {
        let internal = |what: &str| CaError::Internal(format!("the prefilled document has no {what}"));
        let catalog = doc.trailer.get(b"Root").and_then(Object::as_reference).map_err(|_| internal("catalog"))?;
        let cat = doc.get_object(catalog).and_then(Object::as_dict).map_err(|_| internal("catalog"))?;
        let acroform = cat.get(b"AcroForm").and_then(Object::as_reference).map_err(|_| internal("AcroForm"))?;
        let form = doc.get_object(acroform).and_then(Object::as_dict).map_err(|_| internal("AcroForm"))?;
        let fields = form.get(b"Fields").and_then(Object::as_array).map_err(|_| internal("fields"))?;
        let named = |name: &str| {
            fields
                .iter()
                .filter_map(|f| f.as_reference().ok())
                .find(|id| {
                    doc.get_object(*id)
                        .and_then(Object::as_dict)
                        .and_then(|d| d.get(b"T"))
                        .and_then(Object::as_str)
                        .is_ok_and(|t| t == name.as_bytes())
                })
                .ok_or_else(|| internal(name))
        };
        let page = *doc.get_pages().values().next().ok_or_else(|| internal("page"))?;
        Ok(Layout {
            catalog,
            acroform,
            page,
            holder: named(HOLDER_FIELD)?,
            qtsp: named(QTSP_FIELD)?,
            info: doc.trailer.get(b"Info").and_then(Object::as_reference).ok(),
        })
    }
}

/// Objects new in `after` reachable from the holder field's `/V` and `/AP`
/// through new objects only.
fn hanging_off(after: &Document, holder: &Dictionary, before: &Document) -> HashSet<ObjectId> {
    let mut seen = HashSet::new();
    let mut todo: Vec<&Object> = [b"V".as_slice(), b"AP"].iter().filter_map(|k| holder.get(k).ok()).collect();
    while let Some(o) = todo.pop() {
        match o {
            Object::Reference(id) => {
                if before.objects.contains_key(id) || !seen.insert(*id) {
                    continue;
                }
                if let Ok(target) = after.get_object(*id) {
                    todo.push(target);
                }
            }
            Object::Array(items) => todo.extend(items),
            Object::Dictionary(d) => todo.extend(d.iter().map(|(_, v)| v)),
            Object::Stream(s) => todo.extend(s.dict.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    seen
}

/// The catalog's `/Metadata` if it is a new XMP metadata stream.
fn new_metadata(after: &Document, before: &Document) -> Option<ObjectId> {
    let id = after.catalog().ok()?.get(b"Metadata").ok()?.as_reference().ok()?;
    let stream = after.get_object(id).ok()?.as_stream().ok()?;
    let xmp = stream.dict.has_type(b"Metadata")
        && stream.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|s| s == b"XML");
    (xmp && !before.objects.contains_key(&id)).then_some(id)
}

/// Same value, whatever the string syntax (literal or hex) and stream offsets.
fn same(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::String(x, _), Object::String(y, _)) => x == y,
        (Object::Array(x), Object::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Object::Dictionary(x), Object::Dictionary(y)) => same_dict(x, y, &[]),
        (Object::Stream(x), Object::Stream(y)) => x.content == y.content && same_dict(&x.dict, &y.dict, &[]),
        (Object::Real(x), Object::Real(y)) => (x - y).abs() < 1e-4,
        (Object::Integer(x), Object::Real(y)) | (Object::Real(y), Object::Integer(x)) => (*x as f32 - y).abs() < 1e-4,
        _ => a == b,
    }
}

/// The keys whose values differ (either side), other than `ignored`.
fn differing_keys(a: &Dictionary, b: &Dictionary, ignored: &[&[u8]]) -> BTreeSet<String> {
    let keys: BTreeSet<&Vec<u8>> = a.iter().chain(b.iter()).map(|(k, _)| k).collect();
    keys.into_iter()
        .filter(|k| !ignored.contains(&k.as_slice()))
        .filter(|k| match (a.get(k), b.get(k)) {
            (Ok(x), Ok(y)) => !same(x, y),
            _ => true,
        })
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn same_dict(a: &Dictionary, b: &Dictionary, ignored: &[&[u8]]) -> bool {
    differing_keys(a, b, ignored).is_empty()
}

fn compare(before: &Document, after: &Document, l: &Layout, allowed_new: &HashSet<ObjectId>) -> Result<(), CaError> {
    for (id, old) in &before.objects {
        let what = describe(l, *id, old);
        let Some(new) = after.objects.get(id) else {
            return Err(refuse(format!("the update removes {what} (object {})", id.0)));
        };
        if same(old, new) {
            continue;
        }
        let (Ok(old_d), Ok(new_d)) = (old.as_dict(), new.as_dict()) else {
            return Err(refuse(format!("the update changes {what} (object {})", id.0)));
        };
        let allowed: &[&[u8]] = if *id == l.holder {
            &[b"V", b"AP", b"AS"]
        } else if *id == l.acroform {
            &[b"SigFlags", b"DR", b"DA"]
        } else if *id == l.catalog {
            &[b"AcroForm", b"Version", b"Extensions", b"Metadata"]
        } else if *id == l.page {
            &[b"Annots"]
        } else if Some(*id) == l.info {
            // Metadata only (producer, dates): it changes nothing on the page.
            continue;
        } else {
            &[]
        };
        let changed = differing_keys(old_d, new_d, allowed);
        if !changed.is_empty() {
            let keys = changed.into_iter().collect::<Vec<_>>().join(", ");
            return Err(refuse(format!("the update changes {what} (object {}: {keys})", id.0)));
        }
        if *id == l.catalog && !new_d.get(b"AcroForm").is_ok_and(|f| same(f, &Object::Reference(l.acroform))) {
            return Err(refuse("the update replaces the document's form"));
        }
        if *id == l.page {
            let annots = new_d.get(b"Annots").and_then(|a| after.dereference(a)).and_then(|(_, a)| a.as_array());
            let ours = [Object::Reference(l.holder), Object::Reference(l.qtsp)];
            if !annots.is_ok_and(|a| a.len() == 2 && a.iter().zip(&ours).all(|(x, y)| same(x, y))) {
                return Err(refuse("the update adds or removes annotations on the page (only signing is allowed)"));
            }
        }
    }
    for (id, new) in &after.objects {
        if before.objects.contains_key(id) || allowed_new.contains(id) {
            continue;
        }
        if new.as_stream().is_ok_and(|s| s.dict.has_type(b"XRef")) {
            continue;
        }
        return Err(refuse(format!(
            "the update adds {} (object {}) that is not part of the holder's signature",
            kind_of(new),
            id.0
        )));
    }
    Ok(())
}

fn kind_of(o: &Object) -> String {
    let dict = o.as_dict().ok().or_else(|| o.as_stream().ok().map(|s| &s.dict));
    match dict.and_then(|d| d.get(b"Type").and_then(Object::as_name).ok()) {
        Some(b"Annot") => "an annotation".into(),
        Some(b"Page") => "a page".into(),
        Some(t) => format!("an object of type {}", String::from_utf8_lossy(t)),
        None if o.as_stream().is_ok() => "a content stream".into(),
        None => "an object".into(),
    }
}

fn describe(l: &Layout, id: ObjectId, o: &Object) -> String {
    if id == l.page {
        "the page".into()
    } else if id == l.catalog {
        "the document catalog".into()
    } else if id == l.qtsp {
        "the QTSP's signature field".into()
    } else if id == l.holder {
        "the holder's signature field".into()
    } else if o.as_stream().is_ok() {
        "the page's content".into()
    } else {
        match o.as_dict().ok().and_then(|d| d.get(b"Type").and_then(Object::as_name).ok()) {
            Some(b"Font") => "a font".into(),
            Some(b"Pages") => "the page tree".into(),
            _ => "the document".into(),
        }
    }
}

/// The holder's signature dictionary, its byte range and CMS.
fn signature(after: &Document, holder: &Dictionary, upload: &[u8], ours: usize) -> Result<HolderSignature, CaError> {
    let sig = holder
        .get(b"V")
        .and_then(|v| after.dereference(v))
        .and_then(|(_, v)| v.as_dict())
        .map_err(|_| refuse("the holder's signature field is not signed"))?;
    let name = |k: &[u8]| sig.get(k).and_then(Object::as_name).map(|n| String::from_utf8_lossy(n).into_owned());
    let sub_filter = name(b"SubFilter").unwrap_or_default();
    if sub_filter != "adbe.pkcs7.detached" && sub_filter != "ETSI.CAdES.detached" {
        return Err(refuse(format!(
            "the signature's format {sub_filter:?} is not accepted (use PAdES: adbe.pkcs7.detached or \
             ETSI.CAdES.detached)"
        )));
    }
    let certifies = sig.get(b"Reference").and_then(Object::as_array).is_ok_and(|refs| {
        refs.iter().filter_map(|r| after.dereference(r).ok()).filter_map(|(_, r)| r.as_dict().ok()).any(|r| {
            r.get(b"TransformMethod").and_then(Object::as_name).is_ok_and(|m| m == b"DocMDP")
                && r.get(b"TransformParams")
                    .and_then(Object::as_dict)
                    .and_then(|p| p.get(b"P"))
                    .and_then(Object::as_i64)
                    .is_ok_and(|p| p == 1)
        })
    });
    if certifies {
        return Err(refuse(
            "the signature certifies the document against any change: sign it as an approval signature",
        ));
    }
    let range: Vec<usize> = sig
        .get(b"ByteRange")
        .and_then(Object::as_array)
        .map_err(|_| refuse("the signature has no byte range"))?
        .iter()
        .map(|n| n.as_i64().ok().and_then(|n| usize::try_from(n).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| refuse("the signature's byte range is not four non-negative numbers"))?;
    let [0, a, b, c] = range.as_slice() else {
        return Err(refuse("the signature's byte range is not four numbers starting at 0"));
    };
    let (a, b, c) = (*a, *b, *c);
    let gap =
        upload.get(a..b).filter(|_| b.checked_add(c) == Some(upload.len()) && a >= ours && b > a.saturating_add(1));
    let Some(gap) = gap else {
        return Err(refuse("the signature's byte range does not cover the whole file except its /Contents"));
    };
    let hex_digits = gap.get(1..gap.len() - 1).unwrap_or_default();
    let contents =
        sig.get(b"Contents").and_then(Object::as_str).map_err(|_| refuse("the signature has no /Contents"))?;
    let matches = gap.first() == Some(&b'<')
        && gap.last() == Some(&b'>')
        && hex_digits.iter().all(u8::is_ascii_hexdigit)
        && hex::decode(hex_digits).is_ok_and(|d| d == *contents);
    if !matches {
        return Err(refuse("the signature's byte range does not cover the whole file except its /Contents"));
    }
    Ok(HolderSignature { cms: strip_padding(contents)?, ranges: [(0, a), (b, c)], sub_filter })
}

/// `/Contents` is the DER SignedData followed by zero padding.
fn strip_padding(contents: &[u8]) -> Result<Vec<u8>, CaError> {
    let bad = || refuse("the signature's /Contents is not a CMS SignedData");
    let mut reader = der::SliceReader::new(contents).map_err(|_| bad())?;
    let header = der::Header::decode(&mut reader).map_err(|_| bad())?;
    let total =
        usize::try_from(header.encoded_len().and_then(|h| h + header.length).map_err(|_| bad())?).map_err(|_| bad())?;
    let (der, padding) = (contents.get(..total).ok_or_else(bad)?, contents.get(total..).unwrap_or_default());
    if padding.iter().any(|b| *b != 0) {
        return Err(bad());
    }
    Ok(der.to_vec())
}

use der::{Decode as _, Encode as _};
