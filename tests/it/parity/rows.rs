//! The rows of the parity table: a config, a script per fake upstream, the requests sent, and
//! what LiteLLM's Router did with them (from `scripts/parity/litellm_router.py`, LiteLLM
//! 1.108.14 and 1.110.2), with the LiteLLM rule each comes from. Paths are under
//! `litellm/` of the LiteLLM package; functions of `router.py` are `Router` methods.
//!
//! Upstreams are named `A`, `B`, `C`; a deployment on an upstream no script names is on a
//! port where nothing listens. "pair" rows put two deployments on one upstream, so their
//! counts do not depend on which one a pick starts with.

use super::Observed;

/// One scripted answer.
pub enum Reply {
    /// A streamed answer with this text.
    Ok(&'static str),
    Status(u16),
    /// A status with one header.
    Header(u16, &'static str, &'static str),
    /// OpenAI's 400 `context_length_exceeded`.
    ContextWindow,
    /// A streamed answer with this text whose headers come after this many milliseconds.
    Slow(u64, &'static str),
    /// A status with `Retry-After` as the HTTP date this many seconds after the reply is made.
    RetryAfterDate(u16, u64),
}

/// Calls per upstream, the outcomes, and (where calls cannot show them) the attempts.
pub struct Expect {
    pub calls: &'static [(&'static str, usize)],
    pub outcomes: &'static str,
    pub attempts: Option<usize>,
}

/// llmux's figure where it deliberately differs from LiteLLM's, and why.
pub struct Differs {
    pub expect: Expect,
    #[allow(dead_code)] // read by people: the reason sits next to the figure
    pub why: &'static str,
}

pub type Check = fn(&Observed) -> Result<(), String>;

pub struct Row {
    pub name: &'static str,
    /// The LiteLLM rule LiteLLM's figures come from.
    #[allow(dead_code)] // read by people
    pub rule: &'static str,
    /// (group, id, upstream, more `litellm_params` lines)
    pub deployments: &'static [(&'static str, &'static str, &'static str, &'static str)],
    /// `router_settings` lines.
    pub settings: &'static str,
    pub scripts: &'static [(&'static str, &'static [Reply])],
    pub requests: usize,
    pub model: &'static str,
    pub litellm: Expect,
    pub llmux: Option<Differs>,
    pub check: Option<Check>,
    /// Seconds that pass between two requests (on the paused clock).
    pub gap: u64,
    /// Upstreams whose calls depend on the strategy's random picks, so the two routers' counts
    /// differ by luck, not by rule: not compared (the row's check says what must hold).
    pub by_luck: &'static [&'static str],
    /// Which answer each request got depends on those picks too: not compared.
    pub outcomes_by_luck: bool,
}

const fn expect(calls: &'static [(&'static str, usize)], outcomes: &'static str) -> Expect {
    Expect {
        calls,
        outcomes,
        attempts: None,
    }
}

fn row(
    name: &'static str,
    rule: &'static str,
    deployments: &'static [(&'static str, &'static str, &'static str, &'static str)],
    settings: &'static str,
    scripts: &'static [(&'static str, &'static [Reply])],
    requests: usize,
    litellm: Expect,
) -> Row {
    Row {
        name,
        rule,
        deployments,
        settings,
        scripts,
        requests,
        model: "g",
        litellm,
        llmux: None,
        check: None,
        gap: 0,
        by_luck: &[],
        outcomes_by_luck: false,
    }
}

impl Row {
    fn model(mut self, model: &'static str) -> Row {
        self.model = model;
        self
    }
    fn differs(mut self, expect: Expect, why: &'static str) -> Row {
        self.llmux = Some(Differs { expect, why });
        self
    }
    fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
    fn gap(mut self, seconds: u64) -> Row {
        self.gap = seconds;
        self
    }
    fn by_luck(mut self, upstreams: &'static [&'static str]) -> Row {
        self.by_luck = upstreams;
        self
    }
    fn outcomes_by_luck(mut self) -> Row {
        self.outcomes_by_luck = true;
        self
    }
}

