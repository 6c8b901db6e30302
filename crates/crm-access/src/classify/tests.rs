use super::*;
use FailureClass::*;
use crm_domain::observed::{AccountProbe, CallOutcome};
use crm_domain::ports::HostError;
use crm_domain::spec::ErrorSignal;
use crm_domain::spec::ErrorSignals;
use crm_domain::{FailureClass, Verdict};

fn out(
    status: Option<u16>,
    ok: bool,
    ty: Option<&str>,
    code: Option<&str>,
    msg: &str,
) -> CallOutcome {
    CallOutcome {
        status,
        ok,
        error_type: ty.map(str::to_owned),
        error_code: code.map(str::to_owned),
        message: (!msg.is_empty()).then(|| msg.to_owned()),
        body_excerpt: String::new(),
        latency_ms: 3,
        transport_error: if status.is_none() {
            Some("connection refused".to_owned())
        } else {
            None
        },
    }
}

/// Expected shape of a gateway reading.
#[derive(Debug, PartialEq)]
enum Want {
    Ok,
    Fail(FailureClass),
    Advisory(FailureClass),
    Ask(UpstreamSuspicion),
}

fn shape(r: &GatewayReading) -> Want {
    match r {
        GatewayReading::Ok => Want::Ok,
        GatewayReading::Final(d) => match d.verdict {
            Verdict::Fail => Want::Fail(d.failure_class.unwrap()),
            Verdict::PassWithAdvisories => Want::Advisory(d.failure_class.unwrap()),
            Verdict::Pass => Want::Ok,
        },
        GatewayReading::AskUpstream { suspicion, .. } => Want::Ask(*suspicion),
    }
}

