//! The responsive layout: the conversation keeps three fifths of the width wherever side panes
//! stand beside it, side panes shrink and then fold by priority, and stacked panes too small
//! to hold a row fold instead of showing as empty boxes. Snapshots at 100, 120, 140, 160 and
//! 200 columns, and at 60x20 with F2/F3 (and F4) on.

use crossterm::event::KeyCode;
use llmux::tui::app::Focus;

use super::full;

/// Sizes the layout is snapshot at: widths from the issue, heights of common terminals.
const SIZES: [(u16, u16); 5] = [(100, 30), (120, 40), (140, 40), (160, 48), (200, 50)];

#[tokio::test(start_paused = true)]
async fn the_conversation_gets_three_fifths_of_the_width_at_every_size() {
    for (w, hh) in SIZES {
        let mut h = full(w, hh).await;
        let a = h.app.areas();
        assert!(
            u32::from(a.conversation.width) * 5 >= u32::from(w) * 3,
            "{w}x{hh}: the conversation is {} of {w} columns",
            a.conversation.width
        );
        assert!(a.metrics.is_some() && a.log.is_some(), "{w}x{hh}: {a:?}");
        // The models column stands beside the conversation only where it fits.
        assert_eq!(a.models.is_some(), w >= 180, "{w}x{hh}: {a:?}");
        insta::assert_snapshot!(format!("layout_{w}x{hh}"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn asked_for_where_its_column_does_not_fit_the_models_pane_tops_the_right_column() {
    let mut h = full(120, 40).await;
    h.press(KeyCode::F(2));
    let a = h.app.areas();
    let (m, met) = (a.models.unwrap(), a.metrics.unwrap());
    assert!(m.x == met.x && m.y < met.y, "{a:?}");
    assert!(u32::from(a.conversation.width) * 5 >= 120 * 3);
    assert!(h.app.focusable().contains(&Focus::Models));
    insta::assert_snapshot!("layout_models_on_120x40", h.screen());
}

#[tokio::test(start_paused = true)]
async fn at_60x20_panes_too_small_for_a_row_fold_and_the_last_one_asked_for_stays() {
    let mut h = full(60, 20).await;
    h.press(KeyCode::F(2));
    h.press(KeyCode::F(3));
    let s = h.screen();
    assert!(s.contains("Models") && s.contains("Metrics"), "{s}");
    insta::assert_snapshot!("layout_f2_f3_60x20", s);
    // A third pane leaves too few rows for each: the oldest asked for folds, and says so.
    h.press(KeyCode::F(4));
    let s = h.screen();
    assert!(s.contains("Routing log") && !s.contains("Models"), "{s}");
    assert!(s.contains("no room for the models pane"), "{s}");
    let a = h.app.areas();
    for r in [a.models, a.metrics, a.log].into_iter().flatten() {
        assert!(r.height >= 3, "an empty box: {a:?}");
    }
    assert!(!h.app.focusable().contains(&Focus::Models));
    insta::assert_snapshot!("layout_f2_f3_f4_60x20", s);
    // F2 again brings the models back; another pane gives way.
    h.press(KeyCode::F(2));
    let s = h.screen();
    assert!(s.contains("Models"), "{s}");
    assert!(s.contains("no room for the metrics pane"), "{s}");
}
