//! What each deployment takes, and LiteLLM's `drop_params`: a request asking for something a
//! deployment does not take (tools to `mock/`, images to a model marked
//! `supports_vision: false`, `seed` to Anthropic, …) is refused with a 400 naming the
//! parameter and the deployment, or, when the deployment's `drop_params` is on
//! (`litellm_params.drop_params`, else `litellm_settings.drop_params`), sent without it.
//!
//! A [`ChatRequest`] and a [`Deployment`] enter [`fit`] from [`super::open`] before any
//! network; it returns the request to send when something had to go, `None` when the
//! request fits as it is. The wire modules ask [`takes`] which `extra` parameters to write.

use serde_json::Value;

use super::{ChatRequest, ErrorClass, ImageSource, Message, Part, ProviderError, Role, ToolApi};
use super::{ToolChoice, tools::ToolSpec};
use crate::config::{Deployment, Wire};

/// Anthropic Messages parameters with no OpenAI counterpart: never sent to OpenAI wires.
const ANTHROPIC_ONLY: [&str; 4] = ["thinking", "mcp_servers", "container", "context_management"];
/// The `extra` parameters the Anthropic wire maps (`stop` → `stop_sequences`, `user` →
/// `metadata.user_id`; the rest by name).
const ANTHROPIC_TAKES: [&str; 8] = [
    "stop",
    "top_p",
    "top_k",
    "user",
    "thinking",
    "mcp_servers",
    "container",
    "context_management",
];
/// The `extra` parameters Gemini's `generationConfig` and Ollama's `options` take.
pub(super) const SAMPLING_TAKES: [&str; 6] = [
    "stop",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
];

/// Whether `deployment`'s wire writes the `extra` parameter `key`.
pub fn takes(wire: Wire, key: &str) -> bool {
    match wire {
        // OpenAI-compatible upstreams take parameters of their own (vLLM's `top_k`,
        // OpenRouter's `provider`): everything goes but Anthropic's own.
        Wire::OpenAi | Wire::Azure => !ANTHROPIC_ONLY.contains(&key),
        Wire::Anthropic => ANTHROPIC_TAKES.contains(&key),
        Wire::Gemini | Wire::OllamaChat => SAMPLING_TAKES.contains(&key),
        Wire::Mock => false,
    }
}

/// A value that asks for nothing (`null`, `false`, `n: 1`): never a reason to refuse.
fn inert(key: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) if key == "n" => n.as_u64() == Some(1),
        _ => false,
    }
}

fn takes_tools(d: &Deployment) -> bool {
    d.wire != Wire::Mock && d.supports_function_calling != Some(false)
}

fn takes_images(d: &Deployment) -> bool {
    d.wire != Wire::Mock && d.supports_vision != Some(false)
}

/// Wires that take images only as bytes (they cannot fetch a URL).
fn takes_image_urls(wire: Wire) -> bool {
    !matches!(wire, Wire::Gemini | Wire::OllamaChat)
}

/// The API whose built-in tools a wire takes.
fn builtin_api(wire: Wire) -> Option<ToolApi> {
    match wire {
        Wire::OpenAi | Wire::Azure => Some(ToolApi::OpenAi),
        Wire::Anthropic => Some(ToolApi::Anthropic),
        Wire::Gemini | Wire::OllamaChat | Wire::Mock => None,
    }
}

fn has_url_image(m: &Message) -> bool {
    m.parts.iter().any(|p| {
        matches!(
            p,
            Part::Image {
                source: ImageSource::Url { .. },
                ..
            }
        )
    })
}

fn uses_tools(request: &ChatRequest) -> bool {
    !request.tools.is_empty()
        || request
            .messages
            .iter()
            .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
}

/// Whether `d` takes `request` as it is, with nothing refused or dropped. The router prefers
/// such deployments when a group mixes some that take tools or images and some that do not.
pub fn takes_whole(d: &Deployment, request: &ChatRequest) -> bool {
    refusals(d, request).is_empty()
}

