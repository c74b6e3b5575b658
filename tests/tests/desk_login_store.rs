#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The desk login in ca-core on both stores: enrolment links (once, 72 h,
//! superseded), password + security key (a real WebAuthn software key),
//! throttling, session limits on the injected clock, disabling and reset
//! ending sessions, the TOTP fallback only where allowed, and the audit
//! trail (which never holds a secret).

use qcert_ca_core::desk_login::{DeskLogin, DeskPassword, Secret};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::store::audit::AuditQuery;
use qcert_ca_core::{CaError, Clock, FixedClock, Registry};
use qcert_tests::desk::{desk_login, enrol, sign_in, SoftKey, PASSWORD};
use qcert_tests::*;
use time::Duration;

const BASE: &str = "http://127.0.0.1:8080";

async fn audit_tail(registry: &Registry, action: &str) -> Vec<(String, String, String, String)> {
    let q = AuditQuery { action: Some(action), limit: 1000, ..Default::default() };
    let mut out: Vec<_> = registry
        .audit_search(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.subject, e.outcome, e.detail))
        .collect();
    out.reverse();
    out
}

async fn setup(db: &TestDb) -> (DeskLogin, Operators, std::sync::Arc<FixedClock>) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    ops.add("test", "ada", Role::Admin).await.unwrap();
    ops.add("test", "hugo", Role::HotlineAgent).await.unwrap();
    (desk_login(&ca, BASE), ops, clock)
}

async fn enrolment_and_login(db: &TestDb) {
    let (login, _ops, clock) = setup(db).await;
    // Not enrolled: the password step is refused like a wrong password.
    let e = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap_err();
    assert!(matches!(e, CaError::LoginRefused), "{e:?}");

    let link = login.enrolment_link("admin:ada", "hugo").await.unwrap();
    assert!(link.link.starts_with("http://localhost:8080/desk/enrol#"), "{}", link.link.as_str());
    assert!(link.link.ends_with(link.token.expose()));
    assert_eq!(login.enrolment(link.token.expose()).await.unwrap().unwrap().operator, "hugo");
    // A weak password never reaches the link.
    assert!(DeskPassword::choose("short").is_err());
    let mut key = SoftKey::new(&login.relying_party().origin());
    let options = login.begin_enrolment(link.token.expose(), DeskPassword::choose(PASSWORD).unwrap()).await.unwrap();
    let reg = key.register(&serde_json::to_string(&options).unwrap());
    // Junk instead of the key's answer: refused, the link stays usable.
    assert!(login.finish_enrolment(link.token.expose(), "{\"id\":1}").await.is_err());
    assert_eq!(login.finish_enrolment(link.token.expose(), &reg).await.unwrap(), "hugo");
    // Used once.
    assert!(login.enrolment(link.token.expose()).await.unwrap().is_none());
    assert!(matches!(login.finish_enrolment(link.token.expose(), &reg).await, Err(CaError::NotFound(_))));
    // A second link needs a reset.
    assert!(matches!(login.enrolment_link("admin:ada", "hugo").await, Err(CaError::Conflict(_))));

    // Password, then key: an active session under a new id.
    let pending = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    assert!(login.session(&pending).await.unwrap().is_none(), "a half-login is no session");
    let p = login.pending(&pending).await.unwrap().unwrap();
    assert_eq!((p.operator.as_str(), p.totp), ("hugo", false));
    let challenge = login.key_challenge(&pending).await.unwrap();
    let answer = key.sign(&serde_json::to_string(&challenge).unwrap());
    let id = login.login_key(&pending, &answer).await.unwrap();
    assert_ne!(id.expose(), pending.expose());
    let s = login.session(&id).await.unwrap().unwrap();
    assert_eq!((s.operator.name.as_str(), s.operator.role, s.language.as_str()), ("hugo", Role::HotlineAgent, "en"));
    assert_eq!(s.expires_at, clock.now().unix_timestamp() + 12 * 3600);
    assert!(login.pending(&pending).await.unwrap().is_none(), "the half-login is gone");
    // The same assertion again (a replay) opens nothing.
    let again = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    login.key_challenge(&again).await.unwrap();
    assert!(matches!(login.login_key(&again, &answer).await, Err(CaError::LoginRefused)));
    // ... and used the challenge: the right answer to it comes too late.
    assert!(matches!(login.login_key(&again, &answer).await, Err(CaError::LoginRefused)));

    // A forged signature is refused (and uses the challenge).
    let other = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    let challenge = login.key_challenge(&other).await.unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_str(&key.sign(&serde_json::to_string(&challenge).unwrap())).unwrap();
    forged["response"]["signature"] = serde_json::Value::String("MEUCIQDx".into());
    assert!(matches!(login.login_key(&other, &forged.to_string()).await, Err(CaError::LoginRefused)));

    // Language is kept per operator.
    login.set_language("hugo", "ro").await.unwrap();
    assert_eq!(login.session(&id).await.unwrap().unwrap().language, "ro");
    assert!(login.set_language("hugo", "xx").await.is_err());

    // Logout ends it.
    login.logout(&id).await.unwrap();
    assert!(login.session(&id).await.unwrap().is_none());

    let logins = audit_tail(&db.registry, "desk.login").await;
    assert!(
        logins
            .iter()
            .any(|(a, s, o, d)| a == "desk:hugo" && s == "hugo" && o == "success" && d.contains("security key")),
        "{logins:?}"
    );
    assert!(logins.iter().any(|(_, s, o, d)| s == "hugo" && o == "failure" && d == "security key"), "{logins:?}");
    assert_eq!(audit_tail(&db.registry, "desk.logout").await.len(), 1);
    let enrols = audit_tail(&db.registry, "desk.enrol").await;
    assert!(enrols.iter().any(|(_, s, o, _)| s == "hugo" && o == "success"), "{enrols:?}");
    assert_eq!(audit_tail(&db.registry, "desk.enrol-link").await.iter().filter(|e| e.2 == "success").count(), 1);
    assert_no_secret_in_audit(db, &[PASSWORD, link.token.expose(), id.expose(), pending.expose()]).await;
}
on_both_stores!(enrolment_and_login);

