#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The HTTP edge of `qcert serve`, through the binary: connection limits
//! (header and idle timeouts, the connection cap, an announced oversize
//! body), and every malformed request answered with a problem document (or
//! an OCSP malformedRequest under /ocsp), the role checked before the input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

mod common;
use common::{output, qcert, serve};

fn init_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("home");
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    home
}

/// A running `qcert serve`, stopped with SIGTERM when dropped (also when a test fails).
struct Serving(Option<Child>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = stop_child(child);
        }
    }
}

fn stop_child(mut child: Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait().expect("wait")
}

/// Stop gracefully: SIGTERM, and `qcert serve` exits 0.
fn stop(mut serving: Serving) {
    let status = stop_child(serving.0.take().expect("running"));
    assert!(status.success(), "qcert serve exits 0 on SIGTERM: {status:?}");
}

fn start(cmd: Command) -> (Serving, String) {
    let (child, base) = serve(cmd);
    (Serving(Some(child)), base)
}

fn connect(base: &str) -> TcpStream {
    let addr = base.strip_prefix("http://").expect("http base");
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

/// One response off a kept-alive connection: (status, head, body).
fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read response head");
        assert_eq!(n, 1, "connection closed before a response head: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ascii head");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().expect("len")))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).expect("read body");
    (status, head.to_ascii_lowercase(), body)
}

/// True once the server closed the connection (EOF or reset), reading
/// whatever it sent before; false if it is still open after the read timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut sink = [0u8; 512];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// (method, url, content type, body, expected status)
type Case<'a> = (&'a str, String, Option<&'a str>, &'a [u8], u16);

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: qcert\r\n\r\n";

