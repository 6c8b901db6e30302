//! Preview of the bundled pack's DeepSeek on both profiles: read-only, list
//! calls only, and the same plan byte for byte on a second run.

use crate::support::*;
use crm_testkit::TestEnv;

#[tokio::test]
async fn preview_is_read_only_and_deterministic() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let req = request(env.provider_ref("deepseek"), &["a", "b"]);
        env.sim.clear_requests();
        let first = prov.preview(&req).await.unwrap();
        let second = prov.preview(&req).await.unwrap();
        assert_eq!(
            serde_json::to_string(&first.plan).unwrap(),
            serde_json::to_string(&second.plan).unwrap()
        );
        assert!(env.sim.requests().iter().all(|r| r.method == "GET"));
        assert_eq!(first.host_requests as usize, env.sim.requests().len() / 2);
        // Fingerprints depend on the installation's pepper: redact them.
        insta::assert_json_snapshot!(format!("preview-{profile}"), first.plan, {
            ".items[].name" => insta::dynamic_redaction(|v, _| {
                let s = v.as_str().unwrap_or_default().to_owned();
                match s.rsplit_once('-') {
                    Some((head, tail)) if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        format!("{head}-[fingerprint]")
                    }
                    _ => s,
                }
            }),
            ".items[].natural_key" => insta::dynamic_redaction(|v, _| {
                let s = v.as_str().unwrap_or_default().to_owned();
                match s.rsplit_once('|') {
                    Some((head, _)) => format!("{head}|[fingerprint]"),
                    None => s,
                }
            }),
        });
    }
}
