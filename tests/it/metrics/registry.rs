//! The registry: in-flight counts, percentiles, rolling error rates, sparklines and cost
//! totals, driven by synthetic instants.

use std::time::{Duration, Instant};

use llmux::metrics::{AttemptSuccess, Metrics, MetricsSnapshot, SPARK_BUCKET, SPARK_BUCKETS, Usd};
use llmux::provider::{ErrorClass, Usage};

fn success(ttft_ms: u64, total_ms: u64, output: u64, cost: Option<Usd>) -> AttemptSuccess {
    AttemptSuccess {
        ttft: Some(Duration::from_millis(ttft_ms)),
        total: Duration::from_millis(total_ms),
        usage: Usage {
            input: 10,
            output,
            ..Usage::default()
        },
        cost,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Within the histogram's 1% resolution.
fn near(d: Option<Duration>, ms: u64) -> bool {
    let got = d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    (got - ms as f64).abs() <= ms as f64 * 0.01 + 0.001
}

#[test]
fn in_flight_counts_started_attempts_until_they_end() {
    let m = Metrics::new();
    let t0 = Instant::now();
    assert_eq!(m.in_flight("a"), 0);
    for _ in 0..4 {
        m.attempt_started("a", "g", t0);
    }
    m.attempt_started("b", "g", t0);
    assert_eq!(m.in_flight("a"), 4);
    m.attempt_succeeded("a", "g", &success(10, 20, 5, None), t0);
    m.attempt_failed("a", "g", ErrorClass::Server, secs(1), t0);
    m.attempt_cancelled("a", "g", t0);
    assert_eq!(m.in_flight("a"), 1);
    assert_eq!(m.in_flight("b"), 1);
    let snap = m.snapshot(t0);
    let a = snap.deployment("a").unwrap();
    assert_eq!(
        (a.requests, a.successes, a.cancelled, a.failed()),
        (4, 1, 1, 1)
    );
    assert_eq!(a.in_flight, 1);
    assert_eq!(snap.group("g").unwrap().in_flight, 2);
    assert_eq!(snap.group("g").unwrap().requests, 5);
    // A stray end without a start never wraps around.
    m.attempt_cancelled("c", "g", t0);
    assert_eq!(m.in_flight("c"), 0);
}

#[test]
fn percentiles_come_from_the_histogram() {
    let m = Metrics::new();
    let t0 = Instant::now();
    for i in 1..=100 {
        m.attempt_started("a", "g", t0);
        m.attempt_succeeded("a", "g", &success(i, i * 10, 1, None), t0);
    }
    let snap = m.snapshot(t0);
    let a = snap.deployment("a").unwrap();
    assert!(near(a.ttft_p50, 50), "{:?}", a.ttft_p50);
    assert!(near(a.ttft_p95, 95), "{:?}", a.ttft_p95);
    assert!(near(a.latency_p50, 500), "{:?}", a.latency_p50);
    assert!(near(a.latency_p95, 950), "{:?}", a.latency_p95);
    let g = snap.group("g").unwrap();
    assert_eq!((g.ttft_p50, g.latency_p95), (a.ttft_p50, a.latency_p95));
}

#[test]
fn percentiles_forget_samples_older_than_the_window() {
    let m = Metrics::new();
    let t0 = Instant::now();
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded("a", "g", &success(1_000, 2_000, 1, None), t0);
    m.attempt_started("a", "g", t0 + secs(240));
    m.attempt_succeeded("a", "g", &success(100, 200, 1, None), t0 + secs(240));
    let p50 = |at: u64| m.snapshot(t0 + secs(at)).deployments[0].latency_p50;
    assert!(
        near(p50(240), 200),
        "both samples: the median is the lower one"
    );
    assert!(near(
        m.snapshot(t0 + secs(240)).deployments[0].latency_p95,
        2_000
    ));
    // Six minutes on, the first sample has left the window; the second has not.
    assert!(near(
        m.snapshot(t0 + secs(360)).deployments[0].latency_p95,
        200
    ));
    // Ten minutes on, nothing is left.
    assert_eq!(p50(600), None);
    assert_eq!(m.snapshot(t0 + secs(600)).deployments[0].ttft_p95, None);
}

#[test]
fn error_rate_is_over_the_rolling_window() {
    let m = Metrics::new();
    let t0 = Instant::now();
    for _ in 0..3 {
        m.attempt_started("a", "g", t0);
        m.attempt_failed("a", "g", ErrorClass::RateLimit, secs(1), t0);
    }
    m.attempt_started("a", "g", t0);
    m.attempt_failed("a", "g", ErrorClass::Server, secs(1), t0);
    let later = t0 + secs(120);
    for _ in 0..4 {
        m.attempt_started("a", "g", later);
        m.attempt_succeeded("a", "g", &success(10, 20, 1, None), later);
    }
    let snap = m.snapshot(later);
    let a = snap.deployment("a").unwrap();
    assert_eq!(a.error_rate, 0.5);
    assert_eq!(a.failures.get(&ErrorClass::RateLimit), Some(&3));
    assert_eq!(a.failures.get(&ErrorClass::Server), Some(&1));
    assert_eq!(a.failures.get(&ErrorClass::Auth), None);
    assert_eq!(snap.group("g").unwrap().error_rate, 0.5);
    // Just inside five minutes of the failures they still count; at five they are gone,
    // while the lifetime counts stay.
    assert_eq!(m.snapshot(t0 + secs(299)).deployments[0].error_rate, 0.5);
    let a = m.snapshot(t0 + secs(300)).deployments[0].clone();
    assert_eq!(a.error_rate, 0.0);
    assert_eq!(a.failed(), 4);
    assert_eq!(m.snapshot(t0 + secs(3600)).deployments[0].error_rate, 0.0);
}

#[test]
fn sparklines_shift_one_bucket_every_ten_seconds() {
    let m = Metrics::new();
    let t0 = Instant::now();
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded("a", "g", &success(50, 100, 1, None), t0);
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded("a", "g", &success(50, 300, 1, None), t0 + secs(5));
    m.attempt_started("a", "g", t0 + SPARK_BUCKET);
    m.attempt_failed("a", "g", ErrorClass::Timeout, secs(30), t0 + SPARK_BUCKET);

    let spark = |at: Duration| {
        let snap = m.snapshot(t0 + at);
        let a = &snap.deployments[0];
        (a.latency_spark.clone(), a.error_spark.clone())
    };
    let (lat, err) = spark(SPARK_BUCKET);
    assert_eq!(lat.len(), SPARK_BUCKETS);
    assert_eq!(err.len(), SPARK_BUCKETS);
    assert_eq!(
        &lat[SPARK_BUCKETS - 2..],
        &[200, 0],
        "mean of 100 and 300 ms"
    );
    assert_eq!(&err[SPARK_BUCKETS - 2..], &[0, 1]);
    assert!(lat[..SPARK_BUCKETS - 2].iter().all(|&v| v == 0));

    // Ten seconds later everything moved one bar to the left.
    let (lat, err) = spark(SPARK_BUCKET * 2);
    assert_eq!(&lat[SPARK_BUCKETS - 3..], &[200, 0, 0]);
    assert_eq!(&err[SPARK_BUCKETS - 3..], &[0, 1, 0]);

    // The oldest bar is the first one, until it falls off.
    let last = SPARK_BUCKET * (SPARK_BUCKETS as u32 - 1);
    let (lat, _) = spark(last);
    assert_eq!(lat[0], 200);
    let (lat, err) = spark(last + SPARK_BUCKET);
    assert_eq!(lat[0], 0);
    assert_eq!(err[0], 1);
    let (lat, err) = spark(last + SPARK_BUCKET * 2);
    assert!(lat.iter().chain(&err).all(|&v| v == 0));
}

#[test]
fn ttft_average_is_the_last_ten_samples_with_timeouts_as_penalties() {
    let m = Metrics::new();
    let t0 = Instant::now();
    assert_eq!(m.ttft_average("a"), None);
    // Twelve samples: only the last ten (300 ms each) count.
    for ms in [5_000, 5_000].into_iter().chain([300; 10]) {
        m.attempt_started("a", "g", t0);
        m.attempt_succeeded("a", "g", &success(ms, ms + 100, 1, None), t0);
    }
    assert_eq!(m.ttft_average("a"), Some(Duration::from_millis(300)));
    // A 10 s timeout weighs as 20 s: (9 × 300 + 20_000) / 10.
    m.attempt_started("a", "g", t0);
    m.attempt_failed("a", "g", ErrorClass::Timeout, secs(10), t0);
    assert_eq!(m.ttft_average("a"), Some(Duration::from_millis(2_270)));
    // Other failures say nothing about latency.
    m.attempt_started("a", "g", t0);
    m.attempt_failed("a", "g", ErrorClass::Server, secs(10), t0);
    assert_eq!(m.ttft_average("a"), Some(Duration::from_millis(2_270)));
    // A non-streamed answer counts its whole time.
    let plain = AttemptSuccess {
        ttft: None,
        total: Duration::from_millis(300),
        usage: Usage::default(),
        cost: None,
    };
    m.attempt_succeeded("b", "g", &plain, t0);
    assert_eq!(m.ttft_average("b"), Some(Duration::from_millis(300)));
}

#[test]
fn tokens_per_second_count_streaming_after_the_first_token() {
    let m = Metrics::new();
    let t0 = Instant::now();
    // 100 tokens in the 2 s after the first, and 300 in 2 s: 400 / 4 s.
    m.attempt_succeeded("a", "g", &success(500, 2_500, 100, None), t0);
    m.attempt_succeeded("a", "g", &success(1_000, 3_000, 300, None), t0);
    let snap = m.snapshot(t0);
    let a = snap.deployment("a").unwrap();
    assert_eq!(a.tokens_per_s, Some(100.0));
    assert_eq!((a.tokens_in, a.tokens_out), (20, 400));
    assert_eq!(m.snapshot(t0 + secs(600)).deployments[0].tokens_per_s, None);
}

#[test]
fn costs_add_exactly_and_unknown_prices_are_counted_apart() {
    let m = Metrics::new();
    let t0 = Instant::now();
    let tenth_of_cent = Usd::from_dollars_f64(0.001).unwrap();
    for _ in 0..1_000 {
        m.attempt_started("a", "fast", t0);
        m.attempt_succeeded("a", "fast", &success(1, 2, 1, Some(tenth_of_cent)), t0);
    }
    m.attempt_started("b", "fast", t0);
    m.attempt_succeeded("b", "fast", &success(1, 2, 1, None), t0);
    m.attempt_started("c", "smart", t0);
    m.attempt_succeeded("c", "smart", &success(1, 2, 1, Some(Usd::from_pico(7))), t0);
    let snap = m.snapshot(t0);
    assert_eq!(
        snap.deployment("a").unwrap().cost,
        Usd::from_pico(1_000_000_000_000)
    );
    assert_eq!(snap.deployment("b").unwrap().cost, Usd::ZERO);
    assert_eq!(snap.deployment("b").unwrap().unpriced, 1);
    let fast = snap.group("fast").unwrap();
    assert_eq!(
        (fast.cost.to_string(), fast.unpriced),
        ("$1.00".to_string(), 1)
    );
    assert_eq!(snap.total_cost, Usd::from_pico(1_000_000_000_007));
    assert_eq!(snap.unpriced_requests, 1);
}

#[test]
fn seeded_deployments_show_with_zeros_in_first_seen_order() {
    let m = Metrics::new();
    let t0 = Instant::now();
    m.seed_deployment("z-first", "g1");
    m.attempt_started("a-second", "g2", t0);
    m.seed_deployment("m-third", "g1");
    m.seed_deployment("z-first", "g1");
    let snap = m.snapshot(t0);
    let ids: Vec<_> = snap.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["z-first", "a-second", "m-third"]);
    let groups: Vec<_> = snap.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(groups, ["g1", "g2"]);
    let z = &snap.deployments[0];
    assert_eq!((z.requests, z.error_rate, z.latency_p50), (0, 0.0, None));
    assert_eq!(z.group, "g1");
    assert_eq!(z.latency_spark, vec![0; SPARK_BUCKETS]);
    // A snapshot of a registry that never saw traffic is still well-formed.
    let empty = Metrics::new();
    empty.seed_deployment("x", "g");
    assert_eq!(
        empty.snapshot(t0).deployments[0].error_spark.len(),
        SPARK_BUCKETS
    );
}

#[test]
fn snapshots_round_trip_through_json() {
    let m = Metrics::new();
    let t0 = Instant::now();
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded(
        "a",
        "g",
        &success(120, 900, 42, Some(Usd::from_pico(123_456))),
        t0,
    );
    m.attempt_started("a", "g", t0);
    m.attempt_failed("a", "g", ErrorClass::ContextWindow, secs(1), t0);
    let snap = m.snapshot(t0);
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.contains("\"context_window\":1"), "{json}");
    let back: MetricsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
}

