//! `llmux ask --batch FILE`: many prompts through the router, N at a time, one JSON result
//! line per input line, in input order.
//!
//! Lines enter from the file (or stdin for `-`) and are parsed by [`parse_jobs`]: a JSON
//! string is a prompt; an object carries `prompt` or `messages` (OpenAI-style `{role,
//! content}` with text content) and optionally `model`, `id` (echoed), `tags` (added to
//! `--tag`), `system` and `max_tokens`; blank lines are skipped; a line that does not parse
//! is a failed result, not an abort. [`run_batch`] keeps `concurrency` requests in flight,
//! buffers answers that finish early and writes each line as soon as every line before it
//! is written: `ask --json`'s fields plus `line` (1-based), `ok` and `id`, or
//! `{"line", "ok": false, "error": {kind, message, ...}}`. A live progress line goes to
//! stderr when it is a terminal. When `stop` resolves (Ctrl+C), no request starts, the
//! in-flight ones are dropped (which cancels their HTTP calls), and the answers that did
//! finish are written in input order, with gaps where lines did not finish.

mod input;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};

use super::ask::{AskArgs, clean_tags, outcome_json};
use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, load_config};
use crate::errln;
use crate::metrics::Usd;
use crate::router::{ChatOutcome, RouteError, Router};
use crate::sanitize::{escape_controls, to_safe_json};

pub use input::{BadLine, Defaults, Job, parse_jobs};

/// Requests in flight at once unless `--concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The progress line is redrawn at most this often (10 Hz).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// The `error.kind` of a line that could not be read as a prompt.
const INVALID_LINE: &str = "invalid_line";
/// The name `--batch` takes for stdin.
const STDIN_NAME: &str = "-";

/// How a batch went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Non-blank input lines.
    pub total: usize,
    pub succeeded: usize,
    /// Failed requests and bad lines.
    pub failed: usize,
    /// True when `stop` ended the batch early; `total - succeeded - failed` lines have no
    /// result then.
    pub interrupted: bool,
}

impl Summary {
    /// 130 when interrupted, 1 when any line failed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.failed > 0 {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }
}

/// Counters for the progress line.
#[derive(Debug, Clone, Default)]
struct Progress {
    done: usize,
    failed: usize,
    output_tokens: u64,
    cost: Usd,
    unpriced: bool,
}

impl Progress {
    fn line(&self, total: usize, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.output_tokens as f64 / secs
        } else {
            0.0
        };
        let unpriced = if self.unpriced {
            " (some unpriced)"
        } else {
            ""
        };
        format!(
            "batch: {}/{total} done · {} failed · {rate:.0} tok/s · {}{unpriced}",
            self.done, self.failed, self.cost
        )
    }
}

/// Runs every line of `text` through `router`, `concurrency` at a time, writing one result
/// line per input line to `out` in input order (see the module docs). `progress` draws the
/// live line on stderr.
pub async fn run_batch(
    router: &Router,
    text: &str,
    defaults: &Defaults,
    concurrency: usize,
    out: &mut dyn Write,
    stop: impl Future<Output = ()>,
    progress: bool,
) -> std::io::Result<Summary> {
    let jobs = parse_jobs(text, defaults);
    let total = jobs.len();
    let concurrency = concurrency.max(1);
    let started = Instant::now();
    let mut counts = Progress::default();
    let mut finished: BTreeMap<usize, Value> = BTreeMap::new();
    let mut next_write = 0usize;
    let mut queue = jobs.into_iter().enumerate();
    let mut in_flight = FuturesUnordered::new();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut drawn = String::new();
    let mut interrupted = false;
    tokio::pin!(stop);
    loop {
        while in_flight.len() < concurrency {
            match queue.next() {
                Some((i, Ok(job))) => in_flight.push(run_job(router, i, job)),
                Some((i, Err(bad))) => {
                    counts.done += 1;
                    counts.failed += 1;
                    finished.insert(i, bad_line_json(&bad));
                }
                None => break,
            }
        }
        write_ready(&mut finished, &mut next_write, out)?;
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = &mut stop => {
                interrupted = true;
                break;
            }
            Some((i, value, outcome)) = in_flight.next() => {
                counts.done += 1;
                match outcome {
                    Some((tokens, cost)) => {
                        counts.output_tokens += tokens;
                        match cost {
                            Some(c) => counts.cost += c,
                            None => counts.unpriced = true,
                        }
                    }
                    None => counts.failed += 1,
                }
                finished.insert(i, value);
            }
            _ = ticker.tick(), if progress => {
                draw(&mut drawn, counts.line(total, started.elapsed()));
            }
        }
    }
    // Dropping the futures drops their chat streams, which cancels those requests.
    drop(in_flight);
    for value in finished.values() {
        writeln!(out, "{}", to_safe_json(value))?;
    }
    out.flush()?;
    if progress {
        draw(&mut drawn, counts.line(total, started.elapsed()));
        errln!();
    }
    Ok(Summary {
        total,
        succeeded: counts.done - counts.failed,
        failed: counts.failed,
        interrupted,
    })
}

/// What one finished request adds to the output and the counters: its result line, and
/// (output tokens, cost) when it succeeded.
type Finished = (usize, Value, Option<(u64, Option<Usd>)>);

async fn run_job(router: &Router, index: usize, mut job: Job) -> Finished {
    let tags = job.request.tags.clone();
    let request = std::mem::take(&mut job.request);
    let result = router.chat(&job.model, request).finish().await;
    match result {
        Ok(o) => {
            let stats = (o.usage.output, o.cost);
            (index, ok_json(&job, &tags, &o), Some(stats))
        }
        Err(e) => (index, failed_json(&job, &e), None),
    }
}

