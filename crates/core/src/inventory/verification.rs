//! Continuous verification settings: behaviour baselines, risk signals and
//! their weights, and the triggers that quarantine an agent.
//!
//! ```yaml
//! settings:
//!   risk:
//!     baseline_window_days: 14
//!     learning_requests: 50
//!     half_life_seconds: 900
//!     weights: { new_tool: 10, injection: 30 }
//!   quarantine:
//!     on_exfiltration: true
//!     denials: { count: 5, within_seconds: 300 }
//!     webhook: { url: "https://soc.example/hooks/zt4ai", secret_env: ZT4AI_WEBHOOK_SECRET }
//! ```

use std::time::Duration;

use serde::Deserialize;

/// The signals continuous verification computes, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Far more requests in the current minute than the baseline's busiest usual minutes.
    RateBurst,
    /// Far more tool output read in the current minute than usual.
    VolumeSpike,
    /// A tool this agent (or user) has not used within the baseline window.
    NewTool,
    /// A destination this agent (or user) has not contacted within the window.
    NewDestination,
    /// Activity at an hour of the day the baseline has (almost) never seen.
    UnusualHour,
    /// An outbound send from a session that holds confidential data.
    ConfidentialThenSend,
    /// Several denials in a short time: probing.
    RepeatedDenials,
    /// A prompt injection in the request or in a tool's output.
    Injection,
    /// Sensitive data (cards, keys, personal data) in what a send carries.
    SensitiveEgress,
    /// The risk the identity provider (or the caller) reports for the user.
    UserRisk,
}

impl Signal {
    /// Every signal, in order.
    pub const ALL: [Signal; 10] = [
        Signal::RateBurst,
        Signal::VolumeSpike,
        Signal::NewTool,
        Signal::NewDestination,
        Signal::UnusualHour,
        Signal::ConfidentialThenSend,
        Signal::RepeatedDenials,
        Signal::Injection,
        Signal::SensitiveEgress,
        Signal::UserRisk,
    ];

    /// The signal's name, as configuration, verdicts and audit records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::RateBurst => "rate_burst",
            Signal::VolumeSpike => "volume_spike",
            Signal::NewTool => "new_tool",
            Signal::NewDestination => "new_destination",
            Signal::UnusualHour => "unusual_hour",
            Signal::ConfidentialThenSend => "confidential_then_send",
            Signal::RepeatedDenials => "repeated_denials",
            Signal::Injection => "injection",
            Signal::SensitiveEgress => "sensitive_egress",
            Signal::UserRisk => "user_risk",
        }
    }

    /// Its index in [`Signal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The default weight: how many risk points one occurrence adds. For
    /// [`Signal::UserRisk`] it is the percentage of the reported score that counts.
    pub fn default_weight(self) -> u8 {
        match self {
            Signal::RateBurst => 20,
            Signal::VolumeSpike => 20,
            Signal::NewTool => 10,
            Signal::NewDestination => 15,
            Signal::UnusualHour => 5,
            Signal::ConfidentialThenSend => 15,
            Signal::RepeatedDenials => 15,
            Signal::Injection => 30,
            Signal::SensitiveEgress => 25,
            Signal::UserRisk => 100,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `settings.risk`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRisk {
    /// How far back a baseline remembers (tools, destinations, rates). Default 14.
    #[serde(default)]
    pub baseline_window_days: Option<u64>,
    /// Requests an agent or user makes before its baseline judges novelty,
    /// bursts and hours. Default 50.
    #[serde(default)]
    pub learning_requests: Option<u64>,
    /// Half-life of a signal's contribution to the risk score. Default 900.
    #[serde(default)]
    pub half_life_seconds: Option<u64>,
    /// Denials within `denials_window_seconds` from which `repeated_denials` fires. Default 3.
    #[serde(default)]
    pub denials_threshold: Option<u32>,
    /// The window for `repeated_denials`. Default 300.
    #[serde(default)]
    pub denials_window_seconds: Option<u64>,
    /// Weights by signal name (0–100); signals not named keep their defaults.
    #[serde(default)]
    pub weights: std::collections::BTreeMap<String, u8>,
}

/// `settings.quarantine`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Quarantine an agent whose send of confidential data is refused. Default true.
    #[serde(default)]
    pub on_exfiltration: Option<bool>,
    /// Quarantine after this many denials in this many seconds (default 10 in
    /// 300); `false` turns the trigger off.
    #[serde(default)]
    pub denials: Option<RawDenialsTrigger>,
    /// Quarantine when an agent's risk reaches this score.
    #[serde(default)]
    pub at_risk: Option<u8>,
    /// Where quarantines are announced.
    #[serde(default)]
    pub webhook: Option<RawWebhook>,
}

/// `settings.quarantine.denials`: the trigger, or `false`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDenialsTrigger {
    /// `false` (off) or `true` (the default trigger).
    Switch(bool),
    /// A count within a window.
    Trigger(RawDenials),
}

