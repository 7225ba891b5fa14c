//! The resolved configuration: what the loader produces from a LiteLLM `config.yaml` and
//! what the router, `check`, `models`, the TUI and `serve` read. Nothing here parses; see
//! `config::load` for how YAML becomes these types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::money::Usd;
use crate::secret::Secret;

/// LiteLLM's default `num_retries` (the OpenAI SDK's `DEFAULT_MAX_RETRIES`).
pub const DEFAULT_NUM_RETRIES: u32 = 2;
/// LiteLLM's `DEFAULT_ALLOWED_FAILS`.
pub const DEFAULT_ALLOWED_FAILS: u32 = 3;
/// LiteLLM's `DEFAULT_COOLDOWN_TIME_SECONDS`.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
/// LiteLLM's `ROUTER_MAX_FALLBACKS`: how many fallback groups one request may walk.
pub const DEFAULT_MAX_FALLBACKS: usize = 5;
/// LiteLLM's `request_timeout` default (6000 s) is useless in a terminal; ours is 10 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// LiteLLM's in-memory cache TTL (`InMemoryCache.default_ttl`), used for every cache type.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

/// A whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for the built-in demo config.
    pub source: Option<PathBuf>,
    /// True when this is the built-in demo config (the TUI shows a DEMO badge).
    pub is_demo: bool,
    /// Every deployment, in file order.
    pub deployments: Vec<Deployment>,
    /// Model group names in order of first appearance in `model_list`.
    pub groups: Vec<String>,
    pub router: RouterSettings,
    pub app: AppSettings,
    /// `general_settings.master_key`: the bearer key of `llmux serve`.
    pub master_key: Option<Secret>,
    /// Keys we read but do not implement, and other non-fatal findings (one each).
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// The deployments of one model group, in file order.
    pub fn group_deployments<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = &'a Deployment> + 'a {
        self.deployments.iter().filter(move |d| d.group == group)
    }

    /// Resolves `model_group_alias` (one level, as LiteLLM does) and returns the group name
    /// if such a group exists.
    pub fn resolve_group<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let name = self
            .router
            .model_group_alias
            .get(name)
            .map(String::as_str)
            .unwrap_or(name);
        self.groups
            .iter()
            .find(|g| g.as_str() == name)
            .map(String::as_str)
    }
}

/// A non-fatal finding, shown by `llmux check` and logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line and column in the config file, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// The wire format a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI chat completions (also every OpenAI-compatible family), `Authorization: Bearer`.
    OpenAi,
    /// Azure OpenAI: `{api_base}/openai/deployments/{model}/chat/completions?api-version=…`, `api-key`.
    Azure,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `streamGenerateContent?alt=sse`.
    Gemini,
    /// Ollama's native `/api/chat` NDJSON (`ollama_chat/`).
    OllamaChat,
    /// The built-in demo provider (`mock/`): no network.
    Mock,
}

