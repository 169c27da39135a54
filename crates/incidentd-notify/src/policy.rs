//! Delivery policy: retry budget, exponential backoff with jitter, the
//! per-destination circuit breaker and rate limits. Plain values over
//! tokio's clock, so paused-clock tests drive them.

use crate::message::DestKind;
use std::time::Duration;
use tokio::time::Instant;

/// Notifier knobs (`[notify]` in the org config; these are the defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Attempts before a delivery is dead (the retry budget).
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Fraction of each delay that is random (0: none, tests; 0.5: the
    /// delay is between half and all of the exponential value).
    pub jitter: f64,
    /// Consecutive failures that open a destination's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit stays open before one trial request.
    pub breaker_cooldown: Duration,
    /// Minimum time between two requests to one chat webhook (Slack: about 1/s).
    pub chat_interval: Duration,
    /// Minimum time between two Statuspage API requests (documented 1/s).
    pub statuspage_interval: Duration,
    pub webhook_interval: Duration,
    pub email_interval: Duration,
    /// One request (or SMTP transaction) may take this long.
    pub request_timeout: Duration,
    /// Longest `Retry-After` honoured (a longer one is capped).
    pub max_retry_after: Duration,
    /// Undelivered notifications held in memory; past it the hub stops
    /// taking events (the feed catches up from the log later).
    pub max_pending: usize,
    /// Messages kept in memory per lane (its first ones, the head's
    /// included); a delivery further back keeps only its target and gets
    /// its message derived again from the event log when it reaches the head.
    pub payload_window: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 10,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            jitter: 0.5,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            chat_interval: Duration::from_secs(1),
            statuspage_interval: Duration::from_secs(1),
            webhook_interval: Duration::ZERO,
            email_interval: Duration::ZERO,
            request_timeout: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(3600),
            max_pending: 100_000,
            payload_window: 256,
        }
    }
}

impl Settings {
    /// Minimum spacing of requests to one destination of this kind.
    pub fn interval(&self, kind: DestKind) -> Duration {
        match kind {
            DestKind::Slack | DestKind::Mattermost | DestKind::Teams => self.chat_interval,
            DestKind::Statuspage => self.statuspage_interval,
            DestKind::Webhook => self.webhook_interval,
            DestKind::Email => self.email_interval,
        }
    }

    /// Delay before attempt `attempts + 1`, after `attempts` failures
    /// (`attempts >= 1`): `base * 2^(attempts-1)`, capped, minus up to
    /// `jitter` of it at random.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self
            .backoff_base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return full;
        }
        full.mul_f64(1.0 - jitter * fastrand::f64())
    }
}

/// The environment variables that override [`Settings`] (operators: a
/// faster or longer retry schedule; tests: a schedule that runs in seconds).
/// Durations in the config's syntax (`"250ms"`, `"2s"`, `"5m"`).
pub const ENV_KNOBS: [&str; 7] = [
    "INCIDENTD_NOTIFY_MAX_ATTEMPTS",
    "INCIDENTD_NOTIFY_BACKOFF_BASE",
    "INCIDENTD_NOTIFY_BACKOFF_MAX",
    "INCIDENTD_NOTIFY_BREAKER_FAILURES",
    "INCIDENTD_NOTIFY_BREAKER_COOLDOWN",
    "INCIDENTD_NOTIFY_REQUEST_TIMEOUT",
    "INCIDENTD_NOTIFY_CHAT_INTERVAL",
];

