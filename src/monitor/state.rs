//! The monitor's state: what it knows about the remote server. [`Update`]s from the feed
//! client enter through [`MonitorState::apply`]; the view reads the state. No IO here, so the
//! state can be driven and rendered in tests.

use std::collections::VecDeque;

use crate::router::{RouteEvent, RouteEventKind};
use crate::serve::{Hello, MonitorSnapshot};

/// Routing log lines kept.
pub const LOG_CAPACITY: usize = 1000;

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

/// How a log line is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Good,
    Warn,
    Bad,
    /// Lines about the monitor's own connection.
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
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
    /// The server dropped this many events for us (we read too slowly).
    Lagged(u64),
    /// The connection failed or ended; `at_unix_ms` is when.
    Disconnected {
        error: String,
        at_unix_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorState {
    /// The server's base URL, as shown in the title.
    pub url: String,
    pub link: Link,
    pub hello: Option<Hello>,
    pub snapshot: Option<MonitorSnapshot>,
    /// Oldest first.
    pub log: VecDeque<LogLine>,
    /// Route events the server dropped for us, in total.
    pub missed: u64,
}

impl MonitorState {
    pub fn new(url: impl Into<String>) -> MonitorState {
        MonitorState {
            url: url.into(),
            link: Link::Connecting,
            hello: None,
            snapshot: None,
            log: VecDeque::new(),
            missed: 0,
        }
    }

    fn push(&mut self, at_unix_ms: u64, text: String, tone: Tone) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            at_unix_ms,
            text,
            tone,
        });
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Hello(hello) => {
                let at = self.snapshot.as_ref().map_or(0, |s| s.at_unix_ms);
                let again = !matches!(self.link, Link::Connecting);
                let plural = |n: usize, one: &str| {
                    if n == 1 {
                        format!("1 {one}")
                    } else {
                        format!("{n} {one}s")
                    }
                };
                let text = format!(
                    "{} llmux {} ({}, {})",
                    if again {
                        "reconnected to"
                    } else {
                        "connected to"
                    },
                    hello.version,
                    plural(hello.groups.len(), "group"),
                    plural(hello.deployments.len(), "deployment")
                );
                self.push(at, text, Tone::Meta);
                self.link = Link::Live;
                self.hello = Some(hello);
            }
            Update::Snapshot(s) => {
                if let Some(last) = self.log.back_mut()
                    && last.at_unix_ms == 0
                    && last.tone == Tone::Meta
                {
                    // The hello line has no time of its own; it gets the first snapshot's.
                    last.at_unix_ms = s.at_unix_ms;
                }
                self.snapshot = Some(*s);
            }
            Update::Route(ev) => {
                let tone = tone_of(&ev.kind);
                self.push(ev.at_unix_ms, ev.describe(), tone);
            }
            Update::Lagged(n) => {
                self.missed += n;
                let at = self.log.back().map_or(0, |l| l.at_unix_ms);
                self.push(
                    at,
                    format!("missed {n} routing events (the monitor fell behind)"),
                    Tone::Warn,
                );
            }
            Update::Disconnected { error, at_unix_ms } => {
                let attempt = match &self.link {
                    Link::Reconnecting { attempt, .. } => attempt + 1,
                    Link::Live | Link::Connecting => {
                        if self.link == Link::Live {
                            self.push(
                                at_unix_ms,
                                format!("connection lost: {error}; reconnecting…"),
                                Tone::Meta,
                            );
                        }
                        1
                    }
                };
                self.link = Link::Reconnecting { attempt, error };
            }
        }
    }
}

fn tone_of(kind: &RouteEventKind) -> Tone {
    match kind {
        RouteEventKind::Done { .. }
        | RouteEventKind::SharedState {
            connected: true, ..
        } => Tone::Good,
        RouteEventKind::SharedState {
            connected: false, ..
        } => Tone::Warn,
        RouteEventKind::Failure { .. } | RouteEventKind::Failed { .. } => Tone::Bad,
        RouteEventKind::Cooldown { .. }
        | RouteEventKind::Retry { .. }
        | RouteEventKind::Unavailable { .. }
        | RouteEventKind::Fallback { .. }
        | RouteEventKind::MidStream { .. }
        | RouteEventKind::Budget { .. }
        | RouteEventKind::Cancelled => Tone::Warn,
        RouteEventKind::Request { .. }
        | RouteEventKind::Attempt
        | RouteEventKind::FirstToken { .. } => Tone::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: "0.1.0".into(),
            groups: vec!["fast".into()],
            deployments: vec!["a".into()],
        }
    }

    #[test]
    fn losing_the_link_logs_once_and_counts_attempts() {
        let mut s = MonitorState::new("http://x");
        s.apply(Update::Hello(hello()));
        assert_eq!(s.link, Link::Live);
        for _ in 0..3 {
            s.apply(Update::Disconnected {
                error: "refused".into(),
                at_unix_ms: 5,
            });
        }
        assert_eq!(
            s.link,
            Link::Reconnecting {
                attempt: 3,
                error: "refused".into()
            }
        );
        let lost = s.log.iter().filter(|l| l.text.contains("lost")).count();
        assert_eq!(lost, 1);
        s.apply(Update::Hello(hello()));
        assert_eq!(s.link, Link::Live);
        assert!(s.log.back().unwrap().text.starts_with("reconnected"));
    }

    #[test]
    fn the_log_is_bounded() {
        let mut s = MonitorState::new("http://x");
        for i in 0..(LOG_CAPACITY + 5) {
            s.apply(Update::Lagged(i as u64));
        }
        assert_eq!(s.log.len(), LOG_CAPACITY);
    }
}