/// What of `request` the deployment `d` does not take (empty when it takes it all).
fn refusals(d: &Deployment, request: &ChatRequest) -> Vec<String> {
    let mut refused: Vec<String> = Vec::new();
    let tools_ok = takes_tools(d);
    if !tools_ok && uses_tools(request) {
        refused.push("tools".to_string());
    }
    let builtin_ok = |t: &ToolSpec| {
        t.builtin
            .as_ref()
            .is_none_or(|b| builtin_api(d.wire) == Some(b.api))
    };
    if tools_ok {
        for t in request.tools.iter().filter(|t| !builtin_ok(t)) {
            refused.push(format!(
                "tools ('{}', another provider's built-in tool)",
                t.name
            ));
        }
        if d.wire == Wire::OllamaChat
            && matches!(
                request.tool_choice,
                Some(ToolChoice::Required | ToolChoice::Tool { .. })
            )
        {
            refused.push("tool_choice".to_string());
        }
    }
    let images = request.messages.iter().any(Message::has_images);
    let url_images = request.messages.iter().any(has_url_image);
    if images && !takes_images(d) {
        refused.push("images".to_string());
    } else if url_images && !takes_image_urls(d.wire) {
        refused.push("image URLs (send the image as a data: URL)".to_string());
    }
    let extras: Vec<&String> = request
        .extra
        .iter()
        .filter(|(k, v)| !takes(d.wire, k) && !inert(k, v))
        .map(|(k, _)| k)
        .collect();
    refused.extend(extras.iter().map(|k| format!("`{k}`")));
    refused
}

/// The request `deployment` can take: `Ok(None)` when it fits as it is, `Ok(Some(..))` with
/// what it does not take dropped (`drop_params`), or a 400-class error naming each
/// parameter.
pub fn fit(d: &Deployment, request: &ChatRequest) -> Result<Option<ChatRequest>, ProviderError> {
    let refused = refusals(d, request);
    if refused.is_empty() {
        return Ok(None);
    }
    let tools_ok = takes_tools(d);
    let builtin_ok = |t: &ToolSpec| {
        t.builtin
            .as_ref()
            .is_none_or(|b| builtin_api(d.wire) == Some(b.api))
    };
    let images = request.messages.iter().any(Message::has_images);
    let url_images = request.messages.iter().any(has_url_image);
    if !d.drop_params.unwrap_or(false) {
        return Err(ProviderError::new(
            ErrorClass::BadRequest,
            format!(
                "deployment {} (group {}) does not take {}; set drop_params: true \
                 (litellm_settings, or this deployment's litellm_params) to send the request \
                 without it",
                d.id,
                d.group,
                refused.join(", ")
            ),
        ));
    }
    let mut out = request.clone();
    out.extra.retain(|k, _| takes(d.wire, k));
    if !tools_ok {
        out.tools.clear();
        out.tool_choice = None;
        out.parallel_tool_calls = None;
        out.messages = tool_history_as_text(std::mem::take(&mut out.messages));
    } else {
        out.tools.retain(builtin_ok);
        if d.wire == Wire::OllamaChat {
            out.tool_choice = None;
        }
        if out.tools.is_empty() {
            out.tool_choice = None;
        }
    }
    if images && !takes_images(d) {
        for m in &mut out.messages {
            m.parts.clear();
        }
    } else if url_images && !takes_image_urls(d.wire) {
        for m in &mut out.messages {
            m.parts.retain(|p| {
                !matches!(
                    p,
                    Part::Image {
                        source: ImageSource::Url { .. },
                        ..
                    }
                )
            });
        }
    }
    Ok(Some(out))
}

