//! Themes: base16 palettes (`themes/*.yaml`, embedded; more in `<config dir>/llmux/themes/`)
//! turned into semantic roles the panes ask for (`accent`, `muted`, `error`, ...), never raw
//! colours.
//!
//! A theme file has `scheme`, `author`, `base00`..`base0F` as hex and an optional `roles:` map
//! overriding a role with a base name (`base0C`) or a hex colour. Colours are degraded to what
//! the terminal shows: truecolor (`COLORTERM=truecolor|24bit`), 256 colours (`TERM=*256color*`),
//! else the 16 ANSI colours; `NO_COLOR` gives a monochrome theme that marks focus, selection and
//! status with bold, reverse and underline instead.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The theme used when `llmux.theme` is unset.
pub const DEFAULT_THEME: &str = "default";

/// The themes shipped in the binary, by name.
pub const BUILTIN_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("nord", include_str!("../../themes/nord.yaml")),
];

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Ansi256,
    Ansi16,
    /// `NO_COLOR`: no colour at all.
    Mono,
}

impl ColorDepth {
    /// From `NO_COLOR`, `COLORTERM` and `TERM`.
    pub fn detect() -> ColorDepth {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        Self::from_env(&var("NO_COLOR"), &var("COLORTERM"), &var("TERM"))
    }

    pub fn from_env(no_color: &str, colorterm: &str, term: &str) -> ColorDepth {
        if !no_color.is_empty() {
            ColorDepth::Mono
        } else if matches!(colorterm, "truecolor" | "24bit") {
            ColorDepth::TrueColor
        } else if term.contains("256color") {
            ColorDepth::Ansi256
        } else {
            ColorDepth::Ansi16
        }
    }
}

/// A semantic role; theme files may override each by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Screen background.
    Bg,
    /// Status line and code block background.
    Surface,
    /// Selected row background.
    Selection,
    /// Secondary text: metadata, hints, timestamps.
    Muted,
    /// Body text.
    Fg,
    /// Focus, current model, links.
    Accent,
    Error,
    Warning,
    Success,
    /// Neutral information (routing attempts).
    Info,
    /// Markdown headings.
    Heading,
    /// Inline code.
    Code,
    /// Unfocused pane borders.
    Border,
    /// The user's messages.
    User,
}

impl Role {
    const ALL: [Role; 14] = [
        Role::Bg,
        Role::Surface,
        Role::Selection,
        Role::Muted,
        Role::Fg,
        Role::Accent,
        Role::Error,
        Role::Warning,
        Role::Success,
        Role::Info,
        Role::Heading,
        Role::Code,
        Role::Border,
        Role::User,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Bg => "bg",
            Role::Surface => "surface",
            Role::Selection => "selection",
            Role::Muted => "muted",
            Role::Fg => "fg",
            Role::Accent => "accent",
            Role::Error => "error",
            Role::Warning => "warning",
            Role::Success => "success",
            Role::Info => "info",
            Role::Heading => "heading",
            Role::Code => "code",
            Role::Border => "border",
            Role::User => "user",
        }
    }

    /// The base16 slot a role takes by default.
    fn default_base(self) -> usize {
        match self {
            Role::Bg => 0x0,
            Role::Surface => 0x1,
            Role::Selection => 0x2,
            Role::Muted | Role::Border => 0x3,
            Role::Fg => 0x5,
            Role::Accent => 0xD,
            Role::Error => 0x8,
            Role::Warning => 0xA,
            Role::Success => 0xB,
            Role::Info => 0xC,
            Role::Heading => 0xE,
            Role::Code => 0x9,
            Role::User => 0xC,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    scheme: String,
    #[serde(default)]
    author: String,
    base00: String,
    base01: String,
    base02: String,
    base03: String,
    base04: String,
    base05: String,
    base06: String,
    base07: String,
    base08: String,
    base09: String,
    #[serde(rename = "base0A")]
    base0a: String,
    #[serde(rename = "base0B")]
    base0b: String,
    #[serde(rename = "base0C")]
    base0c: String,
    #[serde(rename = "base0D")]
    base0d: String,
    #[serde(rename = "base0E")]
    base0e: String,
    #[serde(rename = "base0F")]
    base0f: String,
    #[serde(default)]
    roles: BTreeMap<String, String>,
}

type Rgb = (u8, u8, u8);

/// A resolved theme.
#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    pub author: String,
    pub depth: ColorDepth,
    /// The sixteen base16 colours, undegraded (the code highlighter maps scopes onto them).
    pub base: [Rgb; 16],
    roles: [Rgb; 14],
}