#[test]
fn gateway_readings() {
    use GatewayStep::*;
    use UpstreamSuspicion as S;
    let smoke = "deepseek-v4-flash";
    let listed = vec!["deepseek-v4-pro".to_owned(), smoke.to_owned()];
    let other = vec!["deepseek-v4-pro".to_owned()];
    #[rustfmt::skip]
    let rows: Vec<(&str, GatewayStep, CallOutcome, &Vec<String>, Want)> = vec![
        ("models ok, smoke listed", Models, out(Some(200), true, None, None, ""), &listed, Want::Ok),
        ("models ok, smoke missing", Models, out(Some(200), true, None, None, ""), &other, Want::Fail(ModelNotExposed)),
        ("chat ok ignores listing", Chat, out(Some(200), true, None, None, ""), &other, Want::Ok),
        ("no answer", Models, out(None, false, None, None, ""), &listed, Want::Fail(HostUnreachable)),
        ("API_KEY_REQUIRED", Models, out(Some(401), false, Some("API_KEY_REQUIRED"), None, "API key is required"), &listed, Want::Fail(AuthIssue)),
        ("INVALID_API_KEY", Chat, out(Some(401), false, Some("INVALID_API_KEY"), None, "Invalid API key"), &listed, Want::Fail(AuthIssue)),
        ("API_KEY_DISABLED", Chat, out(Some(401), false, Some("API_KEY_DISABLED"), None, ""), &listed, Want::Fail(AuthIssue)),
        ("USER_INACTIVE", Chat, out(Some(401), false, Some("USER_INACTIVE"), None, ""), &listed, Want::Fail(AuthIssue)),
        ("API_KEY_EXPIRED", Chat, out(Some(403), false, Some("API_KEY_EXPIRED"), None, ""), &listed, Want::Fail(AuthIssue)),
        ("GROUP_DELETED", Chat, out(Some(403), false, Some("GROUP_DELETED"), None, "group deleted"), &listed, Want::Fail(AuthIssue)),
        ("GROUP_DISABLED", Models, out(Some(403), false, Some("GROUP_DISABLED"), None, ""), &listed, Want::Fail(AuthIssue)),
        ("ACCESS_DENIED ip", Chat, out(Some(403), false, Some("ACCESS_DENIED"), None, ""), &listed, Want::Fail(AuthIssue)),
        ("ungrouped key", Chat, out(Some(403), false, Some("permission_error"), None, "API key is not assigned to any group"), &listed, Want::Fail(AuthIssue)),
        ("INSUFFICIENT_BALANCE", Chat, out(Some(403), false, Some("INSUFFICIENT_BALANCE"), None, "Insufficient account balance"), &listed, Want::Fail(BillingGate)),
        ("SUBSCRIPTION_NOT_FOUND", Models, out(Some(403), false, Some("SUBSCRIPTION_NOT_FOUND"), None, ""), &listed, Want::Fail(BillingGate)),
        ("SUBSCRIPTION_INVALID", Chat, out(Some(403), false, Some("SUBSCRIPTION_INVALID"), None, "expired"), &listed, Want::Fail(BillingGate)),
        ("billing_error handler", Chat, out(Some(403), false, Some("billing_error"), None, ""), &listed, Want::Fail(BillingGate)),
        ("USAGE_LIMIT_EXCEEDED", Chat, out(Some(429), false, Some("USAGE_LIMIT_EXCEEDED"), None, "daily limit"), &listed, Want::Advisory(TransientRateLimited)),
        ("API_KEY_QUOTA_EXHAUSTED", Chat, out(Some(429), false, Some("API_KEY_QUOTA_EXHAUSTED"), None, ""), &listed, Want::Advisory(TransientRateLimited)),
        ("upstream_error 502", Chat, out(Some(502), false, Some("upstream_error"), None, "Upstream authentication failed"), &listed, Want::Ask(S::UpstreamError)),
        ("upstream_error 503", Chat, out(Some(503), false, Some("upstream_error"), None, "Upstream service temporarily unavailable"), &listed, Want::Ask(S::UpstreamError)),
        ("rate_limit_error", Chat, out(Some(429), false, Some("rate_limit_error"), None, "Too many requests"), &listed, Want::Ask(S::RateLimit)),
        ("no available accounts", Chat, out(Some(503), false, Some("api_error"), None, "No available accounts: group 7"), &listed, Want::Ask(S::NoAvailableAccounts)),
        ("plain 404 route", Chat, out(Some(404), false, None, None, ""), &listed, Want::Fail(RouteMissing)),
        ("typed 404 route", Chat, out(Some(404), false, Some("not_found_error"), None, "Not found"), &listed, Want::Fail(RouteMissing)),
        ("client route_missing", Chat, out(Some(404), false, Some("route_missing"), None, "404 page not found"), &listed, Want::Fail(RouteMissing)),
        ("html instead of api", Models, out(Some(200), false, Some("unexpected_html"), None, "an HTML page answered instead of the API"), &listed, Want::Fail(RouteMissing)),
        ("405", Models, out(Some(405), false, None, None, ""), &listed, Want::Fail(RouteMissing)),
        ("model not allowed 400", Chat, out(Some(400), false, Some("invalid_request_error"), None, "model deepseek-v4-flash is not allowed in this channel"), &listed, Want::Fail(ModelNotExposed)),
        ("model 404", Chat, out(Some(404), false, Some("not_found_error"), None, "model not found"), &listed, Want::Fail(ModelNotExposed)),
        ("bare 401", Chat, out(Some(401), false, None, None, ""), &listed, Want::Fail(AuthIssue)),
        ("bare 402", Chat, out(Some(402), false, None, None, ""), &listed, Want::Fail(BillingGate)),
        ("bare 403", Chat, out(Some(403), false, None, None, ""), &listed, Want::Fail(AuthIssue)),
        ("bare 429", Chat, out(Some(429), false, None, None, ""), &listed, Want::Ask(S::RateLimit)),
        ("400 parse failure", Chat, out(Some(400), false, Some("invalid_request_error"), None, "Failed to parse request body"), &listed, Want::Ask(S::Unexplained)),
        ("error inside a 200", Chat, out(Some(200), false, Some("upstream_error"), None, "stream broke"), &listed, Want::Ask(S::UpstreamError)),
        ("untyped error inside a 200", Chat, out(Some(200), false, None, None, ""), &listed, Want::Ask(S::Unexplained)),
        ("500 internal", Models, out(Some(500), false, None, None, "internal error"), &listed, Want::Ask(S::Unexplained)),
    ];
    for (name, step, outcome, ids, want) in rows {
        let got = read_gateway(step, &outcome, ids, smoke);
        assert_eq!(shape(&got), want, "{name}: {got:?}");
        if let GatewayReading::Final(d) = &got {
            assert!(!d.summary.is_empty(), "{name}");
        }
    }
}

