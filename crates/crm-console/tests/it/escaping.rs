//! Hostile text from a pack file (or anything else crm stores) is shown as
//! text: every page that displays it escapes it.

use crate::support::*;

const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";

#[tokio::test]
async fn a_hostile_pack_name_description_and_provider_name_are_escaped_on_every_page() {
    let w = World::start().await;
    let (_, text) = crm_pack::bundled::all()[0];
    let toml_str = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let text = text
        .replacen("version = \"2026.11.1\"", "version = \"2026.11.2\"", 1)
        .replacen(
            "name = \"Official Chinese LLM providers\"",
            &format!("name = {}", toml_str(HOSTILE)),
            1,
        )
        .replacen(
            "display_name = \"DeepSeek\"",
            &format!("display_name = {}", toml_str(HOSTILE)),
            1,
        );
    let text = {
        let start = text
            .find("\ndescription = ")
            .expect("pack has a description")
            + 1;
        let end = start + text[start..].find('\n').unwrap();
        format!(
            "{}description = {}{}",
            &text[..start],
            toml_str(HOSTILE),
            &text[end..]
        )
    };
    // A new version of the bundled id: a replacement the operator asks for.
    w.app
        .install_pack_text("hostile.toml", &text, true)
        .await
        .expect("the hostile pack installs (its text is data)");
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    for path in [
        "/",
        "/packs",
        "/packs/cn-official",
        "/packs/cn-official?version=2026.11.2",
        "/providers/cn-official/deepseek",
        "/audit",
    ] {
        let r = get(&w.router, path, c).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.contains("<script") && !r.body.contains("<img"),
            "{path} renders raw markup:\n{}",
            r.body
        );
    }
    // And the text is there, as text, where the page shows it.
    let pack = get(&w.router, "/packs/cn-official", c).await;
    assert!(
        pack.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        pack.body
    );
    let packs = get(&w.router, "/packs", c).await;
    assert!(packs.body.contains("&lt;script&gt;"), "{}", packs.body);
}
