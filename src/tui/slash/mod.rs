//! `/` commands typed in the composer: one table ([`COMMANDS`]: name, arguments, help, and
//! where Tab completes the argument from), the parser that tells a command from a message
//! (`//text` sends a literal `/text`; an unknown `/word` is never sent), Tab completion of
//! command names and arguments, and what each command does to the [`App`].
//!
//! Enter on the composer comes here first ([`App::send_or_run`]): a message goes on to
//! `turn::send`, a command runs and returns its [`Effect`]s like any other part of
//! `App::update`. The palette (`palette`) lists the same table. To add a command: a row in
//! [`COMMANDS`] and an arm in [`App::run_slash`].

use super::action::{Command, Effect};
use super::app::{App, Overlay};
use crate::store::session::Settings;

mod complete;
pub use complete::{Candidates, Cycle, SlashState, candidates};

/// Where Tab completes a command's argument from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing to complete.
    None,
    /// Model group names (and aliases).
    Groups,
    /// Role names (`<config dir>/llmux/roles/*.md`).
    Roles,
    /// Theme names (built-in and `<config dir>/llmux/themes/*.yaml`).
    Themes,
    /// `/set`'s parameter names.
    Params,
    /// A file path (completed by the file attachment code).
    Path,
}

/// One `/` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashCommand {
    /// Typed after the `/`.
    pub name: &'static str,
    /// The arguments as the help shows them (`NAME`, `[N]`), empty when it takes none.
    pub args: &'static str,
    /// One line for the help, the palette and the completion list.
    pub help: &'static str,
    pub source: Source,
}

impl SlashCommand {
    /// `/model NAME`.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{} {}", self.name, self.args)
        }
    }
}

/// Every `/` command, in the order the help and the palette list them.
pub const COMMANDS: &[SlashCommand] = &[
    SlashCommand {
        name: "model",
        args: "NAME",
        help: "switch the model group (Tab completes)",
        source: Source::Groups,
    },
    SlashCommand {
        name: "system",
        args: "TEXT",
        help: "set the system prompt; alone: edit it; `/system -` clears it",
        source: Source::None,
    },
    SlashCommand {
        name: "role",
        args: "NAME",
        help: "use a role: <config dir>/llmux/roles/NAME.md",
        source: Source::Roles,
    },
    SlashCommand {
        name: "set",
        args: "PARAM VALUE",
        help: "temperature, top_p or max_tokens; no value: default",
        source: Source::Params,
    },
    SlashCommand {
        name: "new",
        args: "",
        help: "start a new conversation",
        source: Source::None,
    },
    SlashCommand {
        name: "sessions",
        args: "",
        help: "saved conversations (search, rename, delete)",
        source: Source::None,
    },
    SlashCommand {
        name: "rename",
        args: "NAME",
        help: "rename this conversation",
        source: Source::None,
    },
    SlashCommand {
        name: "delete",
        args: "",
        help: "delete this conversation and start a new one",
        source: Source::None,
    },
    SlashCommand {
        name: "theme",
        args: "NAME",
        help: "switch the colour theme (Tab completes)",
        source: Source::Themes,
    },
    SlashCommand {
        name: "copy",
        args: "[N]",
        help: "copy the last answer, or its code block N",
        source: Source::None,
    },
    SlashCommand {
        name: "file",
        args: "PATH",
        help: "attach a file or image to the next message",
        source: Source::Path,
    },
    SlashCommand {
        name: "help",
        args: "",
        help: "every key and command",
        source: Source::None,
    },
];