fn sig(status: Option<u16>, body: Option<&str>) -> ErrorSignal {
    ErrorSignal {
        status,
        body_contains: body.map(str::to_owned),
    }
}

fn provider_signals(p: &str) -> ErrorSignals {
    match p {
        "deepseek" => ErrorSignals {
            invalid_key: vec![sig(Some(401), None)],
            quota: vec![sig(Some(402), None)],
        },
        "kimi" => ErrorSignals {
            invalid_key: vec![sig(Some(401), None)],
            quota: vec![sig(Some(429), Some("exceeded_current_quota_error"))],
        },
        "zhipu" => ErrorSignals {
            invalid_key: vec![sig(Some(401), None)],
            quota: vec![sig(Some(429), Some("1113"))],
        },
        "minimax" => ErrorSignals {
            invalid_key: vec![sig(None, Some("1004"))],
            quota: vec![sig(None, Some("1008"))],
        },
        "qwen" => ErrorSignals {
            invalid_key: vec![sig(Some(401), None)],
            quota: vec![sig(None, Some("Arrearage"))],
        },
        _ => ErrorSignals::default(),
    }
}

#[derive(Debug, PartialEq)]
enum U {
    Unreachable,
    Answers,
    Other,
    Rate,
    Server,
    Model,
    Quota,
    Invalid,
}

fn u(r: &UpstreamReading) -> U {
    match r {
        UpstreamReading::Unreachable { .. } => U::Unreachable,
        UpstreamReading::Answers => U::Answers,
        UpstreamReading::Other { .. } => U::Other,
        UpstreamReading::RateLimited { .. } => U::Rate,
        UpstreamReading::ServerError { .. } => U::Server,
        UpstreamReading::ModelUnknown { .. } => U::Model,
        UpstreamReading::Quota { .. } => U::Quota,
        UpstreamReading::KeyInvalid { .. } => U::Invalid,
    }
}

