//! Budgets in the TUI: each budget's spend in its period under the metrics pane's costs, and a
//! badge on the status line once one passes 80% (an error badge once used up) that stays
//! there until the period resets, unlike the one-off warning message. Snapshot at 160x48; at
//! 80x24 the metrics pane is folded away and the status line still says it.

use llmux::metrics::Usd;
use llmux::tui::action::Action;
use llmux::tui::metrics::{BudgetLine, StatusView};

use super::{Harness, demo_status};

const HOUR_MS: u64 = 3_600_000;

fn budget(label: &str, spent_cents: u64, limit: u64, period: &str, resets_h: u64) -> BudgetLine {
    BudgetLine {
        label: label.to_string(),
        spent: Usd::CENT.times(spent_cents),
        limit: Usd::DOLLAR.times(limit),
        period: period.to_string(),
        resets_in_ms: Some(resets_h * HOUR_MS),
    }
}

fn with_budgets(budgets: Vec<BudgetLine>) -> StatusView {
    StatusView {
        budgets,
        ..demo_status()
    }
}

/// The status line: the screen's last line.
fn status_line(screen: &str) -> &str {
    screen.lines().last().unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn budgets_show_under_the_costs_and_the_worst_one_past_80_percent_on_the_status_line() {
    let mut h = Harness::new(160, 48);
    h.act(Action::Status(with_budgets(vec![
        budget("llmux.budget", 412, 20, "30d", 300),
        budget("openai", 4_100, 50, "1d", 3),
    ])));
    let s = h.screen();
    insta::assert_snapshot!("budgets_160x48", s);
    assert!(
        s.contains("budgets: spent/limit per period")
            && s.contains("llmux.budget 20% $4.12/$20.00 30d resets 12d 12h"),
        "{s}"
    );
    assert!(s.contains("openai 82% $41.00/$50.00 1d resets 3h"), "{s}");
    assert!(
        status_line(&s).contains(" budget openai 82% "),
        "{}",
        status_line(&s)
    );

    // Used up: the badge names the worst budget.
    h.act(Action::Status(with_budgets(vec![
        budget("openai", 4_100, 50, "1d", 3),
        budget("deployment mock/smart-slow", 1_050, 10, "1d", 20),
    ])));
    let s = h.screen();
    assert!(
        status_line(&s).contains(" budget deployment mock/smart-slow 105% "),
        "{}",
        status_line(&s)
    );

    // Under 80% everywhere: no badge; no budgets: no budget lines.
    h.act(Action::Status(with_budgets(vec![budget(
        "openai", 1_000, 50, "1d", 3,
    )])));
    let s = h.screen();
    assert!(!status_line(&s).contains("budget"), "{}", status_line(&s));
    assert!(s.contains("openai 20% $10.00/$50.00"), "{s}");
    h.act(Action::Status(demo_status()));
    assert!(!h.screen().contains("budget"));
}

#[tokio::test(start_paused = true)]
async fn the_badge_shows_with_the_metrics_pane_folded_away() {
    let mut h = Harness::new(80, 24);
    h.act(Action::Status(with_budgets(vec![budget(
        "openai", 5_000, 50, "1d", 3,
    )])));
    let s = h.screen();
    assert!(!s.contains("budgets:"), "the pane is folded at 80x24:\n{s}");
    assert!(
        status_line(&s).contains(" budget openai 100% "),
        "{}",
        status_line(&s)
    );
}
