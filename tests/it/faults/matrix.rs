//! The fault matrix: one row per upstream fault, each run through a real router over real
//! HTTP, with the outcome asserted as (class, retried, cooled, fell back).
//!
//! Every row has the same shape: group `a` (the faulty upstream, which answers its second
//! request properly) with `num_retries: 1` and `fallbacks: [{a: [b]}]`, and group `b` (a
//! healthy upstream). So a row says at once whether the fault is retried (a second attempt
//! on `a`, which then answers), cools the deployment down (a `Cooldown` event; the retry then
//! finds nothing to call), or sends the request to `b`. "Solo" rows have one deployment in
//! `a`, "pair" rows two (`a1`, `a2`) on the same upstream, which is where a 429 cools.
//! The rows run concurrently; the table is printed (`--nocapture`) before the assertions.
//! The matrix runs once per [`Net`]: plain HTTP, https through hyper, https through reqwest.

use futures::future::join_all;
use llmux::router::{RouteEventKind, RouterOptions};

use super::raw::RawUpstream;
use super::rows::{
    FROM_B, Fault, KEY, Observed, Outcome, Row, Topology, Wire, ok_raw, ok_reply, rows,
};
use crate::support;
use crate::upstream::{FakeUpstream, Net, Reply, net_test};

fn deployment(wire: Wire, group: &str, id: &str, url: &str, order: u32, extra: &str) -> String {
    let model = match wire {
        Wire::OpenAi => "openai/gpt-4o-mini",
        Wire::Anthropic => "anthropic/claude-3-5-haiku-latest",
    };
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: {model}\n      api_base: {url}\n      api_key: {KEY}\n      order: {order}\n{extra}    model_info: {{ id: {id} }}\n"
    )
}

/// Runs one row on `net` with `client`: its upstreams, its router, one request to the end.
/// (One client for every row of a run: every row's upstreams live for the whole test, so no
/// row can meet another's kept-alive connection on a reused port.)
async fn run_row(net: Net, client: &llmux::provider::HttpClient, row: &Row) -> Observed {
    enum Up {
        Fake(FakeUpstream),
        Raw(RawUpstream),
        None,
    }
    let (up, url) = match &row.fault {
        Fault::Fake(reply) => {
            let up =
                FakeUpstream::start_on(net, vec![reply.clone(), ok_reply(row.wire, row.stream)])
                    .await;
            let url = up.url.clone();
            (Up::Fake(up), url)
        }
        Fault::Raw(raw) => {
            let up =
                RawUpstream::start_on(net, vec![raw.clone(), ok_raw(row.wire, row.stream)]).await;
            let url = up.url.clone();
            (Up::Raw(up), url)
        }
        Fault::Refused => (Up::None, support::refused_url(net)),
    };
    let good = FakeUpstream::start_on(
        net,
        vec![if row.stream {
            Reply::openai_stream(&[FROM_B], Some((3, 2)))
        } else {
            Reply::openai_json(FROM_B, Some((3, 2)))
        }],
    )
    .await;
    let mut yaml = String::from("model_list:\n");
    yaml.push_str(&deployment(row.wire, "a", "a1", &url, 1, row.extra));
    if row.topology == Topology::Pair {
        yaml.push_str(&deployment(row.wire, "a", "a2", &url, 2, row.extra));
    }
    yaml.push_str(&deployment(Wire::OpenAi, "b", "b1", &good.url, 1, ""));
    yaml.push_str("router_settings:\n  num_retries: 1\n  fallbacks: [{a: [b]}]\n");
    let router = support::router_with(
        &yaml,
        RouterOptions {
            http: Some(client.clone()),
            ..RouterOptions::default()
        },
    );
    let mut request = support::ask("what is the fault?");
    request.stream = row.stream;
    // A reset held until the client has shown what came before it.
    let gate = match &row.fault {
        Fault::Fake(reply) => reply.reset_gate(),
        _ => None,
    };
    let support::Run { result, events, .. } = match &gate {
        Some(gate) => support::run_releasing(&router, "a", request, gate).await,
        None => support::run(&router, "a", request).await,
    };
    let (calls, written) = match &up {
        Up::Fake(u) => (Some(u.calls()), None),
        Up::Raw(u) => (Some(u.calls()), Some(u.body_bytes_written())),
        Up::None => (None, None),
    };
    Observed {
        result,
        events,
        calls,
        written,
    }
}