#[test]
fn reports_from_many_threads_all_count() {
    let m = Metrics::new();
    let t0 = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..1_000u64 {
                    let id = format!("d{}", (t + i) % 3);
                    m.attempt_started(&id, "g", t0);
                    m.attempt_succeeded(&id, "g", &success(1, 2, 1, Some(Usd::from_pico(3))), t0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let snap = m.snapshot(t0);
    let g = snap.group("g").unwrap();
    assert_eq!((g.requests, g.successes, g.in_flight), (4_000, 4_000, 0));
    assert_eq!(snap.total_cost, Usd::from_pico(12_000));
    assert_eq!(snap.deployments.len(), 3);
}

#[test]
fn tokens_per_second_leaves_out_answers_that_came_in_one_burst() {
    let m = Metrics::new();
    let t0 = Instant::now();
    // 100 tokens over the 1 s after the first token: 100 tok/s.
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded("a", "g", &success(200, 1_200, 100, None), t0);
    // 20 tokens all at once, 1 ms after the first: no rate to speak of, left out.
    m.attempt_started("a", "g", t0);
    m.attempt_succeeded("a", "g", &success(1, 2, 20, None), t0);
    let a = m.snapshot(t0).deployment("a").unwrap().clone();
    let rate = a.tokens_per_s.expect("the timed answer gives a rate");
    assert!((rate - 100.0).abs() < 0.5, "{rate}");
    // Only bursts: no rate at all (shown as "–"), not 20,000 tok/s.
    let b = Metrics::new();
    b.attempt_started("b", "g", t0);
    b.attempt_succeeded("b", "g", &success(1, 2, 20, None), t0);
    assert_eq!(b.snapshot(t0).deployment("b").unwrap().tokens_per_s, None);
}