/// One entry of `model_list`: a concrete endpoint serving a model group.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Unique across the config: `model_info.id`, else the `model` as written, with `#2`,
    /// `#3`… added where the same model appears twice.
    pub id: String,
    /// The model group (`model_name`).
    pub group: String,
    /// The provider family as written or inferred (`openai`, `anthropic`, `groq`, `mock`, …).
    pub provider: String,
    pub wire: Wire,
    /// The provider's own model id (after the prefix), sent on the wire.
    pub model: String,
    /// `litellm_params.model` as written (`openai/gpt-4o-mini`), for price lookups and display.
    pub litellm_model: String,
    /// Base URL without a trailing slash.
    pub api_base: String,
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    /// Client-side limits per deployment (per minute).
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// Whole-request deadline.
    pub timeout: Option<Duration>,
    /// Deadline for the first token of a stream.
    pub stream_timeout: Option<Duration>,
    /// Provider-level retries; the router does its own, so this only counts for reporting.
    pub max_retries: Option<u32>,
    /// Relative pick weight for simple-shuffle.
    pub weight: Option<f64>,
    /// Priority tier: lower is tried first.
    pub order: Option<u32>,
    /// Per-deployment cooldown override (`0` disables cooldowns for it).
    pub cooldown_time: Option<Duration>,
    /// Price overrides in USD per token (from `litellm_params` or `model_info`).
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
    pub output_cost_per_reasoning_token: Option<f64>,
    /// `model_info.base_model`: the name used for price and context-window lookups.
    pub base_model: Option<String>,
    /// `model_info.max_input_tokens` (or the price table's).
    pub max_input_tokens: Option<u64>,
    /// Request defaults from `litellm_params`.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// `litellm_params.tags`.
    pub tags: Vec<String>,
    /// `litellm_params.max_budget` / `budget_duration`: what this deployment may spend per
    /// period before the router skips it.
    pub budget: Option<Budget>,
    /// Send requests without the parameters this deployment does not take, instead of
    /// refusing them: `litellm_params.drop_params`, else `litellm_settings.drop_params`.
    pub drop_params: Option<bool>,
    /// `model_info.supports_function_calling` / `supports_vision`: `Some(false)` means tools
    /// / images are not sent to it (refused, or dropped with `drop_params`).
    pub supports_function_calling: Option<bool>,
    pub supports_vision: Option<bool>,
    /// Headers sent with every request to it: `litellm_params.headers`, with `extra_headers`
    /// over them (as LiteLLM merges them). Values may come from `os.environ/VAR` and are kept
    /// as secrets: they often carry a gateway's key.
    pub headers: Vec<(String, Secret)>,
    /// `litellm_params.organization`, sent as `OpenAI-Organization` where LiteLLM sends it
    /// (see `provider::http::deployment_headers`).
    pub organization: Option<String>,
    /// `model_info.mode` (`chat`, `embedding`, `completion`, …) as written; `None` when unset.
    pub mode: Option<String>,
    /// The demo provider's behaviour; `Some` exactly when `wire == Wire::Mock`.
    pub mock: Option<MockParams>,
    /// Why this deployment cannot be called at all (an `os.environ/VAR` that is not set, or a
    /// LiteLLM provider llmux does not speak): the router does not call it, `check` and
    /// `models` show the reason, and `check` exits 2 when a group has no other deployment.
    pub unavailable: Option<String>,
}

/// `model_info.mode` of embedding models.
pub const EMBEDDING_MODE: &str = "embedding";

impl Deployment {
    /// True when `model_info.mode` says it is an embedding model.
    pub fn is_embedding(&self) -> bool {
        self.mode.as_deref() == Some(EMBEDDING_MODE)
    }

    /// A deployment of `group` for `{provider}/{model}` with every optional field unset (the
    /// loader fills the rest; tests and benches build on it with struct update syntax).
    pub fn new(group: &str, provider: &str, wire: Wire, model: &str) -> Deployment {
        let litellm_model = format!("{provider}/{model}");
        Deployment {
            id: litellm_model.clone(),
            group: group.to_string(),
            provider: provider.to_string(),
            wire,
            model: model.to_string(),
            litellm_model,
            api_base: String::new(),
            api_key: None,
            api_version: None,
            rpm: None,
            tpm: None,
            timeout: None,
            stream_timeout: None,
            max_retries: None,
            weight: None,
            order: None,
            cooldown_time: None,
            input_cost_per_token: None,
            output_cost_per_token: None,
            cache_read_input_token_cost: None,
            cache_creation_input_token_cost: None,
            output_cost_per_reasoning_token: None,
            base_model: None,
            max_input_tokens: None,
            max_tokens: None,
            temperature: None,
            tags: Vec::new(),
            budget: None,
            drop_params: None,
            supports_function_calling: None,
            supports_vision: None,
            headers: Vec::new(),
            organization: None,
            mode: None,
            mock: (wire == Wire::Mock).then(MockParams::default),
            unavailable: None,
        }
    }
}