/// The parameters `/set` takes.
pub const PARAMS: &[&str] = &["max_tokens", "temperature", "top_p"];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static SlashCommand> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// What the composer's text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A message, sent as it is.
    Message(&'a str),
    /// `//text`: the message `/text`.
    Literal(&'a str),
    /// A command with its argument (trimmed; it may span lines).
    Run(&'static SlashCommand, &'a str),
    /// `/word` that names no command.
    Unknown(&'a str),
}

/// Tells a command from a message.
pub fn parse(text: &str) -> Parsed<'_> {
    let Some(rest) = text.strip_prefix('/') else {
        return Parsed::Message(text);
    };
    if rest.starts_with('/') {
        return Parsed::Literal(rest);
    }
    let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match find(word) {
        Some(c) => Parsed::Run(c, arg.trim()),
        None => Parsed::Unknown(word),
    }
}

/// Every command as `/name`, for messages.
pub fn names() -> String {
    COMMANDS
        .iter()
        .map(|c| format!("/{}", c.name))
        .collect::<Vec<_>>()
        .join(" ")
}

impl App {
    /// Enter on the composer: a message is sent, a command runs, an unknown `/word` is
    /// refused with the list of commands (the text stays to be fixed).
    pub(crate) fn send_or_run(&mut self) -> Vec<Effect> {
        let text = self.draft();
        match parse(&text) {
            Parsed::Message(_) if self.editing.is_some() => self.resend_edit(),
            Parsed::Message(_) => self.send_attached(),
            Parsed::Literal(rest) => {
                let rest = rest.to_string();
                self.send_text(rest)
            }
            Parsed::Unknown(word) => {
                let msg = if word.is_empty() {
                    format!("type a command after /: {} (// sends a /)", names())
                } else {
                    format!(
                        "no command /{word}: {} (//{word} sends it as a message)",
                        names()
                    )
                };
                self.toast(msg, true);
                Vec::new()
            }
            Parsed::Run(cmd, arg) => {
                let arg = arg.to_string();
                self.slash.cycle = None;
                let (done, fx) = self.run_slash(cmd, &arg);
                if done {
                    self.recall = None;
                    self.set_composer_text("");
                }
                fx
            }
        }
    }

    /// Runs one command; `true` when it was taken (the composer is cleared), `false` when its
    /// argument was wrong (the text stays to be fixed, a toast says why).
    pub fn run_slash(&mut self, cmd: &SlashCommand, arg: &str) -> (bool, Vec<Effect>) {
        let usage = cmd.usage();
        let refuse = |app: &mut App, why: String| {
            app.toast(format!("{usage}: {why}"), true);
            (false, Vec::new())
        };
        match cmd.name {
            "model" => {
                if arg.is_empty() {
                    return refuse(self, format!("which? {}", self.group_names()));
                }
                match self.find_group(arg) {
                    Ok(gi) => {
                        self.select_group(gi);
                        (true, Vec::new())
                    }
                    Err(why) => refuse(self, why),
                }
            }
            "system" => match arg {
                "" => {
                    match self.settings.system.clone() {
                        Some(p) => {
                            // Back into the composer to be edited and sent again.
                            self.set_composer_text(&format!("/system {p}"));
                            (false, Vec::new())
                        }
                        None => refuse(self, "no system prompt yet: type one after /system".into()),
                    }
                }
                "-" => {
                    self.settings.system = None;
                    self.settings.role = None;
                    self.toast("system prompt cleared", false);
                    (true, self.persist_settings())
                }
                text => {
                    self.settings.system = Some(text.to_string());
                    self.settings.role = None;
                    self.toast("system prompt set for this conversation", false);
                    (true, self.persist_settings())
                }
            },
            "role" => {
                if arg.is_empty() {
                    let have = if self.slash.roles.is_empty() {
                        "none yet (add <config dir>/llmux/roles/NAME.md)".to_string()
                    } else {
                        self.slash.roles.join(", ")
                    };
                    return refuse(self, format!("which role? {have}"));
                }
                (true, vec![Effect::LoadRole(arg.to_string())])
            }
            "set" => match set_param(&mut self.settings, arg) {
                Ok(said) => {
                    self.toast(said, false);
                    (true, self.persist_settings())
                }
                Err(why) => refuse(self, why),
            },
            "new" => (true, self.command(Command::NewConversation)),
            "sessions" => (true, self.command(Command::OpenSessions)),
            "help" => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                (true, Vec::new())
            }
            "rename" => {
                let name = crate::store::session::safe_name(arg);
                if arg.is_empty() {
                    return refuse(self, "give the new name".into());
                }
                (
                    true,
                    vec![Effect::RenameSession {
                        from: self.session.clone(),
                        to: name,
                    }],
                )
            }
            "delete" => {
                if !arg.is_empty() {
                    return refuse(
                        self,
                        "takes no argument (it deletes this conversation)".into(),
                    );
                }
                (true, self.delete_current())
            }
            "theme" => {
                if arg.is_empty() {
                    return refuse(self, format!("which? {}", self.slash.themes.join(", ")));
                }
                (true, vec![Effect::LoadTheme(arg.to_string())])
            }
            "copy" => match arg {
                "" => (true, self.command(Command::CopyLast)),
                n => match n.parse::<usize>() {
                    Ok(n) if n > 0 => (true, self.copy_code(Some(n))),
                    _ => refuse(self, format!("{n:?} is not a code block number")),
                },
            },
            "file" => match self.file_command(arg) {
                Ok(()) => (false, Vec::new()),
                Err(why) => refuse(self, why),
            },
            _ => refuse(self, "not handled".into()),
        }
    }

    /// The request for `messages` with this conversation's system prompt and parameters.
    pub(crate) fn request_of(
        &self,
        mut messages: Vec<crate::provider::Message>,
    ) -> crate::provider::ChatRequest {
        let s = &self.settings;
        if let Some(p) = s.system.as_deref().filter(|p| !p.trim().is_empty()) {
            messages.insert(0, crate::provider::Message::system(p));
        }
        let mut r = crate::provider::ChatRequest::new(messages);
        r.temperature = s.temperature;
        r.max_tokens = s.max_tokens;
        if let Some(p) = s.top_p
            && let Some(n) = serde_json::Number::from_f64(p)
        {
            r.extra.insert("top_p".into(), serde_json::Value::Number(n));
        }
        r
    }

    /// `/delete`: the conversation's file goes, a new conversation starts (its draft is not
    /// saved to the file being deleted).
    pub(crate) fn delete_current(&mut self) -> Vec<Effect> {
        let mut fx = self.abandon_inflight(crate::store::session::AnswerState::Cancelled);
        let old = self.session.clone();
        fx.push(Effect::DeleteSession(old));
        self.saved_draft = self.draft();
        fx.extend(self.command(Command::NewConversation));
        fx
    }

    /// A role read from its file: its prompt, parameters and model become the
    /// conversation's.
    fn apply_role(&mut self, role: crate::roles::Role) -> Vec<Effect> {
        if !self.slash.roles.contains(&role.name) {
            self.slash.roles.push(role.name.clone());
            self.slash.roles.sort();
        }
        self.settings = Settings {
            system: Some(role.prompt.clone()).filter(|p| !p.is_empty()),
            role: Some(role.name.clone()),
            temperature: role.temperature,
            top_p: role.top_p,
            max_tokens: role.max_tokens,
        };
        let mut said = format!("role {}", role.name);
        let mut error = false;
        if let Some(m) = &role.model {
            match self.find_group(m) {
                Ok(gi) => {
                    self.current = gi;
                    said.push_str(&format!(" on {}", self.current_group()));
                }
                Err(why) => {
                    said.push_str(&format!("; its model: {why}"));
                    error = true;
                }
            }
        }
        said.push_str(&format!(" · {}", self.settings.params_text()));
        if let Some(w) = role.warnings.first() {
            said.push_str(&format!(" · {w}"));
            error = true;
        }
        self.toast(said, error);
        self.persist_settings()
    }

    /// The results of the commands' IO.
    pub(crate) fn slash_result(&mut self, a: super::action::Action) -> Vec<Effect> {
        use super::action::Action;
        let relist = |app: &App| {
            if matches!(app.overlay, Some(Overlay::Sessions { .. })) {
                vec![Effect::ListSessions]
            } else {
                Vec::new()
            }
        };
        match a {
            Action::RoleLoaded(Ok(role)) => self.apply_role(role),
            Action::RoleLoaded(Err(e)) | Action::ThemeLoaded(Err(e)) => {
                self.toast(e, true);
                Vec::new()
            }
            Action::ThemeLoaded(Ok(theme)) => {
                self.theme = *theme;
                self.highlighter = super::highlight::Highlighter::new(&self.theme);
                self.view.clear_cache();
                self.style_composer();
                self.toast(format!("theme {}", self.theme.name), false);
                Vec::new()
            }
            Action::SessionRenamed { from, result } => {
                match result {
                    Ok(name) => {
                        if from == self.session {
                            self.session = name.clone();
                        }
                        self.toast(format!("renamed {from} to {name}"), false);
                    }
                    Err(e) => self.toast(format!("cannot rename {from}: {e}"), true),
                }
                relist(self)
            }
            Action::SessionDeleted { name, result } => {
                match result {
                    Ok(()) => self.toast(format!("deleted {name}"), false),
                    Err(e) => self.toast(format!("cannot delete {name}: {e}"), true),
                }
                relist(self)
            }
            _ => {
                self.unchanged();
                Vec::new()
            }
        }
    }

    /// Lines the conversation pane gives the system prompt (0 or 1).
    pub fn pinned_lines(&self) -> u16 {
        let inner = self.areas().conversation.height.saturating_sub(2);
        u16::from(!self.settings.is_empty() && inner > super::conversation::PINNED_MIN_HEIGHT)
    }

    /// The settings record to append after a change.
    pub(crate) fn persist_settings(&self) -> Vec<Effect> {
        vec![Effect::Persist(crate::store::session::Record::Settings(
            self.settings.clone(),
        ))]
    }

    fn group_names(&self) -> String {
        self.groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A group by its name or alias (ignoring case), else the one group whose name starts
    /// with `name`.
    pub(crate) fn find_group(&self, name: &str) -> Result<usize, String> {
        let lower = name.to_lowercase();
        if let Some(i) = self.groups.iter().position(|g| {
            g.name.to_lowercase() == lower || g.aliases.iter().any(|a| a.to_lowercase() == lower)
        }) {
            return Ok(i);
        }
        let starts: Vec<usize> = (0..self.groups.len())
            .filter(|&i| self.groups[i].name.to_lowercase().starts_with(&lower))
            .collect();
        match starts.as_slice() {
            [i] => Ok(*i),
            [] => Err(format!(
                "no model group {name:?}; groups: {}",
                self.group_names()
            )),
            many => Err(format!(
                "{name:?} could be {}",
                many.iter()
                    .map(|&i| self.groups[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// `/set PARAM [VALUE]` on `s`: what to say, or why not.
pub fn set_param(s: &mut Settings, arg: &str) -> Result<String, String> {
    if arg.is_empty() {
        return Ok(format!("parameters: {}", s.params_text()));
    }
    let (name, value) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    let value = value.trim();
    let unset = value.is_empty() || value == "default";
    let float = |lo: f64, hi: f64| -> Result<Option<f64>, String> {
        if unset {
            return Ok(None);
        }
        match value.parse::<f64>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
            _ => Err(format!(
                "{name} takes a number from {lo} to {hi}, not {value:?}"
            )),
        }
    };
    match name {
        "temperature" => s.temperature = float(0.0, 2.0)?,
        "top_p" => s.top_p = float(0.0, 1.0)?,
        "max_tokens" => {
            s.max_tokens = if unset {
                None
            } else {
                match value.parse::<u32>() {
                    Ok(v) if v > 0 => Some(v),
                    _ => {
                        return Err(format!(
                            "max_tokens takes a whole number above 0, not {value:?}"
                        ));
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "no parameter {other:?}; parameters: {}",
                PARAMS.join(", ")
            ));
        }
    }
    Ok(format!("parameters: {}", s.params_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_literals_and_unknown_words_are_told_apart() {
        assert_eq!(parse("hello"), Parsed::Message("hello"));
        assert_eq!(parse("//etc/hosts"), Parsed::Literal("/etc/hosts"));
        assert_eq!(parse("/bogus x"), Parsed::Unknown("bogus"));
        assert_eq!(parse("/"), Parsed::Unknown(""));
        match parse("/system  be brief\nand kind ") {
            Parsed::Run(c, arg) => assert_eq!((c.name, arg), ("system", "be brief\nand kind")),
            other => panic!("{other:?}"),
        }
        match parse("/system\nbe brief") {
            Parsed::Run(c, arg) => assert_eq!((c.name, arg), ("system", "be brief")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_in_the_table_are_unique_and_lowercase() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase()))
        );
    }

    #[test]
    fn set_checks_ranges_and_unsets() {
        let mut s = Settings::default();
        assert!(set_param(&mut s, "temperature 0.2").is_ok());
        assert_eq!(s.temperature, Some(0.2));
        assert!(set_param(&mut s, "temperature 3").is_err());
        assert!(set_param(&mut s, "max_tokens 0").is_err());
        assert!(set_param(&mut s, "max_tokens 500").is_ok());
        assert!(set_param(&mut s, "top_p 1").is_ok());
        assert!(
            set_param(&mut s, "seed 1")
                .unwrap_err()
                .contains("temperature")
        );
        assert!(set_param(&mut s, "temperature").is_ok());
        assert_eq!(s.temperature, None);
        assert_eq!(s.params_text(), "top_p 1 · max_tokens 500");
    }
}
