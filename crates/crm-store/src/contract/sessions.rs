//! Console sessions and the audit log.

use super::fixtures::*;
use chrono::TimeDelta;
use crm_domain::ops::{NewAuditEvent, SessionRole};
use crm_domain::ports::Storage;

pub(super) async fn sessions<S: Storage + ?Sized>(s: &S) {
    let now = store_now(s).await;
    let admin = session("d-admin", SessionRole::Admin, now, 3600);
    let viewer = session("d-viewer", SessionRole::ReadOnly, now, 3600);
    let stale = session(
        "d-stale",
        SessionRole::Admin,
        now - TimeDelta::hours(9),
        3600,
    );
    s.create_session(stale.clone()).await.unwrap();
    assert_eq!(
        s.get_session("d-stale").await.unwrap(),
        None,
        "an expired session signs nobody in"
    );
    s.create_session(admin.clone()).await.unwrap();
    s.create_session(viewer.clone()).await.unwrap();
    assert_eq!(s.get_session("d-admin").await.unwrap(), Some(admin));
    assert_eq!(
        s.get_session("d-viewer").await.unwrap(),
        Some(viewer.clone())
    );
    assert_eq!(s.get_session("d-unknown").await.unwrap(), None);
    s.delete_session("d-admin").await.unwrap();
    assert_eq!(
        s.get_session("d-admin").await.unwrap(),
        None,
        "logout ends it"
    );
    s.delete_session("d-admin")
        .await
        .expect("ending an ended session is not an error");
    assert_eq!(
        s.get_session("d-viewer").await.unwrap(),
        Some(viewer),
        "ending one session leaves the others"
    );
    s.delete_session("d-viewer").await.unwrap();
}

pub(super) async fn audit<S: Storage + ?Sized>(s: &S) {
    let event = |action: &str| NewAuditEvent {
        actor: "admin".into(),
        action: action.into(),
        target: "batch:b-1".into(),
        request_id: Some("req-1".into()),
        outcome: "ok".into(),
        detail: None,
    };
    let first = s.append_audit(event("import")).await.unwrap();
    let second = s.append_audit(event("rollback")).await.unwrap();
    assert!(second.id > first.id);
    assert_eq!(first.action, "import");
    let listed = s.list_audit(10).await.unwrap();
    assert_eq!(listed, [second.clone(), first], "newest first");
    assert_eq!(s.list_audit(1).await.unwrap(), [second]);
}
