//! Compare: one question asked of two or more model groups at once, the answers streaming
//! side by side, each with the deployment that answered, its TTFT, tokens per second and
//! cost; the one picked is kept in the conversation, the others are dropped.
//!
//! `compare` (Ctrl+T) opens a chooser of groups (the last choice, else the current group and
//! the next, are marked); Enter asks them the composer's text (or, with an empty composer, the
//! last question again). `@files` in it are read first (by the runner, as a message's are:
//! `Effect::ReadAttachments`) and go to every group; an image only to the groups that take
//! images — the others' columns say they were not asked. Each group's request is an ordinary `StartChat` with a tag of its
//! own, so its events come back as `Action::Chat` and are routed here by tag
//! ([`App::compare_owns`]). In the view, ←/→ (or 1..9) choose an answer, Enter keeps it (with
//! the question, when it came from the composer), Esc leaves and keeps nothing (streams still
//! running are dropped, the draft comes back). Every answer costs what it cost: the session's
//! spend counts them all.

use std::cell::RefCell;
use std::time::Duration;

use ratatui::text::Line;
use tokio::time::Instant;

use crate::metrics::answer_rate;
use crate::provider::Message;
use crate::router::{ChatEvent, RouteEventKind};
use crate::store::session::{self, Answer, AnswerState, Entry, Image, Record, UserMessage};
use crate::store::session_history;

use super::action::{Command, Effect, RequestTag};
use super::app::App;
use super::attach::Attachment;
use super::live::LIVE_RATE_WINDOW;

/// Most groups compared at once (columns side by side).
pub const MAX_GROUPS: usize = 4;
/// Fewest columns a compare needs.
const MIN_GROUPS: usize = 2;

/// Compare's state in the app: the chooser, the run on screen, and the groups last chosen.
#[derive(Debug, Default)]
pub struct Compare {
    /// The chooser is open, with the cursor on this row.
    pub choosing: Option<usize>,
    /// Groups marked in the chooser (indexes into `App::groups`), in the order marked.
    pub marked: Vec<usize>,
    pub run: Option<CompareRun>,
    /// The question (its pastes put back) whose `@files` are being read for a compare.
    pub reading: Option<String>,
}

/// One compare on screen.
#[derive(Debug)]
pub struct CompareRun {
    /// The question asked, as sent (with its files).
    pub question: String,
    /// The question as typed (its `@path`s as written): what Esc gives back and Up recalls.
    pub typed: String,
    /// The images sent with it.
    pub images: Vec<Image>,
    /// It came from the composer (kept with the answer), rather than being the last question
    /// asked again (only the answer is kept).
    pub from_draft: bool,
    pub columns: Vec<Column>,
    /// The column chosen.
    pub selected: usize,
    /// Lines scrolled down in every column.
    pub scroll: usize,
}

/// A question for a compare, as asked.
struct Asked {
    question: String,
    typed: String,
    from_draft: bool,
    images: Vec<Image>,
    /// The history to send, ending with the question.
    messages: Vec<Message>,
}

/// One group's answer.
#[derive(Debug)]
pub struct Column {
    pub tag: RequestTag,
    /// The answer as the conversation would show it (`answer.group` is the group asked).
    pub answer: Answer,
    pub started: Instant,
    pub first_token: Option<Instant>,
    /// When the last piece came (for tokens per second while streaming).
    pub last_at: Instant,
    /// The router's id of the request (for the inspector).
    pub request_id: Option<u64>,
    /// The latest routing news (failure, retry, fallback), while streaming.
    pub news: Option<String>,
    /// The wrapped lines at a width, for a column that no longer changes.
    pub(super) cache: RefCell<Option<(u16, usize, Vec<Line<'static>>)>>,
}

impl Column {
    pub(super) fn streaming(&self) -> bool {
        self.answer.state == AnswerState::Streaming
    }

    /// Output tokens per second after the first token: the reported count when done, the
    /// estimate while streaming; `None` before the second token's worth of time.
    pub fn tokens_per_s(&self, now: Instant) -> Option<f64> {
        let a = &self.answer;
        if let (Some(u), Some(ttft), Some(total)) = (a.usage, a.ttft_ms, a.total_ms)
            && !self.streaming()
        {
            // Finished: the figure the answer line and the metrics give.
            return answer_rate(u.output, Duration::from_millis(total.saturating_sub(ttft)));
        }
        let first = self.first_token?;
        let end = if self.streaming() { now } else { self.last_at };
        let span = end.duration_since(first);
        let tokens = crate::provider::estimate_tokens(&a.text);
        // Streaming: shown once the live line would show one.
        (span >= LIVE_RATE_WINDOW && tokens > 1).then(|| tokens as f64 / span.as_secs_f64())
    }
}

impl Compare {
    /// A compare is streaming (the clock moves what it shows).
    pub fn streaming(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.columns.iter().any(Column::streaming))
    }