#[test]
fn upstream_readings_use_provider_signals() {
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, CallOutcome, U)> = vec![
        ("ok", "deepseek", out(Some(200), true, None, None, ""), U::Answers),
        ("no answer", "deepseek", out(None, false, None, None, ""), U::Unreachable),
        ("deepseek 401", "deepseek", out(Some(401), false, Some("authentication_error"), None, "Authentication Fails"), U::Invalid),
        ("deepseek 402", "deepseek", out(Some(402), false, Some("unknown_error"), Some("invalid_request_error"), "Insufficient Balance"), U::Quota),
        ("deepseek 429", "deepseek", out(Some(429), false, Some("rate_limit_error"), None, "Rate limit reached"), U::Rate),
        ("deepseek 503", "deepseek", out(Some(503), false, None, None, "Server overloaded"), U::Server),
        ("deepseek 500", "deepseek", out(Some(500), false, None, None, "internal"), U::Server),
        ("kimi quota 429", "kimi", out(Some(429), false, Some("exceeded_current_quota_error"), None, "You exceeded your current quota"), U::Quota),
        ("kimi rate 429", "kimi", out(Some(429), false, Some("rate_limit_reached_error"), None, "max RPM reached"), U::Rate),
        ("kimi bad key", "kimi", out(Some(401), false, Some("invalid_authentication_error"), None, "Invalid Authentication"), U::Invalid),
        ("zhipu 1113", "zhipu", out(Some(429), false, None, Some("1113"), "余额不足或无可用资源包"), U::Quota),
        ("zhipu 1302 rate", "zhipu", out(Some(429), false, None, Some("1302"), "并发数过高"), U::Rate),
        ("zhipu bad key", "zhipu", out(Some(401), false, None, Some("1000"), "身份验证失败"), U::Invalid),
        ("minimax 1008 in 500", "minimax", out(Some(500), false, Some("api_error"), None, "insufficient balance (1008)"), U::Quota),
        ("minimax 1004 in 200-ish error", "minimax", out(Some(200), false, None, None, "login fail (1004)"), U::Invalid),
        ("qwen arrearage 400", "qwen", out(Some(400), false, Some("Arrearage"), None, "Access denied, please make sure your account is in good standing."), U::Quota),
        ("qwen rate quota", "qwen", out(Some(429), false, Some("Throttling.RateQuota"), None, "Requests rate limit exceeded"), U::Rate),
        ("doubao overdue 403 generic", "none", out(Some(403), false, Some("AccountOverdueError"), None, "account is overdue"), U::Quota),
        ("generic 403", "none", out(Some(403), false, None, None, "forbidden"), U::Invalid),
        ("generic 402", "none", out(Some(402), false, None, None, ""), U::Quota),
        ("model 404", "none", out(Some(404), false, Some("ModelNotFound"), None, "The model does not exist"), U::Model),
        ("plain 404", "none", out(Some(404), false, None, None, "not found"), U::Other),
        ("400 other", "none", out(Some(400), false, Some("invalid_request_error"), None, "bad param"), U::Other),
    ];
    for (name, provider, outcome, want) in rows {
        let got = read_upstream(&outcome, &provider_signals(provider));
        assert_eq!(u(&got), want, "{name}: {got:?}");
    }
}

#[test]
fn account_probe_readings() {
    let probe = |success: bool, error: Option<&str>, code: Option<&str>| AccountProbe {
        success,
        model: Some("deepseek-v4-flash".into()),
        text: String::new(),
        error: error.map(str::to_owned),
        error_code: code.map(str::to_owned),
    };
    let ds = provider_signals("deepseek");
    #[rustfmt::skip]
    let rows = vec![
        ("success", probe(true, None, None), U::Answers),
        ("401 code", probe(false, Some("API returned 401: {\"error\":{\"message\":\"Authentication Fails\"}}"), Some("401")), U::Invalid),
        ("401 only in text (older host)", probe(false, Some("API returned 401: bad"), None), U::Invalid),
        ("402 code", probe(false, Some("API returned 402: Insufficient Balance"), Some("402")), U::Quota),
        ("429", probe(false, Some("API returned 429: slow down"), Some("429")), U::Rate),
        ("no key", probe(false, Some("No API key available"), None), U::Other),
        ("request failed", probe(false, Some("Request failed: timeout"), None), U::Other),
    ];
    for (name, p, want) in rows {
        assert_eq!(u(&read_account_probe(&p, &ds)), want, "{name}");
    }
    let mm = provider_signals("minimax");
    assert_eq!(
        u(&read_account_probe(
            &probe(false, Some("insufficient balance (1008)"), None),
            &mm
        )),
        U::Quota
    );
}

