//! Redis's side of the shared state: key names, the Lua scripts, and the clocks they are
//! keyed by. Pure functions building commands; the callers run them (see the parent module for
//! what each key holds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::router::health::MINUTE;

/// The pub/sub channel every instance publishes its new cooldowns on.
pub(crate) const COOLDOWN_CHANNEL: &str = "llmux:cooldowns";
/// The hash of picodollars spent per deployment.
pub(crate) const COST_KEY: &str = "llmux:cost";
/// A random tag set by the first instance that finds it missing: a different tag than the one
/// an instance last saw means the store lost its state (restarted empty, failed over to an
/// empty replica, flushed).
pub(super) const GENERATION_KEY: &str = "llmux:generation";
/// How long a per-minute tpm counter outlives its minute.
pub(super) const TPM_KEY_TTL_SECS: u64 = 120;
/// Seconds in the fixed tpm window.
pub(super) const SECS_PER_MINUTE: u64 = 60;

/// Claims request slots: drops requests older than the window, checks the rpm limit against
/// the requests left and the tpm limit against this minute's tokens, and only then adds
/// `count` requests scored `age` ms before Redis's clock. A limit of -1 is none.
/// KEYS: rpm sorted set, tpm counter. ARGV: rpm limit, tpm limit, member prefix, window ms,
/// count, age ms. Returns {admitted 0/1, requests in the window, tokens this minute, ms until
/// the oldest request leaves the window}.
pub(super) const ADMIT_SCRIPT: &str = r"
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local admitted = 0
if not ((rpm >= 0 and used >= rpm) or (tpm >= 0 and tokens >= tpm)) then
  admitted = 1
  local count = tonumber(ARGV[5])
  local at = now - tonumber(ARGV[6])
  for i = 1, count do
    redis.call('ZADD', KEYS[1], at, ARGV[3] .. ':' .. i)
  end
  used = used + count
  redis.call('PEXPIRE', KEYS[1], window)
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local free = 0
if oldest[2] then free = math.max(0, tonumber(oldest[2]) + window - now) end
return {admitted, used, tokens, free}
";

/// Sets a cooldown unless a longer one is running, and publishes it either way (receivers only
/// ever extend). KEYS: the cooldown key. ARGV: reason, ms, channel, message.
pub(super) const COOLDOWN_SCRIPT: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return left
";

pub(super) fn rpm_key(id: &str) -> String {
    format!("llmux:{{{id}}}:rpm")
}

pub(super) fn tpm_key(id: &str, minute: u64) -> String {
    format!("llmux:{{{id}}}:tpm:{minute}")
}

pub(super) fn cooldown_key(id: &str) -> String {
    format!("llmux:{{{id}}}:cooldown")
}

pub(super) fn admit_cmd(
    id: &str,
    minute: u64,
    rpm: i64,
    tpm: i64,
    member: &str,
    count: u32,
    age: Duration,
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(ADMIT_SCRIPT)
        .arg(2)
        .arg(rpm_key(id))
        .arg(tpm_key(id, minute))
        .arg(rpm)
        .arg(tpm)
        .arg(member)
        .arg(MINUTE.as_millis() as u64)
        .arg(count)
        .arg(age.as_millis() as u64);
    cmd
}

pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn unix_minute() -> u64 {
    unix_secs(SystemTime::now()) / SECS_PER_MINUTE
}

pub(super) fn until_next_minute() -> Duration {
    let ms = unix_ms();
    let minute_ms = SECS_PER_MINUTE * 1000;
    Duration::from_millis(minute_ms - ms % minute_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_brace_the_deployment_id() {
        assert_eq!(rpm_key("gpt-a"), "llmux:{gpt-a}:rpm");
        assert_eq!(tpm_key("gpt-a", 7), "llmux:{gpt-a}:tpm:7");
        assert_eq!(cooldown_key("gpt-a"), "llmux:{gpt-a}:cooldown");
    }
}