/// Tool calls and results as plain text, for a deployment that takes no tools: what was
/// called and what came back stays in the conversation.
fn tool_history_as_text(messages: Vec<Message>) -> Vec<Message> {
    messages
        .into_iter()
        .map(|m| match m.role {
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("?");
                Message::user(format!("[result of tool call {id}]\n{}", m.content))
            }
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<String> = m
                    .tool_calls
                    .iter()
                    .map(|c| format!("[tool call {}: {}({})]", c.id, c.name, c.arguments))
                    .collect();
                let text = if m.content.is_empty() {
                    calls.join("\n")
                } else {
                    format!("{}\n{}", m.content, calls.join("\n"))
                };
                Message::assistant(text)
            }
            _ => m,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ToolCall;
    use serde_json::json;

    fn dep(wire: Wire) -> Deployment {
        Deployment::new("g", "p", wire, "m")
    }

    fn with_tools() -> ChatRequest {
        let mut r = ChatRequest::new(vec![Message::user("hi")]);
        r.tools = vec![ToolSpec::function("f", None, json!({"type": "object"}))];
        r
    }

    #[test]
    fn a_request_that_fits_is_not_copied() {
        assert_eq!(fit(&dep(Wire::Anthropic), &with_tools()), Ok(None));
        let mut r = with_tools();
        r.extra.insert("seed".into(), json!(7));
        assert_eq!(fit(&dep(Wire::OpenAi), &r), Ok(None));
    }

    #[test]
    fn refusals_name_the_parameter_and_the_deployment() {
        let mut r = with_tools();
        r.extra.insert("seed".into(), json!(7));
        r.extra.insert("logprobs".into(), json!(false));
        let e = fit(&dep(Wire::Anthropic), &r).unwrap_err();
        assert_eq!(e.class, ErrorClass::BadRequest);
        assert!(e.message.contains("`seed`"), "{}", e.message);
        assert!(
            !e.message.contains("logprobs"),
            "inert values are not refused"
        );
        assert!(e.message.contains("p/m (group g)"), "{}", e.message);
        let e = fit(&dep(Wire::Mock), &r).unwrap_err();
        assert!(e.message.contains("tools"), "{}", e.message);
    }

    #[test]
    fn drop_params_drops_and_keeps_tool_history_as_text() {
        let mut d = dep(Wire::Mock);
        d.drop_params = Some(true);
        let mut r = with_tools();
        r.tool_choice = Some(ToolChoice::Required);
        let mut call = Message::assistant("");
        call.tool_calls = vec![ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: "{}".into(),
        }];
        r.messages.push(call);
        r.messages.push(Message::tool_result("c1", "42"));
        let out = fit(&d, &r).unwrap().unwrap();
        assert!(out.tools.is_empty() && out.tool_choice.is_none());
        assert_eq!(out.messages[1].content, "[tool call c1: f({})]");
        assert_eq!(out.messages[2].role, Role::User);
        assert!(out.messages[2].content.ends_with("42"));
    }

    #[test]
    fn images_need_vision_and_url_images_need_a_fetching_wire() {
        let image = |url: &str| {
            Message::with_parts(
                Role::User,
                vec![
                    Part::Text {
                        text: "what".into(),
                    },
                    Part::Image {
                        source: ImageSource::from_url(url),
                        detail: None,
                    },
                ],
            )
        };
        let r = ChatRequest::new(vec![image("https://x/a.png")]);
        let mut blind = dep(Wire::OpenAi);
        blind.supports_vision = Some(false);
        assert!(fit(&blind, &r).unwrap_err().message.contains("images"));
        assert!(fit(&dep(Wire::Gemini), &r).is_err());
        let b64 = ChatRequest::new(vec![image("data:image/png;base64,AA==")]);
        assert_eq!(fit(&dep(Wire::Gemini), &b64), Ok(None));
        blind.drop_params = Some(true);
        let out = fit(&blind, &r).unwrap().unwrap();
        assert!(!out.messages[0].has_images());
        assert_eq!(out.messages[0].content, "what");
    }
}
