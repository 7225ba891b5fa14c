//! The metrics pane with more deployments than fit (11 at 160x48): the totals stay pinned at
//! its foot, the border says how many deployments are out of sight ("↓ N more"), End and
//! Home scroll to the last and first, and long ids are cut so that each deployment's error
//! rate and cooldown stay in sight.

use crossterm::event::KeyCode;
use llmux::metrics::Usd;
use llmux::tui::action::Action;
use llmux::tui::app::Focus;
use llmux::tui::metrics::{DeploymentRow, Health, StatusView};

use super::Harness;

/// $0.15 in, $0.60 out per million tokens.
const PRICE: (Usd, Usd) = (Usd::from_pico(150_000), Usd::from_pico(600_000));

fn eleven() -> StatusView {
    let rows = (1..=11)
        .map(|i| DeploymentRow {
            id: format!("azure/gpt-4o-mini-2024-07-18-deployment-eu-west-{i:02}"),
            group: "fast".into(),
            health: if i == 11 {
                Health::Cooling { ms_left: 7_400 }
            } else {
                Health::Healthy
            },
            requests: 10,
            errors: i % 3,
            error_rate: Some((i % 3) as f64 / 10.0),
            cost: Some(Usd::from_pico(1_000_000).times(i)),
            price: Some(PRICE),
            ..DeploymentRow::default()
        })
        .collect();
    StatusView {
        rows,
        run_cost: Usd::from_pico(66_000_000),
        ..StatusView::default()
    }
}

/// The metrics pane's part of each screen line (its right column at 160 wide).
fn pane(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| l.char_indices().nth(107).map(|(i, _)| &l[i..]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(start_paused = true)]
async fn eleven_deployments_scroll_under_pinned_totals_with_their_numbers_in_sight() {
    let mut h = Harness::new(160, 48);
    h.act(Action::Status(eleven()));
    let s = h.screen();
    let p = pane(&s);
    assert!(p.contains("session $0  all time $?"), "totals pinned:\n{p}");
    assert!(p.contains("↓ "), "hidden deployments said:\n{p}");
    assert!(p.contains("more"), "{p}");
    // The id is cut in the middle (the deployments differ only at their ends), the numbers
    // after it whole.
    assert!(
        p.contains("● azure/gpt-4o-min…oyment-eu-west-01  10 req 10% err│"),
        "{p}"
    );
    assert!(
        p.contains("● azure/gpt-4o-min…oyment-eu-west-02  10 req 20% err│"),
        "{p}"
    );
    assert!(p.contains(" ↓ 3 more "), "{p}");
    assert!(
        !p.contains("eu-west-11"),
        "the last is out of sight at first:\n{p}"
    );
    insta::assert_snapshot!("metrics_eleven_160x48", p);

    h.app.focus = Focus::Metrics;
    h.press(KeyCode::End);
    let p = pane(&h.screen());
    assert!(p.contains("↑ "), "{p}");
    assert!(!p.contains("↓ "), "the end shows the last:\n{p}");
    assert!(
        p.contains("cooling 8s"),
        "the cooling one shows its cooldown:\n{p}"
    );
    assert!(p.contains("session $0"), "{p}");
    h.press(KeyCode::Up);
    assert!(pane(&h.screen()).contains("↓ 1 more"));
    h.press(KeyCode::Home);
    let p = pane(&h.screen());
    assert!(!p.contains("↑ "), "{p}");
    assert!(
        p.contains("$0.000001"),
        "the first deployment on top again:\n{p}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployments_cost_is_never_cut_the_throughput_label_shortens_first() {
    // At 120x40 the pane has 46 columns: the timings, the throughput and a cost of seven
    // digits do not all fit.
    let view = StatusView {
        rows: vec![DeploymentRow {
            id: "mock/fast-steady".into(),
            group: "fast".into(),
            health: Health::Healthy,
            requests: 1,
            ttft_p50_ms: Some(251),
            ttft_p95_ms: Some(251),
            latency_p50_ms: Some(1_600),
            latency_p95_ms: Some(1_600),
            tokens_per_s: Some(61.0),
            cost: Some(Usd::from_pico(48_900_000)),
            price: Some(PRICE),
            ..DeploymentRow::default()
        }],
        ..StatusView::default()
    };
    let mut h = Harness::new(120, 40);
    h.act(Action::Status(view.clone()));
    let s = h.screen();
    let row = s
        .lines()
        .find(|l| l.contains("ttft 251"))
        .unwrap_or_else(|| panic!("the timings row:\n{s}"));
    assert!(row.contains("$0.0000489"), "the cost whole: {row}");
    assert!(
        row.contains("61t/s"),
        "the throughput's label shortened: {row}"
    );
    // At 100 columns (38 in the pane) not even the timings and the cost fit (seen in tmux as
    // `$0.0000…`): the timings keep their p50s.
    let mut h = Harness::new(100, 30);
    h.act(Action::Status(view));
    let s = h.screen();
    let row = s
        .lines()
        .find(|l| l.contains("ttft 251"))
        .unwrap_or_else(|| panic!("the timings row:\n{s}"));
    assert!(
        row.contains("ttft 251ms lat 1.6s 61t/s $0.0000489"),
        "p50s and the cost whole: {row}"
    );
}
