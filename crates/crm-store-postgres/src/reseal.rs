//! The re-seal step on PostgreSQL: the pass `crm_store::reseal` describes,
//! over this adapter's rows. It runs under the migration lock, right after
//! the SQL migrations, so replicas starting together run it once.

use crate::sql::{db, ts};
use crm_domain::ports::StoreResult;
use crm_store::Sealer;
use crm_store::reseal::{self, LOGIN_PASSWORD_FIELD, NAME, Resealed, Step};

/// Runs the pass unless it is recorded: `Ok(None)` when it already ran,
/// else what it re-sealed and left. One transaction; recorded only when
/// nothing is left.
pub(crate) async fn run(
    client: &mut tokio_postgres::Client,
    sealer: &Sealer,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<Resealed>> {
    let txn = client.transaction().await.map_err(db)?;
    let done = txn
        .query_opt("SELECT 1 FROM data_upgrades WHERE name = $1", &[&NAME])
        .await
        .map_err(db)?
        .is_some();
    if done {
        return Ok(None);
    }
    let mut out = Resealed::default();
    let hosts = txn
        .query(
            "SELECT id, admin_credential FROM hosts WHERE admin_credential LIKE '%\"v1:%'",
            &[],
        )
        .await
        .map_err(db)?;
    for row in hosts {
        let (id, json): (String, String) = (row.get(0), row.get(1));
        match reseal::admin_credential(sealer, &id, &json)? {
            Step::Unchanged => {}
            Step::Resealed(new) => {
                txn.execute(
                    "UPDATE hosts SET admin_credential = $1 WHERE id = $2",
                    &[&new, &id],
                )
                .await
                .map_err(db)?;
                out.admin_keys += 1;
            }
            Step::Left(reason) => {
                reseal::warn_left("hosts", &id, "admin_credential", &reason);
                out.left += 1;
            }
        }
    }
    let like = format!("%{LOGIN_PASSWORD_FIELD}%");
    let field = format!("desired.{LOGIN_PASSWORD_FIELD}");
    let entries = txn
        .query(
            "SELECT batch_id, seq, desired FROM journal WHERE desired LIKE $1",
            &[&like],
        )
        .await
        .map_err(db)?;
    for row in entries {
        let (batch, seq, json): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        match reseal::desired(sealer, &batch, &json)? {
            Step::Unchanged => {}
            Step::Resealed(new) => {
                txn.execute(
                    "UPDATE journal SET desired = $1 WHERE batch_id = $2 AND seq = $3",
                    &[&new, &batch, &seq],
                )
                .await
                .map_err(db)?;
                out.login_passwords += 1;
            }
            Step::Left(reason) => {
                let row = format!("{batch}/{seq}");
                reseal::warn_left("journal", &row, &field, &reason);
                out.left += 1;
            }
        }
    }
    let resources = txn
        .query(
            "SELECT batch_id, kind, host_object_id, desired FROM managed_resources
             WHERE desired LIKE $1",
            &[&like],
        )
        .await
        .map_err(db)?;
    for row in resources {
        let (batch, kind, id, json): (String, String, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        match reseal::desired(sealer, &batch, &json)? {
            Step::Unchanged => {}
            Step::Resealed(new) => {
                txn.execute(
                    "UPDATE managed_resources SET desired = $1
                     WHERE batch_id = $2 AND kind = $3 AND host_object_id = $4",
                    &[&new, &batch, &kind, &id],
                )
                .await
                .map_err(db)?;
                out.login_passwords += 1;
            }
            Step::Left(reason) => {
                let row = format!("{batch}/{kind}/{id}");
                reseal::warn_left("managed_resources", &row, &field, &reason);
                out.left += 1;
            }
        }
    }
    if out.left == 0 {
        txn.execute(
            "INSERT INTO data_upgrades (name, applied_at, detail) VALUES ($1, $2, $3)",
            &[&NAME, &ts(&now), &out.detail()],
        )
        .await
        .map_err(db)?;
    }
    txn.commit().await.map_err(db)?;
    Ok(Some(out))
}