const LONE: &[(&str, &str, &str, &str)] = &[("g", "a1", "A", "")];
const PAIR: &[(&str, &str, &str, &str)] = &[("g", "a1", "A", ""), ("g", "a2", "A", "")];
const LONE_THEN_B: &[(&str, &str, &str, &str)] = &[("g", "a1", "A", ""), ("b", "b1", "B", "")];
const BAD_AND_GOOD: &[(&str, &str, &str, &str)] = &[("g", "bad", "A", ""), ("g", "good", "B", "")];
const TIERS: &[(&str, &str, &str, &str)] = &[
    ("g", "a1", "A", "      order: 1\n"),
    ("g", "a2", "B", "      order: 2\n"),
];
const TWO_GROUPS: &[(&str, &str, &str, &str)] = &[("g", "a1", "A", ""), ("h", "h1", "B", "")];

const S503: &[Reply] = &[Reply::Status(503)];
const S500: &[Reply] = &[Reply::Status(500)];
const S429: &[Reply] = &[Reply::Status(429)];
const S401: &[Reply] = &[Reply::Status(401)];
const S400: &[Reply] = &[Reply::Status(400)];
const FROM_B: &[Reply] = &[Reply::Ok("from b")];

const SHOULD_COOLDOWN: &str = "router_utils/cooldown_handlers.py: _should_cooldown_deployment";
const RETRY_LOOP: &str = "router.py: async_function_with_retries, should_retry_this_error";
const ALLOWED_FAILS: &str = "router_utils/cooldown_handlers.py: _should_cooldown_deployment \
                             (allowed_fails set), should_cooldown_based_on_allowed_fails_policy";

/// Calls `upstream` received (0 when it received none).
fn calls(seen: &Observed, upstream: &str) -> usize {
    seen.calls.get(upstream).copied().unwrap_or(0)
}

/// The waits before retries, when they must be exactly `ms`.
fn waits(seen: &Observed, ms: &[u64]) -> Result<(), String> {
    if seen.waits == ms {
        Ok(())
    } else {
        Err(format!(
            "waited {:?} ms before retries, expected {ms:?}",
            seen.waits
        ))
    }
}

