//! The monitor's state: what it knows about the remote server. [`Update`]s from the feed
//! client enter through [`MonitorState::apply`], keys through [`MonitorState::key`]; the view
//! reads the state. No IO here, so the state can be driven and rendered in tests.
//!
//! The routing log is the TUI's [`RouteLog`] (the shared pane draws it), and the metrics
//! pane's [`StatusView`] is built from the server's snapshot the way the TUI builds its own
//! from the router. What concerns the monitor's link to the server (connected, lost,
//! reconnected, events missed) is a [`Note`] on the title line, not a routing event.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::protocol::events::{Hello, MonitorSnapshot};
use crate::router::RouteEvent;
use crate::widgets::metrics::StatusView;
use crate::widgets::routelog::RouteLog;

/// Routing events kept.
pub const LOG_CAPACITY: usize = 1000;
/// Lines a page key scrolls.
const PAGE: usize = 10;

/// The connection to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The first connection is being made.
    Connecting,
    Live,
    /// The connection failed or was lost; the client retries by itself.
    Reconnecting {
        attempt: u32,
        error: String,
    },
}

/// How a note is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
}

/// The latest thing to say about the link to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Unix time in milliseconds (0 when not known yet).
    pub at_unix_ms: u64,
    pub text: String,
    pub tone: Tone,
}

/// What the feed client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Hello(Hello),
    Snapshot(Box<MonitorSnapshot>),
    Route(Box<RouteEvent>),
    /// The server's latest events, oldest first, sent once right after `Hello`.
    Recent(Vec<RouteEvent>),
    /// The server dropped this many events for us (we read too slowly).
    Lagged(u64),
    /// The connection failed or ended; `at_unix_ms` is when.
    Disconnected {
        error: String,
        at_unix_ms: u64,
    },
}

/// Which pane the arrow keys scroll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    Metrics,
    #[default]
    Log,
}

/// What a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    Quit,
    Redraw,
    Ignored,
}

#[derive(Debug)]
pub struct MonitorState {
    /// The server's base URL, as shown in the title.
    pub url: String,
    pub link: Link,
    pub hello: Option<Hello>,
    pub snapshot: Option<MonitorSnapshot>,
    /// The metrics pane's view of the latest snapshot.
    pub status: StatusView,
    /// Every routing event, newest last, at most [`LOG_CAPACITY`].
    pub log: RouteLog,
    pub note: Option<Note>,
    /// Route events the server dropped for us, in total.
    pub missed: u64,
    pub focus: Focus,
    /// Lines the metrics pane is scrolled down.
    pub metrics_scroll: usize,
    /// When the link was lost, for the note once it is back.
    lost_at_unix_ms: Option<u64>,
    /// What the last `hello` said, for the note the `recent` list after it completes.
    greeting: Option<Greeting>,
}

/// The server a `hello` named, and when the link had been lost before it (a reconnect).
#[derive(Debug)]
struct Greeting {
    what: String,
    lost_at_unix_ms: Option<u64>,
}

