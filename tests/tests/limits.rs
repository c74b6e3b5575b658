#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The registry's sliding-window rate limit (`Registry::rate_hit`), shared
//! by every process on the registry.

use qcert_ca_core::store::limits::{RateDecision, Window};
use qcert_tests::{on_both_stores, TestDb};

const W: Window = Window { limit: 3, window_secs: 60 };

async fn allowed(db: &TestDb, key: &str, now: i64) -> bool {
    db.registry.rate_hit("test", key, W, now).await.expect("rate_hit") == RateDecision::Allowed
}

/// A window slides: the limit holds for every 60 seconds, not per fixed
/// minute, so a burst across a minute boundary is still refused.
async fn sliding_window(db: &TestDb) {
    let t = 1_800_000_000 - 2; // two seconds before a minute boundary
    for i in 0..3 {
        assert!(allowed(db, "agent-a", t + i).await, "event {i} within the limit");
    }
    match db.registry.rate_hit("test", "agent-a", W, t + 3).await.expect("rate_hit") {
        RateDecision::Refused { retry_after_secs } => assert_eq!(retry_after_secs, 57, "oldest leaves at t+60"),
        RateDecision::Allowed => panic!("a fourth event 3 s later (across a minute boundary) was allowed"),
    }
    // Another key and another scope are counted apart.
    assert!(allowed(db, "agent-b", t + 3).await);
    assert_eq!(db.registry.rate_hit("other", "agent-a", W, t + 3).await.expect("rate_hit"), RateDecision::Allowed);
    // Refused events are not counted: once the first leaves the window, one more is allowed.
    assert!(!allowed(db, "agent-a", t + 59).await);
    assert!(allowed(db, "agent-a", t + 60).await, "the event of t has left the window");
    assert!(!allowed(db, "agent-a", t + 60).await);
    assert!(allowed(db, "agent-a", t + 61).await, "the event of t+1 has left the window");
    assert!(!allowed(db, "agent-a", t + 61).await);
}
on_both_stores!(sliding_window);

/// Many concurrent events: never more allowed than the limit.
async fn concurrent_events_never_exceed_the_limit(db: &TestDb) {
    let now = 1_800_000_000;
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let registry = db.registry.clone();
            tokio::spawn(async move { registry.rate_hit("test", "burst", W, now).await.expect("rate_hit") })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.expect("task") == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert!(allowed <= 3, "{allowed} of 24 concurrent events allowed with a limit of 3");
    // Refused events left nothing behind: the window holds exactly the allowed ones.
    let one_more = db.registry.rate_hit("test", "burst", W, now).await.expect("rate_hit") == RateDecision::Allowed;
    assert_eq!(one_more, allowed < 3, "after {allowed} allowed");
}
on_both_stores!(concurrent_events_never_exceed_the_limit);