pub fn rows() -> Vec<Row> {
    vec![
        // ---- a group's only deployment ----
        row(
            "lone 503, num_retries 5",
            "router.py: async_function_with_retries (1 + num_retries calls); \
             cooldown_handlers.py: _should_cooldown_deployment (no failure-rate cooldown \
             for a single-deployment group)",
            LONE,
            "  num_retries: 5\n",
            &[("A", S503)],
            1,
            expect(&[("A", 6)], "err"),
        ),
        row(
            "lone 503, num_retries unset",
            "router.py: Router.__init__ (num_retries defaults to openai.DEFAULT_MAX_RETRIES, 2)",
            LONE,
            "",
            &[("A", S503)],
            1,
            expect(&[("A", 3)], "err"),
        ),
        row(
            "lone 503, num_retries 0",
            RETRY_LOOP,
            LONE,
            "  num_retries: 0\n",
            &[("A", S503)],
            1,
            expect(&[("A", 1)], "err"),
        ),
        row(
            "lone 503 x10, num_retries 0: never cooled",
            SHOULD_COOLDOWN,
            LONE,
            "  num_retries: 0\n",
            &[("A", S503)],
            10,
            expect(&[("A", 10)], "10x err"),
        ),
        row(
            "lone 429, num_retries 2",
            "cooldown_handlers.py: _should_cooldown_deployment (429 cools only a group of \
             several); router.py: should_retry_this_error",
            LONE,
            "  num_retries: 2\n",
            &[("A", S429)],
            1,
            expect(&[("A", 3)], "err"),
        ),
        row(
            "lone 429 then 200, Retry-After: 2",
            "router.py: _time_to_sleep_before_retry; utils.py: calculate_retry_after \
             (Retry-After + up to 0.75 s jitter)",
            LONE,
            "  num_retries: 2\n",
            &[(
                "A",
                &[Reply::Header(429, "retry-after", "2"), Reply::Ok("ok")],
            )],
            1,
            expect(&[("A", 2)], "ok 'ok'"),
        )
        .check(|seen| waits(seen, &[2000])),
        row(
            "lone 429 then 200, retry-after-ms: 2500",
            "utils.py: _get_retry_after_from_exception_header (reads retry-after only)",
            LONE,
            "  num_retries: 2\n",
            &[(
                "A",
                &[
                    Reply::Header(429, "retry-after-ms", "2500"),
                    Reply::Ok("ok"),
                ],
            )],
            1,
            expect(&[("A", 2)], "ok 'ok'"),
        )
        // LiteLLM waits its backoff (0.5 s + jitter) instead: same calls, another wait.
        .check(|seen| waits(seen, &[2500])),
        row(
            "lone 429 then 200, llm_provider-retry-after: 3 (behind a LiteLLM proxy)",
            "utils.py: _get_retry_after_from_exception_header (reads retry-after only)",
            LONE,
            "  num_retries: 2\n",
            &[(
                "A",
                &[
                    Reply::Header(429, "llm_provider-retry-after", "3"),
                    Reply::Ok("ok"),
                ],
            )],
            1,
            expect(&[("A", 2)], "ok 'ok'"),
        )
        // LiteLLM waits its backoff instead: same calls, another wait.
        .check(|seen| waits(seen, &[3000])),
        row(
            "lone 429 then 200, llm_provider-retry-after-ms: 1500 (behind a LiteLLM proxy)",
            "utils.py: _get_retry_after_from_exception_header (reads retry-after only)",
            LONE,
            "  num_retries: 2\n",
            &[(
                "A",
                &[
                    Reply::Header(429, "llm_provider-retry-after-ms", "1500"),
                    Reply::Ok("ok"),
                ],
            )],
            1,
            expect(&[("A", 2)], "ok 'ok'"),
        )
        // LiteLLM waits its backoff instead: same calls, another wait.
        .check(|seen| waits(seen, &[1500])),
        row(
            "lone 429 then 200, Retry-After: an HTTP date 3 s ahead",
            "utils.py: _get_retry_after_from_exception_header (a date is read as the seconds \
             until it, whole), calculate_retry_after (+ jitter: LiteLLM waited 2.71 s)",
            LONE,
            "  num_retries: 2\n",
            &[("A", &[Reply::RetryAfterDate(429, 3), Reply::Ok("ok")])],
            1,
            expect(&[("A", 2)], "ok 'ok'"),
        )
        // llmux waits until the date. The date is written in whole seconds and made when the
        // upstream starts, a moment of real time before the router reads it: 1 to 3 s, far
        // from the 0.5 s backoff it would wait if it ignored the date.
        .check(|seen| match seen.waits[..] {
            [ms] if (1000..=3000).contains(&ms) => Ok(()),
            _ => Err(format!(
                "waited {:?} ms before retries, expected one wait of 1-3 s",
                seen.waits
            )),
        }),
        row(
            "lone 400 x2, num_retries 2",
            "router.py: should_retry_this_error (a status litellm.should_retry refuses); \
             cooldown_handlers.py: _is_cooldown_required (no 4xx but 401/402/404/408/429)",
            LONE,
            "  num_retries: 2\n",
            &[("A", S400)],
            2,
            expect(&[("A", 2)], "2x err"),
        ),
        row(
            "lone 401 x3",
            "router.py: should_retry_this_error (auth with one deployment); \
             cooldown_handlers.py: _should_cooldown_deployment (not litellm.should_retry: \
             cooled even alone)",
            LONE,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S401)],
            3,
            expect(&[("A", 1)], "err, 2x unavailable"),
        ),
        row(
            "lone 403 x3",
            "cooldown_handlers.py: _is_cooldown_required (403 never cools); router.py: \
             should_retry_this_error (OpenAI's 403 is mapped to APIError, not \
             PermissionDeniedError, so it is retried)",
            LONE,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", &[Reply::Status(403)])],
            3,
            expect(&[("A", 9)], "3x err"),
        )
        .differs(
            expect(&[("A", 3)], "3x err"),
            "a 403 is retried only on another deployment of the group, as a 401 is: \
             asking the same deployment again cannot lift a refusal",
        ),
        row(
            "lone 404 x3",
            "router.py: should_retry_this_error (NotFoundError); cooldown_handlers.py: \
             _should_cooldown_deployment (not litellm.should_retry)",
            LONE,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", &[Reply::Status(404)])],
            3,
            expect(&[("A", 1)], "err, 2x unavailable"),
        ),
        row(
            "lone 408 x2, num_retries 1",
            "utils.py: should_retry (408 is retried); cooldown_handlers.py: \
             _should_cooldown_deployment (retryable: no cooldown alone)",
            LONE,
            "  num_retries: 1\n  cooldown_time: 30\n",
            &[("A", &[Reply::Status(408)])],
            2,
            expect(&[("A", 4)], "2x err"),
        ),
        row(
            "lone refused, num_retries 2",
            "router.py: should_retry_this_error (no status: retried); \
             cooldown_handlers.py: _is_cooldown_required (APIConnectionError never cools)",
            &[("g", "a1", "nowhere", "")],
            "  num_retries: 2\n",
            &[],
            1,
            Expect {
                attempts: Some(3),
                ..expect(&[], "err")
            },
        ),
        row(
            "lone 503 x4, allowed_fails 1, no fallbacks",
            "cooldown_handlers.py: _should_cooldown_deployment (a lone deployment without \
             fallbacks is exempt from allowed_fails)",
            LONE,
            "  num_retries: 0\n  allowed_fails: 1\n  cooldown_time: 30\n",
            &[("A", S503)],
            4,
            expect(&[("A", 4)], "4x err"),
        ),
        row(
            "lone 503 x4, allowed_fails 1, fallbacks to b",
            ALLOWED_FAILS,
            LONE_THEN_B,
            "  num_retries: 0\n  allowed_fails: 1\n  cooldown_time: 30\n  fallbacks: [{g: [b]}]\n",
            &[("A", S503), ("B", FROM_B)],
            4,
            expect(&[("A", 2), ("B", 4)], "4x ok 'from b'"),
        ),
        row(
            "lone 503, num_retries 2, then fallback",
            "router.py: async_function_with_fallbacks (retries first, then fallbacks)",
            LONE_THEN_B,
            "  num_retries: 2\n  fallbacks: [{g: [b]}]\n",
            &[("A", S503), ("B", FROM_B)],
            1,
            expect(&[("A", 3), ("B", 1)], "ok 'from b'"),
        ),
        row(
            "lone 429, num_retries 2, then fallback",
            "router.py: should_retry_this_error (429 with a healthy deployment is retried \
             even with fallbacks)",
            LONE_THEN_B,
            "  num_retries: 2\n  fallbacks: [{g: [b]}]\n",
            &[("A", S429), ("B", FROM_B)],
            1,
            expect(&[("A", 3), ("B", 1)], "ok 'from b'"),
        ),
        row(
            "lone context window, context_window_fallbacks",
            "router.py: should_retry_this_error (ContextWindowExceededError with \
             context_window_fallbacks), async_function_with_fallbacks",
            LONE_THEN_B,
            "  num_retries: 2\n  context_window_fallbacks: [{g: [b]}]\n",
            &[("A", &[Reply::ContextWindow]), ("B", FROM_B)],
            1,
            expect(&[("A", 1), ("B", 1)], "ok 'from b'"),
        ),
        // ---- groups of two ----
        row(
            "pair 429 x2, num_retries 2",
            "cooldown_handlers.py: _should_cooldown_deployment (429 in a group of several); \
             router.py: should_retry_this_error (no healthy deployment left)",
            PAIR,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S429)],
            2,
            expect(&[("A", 2)], "err, unavailable"),
        ),
        row(
            "pair 503, num_retries 3",
            "cooldown_handlers.py: _should_cooldown_deployment (fewer than \
             DEFAULT_FAILURE_THRESHOLD_MINIMUM_REQUESTS = 5: no cooldown)",
            PAIR,
            "  num_retries: 3\n  cooldown_time: 30\n",
            &[("A", S503)],
            1,
            expect(&[("A", 4)], "err"),
        ),
        row(
            "pair 503 x12, num_retries 0: the failure rate",
            "cooldown_handlers.py: _should_cooldown_deployment (over \
             DEFAULT_FAILURE_THRESHOLD_PERCENT = 50% of at least 5 requests this minute)",
            PAIR,
            "  num_retries: 0\n  cooldown_time: 30\n",
            &[("A", S503)],
            12,
            expect(&[("A", 10)], "10x err, 2x unavailable"),
        ),
        row(
            "pair 503 x12, num_retries 0, allowed_fails 0",
            ALLOWED_FAILS,
            PAIR,
            "  num_retries: 0\n  allowed_fails: 0\n  cooldown_time: 30\n",
            &[("A", S503)],
            12,
            expect(&[("A", 2)], "2x err, 10x unavailable"),
        ),
        row(
            "pair 503 x12, num_retries 0, allowed_fails 1",
            ALLOWED_FAILS,
            PAIR,
            "  num_retries: 0\n  allowed_fails: 1\n  cooldown_time: 30\n",
            &[("A", S503)],
            12,
            expect(&[("A", 4)], "4x err, 8x unavailable"),
        ),
        // 1.108.14 took `allowed_fails: 3` (its default) as not set and used the failure rate:
        // 10 calls, "10x err, 2x unavailable". 1.110.2 counts what is written.
        row(
            "pair 503 x12, num_retries 0, allowed_fails 3",
            "cooldown_handlers.py: _is_allowed_fails_set_on_router (1.110.2: written counts)",
            PAIR,
            "  num_retries: 0\n  allowed_fails: 3\n  cooldown_time: 30\n",
            &[("A", S503)],
            12,
            expect(&[("A", 8)], "8x err, 4x unavailable"),
        ),
        row(
            "pair 500 x12, allowed_fails_policy InternalServerErrorAllowedFails 1",
            "router.py: get_allowed_fails_from_policy; cooldown_handlers.py: \
             should_cooldown_based_on_allowed_fails_policy",
            PAIR,
            "  num_retries: 0\n  cooldown_time: 30\n  allowed_fails_policy: {InternalServerErrorAllowedFails: 1}\n",
            &[("A", S500)],
            12,
            expect(&[("A", 4)], "4x err, 8x unavailable"),
        ),
        row(
            "pair 429 x12, allowed_fails_policy RateLimitErrorAllowedFails 2",
            "router.py: get_allowed_fails_from_policy (the policy replaces the 429 rule)",
            PAIR,
            "  num_retries: 0\n  cooldown_time: 30\n  allowed_fails_policy: {RateLimitErrorAllowedFails: 2}\n",
            &[("A", S429)],
            12,
            expect(&[("A", 6)], "6x err, 6x unavailable"),
        ),
        row(
            "pair 429 x2, disable_cooldowns, num_retries 3",
            "cooldown_handlers.py: _should_run_cooldown_logic (disable_cooldowns)",
            PAIR,
            "  num_retries: 3\n  disable_cooldowns: true\n",
            &[("A", S429)],
            2,
            expect(&[("A", 8)], "2x err"),
        ),
        row(
            "pair 401, num_retries 2",
            "router.py: should_retry_this_error (auth is retried where the group has other \
             deployments); cooldown_handlers.py: _should_cooldown_deployment (401 cools)",
            PAIR,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S401)],
            1,
            expect(&[("A", 2)], "err"),
        ),
        row(
            "pair 403 x2, num_retries 2",
            "router.py: should_retry_this_error (403 retried in a group of several); \
             cooldown_handlers.py: _is_cooldown_required (403 never cools)",
            PAIR,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", &[Reply::Status(403)])],
            2,
            expect(&[("A", 6)], "2x err"),
        ),
        row(
            "pair 400, num_retries 2",
            "router.py: should_retry_this_error (a status litellm.should_retry refuses)",
            PAIR,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S400)],
            1,
            expect(&[("A", 1)], "err"),
        ),
        row(
            "bad 401 + good x10",
            "router.py: should_retry_this_error, _deployment_ids_to_skip_on_retry; \
             cooldown_handlers.py: _should_cooldown_deployment (401 cools)",
            BAD_AND_GOOD,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S401), ("B", &[Reply::Ok("from good")])],
            10,
            expect(&[("A", 1), ("B", 10)], "10x ok 'from good'"),
        ),
        // Which deployment a request starts on is the strategy's random pick, so how many
        // requests start on the bad one differs between the two routers by luck (LiteLLM: 7).
        row(
            "bad 403 + good x10",
            "router.py: should_retry_this_error (403 retried where the group has other \
             deployments); cooldown_handlers.py: _is_cooldown_required (403 never cools)",
            BAD_AND_GOOD,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", &[Reply::Status(403)]), ("B", &[Reply::Ok("from good")])],
            10,
            expect(&[("A", 7), ("B", 10)], "10x ok 'from good'"),
        )
        .by_luck(&["A"])
        // Never cooled, so requests keep starting on it; never asked twice in one request.
        .check(|seen| match calls(seen, "A") {
            2..=10 => Ok(()),
            n => Err(format!(
                "the 403 deployment was called {n} times in 10 requests, expected 2 to 10 \
                 (it is never cooled, and a request asks it at most once)"
            )),
        }),
        row(
            "bad 429 + good x10",
            "cooldown_handlers.py: _should_cooldown_deployment (429 in a group of several)",
            BAD_AND_GOOD,
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S429), ("B", &[Reply::Ok("from good")])],
            10,
            expect(&[("A", 1), ("B", 10)], "10x ok 'from good'"),
        ),
        // LiteLLM picks the deployment without a key like any other: its call fails before
        // reaching the network (an InternalServerError), once in the ten requests of the run.
        // It sits on an upstream that refuses (401), so a call to it would show in A's count.
        row(
            "unset key + good x10",
            "router.py: get_available_deployment (a deployment without its key is picked)",
            &[
                (
                    "g",
                    "nokey",
                    "A",
                    "      api_key: os.environ/LLMUX_PARITY_SURELY_UNSET\n",
                ),
                ("g", "good", "B", ""),
            ],
            "  num_retries: 2\n  cooldown_time: 30\n",
            &[("A", S401), ("B", &[Reply::Ok("from good")])],
            10,
            expect(
                &[("A", 0), ("B", 9)],
                "2x ok 'from good', err, 7x ok 'from good'",
            ),
        )
        .differs(
            expect(&[("A", 0), ("B", 10)], "10x ok 'from good'"),
            "a deployment whose key variable is unset is never picked while another can \
             answer: it cannot succeed, and its failure would fail a request a sibling serves",
        ),
        // The same after every cooldown has run out: LiteLLM picks the deployment without a
        // key again (here once in ten, by its random pick) and the request fails.
        row(
            "unset key + good x10, 3 s apart, cooldown_time 2",
            "router.py: get_available_deployment (a deployment without its key is picked \
             again once its cooldown ends)",
            &[
                (
                    "g",
                    "nokey",
                    "A",
                    "      api_key: os.environ/LLMUX_PARITY_SURELY_UNSET\n",
                ),
                ("g", "good", "B", ""),
            ],
            "  num_retries: 2\n  cooldown_time: 2\n",
            &[("A", S401), ("B", &[Reply::Ok("from good")])],
            10,
            expect(
                &[("A", 0), ("B", 9)],
                "2x ok 'from good', err, 7x ok 'from good'",
            ),
        )
        .gap(3)
        .differs(
            expect(&[("A", 0), ("B", 10)], "10x ok 'from good'"),
            "never picked while another deployment can answer, cooldown or not",
        ),
        // ---- strategies and routing_strategy_args ----
        row(
            "latency-based-routing, slow A + fast B x10",
            "router_strategy/lowest_latency.py: _get_available_deployments (a deployment \
             without samples counts as 0 s, so each is tried once; then the lowest)",
            &[("g", "a1", "A", ""), ("g", "b1", "B", "")],
            "  routing_strategy: latency-based-routing\n",
            &[
                ("A", &[Reply::Slow(300, "from a")]),
                ("B", &[Reply::Slow(100, "from b")]),
            ],
            10,
            expect(&[("A", 1), ("B", 9)], "ok 'from a', 9x ok 'from b'"),
        ),
        // Within the buffer the pick is random: LiteLLM's counts (10 and 10, the answers
        // interleaved) differ from llmux's by luck. Both must share the load.
        row(
            "latency-based-routing, lowest_latency_buffer 3 (slow A within it) x20",
            "router_strategy/lowest_latency.py: RoutingArgs.lowest_latency_buffer (a random \
             pick among deployments within buffer x the lowest latency of it)",
            &[("g", "a1", "A", ""), ("g", "b1", "B", "")],
            "  routing_strategy: latency-based-routing\n  routing_strategy_args: { lowest_latency_buffer: 3 }\n",
            &[
                ("A", &[Reply::Slow(300, "from a")]),
                ("B", &[Reply::Slow(100, "from b")]),
            ],
            20,
            expect(
                &[("A", 10), ("B", 10)],
                "2x ok 'from a', 3x ok 'from b', 2x ok 'from a', 4x ok 'from b', \
                 4x ok 'from a', 2x ok 'from b', ok 'from a', ok 'from b', ok 'from a'",
            ),
        )
        .by_luck(&["A", "B"])
        .outcomes_by_luck()
        .check(|seen| match (calls(seen, "A"), calls(seen, "B")) {
            (a, b) if a >= 4 && b >= 4 && a + b == 20 => Ok(()),
            (a, b) => Err(format!(
                "A {a} and B {b} calls of 20: the buffer should spread them (each at least 4)"
            )),
        }),
        // ---- order tiers ----
        row(
            "order 1 503 / order 2 ok, num_retries 0",
            "router.py: async_function_with_fallbacks_common_utils (order fallbacks: the next \
             order tier even with num_retries 0)",
            TIERS,
            "  num_retries: 0\n",
            &[("A", S503), ("B", &[Reply::Ok("from order 2")])],
            1,
            expect(&[("A", 1), ("B", 1)], "ok 'from order 2'"),
        ),
        row(
            "order 1 503 / order 2 ok, num_retries 2",
            "router.py: async_function_with_retries within the tier \
             (utils.py: get_order_filtered_deployments), then the order fallback",
            TIERS,
            "  num_retries: 2\n",
            &[("A", S503), ("B", &[Reply::Ok("from order 2")])],
            1,
            expect(&[("A", 3), ("B", 1)], "ok 'from order 2'"),
        ),
        row(
            "order 1 503 / order 2 503, num_retries 1, fallbacks to b",
            "router.py: async_function_with_fallbacks_common_utils (order fallbacks first, \
             then the group's fallbacks; each with its own retries)",
            &[
                ("g", "a1", "A", "      order: 1\n"),
                ("g", "a2", "B", "      order: 2\n"),
                ("b", "b1", "C", ""),
            ],
            "  num_retries: 1\n  fallbacks: [{g: [b]}]\n",
            &[("A", S503), ("B", S503), ("C", FROM_B)],
            1,
            expect(&[("A", 2), ("B", 2), ("C", 1)], "ok 'from b'"),
        ),
        // ---- retry policies ----
        row(
            "model_group_retry_policy InternalServerErrorRetries 4",
            "router_utils/get_retry_from_policy.py: get_num_retries_from_retry_policy (a \
             group's policy wins over num_retries)",
            TWO_GROUPS,
            "  num_retries: 1\n  model_group_retry_policy: {g: {InternalServerErrorRetries: 4}}\n",
            &[("A", S500), ("B", S500)],
            1,
            expect(&[("A", 5), ("B", 0)], "err"),
        ),
        row(
            "model_group_retry_policy, another group keeps num_retries",
            "router_utils/get_retry_from_policy.py: resolve_retry_policy",
            TWO_GROUPS,
            "  num_retries: 1\n  model_group_retry_policy: {g: {InternalServerErrorRetries: 4}}\n",
            &[("A", S500), ("B", S500)],
            1,
            expect(&[("A", 0), ("B", 2)], "err"),
        )
        .model("h"),
        row(
            "retry_policy AuthenticationErrorRetries 2, lone 401",
            "router.py: async_function_with_retries (a policy skips should_retry_this_error; \
             the retries find the deployment cooled)",
            LONE,
            "  num_retries: 0\n  retry_policy: {AuthenticationErrorRetries: 2}\n",
            &[("A", S401)],
            1,
            expect(&[("A", 1)], "unavailable"),
        )
        .differs(
            expect(&[("A", 1)], "err"),
            "the request fails with the 401 that cooled the deployment rather than with the \
             'no deployments available' of retries that find nothing to call",
        ),
        row(
            "retry_policy BadRequestErrorRetries 1, lone 400",
            "router.py: async_function_with_retries (a policy skips should_retry_this_error)",
            LONE,
            "  num_retries: 0\n  retry_policy: {BadRequestErrorRetries: 1}\n",
            &[("A", S400)],
            1,
            expect(&[("A", 2)], "err"),
        ),
        // ---- request defaults ----
        row(
            "default_litellm_params temperature 0.3 over the deployment's 0.9",
            "router.py: _update_kwargs_with_default_litellm_params (request kwargs, defaults \
             filled in, win over the deployment's litellm_params)",
            &[("g", "a1", "A", "      temperature: 0.9\n")],
            "  default_litellm_params: {temperature: 0.3, max_tokens: 7}\n",
            &[("A", &[Reply::Ok("ok")])],
            1,
            expect(&[("A", 1)], "ok 'ok'"),
        )
        .check(|seen| {
            let body = &seen.bodies["A"];
            let sent = (body["temperature"].as_f64(), body["max_tokens"].as_u64());
            if sent == (Some(0.3), Some(7)) {
                Ok(())
            } else {
                Err(format!("sent temperature and max_tokens {sent:?}: {body}"))
            }
        }),
    ]
}