/// How far back of the first recent event the log is searched for repeats: events of
/// concurrent requests are not stamped in exactly the order they are sent.
const RECENT_OVERLAP_MS: u64 = 2_000;

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl MonitorState {
    pub fn new(url: impl Into<String>) -> MonitorState {
        MonitorState {
            url: url.into(),
            link: Link::Connecting,
            hello: None,
            snapshot: None,
            status: StatusView::default(),
            log: RouteLog::default(),
            note: None,
            missed: 0,
            focus: Focus::default(),
            metrics_scroll: 0,
            lost_at_unix_ms: None,
            greeting: None,
        }
    }

    fn note(&mut self, at_unix_ms: u64, text: String, tone: Tone) {
        self.note = Some(Note {
            at_unix_ms,
            text,
            tone,
        });
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Hello(hello) => {
                let what = format!(
                    "llmux {} ({}, {})",
                    hello.version,
                    plural(hello.groups.len(), "group"),
                    plural(hello.deployments.len(), "deployment")
                );
                let lost_at_unix_ms = self.lost_at_unix_ms.take();
                let text = match lost_at_unix_ms {
                    Some(lost) => format!(
                        "reconnected to {what}; events between {} and now were not seen",
                        super::view::clock(lost)
                    ),
                    None => format!("connected to {what}"),
                };
                // The hello has no time of its own; the next snapshot gives it one.
                self.note(0, text, Tone::Good);
                self.link = Link::Live;
                self.hello = Some(hello);
                self.greeting = Some(Greeting {
                    what,
                    lost_at_unix_ms,
                });
            }
            Update::Recent(events) => {
                let first_at = events.first().map(|e| e.at_unix_ms);
                let (added, repeated) = self.merge_recent(events);
                let Some(greeting) = self.greeting.take() else {
                    return;
                };
                let what = &greeting.what;
                let text = match (greeting.lost_at_unix_ms, first_at) {
                    // The server's list reaches back into what we had: nothing fell between.
                    (Some(_), _) if repeated > 0 => {
                        let caught = match added {
                            0 => String::new(),
                            n => format!(" ({n} caught up)"),
                        };
                        format!("reconnected to {what}; no routing events were missed{caught}")
                    }
                    (Some(lost), Some(first)) if added > 0 => format!(
                        "reconnected to {what}; events between {} and {} may not have been seen ({added} caught up)",
                        super::view::clock(lost),
                        super::view::clock(first)
                    ),
                    (None, _) if added > 0 => format!(
                        "connected to {what}; {} before now",
                        plural(added, "routing event")
                    ),
                    _ => return,
                };
                if let Some(note) = &mut self.note {
                    note.text = text;
                }
            }
            Update::Snapshot(s) => {
                if let Some(note) = &mut self.note
                    && note.at_unix_ms == 0
                {
                    note.at_unix_ms = s.at_unix_ms;
                }
                self.status = StatusView::from_snapshot(&s);
                self.snapshot = Some(*s);
            }
            Update::Route(ev) => self.log.push(*ev, LOG_CAPACITY),
            Update::Lagged(n) => {
                self.missed += n;
                let at = self.log.events.back().map_or(0, |e| e.at_unix_ms);
                self.note(
                    at,
                    format!("missed {n} routing events (the monitor fell behind)"),
                    Tone::Warn,
                );
            }
            Update::Disconnected { error, at_unix_ms } => {
                let attempt = match &self.link {
                    Link::Reconnecting { attempt, .. } => attempt + 1,
                    Link::Live => {
                        self.lost_at_unix_ms = Some(at_unix_ms);
                        self.note(at_unix_ms, format!("connection lost: {error}"), Tone::Bad);
                        1
                    }
                    Link::Connecting => 1,
                };
                self.link = Link::Reconnecting { attempt, error };
            }
        }
    }

    /// Appends the server's recent events that the log does not hold yet (after a reconnect,
    /// the older ones it does); returns how many were added and how many it already held.
    fn merge_recent(&mut self, events: Vec<RouteEvent>) -> (usize, usize) {
        let Some(first) = events.first() else {
            return (0, 0);
        };
        let since = first.at_unix_ms.saturating_sub(RECENT_OVERLAP_MS);
        let held: Vec<RouteEvent> = self
            .log
            .events
            .iter()
            .rev()
            .take_while(|e| e.at_unix_ms >= since)
            .cloned()
            .collect();
        let (mut added, mut repeated) = (0, 0);
        for ev in events {
            if held.contains(&ev) {
                repeated += 1;
            } else {
                added += 1;
                self.log.push(ev, LOG_CAPACITY);
            }
        }
        (added, repeated)
    }

    /// Quit on `q`, `Esc` or `Ctrl+C`; `Tab` moves between the panes; arrows, `j`/`k`, page
    /// keys, `Home`/`g` and `End`/`G` scroll the focused one (the log back to following).
    pub fn key(&mut self, key: KeyEvent) -> KeyOutcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Positive scrolls toward older log lines / further down the metrics.
        let step: isize = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return KeyOutcome::Quit,
            KeyCode::Char('c') if ctrl => return KeyOutcome::Quit,
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Metrics => Focus::Log,
                    Focus::Log => Focus::Metrics,
                };
                return KeyOutcome::Redraw;
            }
            KeyCode::Up | KeyCode::Char('k') => 1,
            KeyCode::Down | KeyCode::Char('j') => -1,
            KeyCode::PageUp => PAGE as isize,
            KeyCode::PageDown => -(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => isize::MAX,
            KeyCode::End | KeyCode::Char('G') => isize::MIN,
            _ => return KeyOutcome::Ignored,
        };
        let shift = |at: usize, by: isize, max: usize| -> usize {
            if by >= 0 {
                at.saturating_add(by.unsigned_abs()).min(max)
            } else {
                at.saturating_sub(by.unsigned_abs())
            }
        };
        match self.focus {
            Focus::Log => {
                let max = self.log.events.len().saturating_sub(1);
                self.log.scroll = shift(self.log.scroll, step, max);
            }
            Focus::Metrics => {
                // The pane's lines scroll the other way up: an arrow up goes toward the top.
                let max = crate::widgets::metrics::line_count(&self.status);
                self.metrics_scroll = shift(self.metrics_scroll, step.saturating_neg(), max);
            }
        }
        KeyOutcome::Redraw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouteEventKind;

    fn hello() -> Hello {
        Hello {
            version: "0.1.0".into(),
            groups: vec!["fast".into()],
            deployments: vec!["a".into()],
        }
    }

    fn route(at_unix_ms: u64) -> Update {
        Update::Route(Box::new(RouteEvent {
            request_id: 1,
            group: "fast".into(),
            deployment: Some("a".into()),
            attempt: 0,
            at_unix_ms,
            elapsed_ms: 0,
            kind: RouteEventKind::Attempt,
        }))
    }

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn losing_the_link_notes_it_once_and_counts_attempts() {
        let mut s = MonitorState::new("http://x");
        s.apply(Update::Hello(hello()));
        assert_eq!(s.link, Link::Live);
        assert!(
            s.note
                .as_ref()
                .unwrap()
                .text
                .starts_with("connected to llmux 0.1.0")
        );
        for _ in 0..3 {
            s.apply(Update::Disconnected {
                error: "refused".into(),
                at_unix_ms: 5000,
            });
        }
        assert_eq!(
            s.link,
            Link::Reconnecting {
                attempt: 3,
                error: "refused".into()
            }
        );
        let note = s.note.clone().unwrap();
        assert_eq!(
            (note.text.as_str(), note.at_unix_ms),
            ("connection lost: refused", 5000)
        );
        s.apply(Update::Hello(hello()));
        assert_eq!(s.link, Link::Live);
        let text = &s.note.as_ref().unwrap().text;
        assert!(
            text.starts_with("reconnected") && text.contains("00:00:05"),
            "{text}"
        );
    }

    #[test]
    fn the_log_is_bounded_and_a_scrolled_log_stays_put() {
        let mut s = MonitorState::new("http://x");
        for i in 0..(LOG_CAPACITY + 5) {
            s.apply(route(i as u64));
        }
        assert_eq!(s.log.events.len(), LOG_CAPACITY);
        assert_eq!(s.log.events.front().unwrap().at_unix_ms, 5);
        assert_eq!(s.key(press(KeyCode::Up)), KeyOutcome::Redraw);
        assert_eq!(s.log.scroll, 1);
        s.apply(route(9999));
        assert_eq!(s.log.scroll, 2, "new events do not move what is being read");
        s.key(press(KeyCode::End));
        assert_eq!(s.log.scroll, 0, "End follows again");
    }

    #[test]
    fn keys_quit_switch_panes_and_scroll_the_focused_one() {
        let mut s = MonitorState::new("http://x");
        assert_eq!(s.key(press(KeyCode::Char('q'))), KeyOutcome::Quit);
        assert_eq!(
            s.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            KeyOutcome::Quit
        );
        assert_eq!(s.key(press(KeyCode::Char('x'))), KeyOutcome::Ignored);
        assert_eq!(s.focus, Focus::Log);
        s.key(press(KeyCode::Tab));
        assert_eq!(s.focus, Focus::Metrics);
        s.status.rows = vec![Default::default(); 4];
        s.key(press(KeyCode::PageDown));
        assert_eq!(s.metrics_scroll, PAGE);
        s.key(press(KeyCode::End));
        assert_eq!(
            s.metrics_scroll,
            crate::widgets::metrics::line_count(&s.status),
            "End goes to the last line"
        );
        s.key(press(KeyCode::Home));
        assert_eq!(s.metrics_scroll, 0);
        s.key(press(KeyCode::Up));
        assert_eq!(s.metrics_scroll, 0, "never above the top");
    }

    fn event(request_id: u64, at_unix_ms: u64) -> RouteEvent {
        RouteEvent {
            request_id,
            group: "fast".into(),
            deployment: Some("a".into()),
            attempt: 1,
            at_unix_ms,
            elapsed_ms: 0,
            kind: RouteEventKind::Attempt,
        }
    }

    fn note(s: &MonitorState) -> String {
        s.note.as_ref().map(|n| n.text.clone()).unwrap_or_default()
    }

    #[test]
    fn the_recent_events_fill_the_log_on_connect_and_the_gap_on_reconnect() {
        let mut s = MonitorState::new("http://x");
        s.apply(Update::Hello(hello()));
        s.apply(Update::Recent(vec![event(1, 1_000), event(2, 2_000)]));
        assert_eq!(s.log.events.len(), 2);
        assert!(
            note(&s).ends_with("; 2 routing events before now"),
            "{}",
            note(&s)
        );
        s.apply(route(3_000));

        // Lost, then back: the server's list repeats what we had and brings what we missed.
        s.apply(Update::Disconnected {
            error: "reset".into(),
            at_unix_ms: 3_500,
        });
        s.apply(Update::Hello(hello()));
        let recent = vec![
            event(2, 2_000),
            s.log.events[2].clone(),
            event(4, 4_000),
            event(5, 5_000),
        ];
        s.apply(Update::Recent(recent));
        let ids: Vec<(u64, u64)> = s
            .log
            .events
            .iter()
            .map(|e| (e.request_id, e.at_unix_ms))
            .collect();
        assert_eq!(
            ids,
            [(1, 1_000), (2, 2_000), (1, 3_000), (4, 4_000), (5, 5_000)]
        );
        assert_eq!(
            note(&s),
            "reconnected to llmux 0.1.0 (1 group, 1 deployment); no routing events were missed (2 caught up)"
        );

        // Back again with nothing new: no count of nothing.
        s.apply(Update::Disconnected {
            error: "reset".into(),
            at_unix_ms: 5_500,
        });
        s.apply(Update::Hello(hello()));
        let last = s.log.events.back().cloned().unwrap();
        s.apply(Update::Recent(vec![last]));
        assert_eq!(s.log.events.len(), 5);
        assert!(
            note(&s).ends_with("; no routing events were missed"),
            "{}",
            note(&s)
        );
    }

    #[test]
    fn a_reconnect_whose_recent_events_do_not_reach_back_still_says_events_were_not_seen() {
        let mut s = MonitorState::new("http://x");
        s.apply(Update::Hello(hello()));
        s.apply(route(1_000));
        s.apply(Update::Disconnected {
            error: "reset".into(),
            at_unix_ms: 1_500,
        });
        s.apply(Update::Hello(hello()));
        // A restarted server: its events are all new, and what happened between is unknown.
        s.apply(Update::Recent(vec![event(1, 90_000)]));
        assert_eq!(s.log.events.len(), 2);
        assert!(
            note(&s).ends_with(
                "; events between 00:00:01 and 00:01:30 may not have been seen (1 caught up)"
            ),
            "{}",
            note(&s)
        );
        // Nothing at all since: the hello's own note stands.
        s.apply(Update::Disconnected {
            error: "reset".into(),
            at_unix_ms: 95_000,
        });
        s.apply(Update::Hello(hello()));
        s.apply(Update::Recent(Vec::new()));
        assert!(note(&s).contains("were not seen"), "{}", note(&s));
    }
}
