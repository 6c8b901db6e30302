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

/// The pack of [`a_hostile_pack_name_description_and_provider_name_are_escaped_on_every_page`]
/// with only the provider's display name made hostile.
fn hostile_provider_pack() -> String {
    let (_, text) = crm_pack::bundled::all()[0];
    text.replacen("version = \"2026.11.1\"", "version = \"2026.11.3\"", 1)
        .replacen(
            "display_name = \"DeepSeek\"",
            &format!("display_name = {:?}", HOSTILE),
            1,
        )
}

/// Asserts that `r` shows no markup of [`HOSTILE`], and, when `shown`, that
/// it shows the value as text (so the page really had it to insert).
fn assert_text_only(what: &str, r: &Reply, shown: bool) {
    assert!(
        !r.body.contains("<script") && !r.body.contains("<img"),
        "{what} renders raw markup:\n{}",
        r.body
    );
    if shown {
        assert!(
            r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && r.body.contains("&lt;img"),
            "{what} does not show the value:\n{}",
            r.body
        );
    }
}

#[tokio::test]
async fn hostile_host_provider_and_batch_names_are_text_on_the_action_and_error_pages() {
    let w = World::start().await;
    w.app
        .install_pack_text("hostile.toml", &hostile_provider_pack(), true)
        .await
        .expect("the hostile pack installs (its text is data)");
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let csrf = get(&w.router, "/", c).await.csrf();
    let h = enc(HOSTILE);

    // A provider whose name is hostile: its page, import form, preview,
    // access check and rollback confirmation.
    let page = get(&w.router, "/providers/cn-official/deepseek", c).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_text_only("the provider page", &page, true);
    let preview = post(
        &w.router,
        "/providers/cn-official/deepseek/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", "sim-ok-hostile-0123456789"),
        ],
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_text_only("the import preview", &preview, false);
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/import",
        c,
        &[("csrf", &csrf), ("pending", &preview.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    let op = get(&w.router, r.location(), c).await;
    assert!(op.body.contains(">succeeded<"), "{}", op.body);
    let batch = w.app.list_batches(Default::default()).await.unwrap()[0]
        .id
        .to_string();
    for path in [
        "/providers/cn-official/deepseek".to_owned(),
        "/providers/cn-official/deepseek/verify?host=sim".to_owned(),
        format!("/batches/{batch}/rollback"),
        "/hosts/sim/probe".to_owned(),
    ] {
        let r = get(&w.router, &path, c).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_text_only(&path, &r, path == "/providers/cn-official/deepseek");
    }

    // Hostile host, provider and batch names in requests: the error pages
    // name them as text.
    for path in [
        format!("/hosts/{h}/probe"),
        format!("/providers/cn-official/deepseek/verify?host={h}"),
        format!("/providers/cn-official/{h}"),
        format!("/batches/{h}/rollback"),
    ] {
        let r = get(&w.router, &path, c).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_text_only(&path, &r, true);
    }
    for (path, form) in [
        (
            "/providers/cn-official/deepseek/preview".to_owned(),
            vec![("host", HOSTILE), ("mode", "self_service"), ("keys", "k")],
        ),
        (
            "/providers/cn-official/deepseek/verify".to_owned(),
            vec![("host", HOSTILE)],
        ),
        (format!("/hosts/{h}/reconcile"), vec![]),
        (format!("/batches/{h}/resume"), vec![]),
        (format!("/batches/{h}/rollback"), vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let r = post(&w.router, &path, c, &form).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_text_only(&path, &r, true);
    }
    let r = post(
        &w.router,
        "/providers/cn-official/deepseek/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", HOSTILE),
            ("keys", "k"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_text_only("a hostile access mode", &r, true);
    let login = get(&w.router, &format!("/login?failed={h}"), None).await;
    assert_text_only("the sign-in form", &login, false);
}

/// Every page is a maud template, which escapes by default; this keeps it
/// so: no file of the console's source writes markup into a string, marks a
/// string as already escaped, or escapes by hand.
#[test]
fn the_console_writes_markup_only_through_maud() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("source dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "found the sources: {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source reads");
        // Unit tests may spell out escaped markup to compare with.
        let product = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in product.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in [
                "PreEscaped",
                "format!(\"<",
                "push_str(\"<",
                "write!(out, \"<",
                "\"&amp;\"",
            ] {
                assert!(
                    !code.contains(bad),
                    "{}:{}: `{bad}` builds markup outside maud: {line}",
                    f.display(),
                    n + 1
                );
            }
        }
    }
}
