//! The public order form's validation, through public entry points only:
//! the JSON body into `OrderForm` (as the portal reads it), then what
//! `Orders::create` checks before touching the database (product, years,
//! holder, ID document number), and that a holder which validates always
//! makes an encodable certificate subject and rfc822Name.
//!
//! Input: a JSON object (starts with `{`), or the form's fields one per line
//! (product, years, given name, surname, email, country, national id,
//! document number), which reaches odd strings faster than JSON does.
#![no_main]

use der::Encode;
use libfuzzer_sys::fuzz_target;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::holder::Holder;
use qcert_ca_core::orders::{OrderForm, Product};
use qcert_ca_core::{x509, ValidityYears};

fn validate(product: &str, years: u32, fields: [&str; 5], document: &str) {
    let _ = Product::parse(product);
    let _ = ValidityYears::new(years);
    let _ = DocumentNumber::parse(document);
    let [given_name, surname, email, country, national_id] = fields;
    let Ok(holder) = Holder::parse(given_name, surname, email, country, national_id) else { return };
    assert!(holder.common_name().chars().count() <= 64);
    assert!(holder.email.as_str().is_ascii());
    let subject = x509::holder_subject(&holder).expect("a validated holder makes a subject");
    assert!(subject.to_der().is_ok());
    x509::ia5(holder.email.as_str()).expect("a validated email is an IA5String");
}

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        let Ok(form) = serde_json::from_slice::<OrderForm>(data) else { return };
        validate(
            &form.product,
            form.years,
            [&form.given_name, &form.surname, &form.email, &form.country, &form.national_id],
            &form.id_document_number,
        );
    } else {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let mut lines = text.split('\n');
        let mut next = || lines.next().unwrap_or_default();
        let product = next();
        let years = next().trim().parse().unwrap_or(1);
        let fields = [next(), next(), next(), next(), next()];
        validate(product, years, fields, next());
    }
});