/// `settings.quarantine.denials` as a trigger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDenials {
    /// How many denials.
    pub count: u32,
    /// Within how many seconds.
    pub within_seconds: u64,
}

/// `settings.quarantine.webhook`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// The URL the JSON notice is POSTed to.
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    #[serde(default)]
    pub secret_file: Option<String>,
    /// Attempts before giving up (default 5).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Timeout of one attempt, in milliseconds (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Risk settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskSettings {
    /// How far back a baseline remembers.
    pub baseline_window: Duration,
    /// Requests before a baseline judges.
    pub learning_requests: u64,
    /// Half-life of a contribution.
    pub half_life: Duration,
    /// Denials from which `repeated_denials` fires.
    pub denials_threshold: u32,
    /// Window for `repeated_denials`.
    pub denials_window: Duration,
    /// Weight of each signal, indexed by [`Signal::index`].
    pub weights: [u8; 10],
}

impl RiskSettings {
    /// The weight of `signal`.
    pub fn weight(&self, signal: Signal) -> u8 {
        self.weights[signal.index()]
    }
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            baseline_window: Duration::from_secs(14 * 86_400),
            learning_requests: 50,
            half_life: Duration::from_secs(900),
            denials_threshold: 3,
            denials_window: Duration::from_secs(300),
            weights: Signal::ALL.map(Signal::default_weight),
        }
    }
}

/// Quarantine triggers, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineSettings {
    /// Quarantine on a refused send of confidential data.
    pub on_exfiltration: bool,
    /// (count, window): quarantine after `count` denials within `window`.
    pub denials: Option<(u32, Duration)>,
    /// Quarantine when the agent's risk reaches this.
    pub at_risk: Option<u8>,
    /// Where quarantines are announced.
    pub webhook: Option<Webhook>,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings {
            on_exfiltration: true,
            denials: Some((10, Duration::from_secs(300))),
            at_risk: None,
            webhook: None,
        }
    }
}

/// Where the signing secret of a webhook is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (trailing newline ignored).
    File(String),
}

impl SecretSource {
    /// Reads the secret; an error names the variable or file and says what
    /// is wrong (unset, unreadable, empty), never the secret.
    pub fn read(&self) -> Result<String, String> {
        let (text, named) = match self {
            SecretSource::Env(var) => {
                let named = format!("environment variable `{var}`");
                match std::env::var(var) {
                    Ok(v) => (v, named),
                    Err(std::env::VarError::NotPresent) => {
                        return Err(format!("{named} is not set"));
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(format!("{named} is not valid UTF-8"));
                    }
                }
            }
            SecretSource::File(path) => {
                let named = format!("file `{path}`");
                match std::fs::read_to_string(path) {
                    Ok(v) => (v, named),
                    Err(e) => return Err(format!("cannot read {named}: {e}")),
                }
            }
        };
        let secret = text.trim_end();
        if secret.is_empty() {
            return Err(format!("{named} is empty"));
        }
        Ok(secret.to_owned())
    }
}

/// A quarantine webhook, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The URL.
    pub url: String,
    /// The signing secret's source.
    pub secret: SecretSource,
    /// Attempts before giving up.
    pub attempts: u32,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

