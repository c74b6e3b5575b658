#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)] // test code: a panic is the failure report
//! The desk login over HTTP on both stores, with kanidm's software
//! security key playing the browser's authenticator: enrolment through
//! the link, password + key login, wrong password, throttling, the idle
//! limit on the injected clock, disabling an operator ending their open
//! session, logout, CSRF tokens missing or wrong, and cross-site posts.

mod common;

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

/// A form post with a session cookie (`name=value`).
async fn post_as(http: &Client, url: &str, cookie: &str, form: &[(&str, &str)]) -> Response {
    http.post(url).header(COOKIE, cookie).form(form).send().await.unwrap()
}

/// The security-key step of half-login `pending`: the key page (returned)
/// and the key's answer posted with that page's CSRF token.
async fn key_step(http: &Client, base: &str, pending: &str, key: &mut SoftKey) -> (String, Response) {
    let page = body(http.get(format!("{base}/desk/login/key")).header(COOKIE, pending).send().await.unwrap()).await;
    let answer = key.sign(&data(&page, "options"));
    let form = [("csrf", field(&page, "csrf")), ("credential", answer)];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_as(http, &format!("{base}/desk/login/key"), pending, &form).await;
    (page, r)
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
    let hugo_token = ops.add("test", "hugo", Role::HotlineAgent).await.unwrap().expose().to_owned();
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
    // The operator makes her own API token: shown once to her, the old one ends at once.
    let hotline_api = |token: String| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/hotline/revocations"));
        async move { http.post(url).bearer_auth(token).json(&serde_json::json!({})).send().await.unwrap().status() }
    };
    assert_ne!(hotline_api(hugo_token.clone()).await, StatusCode::UNAUTHORIZED, "the token from `operator add` works");
    let page = body(http.get(format!("{base}/desk/api-token")).header(COOKIE, &cookie).send().await.unwrap()).await;
    assert!(page.contains("action=\"/desk/api-token\"") && !page.contains("qcop_"), "{page}");
    let r = post_as(&http, &format!("{base}/desk/api-token"), &cookie, &[("csrf", "")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token, no new API token");
    let r = post_as(&http, &format!("{base}/desk/api-token"), &cookie, &[("csrf", csrf.as_str())]).await;
    assert_eq!((r.status(), r.headers()["cache-control"].to_str().unwrap()), (StatusCode::OK, "no-store"));
    let page = body(r).await;
    let new_token = page
        .split("id=\"api-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("the token on {page}"))
        .to_owned();
    assert!(new_token.starts_with("qcop_") && new_token != hugo_token, "{new_token}");
    assert_eq!(hotline_api(hugo_token).await, StatusCode::UNAUTHORIZED, "the old token ends");
    assert_ne!(hotline_api(new_token.clone()).await, StatusCode::UNAUTHORIZED, "the new one works");
    let q = qcert_ca_core::store::audit::AuditQuery { action: Some("operator.token"), limit: 10, ..Default::default() };
    let entries = ca.registry().audit_search(&q).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].subject == "hugo" && !format!("{:?}", entries[0]).contains(&new_token[5..]), "{:?}", entries[0]);

    // Romanian on request, then kept for the operator.
    let r = http.get(format!("{base}/desk?lang=ro")).header(COOKIE, &cookie).send().await.unwrap();
    assert!(body(r).await.contains("Biroul operatorilor"));
    let r = http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap();
    assert!(body(r).await.contains("<html lang=\"ro\">"));

    // Logout without the token, with a wrong one, or cross-site: refused, the session stays.
    for token in ["", "0000000000000000000000000000000000000000000000000000000000000000"] {
        let r = post_as(&http, &format!("{base}/desk/logout"), &cookie, &[("csrf", token)]).await;
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
    let r = post_as(&http, &format!("{base}/desk/logout"), &cookie, &[("csrf", ada_csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The right token ends the session and clears the cookie.
    let r = post_as(&http, &format!("{base}/desk/logout"), &cookie, &[("csrf", csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(set_cookie(&r).as_deref(), Some("qcert-desk="));
    assert_eq!(
        http.get(format!("{base}/desk")).header(COOKIE, &cookie).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    server.task.abort();
}
on_both_stores!(session_pages_need_a_session_and_a_csrf_token);

/// The `<pre ... id="enrolment-link">` of a link page.
fn link_of(html: &str) -> String {
    let at = html.find("id=\"enrolment-link\">").unwrap_or_else(|| panic!("no link in {html}"));
    let rest = &html[at + 20..];
    rest[..rest.find('<').unwrap()].trim().to_owned()
}

async fn pages_enrol_log_in_limit_and_disable(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_desk(desk).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    ops.add("test", "ada", Role::Admin).await.unwrap();
    ops.add("test", "hugo", Role::HotlineAgent).await.unwrap();
    let http = client();
    let base = &server.base;
    let origin = qcert_tests::desk::origin(&qcert_tests::desk::desk_login(&ca, base));
    assert!(origin.starts_with("http://localhost:"), "{origin}");
    let (_, ada) = session_cookie(&ca, base, "ada").await;
    let ada = format!("qcert-desk={ada}");
    let page = body(http.get(format!("{base}/desk/admin/operators")).header(COOKIE, &ada).send().await.unwrap()).await;
    assert!(page.contains("hugo") && page.contains("ada"), "{page}");
    let ada_csrf = field(&page, "csrf");
    // Only admins.
    let (_, hugo) = session_cookie(&ca, base, "hugo").await;
    let r = http
        .get(format!("{base}/desk/admin/operators"))
        .header(COOKIE, format!("qcert-desk={hugo}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The admin creates rita; the page shows her enrolment link once.
    let r = post_as(
        &http,
        &format!("{base}/desk/admin/operators"),
        &ada,
        &[("csrf", ada_csrf.as_str()), ("name", "rita"), ("role", "ra-officer")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let link = link_of(&body(r).await);
    assert!(link.starts_with(&format!("{origin}/desk/enrol#")), "{link}");
    let token = link.rsplit('#').next().unwrap().to_owned();
    // Without the token the admin form is refused.
    let r = post_as(&http, &format!("{base}/desk/admin/operators"), &ada, &[("name", "x"), ("role", "admin")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Enrolment: the page, then password (mismatch, weak, unknown link refused), then the key.
    let enrol = body(http.get(format!("{base}/desk/enrol")).send().await.unwrap()).await;
    assert!(
        enrol.contains("data-from-fragment") && enrol.contains("/static/desk-login.js") && !enrol.contains("<script>"),
        "{enrol}"
    );
    let post = |form: Vec<(&'static str, String)>| {
        let (http, url) = (http.clone(), format!("{base}/desk/enrol"));
        async move { http.post(url).form(&form).send().await.unwrap() }
    };
    let r = post(vec![
        ("token", token.clone()),
        ("password", PASSWORD.into()),
        ("password2", "something else entirely".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(vec![("token", token.clone()), ("password", "short".into()), ("password2", "short".into())]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!body(r).await.contains("value=\"short\""), "a password is never echoed");
    let r = post(vec![("token", "A".repeat(43)), ("password", PASSWORD.into()), ("password2", PASSWORD.into())]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(vec![("token", token.clone()), ("password", PASSWORD.into()), ("password2", PASSWORD.into())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let step = body(r).await;
    let mut key = SoftKey::new(&origin);
    let reg = key.register(&data(&step, "options"));
    let r = http
        .post(format!("{base}/desk/enrol/key"))
        .form(&[("token", token.as_str()), ("credential", reg.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(body(r).await.contains("/desk/login?enrolled=1"));
    let r = http
        .post(format!("{base}/desk/enrol/key"))
        .form(&[("token", token.as_str()), ("credential", reg.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the link works once");

    // Login: password, then key.
    let login = |name: &'static str, password: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/desk/login"));
        async move { http.post(url).form(&[("name", name), ("password", password)]).send().await.unwrap() }
    };
    let r = login("rita", "wrong password here").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = body(r).await;
    assert!(
        page.contains("not accepted") && page.contains("value=\"rita\"") && !page.contains("wrong password here"),
        "{page}"
    );
    let r = login("rita", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/desk/login/key");
    let pending = set_cookie(&r).unwrap();
    assert_eq!(
        http.get(format!("{base}/desk")).header(COOKIE, &pending).send().await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "a half-login opens no page"
    );
    let page = body(http.get(format!("{base}/desk/login/key")).header(COOKIE, &pending).send().await.unwrap()).await;
    let csrf = field(&page, "csrf");
    let answer = key.sign(&data(&page, "options"));
    let r = post_as(&http, &format!("{base}/desk/login/key"), &pending, &[("credential", answer.as_str())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = post_as(
        &http,
        &format!("{base}/desk/login/key"),
        &pending,
        &[("csrf", csrf.as_str()), ("credential", answer.as_str())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/desk");
    let rita = set_cookie(&r).unwrap();
    assert_ne!(rita, pending, "a new id after the second factor");
    let home = body(http.get(format!("{base}/desk")).header(COOKIE, &rita).send().await.unwrap()).await;
    assert!(home.contains("rita") && home.contains("/desk/ra"), "{home}");

    // Idle for 15 minutes: signed out.
    clock.advance(time::Duration::minutes(16));
    assert_eq!(
        http.get(format!("{base}/desk")).header(COOKIE, &rita).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    // (the admin's session idled out too: sign in again)
    let (_, ada) = session_cookie(&ca, base, "ada").await;
    let ada = format!("qcert-desk={ada}");
    let ada_csrf =
        field(&body(http.get(format!("{base}/desk")).header(COOKIE, &ada).send().await.unwrap()).await, "csrf");

    // A fresh login, then the admin disables rita: her open session fails at once.
    let r = login("rita", PASSWORD).await;
    let pending = set_cookie(&r).unwrap();
    let (_, r) = key_step(&http, base, &pending, &mut key).await;
    let rita = set_cookie(&r).unwrap();
    let rita_csrf =
        field(&body(http.get(format!("{base}/desk")).header(COOKIE, &rita).send().await.unwrap()).await, "csrf");
    let r = post_as(&http, &format!("{base}/desk/admin/operators/rita/disable"), &ada, &[("csrf", ada_csrf.as_str())])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        http.get(format!("{base}/desk")).header(COOKIE, &rita).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let r = post_as(&http, &format!("{base}/desk/logout"), &rita, &[("csrf", rita_csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(login("rita", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let page = body(http.get(format!("{base}/desk/admin/operators")).header(COOKIE, &ada).send().await.unwrap()).await;
    assert!(page.contains("disabled"), "{page}");
    // The last admin cannot disable herself.
    let r =
        post_as(&http, &format!("{base}/desk/admin/operators/ada/disable"), &ada, &[("csrf", ada_csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // TOTP allowed by the admin shows on the list; a reset gives a new link.
    let r = post_as(
        &http,
        &format!("{base}/desk/admin/operators/hugo/totp"),
        &ada,
        &[("csrf", ada_csrf.as_str()), ("allow", "yes")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = body(http.get(format!("{base}/desk/admin/operators")).header(COOKIE, &ada).send().await.unwrap()).await;
    assert!(page.contains("TOTP allowed") && page.contains("Forbid TOTP"), "{page}");
    let r =
        post_as(&http, &format!("{base}/desk/admin/operators/hugo/reset"), &ada, &[("csrf", ada_csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(link_of(&body(r).await).starts_with(&format!("{origin}/desk/enrol#")));

    // Throttling: 10 password tries per name per 5 minutes.
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(login("hugo", "wrong password here").await.status());
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    // Cross-site login posts are refused before any check.
    let r = http
        .post(format!("{base}/desk/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("name", "ada"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    server.task.abort();
}
on_both_stores!(pages_enrol_log_in_limit_and_disable);

/// How the first admin gets in, through the `qcert` binary: `operator add`,
/// `operator enrol` prints the link (origin from `QCERT_DESK_ORIGIN`), the
/// served desk takes the enrolment and the login; `operator totp` allows
/// the fallback, and a second `enrol` of an enrolled account needs `--reset`.
#[test]
fn the_first_admin_enrols_from_the_cli() {
    use common::{output, qcert, serve};
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let origin = "http://localhost:8080";
    let q = || {
        let mut c = qcert(&home);
        c.env("QCERT_DESK_ORIGIN", origin);
        c
    };
    let (out, text) = output(q().arg("init"));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(q().args(["operator", "add", "--role", "admin", "ada"]));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(q().args(["operator", "enrol", "ada"]));
    assert!(out.status.success(), "{text}");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(link.starts_with("http://localhost:8080/desk/enrol#"), "{text}");
    let token = link.rsplit('#').next().unwrap().to_owned();
    let (out, text) = output(q().args(["operator", "enrol", "nobody"]));
    assert!(!out.status.success() && text.contains("no active operator"), "{text}");

    let (mut child, base) = serve(q());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = client();
        let r = http
            .post(format!("{base}/desk/enrol"))
            .form(&[("token", token.as_str()), ("password", PASSWORD), ("password2", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut key = SoftKey::new(origin);
        let reg = key.register(&data(&body(r).await, "options"));
        let r = http
            .post(format!("{base}/desk/enrol/key"))
            .form(&[("token", token.as_str()), ("credential", reg.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = http
            .post(format!("{base}/desk/login"))
            .form(&[("name", "ada"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let pending = set_cookie(&r).unwrap();
        let (page, r) = key_step(&http, &base, &pending, &mut key).await;
        assert!(!page.contains("action=\"/desk/login/totp\""), "no TOTP unless allowed");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let ada = set_cookie(&r).unwrap();
        let home_page = body(http.get(format!("{base}/desk")).header(COOKIE, &ada).send().await.unwrap()).await;
        assert!(home_page.contains("/desk/admin/operators"), "{home_page}");
    });
    let _ = child.kill();
    let _ = child.wait();
    let (out, text) = output(q().args(["operator", "enrol", "ada"]));
    assert!(!out.status.success() && text.contains("reset"), "{text}");
    let (out, text) = output(q().args(["operator", "enrol", "ada", "--reset"]));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("/desk/enrol#"), "{text}");
    let (out, text) = output(q().args(["operator", "totp", "ada"]));
    assert!(out.status.success() && text.contains("allowed"), "{text}");
    let (out, text) = output(q().args(["operator", "totp", "ada", "--forbid"]));
    assert!(out.status.success() && text.contains("forbidden"), "{text}");
}
