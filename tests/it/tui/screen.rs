//! What the screen says around the panes: the status line (no stray separator, nothing cut
//! without `…`), the first run's hint (the DEMO badge explained, F2–F4 for the folded panes).

use std::time::Duration;

use crossterm::event::KeyCode;
use llmux::router::ChatEvent;
use llmux::tui::action::Action;

use super::{Harness, full, outcome};

/// The status line: the screen's last line.
fn status_line(screen: &str) -> String {
    screen.lines().last().unwrap_or_default().to_string()
}

#[tokio::test(start_paused = true)]
async fn with_the_key_hint_hidden_no_separator_is_left_behind() {
    let mut h = full(80, 24).await;
    assert!(h.app.toast.is_some(), "the cancel left a message");
    let line = status_line(&h.screen());
    assert!(line.contains("session $0.00000504"), "{line}");
    assert!(
        !line.contains("· session") && !line.contains("  · "),
        "{line}"
    );
    // Without the message the key hint and its separator come back together.
    tokio::time::advance(Duration::from_secs(5)).await;
    h.act(Action::Tick(tokio::time::Instant::now()));
    let line = status_line(&h.screen());
    assert!(line.contains("Ctrl+N/Ctrl+B · session"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn at_40_columns_nothing_is_cut_without_an_ellipsis() {
    let mut h = Harness::new(40, 20);
    let (tag, group, _) = h.send("hi");
    h.chat(
        tag,
        300,
        ChatEvent::finished(Ok(outcome(
            "Hello there, a longer answer",
            &group,
            "mock/fast-steady",
            120,
            2_300,
            96,
            Some(5_040_000),
        ))),
    )
    .await;
    let s = h.screen();
    let lines: Vec<&str> = s.lines().collect();
    // The live line (`last: mock/fast-steady · 96 tok at 44 tok/s`) is longer than 40.
    let live = lines[lines.len() - 5];
    assert!(live.starts_with("● last: mock/fast-steady"), "{s}");
    assert!(live.ends_with('…'), "a cut number must say so: {live:?}");
    // The status line: whole pieces, and a message that does not fit ends in `…`.
    let status = status_line(&s);
    assert!(
        !status.contains("$0.0000") || status.contains("$0.00000504"),
        "{status:?}"
    );
    h.act(Action::Copied(Err(
        "a message much too long for forty columns".into(),
    )));
    let status = status_line(&h.screen());
    assert!(status.ends_with('…'), "{status:?}");
    assert!(
        status.contains(" fast "),
        "the group always shows: {status:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_run_explains_the_demo_and_where_the_folded_panes_are() {
    let mut h = Harness::new(80, 24);
    let s = h.screen();
    let flat = s.replace(['│', '\n'], " ");
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "DEMO: no config was found",
        "mock deployments",
        "no network",
        "config.yaml at <config dir>/llmux/config.yaml",
        "F2–F4 show the models, metrics and routing log",
    ] {
        assert!(flat.contains(words), "{words:?} missing:\n{s}");
    }
    assert!(status_line(&s).contains("F2–F4 panes"), "{s}");
    // Where every pane shows, the hint does not send the user looking for them.
    let mut wide = Harness::new(200, 50);
    let s = wide.screen();
    assert!(!s.contains("F2–F4"), "{s}");
    // Once the conversation has begun, the explanation gives way to it.
    h.send("hi");
    h.press(KeyCode::Esc);
    assert!(!h.screen().contains("DEMO: no config"));
}

#[tokio::test(start_paused = true)]
async fn ascii_mode_draws_spinner_sparklines_markers_and_borders_in_ascii() {
    let mut h = full(120, 40).await;
    h.app.ascii = true;
    h.press(KeyCode::F(2));
    let (tag, _, _) = h.send("Explain lifetimes briefly.");
    h.chat(
        tag,
        300,
        ChatEvent::Delta("A lifetime names how long ".into()),
    )
    .await;
    let s = h.screen();
    let odd: String = s.chars().filter(|c| !c.is_ascii()).collect();
    assert!(odd.is_empty(), "not ASCII: {odd:?}\n{s}");
    // The spinner is one of the ASCII frames; sparklines and markers have stand-ins.
    let live = s
        .lines()
        .find(|l| l.contains(" tok/s "))
        .unwrap_or_else(|| panic!("the live line:\n{s}"));
    assert!(
        ["| ", "/ ", "- ", "\\ "]
            .iter()
            .any(|f| live.contains(&format!("|{f}"))),
        "{live}"
    );
    assert!(s.contains("lat    _=+=#++"), "the latency sparkline: {s}");
    insta::assert_snapshot!("ascii_120x40", s);
}

#[tokio::test(start_paused = true)]
async fn a_copy_inside_tmux_without_passthrough_says_it_may_not_arrive_and_how_to_fix_it() {
    use llmux::tui::clipboard::{Mux, TmuxCopy};
    let mut h = full(160, 48).await;
    h.app.copy_caveat = Mux::Tmux(TmuxCopy::Blocked).caveat();
    let fx = h.ctrl('y');
    assert!(
        fx.iter()
            .any(|e| matches!(e, llmux::tui::action::Effect::Copy(_))),
        "{fx:?}"
    );
    h.act(Action::Copied(Ok(42)));
    let line = status_line(&h.screen());
    assert!(!line.contains("sent"), "{line}");
    assert!(
        line.contains("copied 42 chars, but it may not reach the clipboard"),
        "{line}"
    );
    assert!(line.contains("set -g allow-passthrough on"), "{line}");
    // Elsewhere a copy is reported sent.
    let mut plain = full(160, 48).await;
    plain.act(Action::Copied(Ok(42)));
    assert!(status_line(&plain.screen()).contains("sent 42 chars"));
}

/// The conversation pane's text rows at 160x48 (left of the right column).
fn conversation_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip(1)
        .take(35)
        .map(|l| l.chars().skip(1).take(104).collect())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn beside_side_panes_a_stream_turns_pages_instead_of_scrolling_every_line() {
    let mut h = full(160, 48).await;
    let (tag, _, _) = h.send("Explain lifetimes at length.");
    let line = "A lifetime names how long a reference is valid, and the compiler checks it. ";
    let mut tops = Vec::new();
    for _ in 0..60 {
        h.chat(tag, 100, ChatEvent::Delta(line.into())).await;
        let rows = conversation_rows(&h.screen());
        tops.push(rows[0].clone());
    }
    // The page's first row changes only when a page turns, not with every new line.
    let turns = tops.windows(2).filter(|w| w[0] != w[1]).count();
    assert!((1..=4).contains(&turns), "{turns} turns: {tops:#?}");
    // The page starts at the question, and the stream is not drawn a second time below.
    assert!(tops[0].contains("you → fast"), "{tops:#?}");
    let s = h.screen();
    let live: Vec<&str> = s.lines().skip(38).take(5).collect();
    assert!(
        live[1..].iter().all(|l| !l.contains("lifetime")),
        "the live pane repeats the stream: {live:#?}"
    );
    // Full width (80x24) the view follows the end: the terminal scrolls it cheaply.
    let mut n = full(80, 24).await;
    let (tag, _, _) = n.send("Again, at 80 columns.");
    let mut last = String::new();
    for i in 0..20 {
        n.chat(tag, 100, ChatEvent::Delta(format!("{i} {line}")))
            .await;
        last = n.screen();
    }
    assert!(last.contains("19 A lifetime"), "{last}");
}

#[tokio::test(start_paused = true)]
async fn a_short_conversation_stays_in_sight_while_the_next_answer_streams() {
    let mut h = Harness::new(160, 48);
    let (tag, _, _) = h.send("first question");
    h.chat(tag, 100, ChatEvent::Delta("first answer".into()))
        .await;
    let o = super::outcome(
        "first answer",
        "fast",
        "mock/fast-steady",
        100,
        200,
        2,
        None,
    );
    h.chat(tag, 100, ChatEvent::finished(Ok(o))).await;
    let (tag, _, _) = h.send("second question");
    h.chat(tag, 100, ChatEvent::Delta("second answer".into()))
        .await;
    // Everything fits: no page turns to the question, the first exchange stays on top.
    let rows = conversation_rows(&h.screen());
    assert!(rows[0].contains("you → fast"), "{rows:#?}");
    assert!(rows[1].contains("first question"), "{rows:#?}");
    assert!(
        rows.iter().any(|r| r.contains("second answer")),
        "{rows:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_live_counters_change_at_a_human_rate_not_every_frame() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("count");
    let live = |s: &str| s.lines().nth(19).unwrap_or_default().to_string();
    h.chat(tag, 100, ChatEvent::Delta("one ".into())).await;
    let mut seen = Vec::new();
    for i in 0..10 {
        h.chat(tag, 50, ChatEvent::Delta(format!("w{i} "))).await;
        // (the spinner turns with the tick; the counters are what is compared)
        let l = live(&h.screen());
        seen.push(l.chars().skip(2).collect::<String>());
    }
    seen.dedup();
    assert!(
        seen.len() <= 3,
        "counters changed {} times in 500 ms: {seen:#?}",
        seen.len()
    );
}

#[tokio::test(start_paused = true)]
async fn scrolled_up_then_grown_until_everything_fits_the_view_follows_the_end_again() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("explain routing");
    let text: String = (1..=12).map(|i| format!("answer line {i}\n\n")).collect();
    let o = super::outcome(&text, "fast", "mock/fast-steady", 100, 300, 60, None);
    h.chat(tag, 100, ChatEvent::Delta(text.clone())).await;
    h.chat(tag, 100, ChatEvent::finished(Ok(o))).await;
    h.press(KeyCode::PageUp);
    assert!(h.screen().contains("more below"), "scrolled up at 80x24");
    h.resize(120, 60);
    let s = h.screen();
    assert!(
        s.contains("answer line 12") && s.contains("explain routing"),
        "{s}"
    );
    assert!(!s.contains("more below"), "nothing is below: {s}");
    // It follows the end again: the next answer shows as it streams.
    let (tag, _, _) = h.send("and cooldowns?");
    let more: String = (1..=30).map(|i| format!("cooldown line {i}\n\n")).collect();
    h.chat(tag, 100, ChatEvent::Delta(more)).await;
    let s = h.screen();
    assert!(s.contains("cooldown line 30"), "{s}");
}