#[test]
fn a_working_chat_call_wins_over_a_failing_listing() {
    let ds = provider_signals("deepseek");
    let e =
        |m: Option<CallOutcome>, c: Option<CallOutcome>| UpstreamEvidence { models: m, chat: c };
    let ok = out(Some(200), true, None, None, "");
    let bad = out(Some(401), false, None, None, "");
    let quota = out(Some(402), false, None, None, "");
    let down = out(None, false, None, None, "");
    assert_eq!(
        u(&read_upstream_key(
            &e(Some(bad.clone()), Some(ok.clone())),
            &ds
        )),
        U::Answers
    );
    assert_eq!(
        u(&read_upstream_key(
            &e(Some(ok.clone()), Some(quota.clone())),
            &ds
        )),
        U::Quota
    );
    assert_eq!(
        u(&read_upstream_key(
            &e(Some(bad.clone()), Some(quota.clone())),
            &ds
        )),
        U::Invalid
    );
    assert_eq!(
        u(&read_upstream_key(
            &e(Some(bad.clone()), Some(down.clone())),
            &ds
        )),
        U::Invalid
    );
    assert_eq!(
        u(&read_upstream_key(&e(Some(down.clone()), None), &ds)),
        U::Unreachable
    );
    assert_eq!(u(&read_upstream_key(&e(None, None), &ds)), U::Unreachable);
}