/// Send the start of a request's headers and then one header line every
/// 200 ms (a slow client that never finishes), until the server cuts it.
fn trickle_headers(s: &TcpStream) -> std::thread::JoinHandle<()> {
    let mut w = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        if w.write_all(b"GET /health HTTP/1.1\r\nHost: qcert\r\n").is_err() {
            return;
        }
        for i in 0..150 {
            std::thread::sleep(Duration::from_millis(200));
            if w.write_all(format!("X-Slow-{i}: x\r\n").as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn header_and_idle_timeouts_and_announced_oversize_bodies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = init_home(tmp.path());
    let mut cmd = qcert(&home);
    cmd.env("QCERT_HTTP_HEADER_TIMEOUT_SECS", "2").env("QCERT_HTTP_IDLE_TIMEOUT_SECS", "1");
    let (child, base) = start(cmd);

    // Keep-alive works: two requests on one connection, sent back to back.
    let mut s = connect(&base);
    for _ in 0..2 {
        s.write_all(HEALTH).expect("send");
        assert_eq!(read_response(&mut s).0, 200);
    }
    // ... and an idle kept-alive connection is closed.
    assert!(closed_by_server(&mut s), "an idle keep-alive connection is closed after the idle timeout");

    // A connection that opens and sends nothing is closed too.
    let mut silent = connect(&base);
    assert!(closed_by_server(&mut silent), "a silent connection is closed");

    // Headers trickled in (never idle, never complete) are cut by the header timeout.
    let mut slow = connect(&base);
    let writer = trickle_headers(&slow);
    assert!(closed_by_server(&mut slow), "half-sent headers are cut after the header timeout");
    writer.join().expect("writer");

    // Also for the next request on a kept-alive connection.
    let mut kept = connect(&base);
    kept.write_all(HEALTH).expect("send");
    assert_eq!(read_response(&mut kept).0, 200);
    let writer = trickle_headers(&kept);
    assert!(closed_by_server(&mut kept), "the second request's half-sent headers are cut too");
    writer.join().expect("writer");

    // A body that does not arrive: 408 once the header timeout passed again, and closed.
    let mut s = connect(&base);
    s.write_all(b"POST /api/v1/orders HTTP/1.1\r\nHost: qcert\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"pro")
        .expect("send");
    let (status, head, body) = read_response(&mut s);
    assert_eq!(status, 408, "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("urn:qcert:problem:body-timeout"));
    assert!(closed_by_server(&mut s), "closed after a slow body");

    // A body announced over the limit: 413 before a byte of it is sent
    // (also when the client waits for 100-continue).
    for expect in ["", "Expect: 100-continue\r\n"] {
        for path in ["/api/v1/orders", "/ocsp", "/api/v1/payments/webhook", "/nowhere"] {
            let mut s = connect(&base);
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: qcert\r\nContent-Type: application/json\r\n{expect}Content-Length: 10000000\r\n\r\n"
            );
            s.write_all(head.as_bytes()).expect("send head");
            let (status, head, body) = read_response(&mut s);
            assert_eq!(status, 413, "{path} {expect}: {head}");
            assert!(head.contains("content-type: application/problem+json"), "{head}");
            let p: serde_json::Value = serde_json::from_slice(&body).expect("problem");
            assert_eq!(p["type"], "urn:qcert:problem:body-too-large", "{p}");
        }
    }
    stop(child);
}

/// A connection to `base` from the loopback address `from` (Linux routes all of 127/8 to lo).
fn connect_from(base: &str, from: &str) -> TcpStream {
    let addr: std::net::SocketAddr = base.strip_prefix("http://").expect("http base").parse().expect("addr");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(format!("{from}:0").parse().expect("from")).expect("bind source");
        socket.connect(addr).await.expect("connect")
    });
    let s = s.into_std().expect("std");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

fn served(mut s: TcpStream) -> TcpStream {
    s.write_all(HEALTH).expect("send");
    assert_eq!(read_response(&mut s).0, 200);
    s
}

#[test]
fn the_connection_caps_hold_and_free() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = init_home(tmp.path());
    let mut cmd = qcert(&home);
    cmd.env("QCERT_HTTP_MAX_CONNECTIONS", "3")
        .env("QCERT_HTTP_MAX_CONNECTIONS_PER_CLIENT", "2")
        .env("QCERT_HTTP_HEADER_TIMEOUT_SECS", "60")
        .env("QCERT_HTTP_IDLE_TIMEOUT_SECS", "60");
    let (child, base) = start(cmd);

    // Two from one client address are served; a third from it is closed at once.
    let mut open = vec![served(connect(&base)), served(connect(&base))];
    let mut over = connect(&base);
    let _ = over.write_all(HEALTH);
    assert!(closed_by_server(&mut over), "a client's connection over its share is closed");
    // Another client takes the last slot.
    open.push(served(connect_from(&base, "127.0.0.2")));
    // With all three slots held, a fourth (another client again) is not served...
    let mut fourth = connect_from(&base, "127.0.0.3");
    fourth.write_all(HEALTH).expect("send");
    fourth.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    let mut byte = [0u8; 1];
    let waiting = fourth.read(&mut byte);
    assert!(
        matches!(&waiting, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the connection over the cap is not served: {waiting:?}"
    );
    // ... and is served once one closes.
    drop(open.remove(0));
    fourth.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    assert_eq!(read_response(&mut fourth).0, 200);
    // The ones still open stay served.
    for s in open {
        served(s);
    }
    drop(fourth);
    stop(child);
}

/// The CSC API's refusals: `{"error", "error_description"}` (not problem+json), never echoing input.
fn is_csc_error(status: u16, content_type: &str, body: &[u8]) -> bool {
    if status < 400 {
        return true;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    let text = String::from_utf8_lossy(body);
    (400..500).contains(&status)
        && content_type == "application/json"
        && v["error"].is_string()
        && v["error_description"].is_string()
        && !text.contains("zq9")
        && !text.contains("\\u0000")
}

fn is_ocsp_malformed(status: u16, content_type: &str, body: &[u8]) -> bool {
    use der::Decode;
    status == 200
        && content_type == "application/ocsp-response"
        && x509_ocsp::OcspResponse::from_der(body)
            .is_ok_and(|r| r.response_status == x509_ocsp::OcspResponseStatus::MalformedRequest)
}

#[test]
fn malformed_requests_get_problem_documents_and_the_role_comes_first_on_sqlite() {
    malformed_requests(None);
}

#[test]
fn malformed_requests_get_problem_documents_and_the_role_comes_first_on_postgres() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
    let db = rt.block_on(qcert_tests::TestDb::new(qcert_tests::Backend::Postgres));
    malformed_requests(Some(&db.url));
}

/// Every documented operation with malformed paths, queries and bodies,
/// without a token, with a wrong role and with the right one; then more.
fn malformed_requests(db_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let on_db = |mut c: Command| {
        if let Some(url) = db_url {
            c.env("QCERT_DATABASE_URL", url);
        }
        c
    };
    let (out, text) = output(on_db(qcert(&home)).arg("init"));
    assert!(out.status.success(), "{text}");
    let mut tokens = std::collections::HashMap::new();
    for (role, name) in [("admin", "ada"), ("ra-officer", "radu"), ("hotline-agent", "hana")] {
        let (out, text) = output(on_db(qcert(&home)).args(["operator", "add", "--role", role, name]));
        assert!(out.status.success(), "{text}");
        tokens.insert(role, String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let (child, base) = start(on_db(qcert(&home)));
    let spec: serde_json::Value = serde_json::from_str(qcert_portal::http::OPENAPI).expect("openapi");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let send = |method: &str, url: String, token: Option<&str>, ct: Option<&str>, body: Vec<u8>| {
            let mut r = client.request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            async move {
                let r = r.body(body).send().await.expect("send");
                let status = r.status().as_u16();
                let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                (status, ct, r.bytes().await.expect("body").to_vec())
            }
        };
        // Malformed variants of every documented operation.
        let bad_bodies: [(Option<&str>, &[u8]); 4] = [
            (Some("text/plain"), b"{\xff"),
            (None, b"\x00\x01"),
            (Some("application/json"), b"{\"years\": \"zq9x\", \"zq9\": "),
            (Some("application/json"), b"[1, 2, {\"a\": \xff}]"),
        ];
        let mut checked = 0;
        for (path, ops) in spec["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                let method = method.to_uppercase();
                let operator = op.get("security").is_some();
                let role = if path.starts_with("/api/v1/hotline") { "hotline-agent" } else { "ra-officer" };
                let wrong = if role == "hotline-agent" { "ra-officer" } else { "hotline-agent" };
                let needs = if path.starts_with("/api/v1/admin") { "admin" } else { role };
                for bad_path in ["%FF%FE", "%C0%AF", "..%2F..%2Fetc", "a%00b"] {
                    let concrete = path
                        .replace("{serial}", bad_path)
                        .replace("{name}", bad_path)
                        .replace("{request}", bad_path)
                        .replace("{token}", bad_path)
                        .replace("{id}", bad_path);
                    for query in ["", "?email=a&email=b", "?name=%FF", "?%=&&=x&email", "?email=a%00b"] {
                        for (ct, body) in &bad_bodies {
                            let url = format!("{base}{concrete}{query}");
                            let mut tries = vec![None, Some(tokens[wrong].as_str())];
                            if operator {
                                tries.push(Some(tokens[needs].as_str()));
                            }
                            for token in tries {
                                let (status, got_ct, answer) =
                                    send(&method, url.clone(), token, *ct, body.to_vec()).await;
                                checked += 1;
                                let what = format!(
                                    "{method} {url} token={token:?} ct={ct:?}: {status} {got_ct} {}",
                                    String::from_utf8_lossy(&answer)
                                );
                                assert!(status < 500, "{what}");
                                if path.starts_with("/ocsp") {
                                    assert!(is_ocsp_malformed(status, &got_ct, &answer), "{what}");
                                    continue;
                                }
                                if path.starts_with("/csc/") {
                                    assert!(is_csc_error(status, &got_ct, &answer), "{what}");
                                    continue;
                                }
                                if status < 400 {
                                    continue;
                                }
                                assert_eq!(got_ct, "application/problem+json", "{what}");
                                let p: serde_json::Value = serde_json::from_slice(&answer).expect("problem json");
                                assert!(
                                    p["type"].as_str().is_some_and(|t| t.starts_with("urn:qcert:problem:")),
                                    "{what}"
                                );
                                let text = String::from_utf8_lossy(&answer);
                                assert!(
                                    !text.contains("zq9") && !text.contains("\\u0000"),
                                    "never echoes input: {what}"
                                );
                                if operator && token.is_none() {
                                    assert_eq!(status, 401, "{what}");
                                } else if operator && token == Some(tokens[wrong].as_str()) {
                                    assert_eq!(
                                        (status, p["type"].as_str()),
                                        (403, Some("urn:qcert:problem:forbidden")),
                                        "role first: {what}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");

        // More that is not in the document: unknown paths and methods, bad content types.
        let cases: Vec<Case> = vec![
            ("GET", format!("{base}/nowhere"), None, b"", 404),
            ("GET", format!("{base}/%FF"), None, b"", 404),
            ("FOO", format!("{base}/health"), None, b"", 405),
            ("DELETE", format!("{base}/metrics"), None, b"", 405),
            ("PATCH", format!("{base}/api/v1/orders"), None, b"", 405),
            ("GET", format!("{base}/api/v1/certificates?email=a&email=b"), None, b"", 400),
            ("GET", format!("{base}/api/v1/certificates?email=a&name=b"), None, b"", 400),
            ("GET", format!("{base}/api/v1/certificates"), None, b"", 400),
            ("POST", format!("{base}/api/v1/orders"), None, b"{}", 415),
            ("POST", format!("{base}/api/v1/orders"), Some("text/plain"), b"{}", 415),
            ("POST", format!("{base}/api/v1/orders"), Some("application/json"), b"{", 400),
            ("POST", format!("{base}/api/v1/orders"), Some("application/json"), b"\xff{", 400),
            ("POST", format!("{base}/api/v1/orders"), Some("application/json"), b"{\"product\": 1}", 422),
            ("GET", format!("{base}/certs/%FF.pem"), None, b"", 400),
            ("GET", format!("{base}/crl/%FF"), None, b"", 400),
        ];
        for (method, url, ct, body, expect) in cases {
            let (status, got_ct, answer) = send(method, url.clone(), None, ct, body.to_vec()).await;
            let what = format!("{method} {url}: {status} {got_ct} {}", String::from_utf8_lossy(&answer));
            assert_eq!((status, got_ct.as_str()), (expect, "application/problem+json"), "{what}");
        }
        let dup = send("GET", format!("{base}/api/v1/certificates?email=a&email=b"), None, None, vec![]).await;
        assert!(String::from_utf8_lossy(&dup.2).contains("`email` is given more than once"), "{dup:?}");
        for (method, path, body) in [
            ("GET", "/ocsp", &b""[..]),
            ("PUT", "/ocsp", b"x"),
            ("GET", "/ocsp/", b""),
            ("DELETE", "/ocsp/MEMwQTA", b""),
            ("GET", "/ocsp/%FF%FE%FD", b""),
            ("GET", "/ocsp/%zz", b""),
            ("POST", "/ocsp", b"\x30\x03\x02\x01"),
            ("POST", "/ocsp/x", b""),
        ] {
            let (status, ct, answer) = send(method, format!("{base}{path}"), None, None, body.to_vec()).await;
            assert!(is_ocsp_malformed(status, &ct, &answer), "{method} {path}: {status} {ct}");
        }
    });
    stop(child);
}

/// JSON refusals name the field and what was wrong, never the value; a CSR
/// that is neither DER nor PEM is told so in plain words.
#[test]
fn json_and_csr_refusals_say_what_was_wrong() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = init_home(tmp.path());
    let (child, base) = start(qcert(&home));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let form = serde_json::json!({
            "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": "Popescu",
            "email": "ioana.popescu@example.ro", "country": "RO", "national_id": "1800101420010",
            "id_document_number": "RX123456", "publish": false, "language": "en"
        });
        let post = |body: serde_json::Value| {
            let r = client.post(format!("{base}/api/v1/orders")).json(&body);
            async move {
                let r = r.send().await.expect("send");
                (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("json"))
            }
        };
        let with = |key: &str, value: serde_json::Value| {
            let mut f = form.clone();
            f[key] = value;
            f
        };
        let mut missing = form.clone();
        missing.as_object_mut().expect("object").remove("email");
        let cases = [
            (missing, "email", "is missing"),
            (with("years", serde_json::json!("zq9-years")), "years", "has the wrong type"),
            (with("publish", serde_json::json!("zq9-yes")), "publish", "has the wrong type"),
            (with("pin", serde_json::json!("zq9-pin")), "pin", "is not a known field"),
        ];
        for (body, field, what) in cases {
            let (status, p) = post(body).await;
            assert_eq!(status, 422, "{p}");
            assert_eq!(p["field"], field, "{p}");
            let detail = p["detail"].as_str().expect("detail");
            assert!(detail.contains(&format!("`{field}` {what}")), "{p}");
            assert!(!p.to_string().contains("zq9"), "{p}");
        }

        // No field takes a NUL (PostgreSQL text cannot hold one).
        let (status, p) = post(with("given_name", serde_json::json!("Io\u{0}ana"))).await;
        assert_eq!((status, p["type"].as_str()), (422, Some("urn:qcert:problem:malformed-request")), "{p}");

        let (status, created) = post(form.clone()).await;
        assert_eq!(status, 201, "{created}");
        let order_url = created["order_url"].as_str().expect("order_url").to_owned();
        let token = order_url.rsplit('/').next().expect("token").to_owned();
        for junk in [&b"hello, this is my key"[..], b"\x01\x02\x03", b"-----BEGIN CERTIFICATE REQUEST-----\n%%%\n"] {
            let r =
                client.put(format!("{base}/api/v1/orders/{token}/csr")).body(junk.to_vec()).send().await.expect("put");
            assert_eq!(r.status(), 422);
            let p: serde_json::Value = r.json().await.expect("problem");
            let detail = p["detail"].as_str().expect("detail");
            assert!(detail.contains("neither DER nor PEM") || detail.contains("PEM block is damaged"), "{p}");
            assert!(!detail.contains("hello") && !detail.contains("%%%"), "{p}");
        }
    });
    stop(child);
}

/// The loop hands each request its client address (`ConnectInfo`, as the
/// rate limits by client need), and on shutdown lets a request in progress
/// finish while accepting no new connection.
#[test]
fn requests_carry_the_client_address_and_shutdown_drains() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let release = Arc::new(tokio::sync::Notify::new());
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let entered_tx = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let held = release.clone();
        let app = axum::Router::new()
            .route(
                "/peer",
                axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/slow",
                axum::routing::get(move || {
                    let held = held.clone();
                    let entered = entered_tx.lock().expect("lock").take();
                    async move {
                        if let Some(tx) = entered {
                            let _ = tx.send(());
                        }
                        held.notified().await;
                        "done"
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = qcert_portal::server::Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_connections: 4,
            max_per_client: 0,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(qcert_portal::server::serve(listener, app, limits, async move {
            let _ = stop_rx.await;
        }));

        let client = reqwest::Client::new();
        let peer = client.get(format!("http://{addr}/peer")).send().await.expect("get").text().await.expect("text");
        let peer: SocketAddr = peer.parse().expect("a socket address");
        assert!(peer.ip().is_loopback() && peer.port() != addr.port(), "{peer}");

        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get(format!("http://{addr}/slow")).send().await?.text().await }
        });
        entered_rx.await.expect("the slow request is in its handler");
        stop_tx.send(()).expect("stop");
        // Once the listener is closed no new connection is accepted.
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the listener closes on shutdown");
        release.notify_one();
        assert_eq!(slow.await.expect("join").expect("the request in progress finishes"), "done");
        server.await.expect("join").expect("serve ends after draining");
    });
}
