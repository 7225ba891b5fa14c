//! What the TUI knows of each deployment's limits: its context window (`max_input_tokens`,
//! from `model_info` or the price table) and whether it takes images (the router's own check,
//! `provider::params::takes_whole`). Attachments ask [`Windows::images_ok`] before an image
//! is sent.

use crate::config::Config;
use crate::provider::{ChatRequest, ImageSource, Message, Part, Role, params};

/// One deployment's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLimits {
    pub id: String,
    pub group: String,
    /// Its context window in tokens, when known.
    pub max_input: Option<u64>,
    /// It takes image parts.
    pub images: bool,
}

/// Every deployment's limits, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    pub deployments: Vec<DeploymentLimits>,
}

impl Windows {
    /// The limits the config states (the router adds the price table's windows at start,
    /// [`Windows::set_max_input`]).
    pub fn of(cfg: &Config) -> Windows {
        let probe = ChatRequest::new(vec![Message::with_parts(
            Role::User,
            vec![Part::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: String::new(),
                },
                detail: None,
            }],
        )]);
        Windows {
            deployments: cfg
                .deployments
                .iter()
                .map(|d| DeploymentLimits {
                    id: d.id.clone(),
                    group: d.group.clone(),
                    max_input: d.max_input_tokens,
                    images: params::takes_whole(d, &probe),
                })
                .collect(),
        }
    }

    /// The window of deployment `id`, as the router knows it.
    pub fn set_max_input(&mut self, id: &str, max_input: Option<u64>) {
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.max_input = max_input.or(d.max_input);
        }
    }

    /// The deployments of `group`.
    pub fn of_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a DeploymentLimits> {
        self.deployments.iter().filter(move |d| d.group == group)
    }

    /// Whether `group` has a deployment that takes images; else what to do instead.
    pub fn images_ok(&self, group: &str) -> Result<(), String> {
        if self.of_group(group).any(|d| d.images) {
            return Ok(());
        }
        let mine: Vec<&str> = self.of_group(group).map(|d| d.id.as_str()).collect();
        let mut others: Vec<&str> = self
            .deployments
            .iter()
            .filter(|d| d.images && d.group != group)
            .map(|d| d.group.as_str())
            .collect();
        others.dedup();
        let instead = if others.is_empty() {
            "no group of this config takes them (a model that reads images needs \
             model_info.supports_vision unset or true; mock/ ones never do)"
                .to_string()
        } else {
            format!("send it to {} instead", others.join(", "))
        };
        Err(format!(
            "{group} takes no images: {instead} (none of {} does)",
            mine.join(", ")
        ))
    }
}
