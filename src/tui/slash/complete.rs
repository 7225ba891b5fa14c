//! Tab completion of `/` commands in the composer: the candidates for the word being typed
//! (command names from [`COMMANDS`](super::COMMANDS), then each command's argument from its
//! [`Source`](super::Source): groups, roles, themes, `/set`'s parameters), completed to their
//! common start and cycled by further Tabs.

use super::super::app::App;
use super::{COMMANDS, PARAMS, Source, find};

/// What Tab completion knows besides the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlashState {
    /// Role names, read at start (and after `/role`).
    pub roles: Vec<String>,
    /// Theme names.
    pub themes: Vec<String>,
    /// Tab pressed again on the same text cycles through the candidates.
    pub cycle: Option<Cycle>,
}

/// Where a run of Tabs is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The text before the first Tab of the run.
    pub base: String,
    /// The text the last Tab left.
    pub shown: String,
    pub index: usize,
}

/// The candidates for the word being typed: `start` is where that word begins in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub start: usize,
    /// Each with a note (a command's help), sorted as shown.
    pub items: Vec<(String, String)>,
    /// Completing a command name (a space follows a command that takes arguments).
    pub command: bool,
}

/// What can complete the last word of `text` (a one-line `/` command being typed), or `None`
/// when it is not one.
pub fn candidates(text: &str, groups: &[(String, String)], st: &SlashState) -> Option<Candidates> {
    let rest = text.strip_prefix('/')?;
    if text.contains('\n') || rest.starts_with('/') {
        return None;
    }
    let Some((word, arg)) = rest.split_once(' ') else {
        let items = COMMANDS
            .iter()
            .filter(|c| c.name.starts_with(rest))
            .map(|c| (c.name.to_string(), c.help.to_string()))
            .collect();
        return Some(Candidates {
            start: 1,
            items,
            command: true,
        });
    };
    let cmd = find(word)?;
    let arg_start = text.len() - arg.len();
    let from = |names: &mut dyn Iterator<Item = (String, String)>, typed: &str, start: usize| {
        let lower = typed.to_lowercase();
        Some(Candidates {
            start,
            items: names
                .filter(|(n, _)| n.to_lowercase().starts_with(&lower))
                .collect(),
            command: false,
        })
    };
    let plain = |v: &[String]| {
        v.iter()
            .map(|n| (n.clone(), String::new()))
            .collect::<Vec<_>>()
    };
    match cmd.source {
        Source::None | Source::Path => None,
        Source::Groups => from(&mut groups.iter().cloned(), arg, arg_start),
        Source::Roles => from(&mut plain(&st.roles).into_iter(), arg, arg_start),
        Source::Themes => from(&mut plain(&st.themes).into_iter(), arg, arg_start),
        Source::Params => {
            // Only the parameter's name completes; its value is typed.
            if arg.contains(' ') {
                return None;
            }
            let names = PARAMS.iter().map(|p| (p.to_string(), String::new()));
            from(&mut names.into_iter(), arg, arg_start)
        }
    }
}

/// The longest prefix all `items` share.
fn common_prefix(items: &[(String, String)]) -> String {
    let Some((first, _)) = items.first() else {
        return String::new();
    };
    let mut n = first.len();
    for (s, _) in &items[1..] {
        n = first
            .char_indices()
            .zip(s.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| (i + a.len_utf8()).min(n));
    }
    first[..n].to_string()
}

impl App {
    /// The groups as completion candidates: each name, with its aliases noted.
    fn group_candidates(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for g in &self.groups {
            let note = if g.aliases.is_empty() {
                format!("{} deployment(s)", g.deployments.len())
            } else {
                format!("alias {}", g.aliases.join(", "))
            };
            out.push((g.name.clone(), note));
        }
        out
    }

    /// The completion list for the composer's text now (the popup above it shows it).
    pub fn slash_candidates(&self) -> Option<Candidates> {
        if self.composer.lines().len() != 1 {
            return None;
        }
        candidates(&self.draft(), &self.group_candidates(), &self.slash)
    }

    /// Tab in the composer while it holds a `/` command: completes the word being typed, to
    /// the candidates' common start, and then cycles through them. `false`: not a command
    /// (Tab does what it is bound to).
    pub(crate) fn complete_slash(&mut self) -> bool {
        let text = self.draft();
        // A Tab after a Tab: the next candidate of the same run.
        if let Some(c) = self.slash.cycle.clone()
            && c.shown == text
            && let Some(cands) = candidates(&c.base, &self.group_candidates(), &self.slash)
                .filter(|x| !x.items.is_empty())
        {
            let index = (c.index + 1) % cands.items.len();
            let shown = fill(&c.base, &cands, index);
            self.set_composer_text(&shown);
            self.slash.cycle = Some(Cycle {
                base: c.base,
                shown,
                index,
            });
            return true;
        }
        let Some(cands) = self.slash_candidates() else {
            return false;
        };
        match cands.items.len() {
            0 => {
                self.toast(
                    format!("nothing completes {:?}", &text[cands.start..]),
                    true,
                );
            }
            1 => {
                let shown = fill(&text, &cands, 0);
                self.set_composer_text(&shown);
                self.slash.cycle = None;
            }
            _ => {
                let prefix = common_prefix(&cands.items);
                if prefix.len() > text.len() - cands.start {
                    let shown = format!("{}{prefix}", &text[..cands.start]);
                    self.set_composer_text(&shown);
                    self.slash.cycle = None;
                } else {
                    let shown = fill(&text, &cands, 0);
                    self.set_composer_text(&shown);
                    self.slash.cycle = Some(Cycle {
                        base: text,
                        shown,
                        index: 0,
                    });
                }
            }
        }
        true
    }
}

/// The text with candidate `index` in place of the word being typed (and a space after a
/// command name that takes arguments).
fn fill(text: &str, cands: &Candidates, index: usize) -> String {
    let (name, _) = &cands.items[index];
    let space = if cands.command {
        find(name).is_some_and(|c| !c.args.is_empty())
    } else {
        false
    };
    format!(
        "{}{name}{}",
        &text[..cands.start.min(text.len())],
        if space { " " } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_prefix_stops_where_candidates_differ() {
        let items = |v: &[&str]| {
            v.iter()
                .map(|s| (s.to_string(), String::new()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            common_prefix(&items(&["fast", "fast-eu", "faster"])),
            "fast"
        );
        assert_eq!(common_prefix(&items(&["smart", "slow"])), "s");
        assert_eq!(common_prefix(&items(&["élan", "éclair"])), "é");
    }
}
