//! The one operation runner: clones of an app share it, so what one face
//! starts another face's shutdown drains, and a closed runner starts nothing.

use crm_app::operations::OperationOutcome;
use crm_app::{App, AppConfig, AppError, ErrorKind, OperationSpec};
use crm_domain::{OperationStatus, ProviderRef};
use std::time::Duration;
use tokio::sync::oneshot;

async fn app(dir: &tempfile::TempDir) -> App {
    App::open_with(
        AppConfig::new(dir.path().join("crm.db")),
        Default::default(),
        std::sync::Arc::new(crm_app::ids::UuidIds),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn clones_share_one_runner_and_a_drain_waits_for_all_their_work() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    // Two faces hold two clones of the app with different actors.
    let api = app.with_actor("token:admin");
    let console = app.with_actor("console:admin");
    let (release, hold) = oneshot::channel::<()>();
    let op = console
        .runner()
        .launch(
            &console,
            OperationSpec::rollback_provider("h1", &ProviderRef::new("p", "x")),
            None,
            |_app, _id| async move {
                let _ = hold.await;
                OperationOutcome {
                    status: OperationStatus::Succeeded,
                    result: None,
                    error: None,
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(op.target, "host:h1/provider:p/x");
    assert_eq!(op.status, OperationStatus::Running);
    assert_eq!(
        api.runner().running(),
        1,
        "the API's clone sees the console's work"
    );

    // A drain from the API's side does not finish while the console's work runs.
    assert!(!api.runner().drain(Duration::from_millis(50)).await);
    let refused = api
        .runner()
        .launch(&api, OperationSpec::probe("h1"), None, |_a, _i| async {
            unreachable!("a closed runner starts nothing")
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, AppError::ShuttingDown));
    assert_eq!(refused.kind(), ErrorKind::Unavailable);

    release.send(()).unwrap();
    assert!(api.runner().drain(Duration::from_secs(10)).await);
    let done = app.operation(op.id.as_str()).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded);
}