#[test]
fn diagnoses() {
    use UpstreamSuspicion as S;
    let answers = UpstreamReading::Answers;
    let invalid = UpstreamReading::KeyInvalid {
        said: "HTTP 401".into(),
    };
    let quota = UpstreamReading::Quota {
        said: "HTTP 402".into(),
    };
    let rate = UpstreamReading::RateLimited {
        said: "HTTP 429".into(),
    };
    let server = UpstreamReading::ServerError {
        status: 500,
        said: "HTTP 500".into(),
    };
    let model = UpstreamReading::ModelUnknown {
        said: "HTTP 404 model".into(),
    };
    let down = UpstreamReading::Unreachable {
        detail: "refused".into(),
    };
    let other = UpstreamReading::Other {
        status: 400,
        said: "HTTP 400".into(),
    };
    type Row<'a> = (
        &'a str,
        S,
        &'a str,
        Vec<UpstreamReading>,
        Vec<UpstreamReading>,
        Verdict,
        FailureClass,
    );
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        ("upstream answers: host gap", S::UpstreamError, "HTTP 502 upstream_error", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
        ("unexplained, upstream answers", S::Unexplained, "HTTP 200", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
        ("no accounts, upstream answers", S::NoAvailableAccounts, "HTTP 503 api_error", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
        ("host 429, upstream answers", S::RateLimit, "HTTP 429 rate_limit_error", vec![answers.clone()], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
        ("invalid key", S::UpstreamError, "HTTP 502", vec![invalid.clone()], vec![], Verdict::Fail, UpstreamKeyInvalid),
        ("quota", S::UpstreamError, "HTTP 502", vec![quota.clone()], vec![], Verdict::Fail, UpstreamKeyQuotaIssue),
        ("quota behind a host 429", S::RateLimit, "HTTP 429", vec![quota.clone()], vec![], Verdict::Fail, UpstreamKeyQuotaIssue),
        ("rate limited", S::RateLimit, "HTTP 429", vec![rate.clone()], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
        ("server error", S::UpstreamError, "HTTP 502", vec![server.clone()], vec![], Verdict::Fail, UpstreamUnavailable),
        ("upstream model unknown", S::UpstreamError, "HTTP 502", vec![model.clone()], vec![], Verdict::Fail, ModelNotExposed),
        ("two keys: worst wins", S::UpstreamError, "HTTP 502", vec![quota.clone(), invalid.clone()], vec![], Verdict::Fail, UpstreamKeyInvalid),
        ("one key answers: host gap", S::UpstreamError, "HTTP 502", vec![invalid.clone(), answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
        ("unreachable upstream, account probe says invalid", S::UpstreamError, "HTTP 502", vec![down.clone()], vec![invalid.clone()], Verdict::Fail, UpstreamKeyInvalid),
        ("no upstream key, account probe says quota", S::NoAvailableAccounts, "HTTP 503", vec![], vec![quota.clone()], Verdict::Fail, UpstreamKeyQuotaIssue),
        ("direct probe beats account probe", S::UpstreamError, "HTTP 502", vec![quota.clone()], vec![invalid.clone()], Verdict::Fail, UpstreamKeyQuotaIssue),
        ("nothing conclusive: auth text", S::UpstreamError, "HTTP 502 upstream_error: Upstream authentication failed, please contact administrator", vec![down.clone()], vec![other.clone()], Verdict::Fail, UpstreamKeyInvalid),
        ("nothing conclusive: unavailable", S::UpstreamError, "HTTP 502 upstream_error: Upstream service temporarily unavailable", vec![], vec![], Verdict::Fail, UpstreamUnavailable),
        ("nothing conclusive: overloaded", S::UpstreamError, "HTTP 503 overloaded_error: Upstream service overloaded, please retry later", vec![], vec![], Verdict::Fail, UpstreamUnavailable),
        ("nothing conclusive: 429", S::RateLimit, "HTTP 429 rate_limit_error", vec![], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
        ("nothing conclusive at all", S::Unexplained, "HTTP 400", vec![other.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
    ];
    for (name, s, host_said, up, acc, verdict, class) in rows {
        let d = diagnose(s, host_said, &up, &acc);
        assert_eq!(
            (d.verdict, d.failure_class),
            (verdict, Some(class)),
            "{name}: {}",
            d.summary
        );
        assert!(
            d.summary.contains(host_said),
            "{name}: summary keeps what the host said"
        );
    }
}

#[test]
fn host_errors_read_like_outcomes() {
    let smoke = "m";
    let ids = vec!["m".to_owned()];
    let read = |e: HostError| {
        shape(&read_gateway(
            GatewayStep::Chat,
            &outcome_from_host_error(&e),
            &ids,
            smoke,
        ))
    };
    assert_eq!(
        read(HostError::Unreachable {
            detail: "refused".into()
        }),
        Want::Fail(HostUnreachable)
    );
    assert_eq!(
        read(HostError::Timeout {
            operation: "chat".into()
        }),
        Want::Fail(HostUnreachable)
    );
    assert_eq!(
        read(HostError::RouteMissing {
            route: "/v1/chat/completions".into()
        }),
        Want::Fail(RouteMissing)
    );
    assert_eq!(
        read(HostError::Unauthorized {
            reason: "INVALID_API_KEY".into()
        }),
        Want::Fail(AuthIssue)
    );
    assert_eq!(
        read(HostError::Forbidden {
            reason: "INSUFFICIENT_BALANCE".into()
        }),
        Want::Fail(BillingGate)
    );
    assert_eq!(
        read(HostError::RateLimited {
            retry_after_secs: Some(3)
        }),
        Want::Ask(UpstreamSuspicion::RateLimit)
    );
    assert_eq!(
        read(HostError::Unavailable {
            status: 502,
            message: "bad gateway".into()
        }),
        Want::Ask(UpstreamSuspicion::Unexplained)
    );
}

/// The precedence of evidence, pinned: one row per situation, the
/// evidence gathered and the verdict and class `decide` must reach.
#[test]
fn decide_precedence_table() {
    use GatewayStep as G;
    let smoke = "deepseek-v4-flash";
    let ok = GatewayReading::Ok;
    let not_listed = read_gateway(
        G::Models,
        &out(Some(200), true, None, None, ""),
        &["claude-sonnet-4-5-20250929".to_owned()],
        smoke,
    );
    let final_of = |step: G, o: CallOutcome| read_gateway(step, &o, &[], smoke);
    let upstream_auth_502 = final_of(
        G::Messages,
        out(
            Some(502),
            false,
            Some("upstream_error"),
            None,
            "Upstream authentication failed, please contact administrator",
        ),
    );
    let upstream_5xx = final_of(
        G::Messages,
        out(
            Some(502),
            false,
            Some("upstream_error"),
            None,
            "Upstream service temporarily unavailable",
        ),
    );
    let overloaded = final_of(
        G::Messages,
        out(
            Some(503),
            false,
            Some("overloaded_error"),
            None,
            "Upstream service overloaded, please retry later",
        ),
    );
    let no_accounts = final_of(
        G::Chat,
        out(
            Some(503),
            false,
            Some("api_error"),
            None,
            "No available accounts: no available accounts",
        ),
    );
    let user_key_refused = final_of(
        G::Chat,
        out(
            Some(401),
            false,
            Some("INVALID_API_KEY"),
            None,
            "Invalid API key",
        ),
    );
    let no_route = final_of(
        G::Chat,
        out(
            Some(404),
            false,
            Some("route_missing"),
            None,
            "404 page not found",
        ),
    );
    let said = |s: &str| s.to_owned();
    let a401 = UpstreamReading::KeyInvalid {
        said: said("API returned 401: Authentication Fails"),
    };
    let a402 = UpstreamReading::Quota {
        said: said("API returned 402: Insufficient Balance"),
    };
    let a500 = UpstreamReading::ServerError {
        status: 500,
        said: said("API returned 500: internal"),
    };
    let a529 = UpstreamReading::ServerError {
        status: 529,
        said: said("HTTP 529 overloaded_error"),
    };
    let a429 = UpstreamReading::RateLimited {
        said: said("HTTP 429"),
    };
    let answers = UpstreamReading::Answers;
    let down = UpstreamReading::Unreachable {
        detail: said("refused"),
    };
    let legacy = Some("the probe found an older-era host".to_owned());
    struct Row {
        name: &'static str,
        models: GatewayReading,
        static_listing: Option<String>,
        completion: Option<(G, GatewayReading)>,
        upstream: Vec<UpstreamReading>,
        accounts: Vec<UpstreamReading>,
        want: (Verdict, Option<FailureClass>),
    }
    let row = |name,
               models: &GatewayReading,
               st: &Option<String>,
               completion: Option<(G, &GatewayReading)>,
               up: Vec<UpstreamReading>,
               acc: Vec<UpstreamReading>,
               want| Row {
        name,
        models: models.clone(),
        static_listing: st.clone(),
        completion: completion.map(|(s, r)| (s, r.clone())),
        upstream: up,
        accounts: acc,
        want,
    };
    let none = None;
    let pass = (Verdict::Pass, None);
    let fail = |c| (Verdict::Fail, Some(c));
    let adv = |c| (Verdict::PassWithAdvisories, Some(c));
    #[rustfmt::skip]
    let rows = vec![
        row("listed + completion ok", &ok, &none, Some((G::Chat, &ok)), vec![], vec![answers.clone()], pass),
        row("static listing, messages ok: ready rests on the completion", &not_listed, &legacy, Some((G::Messages, &ok)), vec![], vec![answers.clone()], pass),
        row("not listed, not static: model_not_exposed", &not_listed, &none, None, vec![], vec![answers.clone()], fail(ModelNotExposed)),
        row("upstream 401 seen only by the account test beats the hidden model", &not_listed, &none, None, vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
        row("account test 402 beats the hidden model", &not_listed, &none, None, vec![], vec![a402.clone()], fail(UpstreamKeyQuotaIssue)),
        row("account test 500 beats the hidden model", &not_listed, &none, None, vec![], vec![a500.clone()], fail(UpstreamUnavailable)),
        row("direct probe answers: the model is really not exposed", &not_listed, &none, None, vec![answers.clone()], vec![a401.clone()], fail(ModelNotExposed)),
        row("direct 402 beats account test 401", &not_listed, &none, None, vec![a402.clone()], vec![a401.clone()], fail(UpstreamKeyQuotaIssue)),
        row("direct unreachable: the account test decides", &not_listed, &none, None, vec![down.clone()], vec![a401.clone()], fail(UpstreamKeyInvalid)),
        row("upstream_error 502 + account test 401", &ok, &none, Some((G::Messages, &upstream_auth_502)), vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
        row("upstream_error 502, nothing probed: the host's words", &ok, &none, Some((G::Messages, &upstream_auth_502)), vec![], vec![], fail(UpstreamKeyInvalid)),
        row("upstream 5xx through the gateway, nothing probed", &ok, &none, Some((G::Messages, &upstream_5xx)), vec![], vec![], fail(UpstreamUnavailable)),
        row("upstream 529 overloaded through the gateway", &ok, &legacy, Some((G::Messages, &overloaded)), vec![], vec![], fail(UpstreamUnavailable)),
        row("upstream 5xx probed directly", &ok, &none, Some((G::Chat, &upstream_5xx)), vec![a529.clone()], vec![], fail(UpstreamUnavailable)),
        row("no available accounts + account test 401", &ok, &none, Some((G::Chat, &no_accounts)), vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
        row("no available accounts, upstream answers: host gap", &ok, &none, Some((G::Chat, &no_accounts)), vec![answers.clone()], vec![], fail(HostCompatibilityGap)),
        row("upstream 429 is the only rate limit", &ok, &none, Some((G::Chat, &upstream_5xx)), vec![a429.clone()], vec![], adv(TransientRateLimited)),
        row("user key refused: the host's own verdict", &ok, &none, Some((G::Chat, &user_key_refused)), vec![], vec![a401.clone()], fail(AuthIssue)),
        row("no route: the host's own verdict", &ok, &none, Some((G::Chat, &no_route)), vec![], vec![a401.clone()], fail(RouteMissing)),
        row("completion ok, account test 401: advisory", &ok, &none, Some((G::Chat, &ok)), vec![], vec![a401.clone()], adv(UpstreamKeyInvalid)),
        row("completion ok, account test 500: advisory", &ok, &none, Some((G::Chat, &ok)), vec![], vec![a500.clone()], adv(UpstreamUnavailable)),
        row("static, completion skipped, account test answers", &not_listed, &legacy, None, vec![], vec![answers.clone()], pass),
        row("static, completion skipped, account test 401", &not_listed, &legacy, None, vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
        row("static, completion skipped, no account evidence", &not_listed, &legacy, None, vec![], vec![], adv(HostCompatibilityGap)),
    ];
    for r in rows {
        let e = CheckEvidence {
            smoke_model: smoke.to_owned(),
            models: r.models,
            static_listing: r.static_listing,
            completion: r.completion,
            upstream: r.upstream,
            accounts: r
                .accounts
                .into_iter()
                .enumerate()
                .map(|(i, a)| (format!("{}", i + 1), a))
                .collect(),
        };
        let d = decide(&e);
        assert_eq!(
            (d.verdict, d.failure_class),
            r.want,
            "{}: {}",
            r.name,
            d.summary
        );
        if d.verdict != Verdict::Pass {
            assert!(
                d.summary.contains("`crm "),
                "{}: the hint names a command: {}",
                r.name,
                d.summary
            );
        }
        if e.static_listing.is_some() && d.verdict == Verdict::Pass {
            assert!(
                d.summary.contains("informational"),
                "{}: {}",
                r.name,
                d.summary
            );
        }
    }
}

#[test]
fn static_listings_are_recognised_from_evidence() {
    let current = ListingFacts {
        version: Some("0.1.130".into()),
        channels: true,
        chat_completions: true,
    };
    let legacy = ListingFacts {
        version: Some("0.1.0".into()),
        channels: false,
        chat_completions: false,
    };
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(
        static_listing(&current, &ids(&["gpt-5", "gpt-5.1"]))
            .unwrap()
            .contains("OpenAI")
    );
    assert!(
        static_listing(&current, &ids(STATIC_CLAUDE_MODELS))
            .unwrap()
            .contains("Claude")
    );
    assert_eq!(
        static_listing(&current, &ids(&["deepseek-chat", "gpt-5"])),
        None
    );
    assert_eq!(static_listing(&current, &[]), None);
    assert!(
        static_listing(&legacy, &ids(&["deepseek-chat"]))
            .unwrap()
            .contains("older-era")
    );
}