/// Resolves `settings.risk`; `error(field, message)` reports a problem.
pub(crate) fn risk(raw: Option<RawRisk>, error: &mut dyn FnMut(String, String)) -> RiskSettings {
    let mut s = RiskSettings::default();
    let Some(raw) = raw else {
        return s;
    };
    let positive = |v: Option<u64>, field: &str, error: &mut dyn FnMut(String, String)| match v {
        Some(0) => {
            error(format!("settings.risk.{field}"), "must be above 0".into());
            None
        }
        other => other,
    };
    if let Some(d) = positive(raw.baseline_window_days, "baseline_window_days", error) {
        s.baseline_window = Duration::from_secs(d.saturating_mul(86_400));
    }
    if let Some(n) = raw.learning_requests {
        s.learning_requests = n;
    }
    if let Some(h) = positive(raw.half_life_seconds, "half_life_seconds", error) {
        s.half_life = Duration::from_secs(h);
    }
    if let Some(n) = raw.denials_threshold {
        if n == 0 {
            error(
                "settings.risk.denials_threshold".into(),
                "must be above 0".into(),
            );
        } else {
            s.denials_threshold = n;
        }
    }
    if let Some(w) = positive(raw.denials_window_seconds, "denials_window_seconds", error) {
        s.denials_window = Duration::from_secs(w);
    }
    for (name, weight) in raw.weights {
        let field = format!("settings.risk.weights.{name}");
        match Signal::ALL.iter().find(|s| s.as_str() == name) {
            None => error(
                field,
                format!(
                    "unknown signal `{name}`; the signals are {}",
                    Signal::ALL.map(Signal::as_str).join(", ")
                ),
            ),
            Some(_) if weight > 100 => error(field, format!("`{weight}` is above 100")),
            Some(sig) => s.weights[sig.index()] = weight,
        }
    }
    s
}

/// Resolves `settings.quarantine`.
pub(crate) fn quarantine(
    raw: Option<RawQuarantine>,
    error: &mut dyn FnMut(String, String),
) -> QuarantineSettings {
    let mut q = QuarantineSettings::default();
    let Some(raw) = raw else {
        return q;
    };
    if let Some(b) = raw.on_exfiltration {
        q.on_exfiltration = b;
    }
    q.denials = match raw.denials {
        None | Some(RawDenialsTrigger::Switch(true)) => q.denials,
        Some(RawDenialsTrigger::Switch(false)) => None,
        Some(RawDenialsTrigger::Trigger(d)) if d.count == 0 || d.within_seconds == 0 => {
            error(
                "settings.quarantine.denials".into(),
                "`count` and `within_seconds` must be above 0".into(),
            );
            None
        }
        Some(RawDenialsTrigger::Trigger(d)) => {
            Some((d.count, Duration::from_secs(d.within_seconds)))
        }
    };
    if let Some(r) = raw.at_risk {
        if r == 0 || r > 100 {
            error(
                "settings.quarantine.at_risk".into(),
                format!("`{r}` must be from 1 to 100"),
            );
        } else {
            q.at_risk = Some(r);
        }
    }
    if let Some(w) = raw.webhook {
        let ok_url = url::Url::parse(&w.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if ok_url.is_none() {
            error(
                "settings.quarantine.webhook.url".into(),
                format!("`{}` is not an http(s) URL", w.url),
            );
        }
        let secret = match (w.secret_env, w.secret_file) {
            (Some(e), None) if !e.is_empty() => Some(SecretSource::Env(e)),
            (None, Some(f)) if !f.is_empty() => Some(SecretSource::File(f)),
            _ => {
                error(
                    "settings.quarantine.webhook".into(),
                    "name exactly one of `secret_env` and `secret_file`: the notice is signed, and the secret is never written inline".into(),
                );
                None
            }
        };
        let attempts = w.attempts.unwrap_or(5);
        if attempts == 0 {
            error(
                "settings.quarantine.webhook.attempts".into(),
                "must be above 0".into(),
            );
        }
        if let (Some(_), Some(secret)) = (ok_url, secret) {
            q.webhook = Some(Webhook {
                url: w.url,
                secret,
                attempts: attempts.max(1),
                timeout: Duration::from_millis(w.timeout_ms.unwrap_or(5000).max(1)),
            });
        }
    }
    q
}