fn observe(o: &Observed) -> Outcome {
    let class = o.events.iter().find_map(|e| match e.kind {
        RouteEventKind::Failure { class, .. } => Some(class),
        _ => None,
    });
    let attempts_on_a = o
        .events
        .iter()
        .filter(|e| e.kind == RouteEventKind::Attempt && e.group == "a")
        .count();
    Outcome {
        class,
        retried: attempts_on_a > 1,
        cooled: o
            .events
            .iter()
            .any(|e| matches!(e.kind, RouteEventKind::Cooldown { .. })),
        fell_back: o
            .events
            .iter()
            .any(|e| matches!(e.kind, RouteEventKind::Fallback { .. })),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

net_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_upstream_fault_has_its_class_retry_cooldown_and_fallback
);
async fn every_upstream_fault_has_its_class_retry_cooldown_and_fallback(net: Net) {
    let rows = rows();
    let client = net.client();
    let observed = join_all(rows.iter().map(|row| run_row(net, &client, row))).await;
    let mut table = String::from(
        "| fault | class | retried | cooled | fell back | calls to a | answer |\n|---|---|---|---|---|---|---|\n",
    );
    let mut problems = Vec::new();
    for (row, o) in rows.iter().zip(&observed) {
        let got = observe(o);
        let text = match &o.result {
            Ok(r) => r.text.clone(),
            Err(e) => format!("ERROR {}", e.message),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:?} |\n",
            row.name,
            got.class.map_or("-", |c| c.name()),
            yes(got.retried),
            yes(got.cooled),
            yes(got.fell_back),
            o.calls.map_or("-".to_string(), |c| c.to_string()),
            text,
        ));
        if got != row.expect {
            problems.push(format!(
                "{}: expected {:?}, got {:?}",
                row.name, row.expect, got
            ));
        }
        if text != row.answer {
            problems.push(format!(
                "{}: answer {text:?}, expected {:?}",
                row.name, row.answer
            ));
        }
        let attempts_on_a = o
            .events
            .iter()
            .filter(|e| e.kind == RouteEventKind::Attempt && e.group == "a")
            .count();
        if let Some(calls) = o.calls
            && calls != attempts_on_a
        {
            problems.push(format!(
                "{}: {calls} requests reached the upstream for {attempts_on_a} attempts",
                row.name
            ));
        }
        if let Some(check) = row.check
            && let Err(why) = check(o)
        {
            problems.push(format!("{}: {why}", row.name));
        }
    }
    println!("{table}");
    assert!(problems.is_empty(), "{}\n{table}", problems.join("\n"));
}

/// When the failure cooled the group's only deployment, nothing can be retried: the router
/// should move on without announcing a retry it will not make (it once emitted
/// `Retry { delay_ms: 0 }`, then `Unavailable`, and the log showed "retry in 0.0s").
#[tokio::test]
async fn no_retry_is_announced_when_the_only_deployment_was_just_cooled() {
    let up = FakeUpstream::start(vec![Reply::status(503)]).await;
    let good = FakeUpstream::start(vec![Reply::openai_stream(&[FROM_B], None)]).await;
    // `allowed_fails: 0` cools a lone deployment that has fallbacks at its first failure.
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 1\n  allowed_fails: 0\n  fallbacks: [{{a: [b]}}]\n",
        deployment(Wire::OpenAi, "a", "a1", &up.url, 1, ""),
        deployment(Wire::OpenAi, "b", "b1", &good.url, 1, "")
    );
    let router = support::router(&yaml);
    let run = support::run(&router, "a", support::ask("q")).await;
    let events: Vec<RouteEventKind> = run.events.into_iter().map(|e| e.kind).collect();
    assert!(
        events
            .iter()
            .any(|k| matches!(k, RouteEventKind::Cooldown { .. })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|k| matches!(k, RouteEventKind::Retry { .. })),
        "a retry was announced but no second call can be made: {events:?}"
    );
    assert_eq!(up.calls(), 1);
}