impl Settings {
    /// These settings with the `INCIDENTD_NOTIFY_*` variables of `var`
    /// applied (see [`ENV_KNOBS`]); the error names the offending variable.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let dur = |name: &str| -> Result<Option<Duration>, String> {
            var(name)
                .map(|v| incidentd_config::parse_duration(v.trim()).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let count = |name: &str| -> Result<Option<u32>, String> {
            var(name)
                .map(|v| match v.trim().parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(format!("{name}: {v:?} is not a whole number of at least 1")),
                })
                .transpose()
        };
        let [attempts, base, max, failures, cooldown, timeout, chat] = ENV_KNOBS;
        if let Some(n) = count(attempts)? {
            self.max_attempts = n;
        }
        if let Some(d) = dur(base)? {
            self.backoff_base = d;
        }
        if let Some(d) = dur(max)? {
            self.backoff_max = d;
        }
        if let Some(n) = count(failures)? {
            self.breaker_failures = n;
        }
        if let Some(d) = dur(cooldown)? {
            self.breaker_cooldown = d;
        }
        if let Some(d) = dur(timeout)? {
            self.request_timeout = d;
        }
        if let Some(d) = dur(chat)? {
            self.chat_interval = d;
        }
        if self.backoff_base > self.backoff_max {
            return Err(format!(
                "{base}: longer than {max} ({:?} > {:?})",
                self.backoff_base, self.backoff_max
            ));
        }
        Ok(self)
    }
}

/// Circuit breaker of one destination: closed until `threshold`
/// consecutive failures, then open for `cooldown`, then half-open (one
/// trial request: success closes it, failure opens it again).
#[derive(Debug, Clone)]
pub struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl Breaker {
    pub fn new() -> Breaker {
        Breaker {
            failures: 0,
            open_until: None,
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(t) if now < t => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// When a request may go (`None`: now).
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    pub fn on_failure(&mut self, now: Instant, s: &Settings) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= s.breaker_failures.max(1) {
            self.open_until = Some(now + s.breaker_cooldown);
        }
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            jitter: 0.0,
            ..Settings::default()
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = settings();
        let got: Vec<u64> = (1..=11).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let s = Settings {
            jitter: 0.5,
            ..Settings::default()
        };
        for _ in 0..1000 {
            let d = s.backoff(4);
            assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(8), "{d:?}");
        }
    }

    #[test]
    fn env_knobs_override_and_name_the_bad_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let s = Settings::default()
            .with_env(env(&[
                ("INCIDENTD_NOTIFY_MAX_ATTEMPTS", "1000"),
                ("INCIDENTD_NOTIFY_BACKOFF_BASE", "20ms"),
                ("INCIDENTD_NOTIFY_BACKOFF_MAX", "200ms"),
                ("INCIDENTD_NOTIFY_BREAKER_COOLDOWN", "100ms"),
            ]))
            .expect("valid");
        assert_eq!(s.max_attempts, 1000);
        assert_eq!(s.backoff_base, Duration::from_millis(20));
        assert_eq!(s.backoff_max, Duration::from_millis(200));
        assert_eq!(s.breaker_cooldown, Duration::from_millis(100));
        assert_eq!(s.request_timeout, Settings::default().request_timeout);
        let e = Settings::default()
            .with_env(env(&[("INCIDENTD_NOTIFY_BACKOFF_BASE", "20")]))
            .unwrap_err();
        assert!(e.starts_with("INCIDENTD_NOTIFY_BACKOFF_BASE:"), "{e}");
        let e = Settings::default()
            .with_env(env(&[("INCIDENTD_NOTIFY_MAX_ATTEMPTS", "0")]))
            .unwrap_err();
        assert!(e.starts_with("INCIDENTD_NOTIFY_MAX_ATTEMPTS:"), "{e}");
        let e = Settings::default()
            .with_env(env(&[("INCIDENTD_NOTIFY_BACKOFF_BASE", "10m")]))
            .unwrap_err();
        assert!(e.contains("INCIDENTD_NOTIFY_BACKOFF_MAX"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() {
        let s = settings();
        let mut b = Breaker::new();
        for _ in 0..4 {
            b.on_failure(Instant::now(), &s);
        }
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        b.on_failure(Instant::now(), &s);
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        b.on_failure(Instant::now(), &s);
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        b.on_success();
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    }
}