/// How a `mock/` deployment behaves (DESIGN.md §2).
#[derive(Debug, Clone, PartialEq)]
pub struct MockParams {
    /// A fixed answer; else `tokens` words of generated text.
    pub response: Option<String>,
    pub tokens: u32,
    pub tokens_per_s: f64,
    pub ttft: Duration,
    /// HTTP status of the simulated failure.
    pub error: Option<u16>,
    /// Probability in 0..=1 that a request fails with `error` (500 when `error` is unset).
    pub error_rate: f64,
}

impl Default for MockParams {
    fn default() -> Self {
        MockParams {
            response: None,
            tokens: 60,
            tokens_per_s: 40.0,
            ttft: Duration::from_millis(300),
            error: None,
            error_rate: 0.0,
        }
    }
}

/// `router_settings.routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    UsageBased,
    LatencyBased,
    CostBased,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "simple-shuffle" => Strategy::SimpleShuffle,
            "least-busy" => Strategy::LeastBusy,
            "usage-based-routing" | "usage-based-routing-v2" => Strategy::UsageBased,
            "latency-based-routing" => Strategy::LatencyBased,
            "cost-based-routing" => Strategy::CostBased,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::SimpleShuffle => "simple-shuffle",
            Strategy::LeastBusy => "least-busy",
            Strategy::UsageBased => "usage-based-routing-v2",
            Strategy::LatencyBased => "latency-based-routing",
            Strategy::CostBased => "cost-based-routing",
        }
    }
}

/// `router_settings.retry_policy` (or one group's entry of `model_group_retry_policy`):
/// retries per LiteLLM exception type, overriding `num_retries` for that type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy: Option<u32>,
    pub internal_server: Option<u32>,
    pub service_unavailable: Option<u32>,
    pub not_found: Option<u32>,
    /// `DefaultRetries`: for a failure no other entry names.
    pub default: Option<u32>,
}

/// `router_settings.allowed_fails_policy`: failures allowed in a minute per LiteLLM exception
/// type before a deployment is cooled down, overriding `allowed_fails` for that type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedFailsPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy: Option<u32>,
    pub internal_server: Option<u32>,
    pub service_unavailable: Option<u32>,
    pub bad_gateway: Option<u32>,
    pub not_found: Option<u32>,
}

/// `router_settings.default_litellm_params`: request parameters every request gets unless it
/// sets them itself (they win over a deployment's own `litellm_params`, as in LiteLLM).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestDefaults {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Other parameters by their OpenAI name (`top_p`, `stop`, `seed`, …).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RequestDefaults {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none() && self.temperature.is_none() && self.extra.is_empty()
    }
}

/// `router_settings.routing_strategy_args` (LiteLLM's `RoutingArgs` of the latency strategy;
/// `ttl` is also the usage strategies' one argument).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingArgs {
    /// Latency samples older than this are not used.
    pub ttl: Duration,
    /// Deployments within this fraction of the lowest latency are picked among at random.
    pub lowest_latency_buffer: f64,
    /// Latency samples kept per deployment.
    pub max_latency_list_size: usize,
    /// Rank by this percentile of the samples (0 < p ≤ 1) instead of their mean.
    pub ttft_percentile: Option<f64>,
}

/// LiteLLM's `RoutingArgs.ttl` of the latency strategy: one hour.
pub const DEFAULT_LATENCY_TTL: Duration = Duration::from_secs(3600);
/// LiteLLM's `RoutingArgs.max_latency_list_size`.
pub const DEFAULT_LATENCY_SAMPLES: usize = 10;

impl Default for RoutingArgs {
    fn default() -> Self {
        RoutingArgs {
            ttl: DEFAULT_LATENCY_TTL,
            lowest_latency_buffer: 0.0,
            max_latency_list_size: DEFAULT_LATENCY_SAMPLES,
            ttft_percentile: None,
        }
    }
}