impl Theme {
    /// Parses a theme file's text.
    pub fn parse(text: &str, depth: ColorDepth) -> Result<Theme, String> {
        let f: ThemeFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let raw = [
            &f.base00, &f.base01, &f.base02, &f.base03, &f.base04, &f.base05, &f.base06, &f.base07,
            &f.base08, &f.base09, &f.base0a, &f.base0b, &f.base0c, &f.base0d, &f.base0e, &f.base0f,
        ];
        let mut base = [(0, 0, 0); 16];
        for (i, hex) in raw.iter().enumerate() {
            base[i] = parse_hex(hex).ok_or_else(|| format!("base{i:02X}: bad colour {hex:?}"))?;
        }
        let mut roles = [(0, 0, 0); 14];
        for (i, role) in Role::ALL.iter().enumerate() {
            roles[i] = base[role.default_base()];
        }
        for (key, value) in &f.roles {
            let Some(i) = Role::ALL.iter().position(|r| r.name() == key) else {
                return Err(format!("roles: unknown role {key:?}"));
            };
            roles[i] = resolve_ref(value, &base)
                .ok_or_else(|| format!("roles.{key}: bad colour {value:?}"))?;
        }
        Ok(Theme {
            name: f.scheme,
            author: f.author,
            depth,
            base,
            roles,
        })
    }

