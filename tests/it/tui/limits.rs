//! A deployment at its rpm/tpm limit or over its budget is not shown green: the models pane
//! gives it its own marker and the time until it is free, and the error of a request it could
//! not take says when it frees up.

use llmux::provider::ChatRequest;
use llmux::router::LimitKind;
use llmux::tui::action::Action;
use llmux::tui::metrics::{Health, StatusView};

use super::Harness;

#[tokio::test(start_paused = true)]
async fn a_deployment_at_its_rpm_limit_has_its_own_marker_and_says_when_it_is_free() {
    let yaml = r#"
model_list:
  - model_name: solo
    litellm_params: { model: mock/solo-1, mock_response: hi, rpm: 1 }
"#;
    let router = crate::support::router(yaml);
    let mut h = Harness::with_yaml(160, 48, yaml);
    h.act(Action::Status(StatusView::from_router(&router)));
    assert!(h.screen().contains("● mock/solo-1"), "free: green dot");

    router
        .chat("solo", ChatRequest::new(Vec::new()))
        .finish()
        .await
        .unwrap();
    let view = StatusView::from_router(&router);
    let row = view.row("mock/solo-1").unwrap();
    let Health::Limited { kind, ms_left } = row.health else {
        panic!("{:?}", row.health)
    };
    assert_eq!(kind, LimitKind::Rpm);
    assert!(ms_left > 0 && ms_left <= 60_000, "{ms_left}");
    assert!(view.any_cooling(), "the countdown ticks");
    h.act(Action::Status(view));
    let s = h.screen();
    assert!(!s.contains("● mock/solo-1"), "not green:\n{s}");
    assert!(s.contains("◔ mock/solo-1"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("◔ mock/solo-1") && l.contains("rpm limit 60s")),
        "the marker and the time until free on the deployment's row:\n{s}"
    );

    // The conversation's error names the limit and when it frees up.
    h.send("again");
    let request = super::started(&h.effects[h.effects.len() - 1..]);
    h.run_request(&router, request, None).await;
    let s = h.screen();
    // The conversation's text, its wrapped lines joined (the pane's width decides the breaks).
    let conversation = s
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        conversation.contains("(mock/solo-1 at its rpm limit, 1/1) · next free in 59.7 s"),
        "{s}"
    );
}

#[test]
fn limits_and_budgets_read_as_such() {
    let limited = |kind, ms_left| Health::Limited { kind, ms_left }.describe();
    assert_eq!(limited(LimitKind::Tpm, 4_100), "tpm limit 5s");
    assert_eq!(limited(LimitKind::Budget, 3 * 3_600_000), "over budget 3h");
    assert_ne!(
        Health::Limited {
            kind: LimitKind::Rpm,
            ms_left: 1
        }
        .dot()
        .0,
        "●"
    );
}

#[tokio::test(start_paused = true)]
async fn the_models_pane_cuts_a_long_id_to_keep_its_limit_in_sight() {
    let yaml = r#"
model_list:
  - model_name: solo
    litellm_params: { model: mock/solo-deployment-in-eu-west-01, mock_response: hi, rpm: 1 }
"#;
    let router = crate::support::router(yaml);
    router
        .chat("solo", ChatRequest::new(Vec::new()))
        .finish()
        .await
        .unwrap();
    let mut h = Harness::with_yaml(200, 50, yaml);
    h.act(Action::Status(StatusView::from_router(&router)));
    let s = h.screen();
    // The models pane's column (whatever its width): the id cut in the middle, the limit whole.
    let models: Vec<&str> = s.lines().filter_map(|l| l.split("││").next()).collect();
    assert!(
        models
            .iter()
            .any(|l| l.contains("◔ mock") && l.contains("…") && l.ends_with("rpm limit 60s")),
        "{s}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_models_pane_keeps_long_ids_of_one_group_apart() {
    // Healthy deployments keep their ids whole where they fit (the price may run off the
    // edge); an id too long for the column is cut in the middle, so two that differ only at
    // the end still read apart.
    let yaml = r#"
model_list:
  - model_name: gpt
    litellm_params: { model: mock/azure-gpt-4o-mini-eastus2-deployment-a, mock_response: hi }
  - model_name: gpt
    litellm_params: { model: mock/azure-gpt-4o-mini-eastus2-deployment-b, mock_response: hi }
  - model_name: short
    litellm_params: { model: mock/short-one, mock_response: hi }
"#;
    let mut h = Harness::with_yaml(200, 50, yaml);
    let s = h.screen();
    let models: Vec<&str> = s.lines().filter_map(|l| l.split("││").next()).collect();
    let row = |end: &str| {
        models
            .iter()
            .any(|l| l.contains("● mock/azure-") && l.contains("…") && l.ends_with(end))
    };
    assert!(row("ployment-a") && row("ployment-b"), "{s}");
    assert!(models.iter().any(|l| l.contains("● mock/short-one")), "{s}");
}