/// Router behaviour: `router_settings` layered over `litellm_settings`.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub strategy: Strategy,
    pub num_retries: u32,
    pub retry_policy: RetryPolicy,
    /// `model_group_retry_policy`: a group's own policy, used instead of `retry_policy`.
    pub model_group_retry_policy: BTreeMap<String, RetryPolicy>,
    /// Failures within a minute a deployment may have before it is cooled down, once
    /// [`RouterSettings::counts_allowed_fails`].
    pub allowed_fails: u32,
    /// `allowed_fails` was written in the config (even as its default).
    pub allowed_fails_set: bool,
    pub allowed_fails_policy: Option<AllowedFailsPolicy>,
    /// `disable_cooldowns`: no deployment is ever cooled down.
    pub disable_cooldowns: bool,
    /// `default_litellm_params`.
    pub request_defaults: RequestDefaults,
    /// `routing_strategy_args`.
    pub routing_args: RoutingArgs,
    pub cooldown_time: Duration,
    /// Router-wide whole-request deadline (a deployment's `timeout` wins).
    pub timeout: Duration,
    /// Router-wide first-token deadline (a deployment's `stream_timeout` wins).
    pub stream_timeout: Option<Duration>,
    /// Minimum sleep before a retry (LiteLLM's `retry_after`).
    pub retry_after: Duration,
    pub fallbacks: BTreeMap<String, Vec<String>>,
    pub context_window_fallbacks: BTreeMap<String, Vec<String>>,
    pub content_policy_fallbacks: BTreeMap<String, Vec<String>>,
    pub default_fallbacks: Vec<String>,
    pub model_group_alias: BTreeMap<String, String>,
    pub max_fallbacks: usize,
    pub enable_pre_call_checks: bool,
    pub drop_params: bool,
    pub redis: Option<RedisSettings>,
    /// The response cache (`litellm_settings.cache` + `cache_params`); `None` when off.
    pub cache: Option<CacheSettings>,
    /// `provider_budget_config`: provider family (`openai`, `anthropic`, …) → its budget.
    pub provider_budgets: BTreeMap<String, Budget>,
    /// `callbacks` / `success_callback` / `failure_callback`: where requests are traced.
    pub callbacks: Callbacks,
}

/// Where each request is reported besides the request log: `litellm_settings.callbacks`,
/// `success_callback` and `failure_callback`, as LiteLLM reads them (`telemetry` sends them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Callbacks {
    /// `otel`: OpenTelemetry traces over OTLP, to where the `OTEL_EXPORTER_OTLP_*` variables say.
    pub otel: Option<Reported>,
    /// `langfuse` (or `langfuse_otel`): the same traces, to Langfuse's OTLP endpoint.
    pub langfuse: Option<Reported>,
    /// The `OTEL_*` and `LANGFUSE_*` variables the exporters read, as set at load
    /// (`environment_variables:` first, then the process environment). All kept secret: the
    /// headers and the Langfuse secret key are keys.
    pub env: BTreeMap<String, crate::secret::Secret>,
}

impl Callbacks {
    /// One of the variables in [`Callbacks::env`], non-empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|s| s.expose())
            .filter(|v| !v.is_empty())
    }
}

/// Which requests a callback reports: `success_callback` the answered ones,
/// `failure_callback` the failed ones, `callbacks` both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    pub success: bool,
    pub failure: bool,
}

impl RouterSettings {
    /// Whether cooldowns count failures against `allowed_fails` (LiteLLM's rule once
    /// `allowed_fails` or `allowed_fails_policy` is set) rather than follow the failure rate.
    pub fn counts_allowed_fails(&self) -> bool {
        self.allowed_fails_set || self.allowed_fails_policy.is_some()
    }