    /// The theme named `name`: a file `<name>.yaml` in `user_dir` wins over a built-in one.
    /// Unknown or broken themes fall back to the default, with the reason.
    pub fn load(
        name: Option<&str>,
        user_dir: Option<&Path>,
        depth: ColorDepth,
    ) -> (Theme, Option<String>) {
        let name = name.unwrap_or(DEFAULT_THEME);
        let mut warning = None;
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.yaml"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                match Theme::parse(&text, depth) {
                    Ok(t) => return (t, None),
                    Err(e) => warning = Some(format!("theme {}: {e}", path.display())),
                }
            }
        }
        if let Some((_, text)) = BUILTIN_THEMES.iter().find(|(n, _)| *n == name)
            && let Ok(t) = Theme::parse(text, depth)
        {
            return (t, warning);
        }
        if warning.is_none() {
            warning = Some(format!("unknown theme {name:?}; using {DEFAULT_THEME}"));
        }
        (Theme::builtin_default(depth), warning)
    }

    /// The default theme (never fails: it is checked by a test).
    pub fn builtin_default(depth: ColorDepth) -> Theme {
        match Theme::parse(BUILTIN_THEMES[0].1, depth) {
            Ok(t) => t,
            Err(_) => Theme {
                name: DEFAULT_THEME.into(),
                author: String::new(),
                depth: ColorDepth::Mono,
                base: [(0, 0, 0); 16],
                roles: [(0, 0, 0); 14],
            },
        }
    }

    /// The degraded colour of a role; `Color::Reset` in monochrome.
    pub fn color(&self, role: Role) -> Color {
        let i = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.degrade(self.roles[i])
    }

    /// The degraded colour of a base16 slot.
    pub fn base_color(&self, slot: usize) -> Color {
        self.degrade(self.base[slot % 16])
    }

    fn degrade(&self, (r, g, b): Rgb) -> Color {
        self.degrade_rgb(r, g, b)
    }

    /// Any colour, degraded to what the terminal shows.
    pub fn degrade_rgb(&self, r: u8, g: u8, b: u8) -> Color {
        match self.depth {
            ColorDepth::TrueColor => Color::Rgb(r, g, b),
            ColorDepth::Ansi256 => Color::Indexed(to_ansi256(r, g, b)),
            ColorDepth::Ansi16 => to_ansi16(r, g, b),
            ColorDepth::Mono => Color::Reset,
        }
    }

    pub fn is_mono(&self) -> bool {
        self.depth == ColorDepth::Mono
    }

    /// Foreground style of a role. In monochrome, roles that carry meaning get a modifier.
    pub fn fg(&self, role: Role) -> Style {
        if self.is_mono() {
            return match role {
                Role::Accent | Role::Heading | Role::User => {
                    Style::new().add_modifier(Modifier::BOLD)
                }
                Role::Error => Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                Role::Warning => Style::new().add_modifier(Modifier::UNDERLINED),
                Role::Muted | Role::Border => Style::new().add_modifier(Modifier::DIM),
                Role::Selection => Style::new().add_modifier(Modifier::REVERSED),
                _ => Style::new(),
            };
        }
        Style::new().fg(self.color(role))
    }

    /// The screen's base style: body text on the background. With 16 colours the terminal's
    /// own background and foreground are kept (the palette's are unknown there).
    pub fn base_style(&self) -> Style {
        match self.depth {
            ColorDepth::TrueColor | ColorDepth::Ansi256 => Style::new()
                .fg(self.color(Role::Fg))
                .bg(self.color(Role::Bg)),
            ColorDepth::Ansi16 | ColorDepth::Mono => Style::new(),
        }
    }

    /// A selected row.
    pub fn selected(&self) -> Style {
        match self.depth {
            ColorDepth::TrueColor | ColorDepth::Ansi256 => Style::new()
                .bg(self.color(Role::Selection))
                .add_modifier(Modifier::BOLD),
            ColorDepth::Ansi16 | ColorDepth::Mono => Style::new().add_modifier(Modifier::REVERSED),
        }
    }

    /// A badge: text on a coloured background (reverse video in monochrome).
    pub fn badge(&self, role: Role) -> Style {
        if self.is_mono() {
            return Style::new().add_modifier(Modifier::REVERSED);
        }
        Style::new()
            .fg(self.color(Role::Bg))
            .bg(self.color(role))
            .add_modifier(Modifier::BOLD)
    }

    /// A pane border: the accent and bold when focused, the border role otherwise.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Role::Accent).add_modifier(Modifier::BOLD)
        } else {
            self.fg(Role::Border)
        }
    }

    /// The status line.
    pub fn status(&self) -> Style {
        match self.depth {
            ColorDepth::TrueColor | ColorDepth::Ansi256 => Style::new()
                .fg(self.base_color(4))
                .bg(self.color(Role::Surface)),
            ColorDepth::Ansi16 | ColorDepth::Mono => Style::new().add_modifier(Modifier::REVERSED),
        }
    }
}