    /// Compare has the screen (the chooser or a run): it takes the keys.
    pub fn shown(&self) -> bool {
        self.choosing.is_some() || self.run.is_some()
    }
}

impl App {
    /// Whether the request `tag` is one of the compare's.
    pub fn compare_owns(&self, tag: RequestTag) -> bool {
        self.b
            .compare
            .run
            .as_ref()
            .is_some_and(|r| r.columns.iter().any(|c| c.tag == tag))
    }

    /// `compare`: opens the chooser of groups.
    pub(crate) fn open_compare(&mut self) -> Vec<Effect> {
        if self.refused_while_streaming() {
            return Vec::new();
        }
        if self.groups.len() < MIN_GROUPS {
            self.toast("compare needs two model groups; the config has one", true);
            return Vec::new();
        }
        if self.draft().trim().is_empty() && self.last_question().is_none() {
            self.toast("type a question first, then compare it across groups", true);
            return Vec::new();
        }
        let c = &mut self.b.compare;
        c.marked.retain(|g| *g < self.groups.len());
        if c.marked.len() < MIN_GROUPS {
            c.marked = vec![self.current, (self.current + 1) % self.groups.len()];
        }
        c.choosing = Some(self.current);
        Vec::new()
    }

    fn last_question(&self) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| matches!(e, Entry::User(_)))
    }

    /// A key while compare has the screen.
    pub(crate) fn compare_key(
        &mut self,
        ev: crossterm::event::KeyEvent,
        bound: Option<Command>,
    ) -> Vec<Effect> {
        use crossterm::event::{KeyCode, KeyModifiers};
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if bound == Some(Command::Quit) {
            return self.quit();
        }
        if let Some(row) = self.b.compare.choosing {
            let n = self.groups.len();
            match ev.code {
                KeyCode::Esc => self.b.compare.choosing = None,
                KeyCode::Up => self.b.compare.choosing = Some(row.saturating_sub(1)),
                KeyCode::Down => self.b.compare.choosing = Some((row + 1).min(n - 1)),
                KeyCode::Char(' ') => self.toggle_mark(row),
                KeyCode::Char(c @ '1'..='9') => {
                    let i = c.to_digit(10).map_or(0, |d| d as usize) - 1;
                    if i < n {
                        self.toggle_mark(i);
                    }
                }
                KeyCode::Enter => return self.start_compare(),
                _ if bound == Some(Command::Compare) => return self.start_compare(),
                _ => self.unchanged(),
            }
            return Vec::new();
        }
        let Some(run) = &mut self.b.compare.run else {
            return Vec::new();
        };
        let n = run.columns.len();
        if bound == Some(Command::Cancel) {
            return self.leave_compare();
        }
        if !plain {
            self.unchanged();
            return Vec::new();
        }
        match ev.code {
            KeyCode::Esc => return self.leave_compare(),
            KeyCode::Left | KeyCode::BackTab => run.selected = (run.selected + n - 1) % n,
            KeyCode::Right | KeyCode::Tab => run.selected = (run.selected + 1) % n,
            KeyCode::Char(c @ '1'..='9') => {
                let i = c.to_digit(10).map_or(0, |d| d as usize) - 1;
                if i < n {
                    run.selected = i;
                }
            }
            KeyCode::Up | KeyCode::Char('k') => run.scroll = run.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => run.scroll += 1,
            KeyCode::PageUp => run.scroll = run.scroll.saturating_sub(10),
            KeyCode::PageDown => run.scroll += 10,
            KeyCode::Home => run.scroll = 0,
            KeyCode::Enter => return self.keep_compared(),
            _ => self.unchanged(),
        }
        Vec::new()
    }

    fn toggle_mark(&mut self, gi: usize) {
        let m = &mut self.b.compare.marked;
        if let Some(p) = m.iter().position(|g| *g == gi) {
            m.remove(p);
        } else if m.len() < MAX_GROUPS {
            m.push(gi);
        } else {
            self.toast(format!("at most {MAX_GROUPS} groups side by side"), true);
        }
    }

    /// Asks every marked group the question.
    fn start_compare(&mut self) -> Vec<Effect> {
        let marked = self.b.compare.marked.clone();
        if marked.len() < MIN_GROUPS {
            self.toast("mark two groups or more (Space or 1..9)", true);
            return Vec::new();
        }
        self.b.compare.choosing = None;
        let draft = self.b.attach.expand(&self.draft());
        if draft.trim().is_empty() {
            let Some(last) = self.last_question() else {
                return Vec::new();
            };
            let Entry::User(u) = &self.entries[last] else {
                return Vec::new();
            };
            let (q, images) = (u.text.clone(), u.images.clone());
            let messages = session::history(&self.entries[..=last]);
            return self.ask_compare(Asked {
                question: q.clone(),
                typed: q,
                from_draft: false,
                images,
                messages,
            });
        }
        let paths = super::attach::mentions(&self.draft());
        if !paths.is_empty() {
            // Read by the runner; the question is asked when they are (`compare_attached`).
            self.b.compare.reading = Some(draft.clone());
            return vec![Effect::ReadAttachments { text: draft, paths }];
        }
        self.compare_draft(draft.clone(), draft, Vec::new())
    }

    /// Whether the files read for the message `text` were asked for by a compare (which
    /// waits for them no more).
    pub(crate) fn compare_reading(&mut self, text: &str) -> bool {
        self.b.compare.reading.take_if(|t| t == text).is_some()
    }

    /// The files of a compare's question were read: every marked group is asked it.
    pub(crate) fn compare_attached(&mut self, text: String, files: Vec<Attachment>) -> Vec<Effect> {
        let (full, images) = super::attach::expand_files(&text, files);
        self.compare_draft(text, full, images)
    }

    /// Asks the composer's question (`typed`; `question` with its files in, and `images`).
    fn compare_draft(
        &mut self,
        typed: String,
        question: String,
        images: Vec<Image>,
    ) -> Vec<Effect> {
        let mut messages = session::history(&self.entries);
        messages.push(session_history::user_message(&question, &images));
        self.set_composer_text("");
        self.ask_compare(Asked {
            question,
            typed,
            from_draft: true,
            images,
            messages,
        })
    }

    /// Starts a column for every marked group. A group that takes no images, asked a
    /// question with one, gets none: its column says why, the others run.
    fn ask_compare(&mut self, asked: Asked) -> Vec<Effect> {
        let marked = self.b.compare.marked.clone();
        let mut fx = Vec::new();
        let mut columns = Vec::new();
        for gi in marked {
            let Some(group) = self.groups.get(gi).map(|g| g.name.clone()) else {
                continue;
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            let mut answer = Answer {
                group: group.clone(),
                ..Answer::default()
            };
            let refused =
                (!asked.images.is_empty() && !self.b.windows.takes_images(&group)).then(|| {
                    let w = &self.b.windows;
                    let deps: Vec<&str> = w.of_group(&group).map(|d| d.id.as_str()).collect();
                    format!(
                        "not asked: {group} takes no images (none of {} does)",
                        deps.join(", ")
                    )
                });
            match refused {
                Some(why) => {
                    answer.state = AnswerState::Failed;
                    answer.error = Some(why);
                }
                None => {
                    let mut messages = asked.messages.clone();
                    self.leave_out_images(&group, &mut messages);
                    fx.push(Effect::StartChat {
                        tag,
                        group,
                        request: self.request_of(messages),
                    });
                }
            }
            columns.push(Column {
                tag,
                answer,
                started: self.now,
                first_token: None,
                last_at: self.now,
                request_id: None,
                news: None,
                cache: RefCell::new(None),
            });
        }
        self.b.compare.run = Some(CompareRun {
            question: asked.question,
            typed: asked.typed,
            images: asked.images,
            from_draft: asked.from_draft,
            columns,
            selected: 0,
            scroll: 0,
        });
        fx
    }

    /// Esc: drops the streams still running, keeps nothing, gives the draft back.
    fn leave_compare(&mut self) -> Vec<Effect> {
        let Some(run) = self.b.compare.run.take() else {
            return Vec::new();
        };
        let fx = cancel_streaming(&run);
        if run.from_draft && self.draft().is_empty() {
            self.set_composer_text(&run.typed);
        }
        self.toast("compare closed; nothing kept", false);
        fx
    }

    /// Enter: the chosen answer (and the question, when it was typed) joins the conversation.
    fn keep_compared(&mut self) -> Vec<Effect> {
        let Some(run) = &self.b.compare.run else {
            return Vec::new();
        };
        let Some(col) = run.columns.get(run.selected) else {
            return Vec::new();
        };
        if col.streaming() {
            self.toast(
                "that answer is still streaming; keep it when it is done",
                true,
            );
            return Vec::new();
        }
        if col.answer.state != AnswerState::Done {
            self.toast("that one failed; choose an answer to keep", true);
            return Vec::new();
        }
        let Some(run) = self.b.compare.run.take() else {
            return Vec::new();
        };
        let mut fx = cancel_streaming(&run);
        let col = &run.columns[run.selected];
        let group = col.answer.group.clone();
        if run.from_draft {
            let id = self.next_id;
            self.next_id += 1;
            self.sent.push(run.typed.clone());
            self.entries.push(Entry::User(UserMessage {
                id,
                text: run.question.clone(),
                group: group.clone(),
                images: run.images.clone(),
            }));
            fx.push(Effect::Persist(Record::User {
                id,
                text: run.question.clone(),
                group: group.clone(),
                at_unix_ms: session::unix_ms((self.clock)()),
                images: run.images.clone(),
            }));
        }
        let mut answer = col.answer.clone();
        answer.id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry::Answer(answer.clone()));
        fx.push(Effect::Persist(Record::Answer(answer.clone())));
        if let Some(request_id) = col.request_id {
            fx.extend(self.save_wire(answer.id, request_id));
        }
        if let Some(gi) = self.groups.iter().position(|g| g.name == group) {
            self.current = gi;
        }
        self.view.scroll_bottom();
        self.toast(format!("kept the answer of {group}"), false);
        fx
    }

    /// An event of one of the compare's requests.
    pub(crate) fn compare_event(
        &mut self,
        tag: RequestTag,
        event: ChatEvent,
        at: Instant,
    ) -> Vec<Effect> {
        self.now = self.now.max(at);
        let Some(col) = self
            .b
            .compare
            .run
            .as_mut()
            .and_then(|r| r.columns.iter_mut().find(|c| c.tag == tag))
        else {
            return Vec::new();
        };
        if !col.streaming() {
            self.unchanged();
            return Vec::new();
        }
        col.last_at = at;
        let a = &mut col.answer;
        match event {
            ChatEvent::Route(ev) => {
                col.request_id = Some(ev.request_id);
                match &ev.kind {
                    RouteEventKind::Attempt => {
                        a.deployment = ev.deployment.clone();
                        a.answered_group = Some(ev.group.clone());
                    }
                    RouteEventKind::Failure { class, status, .. } => {
                        let status = status.map(|s| format!(" {s}")).unwrap_or_default();
                        col.news = Some(format!(
                            "{} failed: {class}{status}",
                            ev.deployment.as_deref().unwrap_or("?")
                        ));
                    }
                    RouteEventKind::Retry { .. } => a.badges.retried = true,
                    RouteEventKind::Fallback { to, .. } => {
                        a.badges.fell_back = true;
                        a.answered_group = Some(to.clone());
                    }
                    _ => {}
                }
            }
            ChatEvent::Delta(text) => {
                col.first_token.get_or_insert(at);
                a.text.push_str(&text);
            }
            ChatEvent::Reasoning(_) | ChatEvent::ToolCall(_) => {
                col.first_token.get_or_insert(at);
            }
            ChatEvent::Passthrough(_) | ChatEvent::Usage(_) => {
                self.unchanged();
            }
            ChatEvent::Restart => {
                a.text.clear();
                a.badges.restarted = true;
            }
            ChatEvent::Finished(result) => {
                let cost = match *result {
                    Ok(o) => {
                        super::turn::answered(a, o);
                        Some(a.cost)
                    }
                    Err(e) => {
                        if e.partial_text.len() > a.text.len() {
                            a.text = e.partial_text.clone();
                        }
                        a.state = AnswerState::Failed;
                        a.error = Some(e.message.clone());
                        a.ttft_ms = col
                            .first_token
                            .map(|t| t.duration_since(col.started).as_millis() as u64);
                        a.total_ms = Some(at.duration_since(col.started).as_millis() as u64);
                        None
                    }
                };
                col.news = None;
                if let Some(cost) = cost {
                    self.add_spend(cost);
                }
                return vec![Effect::RefreshStatus];
            }
        }
        Vec::new()
    }
}

/// Cancels the columns still streaming.
fn cancel_streaming(run: &CompareRun) -> Vec<Effect> {
    run.columns
        .iter()
        .filter(|c| c.streaming())
        .map(|c| Effect::Cancel(c.tag))
        .collect()
}