async fn assert_no_secret_in_audit(db: &TestDb, secrets: &[&str]) {
    let all = db.registry.audit_search(&AuditQuery { limit: 10_000, ..Default::default() }).await.unwrap();
    assert!(!all.is_empty());
    for e in all {
        for secret in secrets {
            let text = format!("{} {} {} {}", e.actor, e.subject, e.detail, e.personal.as_deref().unwrap_or_default());
            assert!(!text.contains(secret), "a secret in the audit log: {text}");
        }
    }
}

async fn wrong_password_and_throttle(db: &TestDb) {
    let (login, _ops, clock) = setup(db).await;
    let mut key = enrol(&login, "hugo", PASSWORD).await;
    for _ in 0..3 {
        assert!(matches!(
            login.login_password("hugo", DeskPassword::typed("wrong password!")).await,
            Err(CaError::LoginRefused)
        ));
    }
    // An unknown name: the same answer.
    assert!(matches!(login.login_password("nobody", DeskPassword::typed(PASSWORD)).await, Err(CaError::LoginRefused)));
    // 10 tries per name per 5 minutes: 3 used, 7 more, then refused even with the right password.
    for _ in 0..6 {
        let _ = login.login_password("hugo", DeskPassword::typed("wrong password!")).await;
    }
    assert!(login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.is_ok(), "the 10th try");
    let e = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap_err();
    assert!(matches!(e, CaError::RateLimited { retry_after_secs } if retry_after_secs <= 300), "{e:?}");
    // Another name is not affected; after the window the name may try again.
    assert!(matches!(login.login_password("ada", DeskPassword::typed(PASSWORD)).await, Err(CaError::LoginRefused)));
    clock.advance(Duration::minutes(5));
    let _ = sign_in(&login, "hugo", PASSWORD, &mut key).await;

    let fails = audit_tail(&db.registry, "desk.login").await;
    assert!(fails.iter().any(|(_, s, o, d)| s == "hugo" && o == "failure" && d == "password"), "{fails:?}");
    assert!(fails.iter().any(|(_, s, o, _)| s == "(unknown operator)" && o == "failure"), "{fails:?}");
    assert!(fails.iter().any(|(_, s, o, d)| s == "hugo" && o == "refused" && d.contains("too many")), "{fails:?}");
    assert!(!fails.iter().any(|(_, s, _, _)| s == "nobody"), "unknown names stay out of the log");
}
on_both_stores!(wrong_password_and_throttle);

