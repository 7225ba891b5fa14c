//! The router's side of the response cache (`crate::cache`): asking it before routing,
//! replaying a hit as a stream, and storing a finished answer.
//!
//! A request that resolved to its group asks the cache right after its `Request` event
//! ([`RequestRun::answer_from_cache`]); a hit streams the stored reasoning and text in pieces as
//! `ChatEvent`s, exactly as a live answer arrives, then a `Done { cached: true }` event with
//! cost 0 and no deployment (no upstream call was made, so nothing counts against rpm/tpm,
//! health or the per-deployment metrics). A miss routes as usual, and the finished result is
//! offered to the cache ([`RequestRun::store_in_cache`]) before the caller gets `Finished`:
//! only a successful answer that was not itself cached and not stitched together after a
//! mid-stream failure. `no_cache` skips the lookup but still stores the fresh answer
//! (LiteLLM's `no-cache`: do not answer from the cache).

use std::sync::Arc;

use super::RouterError;
use super::event::*;
use super::request::RequestRun;
use crate::cache::{Announce, CachedAnswer, ResponseCache, replay_pieces};
use crate::config::Config;
use crate::metrics::Usd;
use crate::provider::{ChatRequest, ToolCallDelta};

/// The cache the config asks for; its Redis announcements become `SharedState` route events.
pub(super) fn build(
    config: &Config,
    sink: &super::sink::EventSink,
) -> Result<Option<ResponseCache>, RouterError> {
    let Some(settings) = &config.router.cache else {
        return Ok(None);
    };
    let sink = sink.clone();
    let announce: Announce = Arc::new(move |connected, message| {
        sink.announce("", None, RouteEventKind::SharedState { connected, message });
    });
    ResponseCache::new(settings, announce)
        .map(Some)
        .map_err(RouterError::Cache)
}

impl RequestRun {
    /// The cached answer to `request` on `group`, replayed to the caller; `None` to route.
    pub(super) async fn answer_from_cache(
        &mut self,
        group: &str,
        request: &ChatRequest,
    ) -> Option<ChatOutcome> {
        self.inner.cache.as_ref()?;
        // The cache keeps text: embeddings are neither answered from it nor stored.
        request.operation.is_chat().then_some(())?;
        let inner = self.inner.clone();
        let cache = inner.cache.as_ref()?;
        let key = cache.key(group, request);
        self.cache_key = Some(key);
        if request.no_cache {
            return None;
        }
        let hit = cache.get(&key).await?;
        let mut ttft = None;
        for piece in replay_pieces(&hit.reasoning) {
            ttft.get_or_insert_with(|| self.started.elapsed());
            self.out.send(ChatEvent::Reasoning(piece.to_string())).await;
        }
        for piece in replay_pieces(&hit.text) {
            ttft.get_or_insert_with(|| self.started.elapsed());
            self.out.send(ChatEvent::Delta(piece.to_string())).await;
        }
        for (index, call) in hit.tool_calls.iter().enumerate() {
            ttft.get_or_insert_with(|| self.started.elapsed());
            let delta = ToolCallDelta {
                index: index as u32,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            };
            self.out.send(ChatEvent::ToolCall(delta)).await;
        }
        self.answer = hit.text;
        self.reasoning = hit.reasoning;
        self.usage = hit.usage;
        self.cost = Some(Usd::ZERO);
        self.ttft = ttft;
        let total = self.started.elapsed();
        self.emit(
            group,
            None,
            RouteEventKind::Done {
                usage: self.usage,
                cost_usd: self.cost,
                ttft_ms: ttft.map(|t| t.as_millis() as u64),
                total_ms: total.as_millis() as u64,
                finish_reason: hit.finish_reason.clone(),
                cached: true,
            },
        )
        .await;
        Some(ChatOutcome {
            request_id: self.id,
            text: self.answer.clone(),
            reasoning: self.reasoning.clone(),
            group: group.to_string(),
            deployment: hit.deployment,
            attempts: Vec::new(),
            ttft,
            total,
            usage: self.usage,
            cost: self.cost,
            finish_reason: hit.finish_reason,
            retried: false,
            fell_back: false,
            continued: false,
            cached: true,
            tool_calls: hit.tool_calls,
        })
    }

    /// Offers a finished request's answer to the cache.
    pub(super) async fn store_in_cache(&self, result: &Result<ChatOutcome, RouteError>) {
        let (Some(key), Some(cache), Ok(o)) = (&self.cache_key, &self.inner.cache, result) else {
            return;
        };
        if o.cached || o.continued {
            return;
        }
        let answer = CachedAnswer {
            text: o.text.clone(),
            reasoning: o.reasoning.clone(),
            finish_reason: o.finish_reason.clone(),
            usage: o.usage,
            tool_calls: o.tool_calls.clone(),
            group: o.group.clone(),
            deployment: o.deployment.clone(),
        };
        cache.put(key, answer).await;
    }
}