/// Names of the built-in themes and of the `.yaml` files in `user_dir`, sorted.
pub fn available(user_dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_THEMES.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(dir) = user_dir
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml")
                && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
            {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn parse_hex(s: &str) -> Option<Rgb> {
    let s = s.trim().trim_start_matches('#');
    if s.len() != 6 || !s.is_ascii() {
        return None;
    }
    let c = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).ok();
    Some((c(0)?, c(2)?, c(4)?))
}

fn resolve_ref(value: &str, base: &[Rgb; 16]) -> Option<Rgb> {
    let v = value.trim();
    if let Some(slot) = v.strip_prefix("base")
        && slot.len() == 2
    {
        return usize::from_str_radix(slot, 16)
            .ok()
            .and_then(|i| base.get(i).copied());
    }
    parse_hex(v)
}

/// The levels of xterm's 6x6x6 colour cube.
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn to_ansi256(r: u8, g: u8, b: u8) -> u8 {
    let nearest = |v: u8| {
        CUBE.iter()
            .enumerate()
            .min_by_key(|(_, c)| (i32::from(**c) - i32::from(v)).abs())
            .map(|(i, _)| i)
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (nearest(r), nearest(g), nearest(b));
    let cube = (CUBE[ri], CUBE[gi], CUBE[bi]);
    let cube_index = 16 + 36 * ri + 6 * gi + bi;
    // The grey ramp 232..=255 runs 8, 18, ..., 238.
    let avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let gi_ramp = (avg.saturating_sub(8) / 10).min(23);
    let grey = (8 + 10 * gi_ramp) as u8;
    let dist = |(a, b2, c): Rgb| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(a, r) + d(b2, g) + d(c, b)
    };
    if dist((grey, grey, grey)) < dist(cube) {
        (232 + gi_ramp) as u8
    } else {
        cube_index as u8
    }
}

/// The 16 ANSI colours as xterm draws them.
const ANSI16: [(Rgb, Color); 16] = [
    ((0, 0, 0), Color::Black),
    ((205, 0, 0), Color::Red),
    ((0, 205, 0), Color::Green),
    ((205, 205, 0), Color::Yellow),
    ((0, 0, 238), Color::Blue),
    ((205, 0, 205), Color::Magenta),
    ((0, 205, 205), Color::Cyan),
    ((229, 229, 229), Color::Gray),
    ((127, 127, 127), Color::DarkGray),
    ((255, 0, 0), Color::LightRed),
    ((0, 255, 0), Color::LightGreen),
    ((255, 255, 0), Color::LightYellow),
    ((92, 92, 255), Color::LightBlue),
    ((255, 0, 255), Color::LightMagenta),
    ((0, 255, 255), Color::LightCyan),
    ((255, 255, 255), Color::White),
];

fn to_ansi16(r: u8, g: u8, b: u8) -> Color {
    // Compare hue-ish by normalised channels so pastel theme colours still land on the right
    // named colour instead of all collapsing to grey.
    ANSI16
        .iter()
        .min_by_key(|((ar, ag, ab), _)| {
            let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
            d(*ar, r) + d(*ag, g) + d(*ab, b)
        })
        .map(|(_, c)| *c)
        .unwrap_or(Color::Reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_parses() {
        for (name, text) in BUILTIN_THEMES {
            let t = Theme::parse(text, ColorDepth::TrueColor);
            assert!(t.is_ok(), "{name}: {t:?}");
        }
    }

    #[test]
    fn depth_from_env() {
        assert_eq!(
            ColorDepth::from_env("1", "truecolor", "xterm"),
            ColorDepth::Mono
        );
        assert_eq!(
            ColorDepth::from_env("", "truecolor", "xterm"),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::from_env("", "", "xterm-256color"),
            ColorDepth::Ansi256
        );
        assert_eq!(ColorDepth::from_env("", "", "xterm"), ColorDepth::Ansi16);
    }

    #[test]
    fn colours_degrade() {
        assert_eq!(to_ansi256(255, 0, 0), 196);
        assert_eq!(to_ansi256(128, 128, 128), 244);
        assert_eq!(to_ansi16(250, 10, 10), Color::LightRed);
        let t = Theme::builtin_default(ColorDepth::Mono);
        assert_eq!(t.color(Role::Accent), Color::Reset);
        assert!(t.border(true).add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn role_overrides_and_errors() {
        let text = BUILTIN_THEMES[0].1.to_string() + "roles:\n  accent: \"#010203\"\n";
        let t = Theme::parse(&text, ColorDepth::TrueColor).unwrap();
        assert_eq!(t.color(Role::Accent), Color::Rgb(1, 2, 3));
        let bad = BUILTIN_THEMES[0].1.to_string() + "roles:\n  nope: base01\n";
        assert!(Theme::parse(&bad, ColorDepth::TrueColor).is_err());
    }
}