async fn session_limits_on_the_clock(db: &TestDb) {
    let (login, _ops, clock) = setup(db).await;
    let mut key = enrol(&login, "hugo", PASSWORD).await;
    // Idle: 15 minutes without a request ends it.
    let id = sign_in(&login, "hugo", PASSWORD, &mut key).await;
    clock.advance(Duration::minutes(14));
    assert!(login.session(&id).await.unwrap().is_some(), "used at 14 min");
    clock.advance(Duration::minutes(14));
    assert!(login.session(&id).await.unwrap().is_some(), "14 min after the last use");
    clock.advance(Duration::minutes(15));
    assert!(login.session(&id).await.unwrap().is_none(), "15 min idle");
    // At most 12 h, however busy.
    let id = sign_in(&login, "hugo", PASSWORD, &mut key).await;
    for _ in 0..(12 * 6 - 1) {
        clock.advance(Duration::minutes(10));
        assert!(login.session(&id).await.unwrap().is_some());
    }
    clock.advance(Duration::minutes(10));
    assert!(login.session(&id).await.unwrap().is_none(), "12 h reached");
    // A half-login lives 10 minutes.
    let pending = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    let challenge = login.key_challenge(&pending).await.unwrap();
    let answer = key.sign(&serde_json::to_string(&challenge).unwrap());
    clock.advance(Duration::minutes(10));
    assert!(login.pending(&pending).await.unwrap().is_none());
    assert!(matches!(login.login_key(&pending, &answer).await, Err(CaError::LoginRefused)));
    // Ids of the wrong shape never reach the registry.
    assert!(Secret::parse("abc").is_none());
}
on_both_stores!(session_limits_on_the_clock);

async fn disable_and_reset_end_sessions(db: &TestDb) {
    let (login, ops, clock) = setup(db).await;
    let mut key = enrol(&login, "hugo", PASSWORD).await;
    let id = sign_in(&login, "hugo", PASSWORD, &mut key).await;
    // Reset: the old password, key and session are gone, a new link works.
    let link = login.reset("admin:ada", "hugo").await.unwrap();
    assert!(login.session(&id).await.unwrap().is_none(), "reset ends the session");
    assert!(matches!(login.login_password("hugo", DeskPassword::typed(PASSWORD)).await, Err(CaError::LoginRefused)));
    // A newer link supersedes it.
    let newer = login.reset("admin:ada", "hugo").await.unwrap();
    assert!(login.enrolment(link.token.expose()).await.unwrap().is_none());
    assert!(login.enrolment(newer.token.expose()).await.unwrap().is_some());
    // Links expire after 72 h.
    clock.advance(Duration::hours(72));
    assert!(login.enrolment(newer.token.expose()).await.unwrap().is_none());
    assert!(login.begin_enrolment(newer.token.expose(), DeskPassword::choose(PASSWORD).unwrap()).await.is_err());

    let mut key = enrol(&login, "hugo", PASSWORD).await;
    let id = sign_in(&login, "hugo", PASSWORD, &mut key).await;
    assert!(login.session(&id).await.unwrap().is_some());
    // Revoking the operator (the existing "disable") ends it at once.
    ops.revoke("admin:ada", "hugo").await.unwrap();
    assert!(login.session(&id).await.unwrap().is_none());
    assert!(matches!(login.login_password("hugo", DeskPassword::typed(PASSWORD)).await, Err(CaError::LoginRefused)));
    assert!(matches!(login.reset("admin:ada", "hugo").await, Err(CaError::NotFound(_))));
    assert!(login.accounts().await.unwrap().iter().any(|a| a.operator == "hugo" && a.revoked_at.is_some()));
    let resets = audit_tail(&db.registry, "desk.reset").await;
    assert!(resets.iter().any(|(a, s, o, _)| a == "admin:ada" && s == "hugo" && o == "success"), "{resets:?}");
    assert!(resets.iter().any(|(_, s, o, _)| s == "hugo" && o == "refused"), "{resets:?}");
}
on_both_stores!(disable_and_reset_end_sessions);