    /// The retry policy of `group`: its `model_group_retry_policy` entry, else `retry_policy`.
    pub fn retry_policy_of(&self, group: &str) -> &RetryPolicy {
        self.model_group_retry_policy
            .get(group)
            .unwrap_or(&self.retry_policy)
    }
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            strategy: Strategy::default(),
            num_retries: DEFAULT_NUM_RETRIES,
            retry_policy: RetryPolicy::default(),
            model_group_retry_policy: BTreeMap::new(),
            allowed_fails: DEFAULT_ALLOWED_FAILS,
            allowed_fails_set: false,
            allowed_fails_policy: None,
            disable_cooldowns: false,
            request_defaults: RequestDefaults::default(),
            routing_args: RoutingArgs::default(),
            cooldown_time: DEFAULT_COOLDOWN,
            timeout: DEFAULT_TIMEOUT,
            stream_timeout: None,
            retry_after: Duration::ZERO,
            fallbacks: BTreeMap::new(),
            context_window_fallbacks: BTreeMap::new(),
            content_policy_fallbacks: BTreeMap::new(),
            default_fallbacks: Vec::new(),
            model_group_alias: BTreeMap::new(),
            max_fallbacks: DEFAULT_MAX_FALLBACKS,
            enable_pre_call_checks: false,
            drop_params: false,
            redis: None,
            cache: None,
            provider_budgets: BTreeMap::new(),
            callbacks: Callbacks::default(),
        }
    }
}

/// Where shared state lives when several instances run (issue: serve + Redis).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub host: String,
    pub port: u16,
    pub password: Option<Secret>,
    /// `redis_url`, when given instead of host and port.
    pub url: Option<Secret>,
}

/// The response cache: identical requests within `ttl` are answered from it.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    /// How long an answer is kept.
    pub ttl: Duration,
    /// `cache_params.namespace`: part of every key, so instances with different namespaces
    /// never share answers.
    pub namespace: Option<String>,
}

/// Where cached answers live (`cache_params.type`).
#[derive(Debug, Clone)]
pub enum CacheBackend {
    /// In this process's memory, bounded (`type: local`).
    Local,
    /// In Redis, shared by every instance that uses it (`type: redis`).
    Redis(RedisSettings),
}

/// What happens when a stream fails after tokens were shown (`llmux.mid_stream_failover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MidStreamFailover {
    /// The fallback is asked to continue the partial answer, which is kept.
    #[default]
    Continue,
    /// The partial answer is dropped and the fallback answers from the start.
    Restart,
    /// The request fails with the partial answer kept.
    Off,
}

/// Our own `llmux:` section.
#[derive(Debug, Clone, Default)]
pub struct AppSettings {
    pub default_model: Option<String>,
    pub favorites: Vec<String>,
    pub theme: Option<String>,
    pub mid_stream_failover: MidStreamFailover,
    /// A price table in LiteLLM's `model_prices_and_context_window.json` format.
    pub pricing_file: Option<PathBuf>,
    /// Key bindings: action name → key description (`ctrl+n`).
    pub keys: BTreeMap<String, String>,
    pub mouse: bool,
    /// `llmux.budget`: what the whole app may spend per period; every request stops past it.
    pub budget: Option<Budget>,
    /// `llmux.max_answer_bytes`: the most answer text (with reasoning and tool-call arguments)
    /// one request keeps; `None`: [`DEFAULT_MAX_ANSWER_BYTES`].
    pub max_answer_bytes: Option<usize>,
}

/// The most answer text one request keeps by default: some 1M tokens, far beyond any real
/// answer, and small enough that a hostile upstream cannot make a server hold much.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The smallest `llmux.max_answer_bytes` accepted.
pub const MIN_MAX_ANSWER_BYTES: usize = 1024;

impl AppSettings {
    /// The most answer text one request keeps (`llmux.max_answer_bytes`).
    pub fn max_answer_bytes(&self) -> usize {
        self.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES)
    }
}

/// A spending cap over a repeating period (`max_budget` + `budget_duration`,
/// `provider_budget_config`, `llmux.budget`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub limit: Usd,
    pub period: BudgetPeriod,
}

/// A budget's period: its length and how it was written (`30d`, `1mo`), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetPeriod {
    pub length: Duration,
    pub text: String,
}
