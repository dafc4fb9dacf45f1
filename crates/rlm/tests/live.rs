//! Opt-in live check against a real provider: runs only when OPENAI_API_KEY is
//! set (OPENAI_BASE_URL and HALO_LIVE_MODEL are honoured), and says it was
//! skipped otherwise.

mod common;

use halo_provider::{ApiKey, ProviderConfig};
use halo_rlm::{Engine, EngineConfig, RunStatus};

#[tokio::test]
async fn live_provider_run() {
    let Ok(key) = std::env::var("OPENAI_API_KEY") else {
        eprintln!("skipped: live provider check (set OPENAI_API_KEY to run it)");
        return;
    };
    if key.trim().is_empty() {
        eprintln!("skipped: live provider check (OPENAI_API_KEY is empty)");
        return;
    }
    let base =
        std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".to_owned());
    let model = std::env::var("HALO_LIVE_MODEL").unwrap_or_else(|_| "gpt-5.4-mini".to_owned());
    let data = common::data();
    let mut cfg = EngineConfig::new(
        ProviderConfig::new(base).with_api_key(ApiKey::new(key.clone())),
        model,
    );
    cfg.max_turns = 8;
    cfg.max_depth = 1;
    cfg.max_total_tokens = Some(200_000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = halo_rlm::run(&engine, "Which traces fail and why? Cite the traces.")
        .await
        .unwrap();
    eprintln!("live report ({:?}):\n{}", outcome.status, outcome.report);
    assert!(outcome.status.is_success(), "{:?}", outcome.error);
    assert!(
        outcome.report.contains("[trace:"),
        "the report cites traces"
    );
    assert!(!outcome.report.contains(&key));
    assert_ne!(outcome.status, RunStatus::Failed);
}