fn ok_json(job: &Job, tags: &[String], o: &ChatOutcome) -> Value {
    let mut v = outcome_json(&job.model, tags, o);
    v["line"] = json!(job.line);
    v["ok"] = json!(true);
    if let Some(id) = &job.id {
        v["id"] = id.clone();
    }
    v
}

fn failed_json(job: &Job, e: &RouteError) -> Value {
    let mut v = json!({
        "line": job.line,
        "ok": false,
        "requested": job.model,
        "error": {
            "kind": e.kind,
            "message": e.message,
            "attempts": e.attempts,
            "retry_in_ms": e.retry_in.map(|d| d.as_millis() as u64),
            "partial_text": e.partial_text,
        },
    });
    if let Some(id) = &job.id {
        v["id"] = id.clone();
    }
    v
}

fn bad_line_json(bad: &BadLine) -> Value {
    let mut v = json!({
        "line": bad.line,
        "ok": false,
        "error": { "kind": INVALID_LINE, "message": bad.message },
    });
    if let Some(id) = &bad.id {
        v["id"] = id.clone();
    }
    v
}

/// Writes the results that continue the in-order prefix, then flushes.
fn write_ready(
    finished: &mut BTreeMap<usize, Value>,
    next_write: &mut usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut wrote = false;
    while let Some(value) = finished.remove(next_write) {
        writeln!(out, "{}", to_safe_json(&value))?;
        *next_write += 1;
        wrote = true;
    }
    if wrote {
        out.flush()?;
    }
    Ok(())
}

/// Redraws the progress line in place when it changed.
fn draw(drawn: &mut String, line: String) {
    if *drawn != line {
        let mut err = std::io::stderr().lock();
        // Our own escape clears the line; the line itself is shown escaped.
        let _ = write!(err, "\r\x1b[2K{}", escape_controls(&line));
        let _ = err.flush();
        *drawn = line;
    }
}

/// `llmux ask --batch FILE`: reads the lines, runs them, writes the results; the exit code.
pub(super) async fn run(config: Option<&Path>, args: &AskArgs, input: &Path) -> u8 {
    let text = match read_input(input) {
        Ok(t) => t,
        Err(msg) => {
            errln!("llmux ask --batch: {msg}");
            return EXIT_USAGE;
        }
    };
    if let Some(out) = &args.out
        && same_file(input, out)
    {
        errln!(
            "llmux ask --batch: --out {} is the input file; write the results elsewhere",
            out.display()
        );
        return EXIT_USAGE;
    }
    let cfg = match load_config(config, args.verbose) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let defaults = Defaults {
        model: args
            .model
            .clone()
            .or_else(|| cfg.app.default_model.clone())
            .or_else(|| cfg.groups.first().cloned())
            .unwrap_or_default(),
        system: args.system.clone(),
        max_tokens: args.max_tokens,
        tags: clean_tags(&args.tags),
        no_cache: args.no_cache,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                errln!(
                    "llmux ask --batch: cannot write {}: {e}; check the directory exists and is writable",
                    path.display()
                );
                return EXIT_USAGE;
            }
        },
        None => Box::new(std::io::stdout()),
    };
    // Registered before any request starts, so an early Ctrl+C is ours too.
    let stop = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(mut s) => futures::future::Either::Left(async move {
            s.recv().await;
        }),
        Err(_) => futures::future::Either::Right(std::future::pending()),
    };
    let router = match super::build_router(cfg, 0) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let concurrency = args.concurrency.map_or(DEFAULT_CONCURRENCY, usize::from);
    let progress = std::io::stderr().is_terminal();
    let result = run_batch(
        &router,
        &text,
        &defaults,
        concurrency,
        &mut out,
        stop,
        progress,
    )
    .await;
    router.close().await;
    let target = args
        .out
        .as_ref()
        .map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    match result {
        Ok(s) => {
            let ran = s.succeeded + s.failed;
            if s.interrupted {
                errln!(
                    "llmux ask --batch: interrupted; {ran} of {} results written to {target}, {} lines not run",
                    s.total,
                    s.total - ran
                );
            } else {
                errln!(
                    "llmux ask --batch: {} lines, {} ok, {} failed → {target}",
                    s.total,
                    s.succeeded,
                    s.failed
                );
            }
            s.exit_code()
        }
        Err(e) => {
            errln!("llmux ask --batch: cannot write the results to {target}: {e}");
            EXIT_FAILED
        }
    }
}

fn read_input(input: &Path) -> Result<String, String> {
    if input.as_os_str() == STDIN_NAME {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the prompts from stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(input).map_err(|e| {
        format!(
            "cannot read {}: {e}; give a JSONL file with one prompt per line",
            input.display()
        )
    })
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let ok = Summary {
            total: 2,
            succeeded: 2,
            ..Summary::default()
        };
        assert_eq!(ok.exit_code(), EXIT_OK);
        let failed = Summary {
            failed: 1,
            ..ok.clone()
        };
        assert_eq!(failed.exit_code(), EXIT_FAILED);
        let stopped = Summary {
            interrupted: true,
            ..failed
        };
        assert_eq!(stopped.exit_code(), EXIT_INTERRUPTED);
    }

    #[test]
    fn the_progress_line_counts_rate_and_cost() {
        let p = Progress {
            done: 3,
            failed: 1,
            output_tokens: 200,
            cost: Usd::from_pico(12_300_000_000),
            unpriced: false,
        };
        assert_eq!(
            p.line(10, Duration::from_secs(2)),
            "batch: 3/10 done · 1 failed · 100 tok/s · $0.0123"
        );
    }
}