async fn totp_only_where_allowed(db: &TestDb) {
    let (login, _ops, clock) = setup(db).await;
    let _key = enrol(&login, "hugo", PASSWORD).await;
    assert!(matches!(login.begin_totp("hugo").await, Err(CaError::Forbidden(_))), "not allowed yet");
    let pending = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    assert!(matches!(login.login_totp(&pending, "123456").await, Err(CaError::LoginRefused)));

    login.set_totp_allowed("admin:ada", "hugo", true).await.unwrap();
    let secret = login.begin_totp("hugo").await.unwrap();
    let wrong = if secret.code_at(clock.now()).unwrap().as_str() == "000000" { "111111" } else { "000000" };
    assert!(login.confirm_totp("hugo", wrong).await.is_err());
    login.confirm_totp("hugo", secret.code_at(clock.now()).unwrap().as_str()).await.unwrap();
    assert!(login.pending(&pending).await.unwrap().unwrap().totp);

    // The confirming code's step is used: the next step's code logs in, once.
    clock.advance(Duration::seconds(30));
    let code = secret.code_at(clock.now()).unwrap();
    let id = login.login_totp(&pending, code.as_str()).await.unwrap();
    assert!(login.session(&id).await.unwrap().is_some());
    let again = login.login_password("hugo", DeskPassword::typed(PASSWORD)).await.unwrap();
    assert!(matches!(login.login_totp(&again, code.as_str()).await, Err(CaError::LoginRefused)), "a code works once");

    // Forbidding erases the secret: codes stop working.
    login.set_totp_allowed("admin:ada", "hugo", false).await.unwrap();
    clock.advance(Duration::seconds(30));
    let code = secret.code_at(clock.now()).unwrap();
    assert!(matches!(login.login_totp(&again, code.as_str()).await, Err(CaError::LoginRefused)));
    login.set_totp_allowed("admin:ada", "hugo", true).await.unwrap();
    assert!(
        matches!(login.login_totp(&again, code.as_str()).await, Err(CaError::LoginRefused)),
        "the old secret is gone"
    );
    let list = login.accounts().await.unwrap();
    let hugo = list.iter().find(|a| a.operator == "hugo").unwrap();
    assert!(hugo.totp_allowed && !hugo.totp_enrolled && hugo.keys == 1 && hugo.enrolled_at.is_some(), "{hugo:?}");
    let ada = list.iter().find(|a| a.operator == "ada").unwrap();
    assert!(!ada.totp_allowed && ada.keys == 0 && ada.enrolled_at.is_none(), "{ada:?}");
    let logins = audit_tail(&db.registry, "desk.login").await;
    assert!(logins.iter().any(|(_, _, o, d)| o == "success" && d.contains("totp")), "{logins:?}");
    assert!(logins.iter().any(|(_, _, o, d)| o == "failure" && d.contains("totp")), "{logins:?}");
    assert_eq!(audit_tail(&db.registry, "desk.totp-allow").await.len(), 2);
    assert_eq!(audit_tail(&db.registry, "desk.totp-forbid").await.len(), 1);
}
on_both_stores!(totp_only_where_allowed);
