//! Continuous verification: behaviour baselines, risk signals and risk scores.
//!
//! The [`Monitor`] keeps, for every agent and every user, a baseline learned
//! from its own traffic: how many requests it makes in an active minute, how
//! much tool output it reads, which tools it calls and which destinations it
//! reaches, and at which hours of the day (UTC) it works. Each request is judged
//! against the baselines of its agent and its user before it is decided
//! ([`Monitor::assess`]); what the decision was, and what the tool answered, are
//! fed back afterwards ([`Monitor::outcome`], [`Monitor::output`]).
//!
//! A signal that fires adds its weight (configuration: `settings.risk.weights`)
//! to the risk of the session and of the agent. Risk decays exponentially with
//! `half_life_seconds`, so a burst of suspicion fades while repeated suspicion
//! adds up. The score a decision sees is the higher of the session's and the
//! agent's, plus the risk reported for the user (the IdP's account risk) — the
//! `risk_level` the baseline guards read — and every verdict lists the signals
//! that make it up.
//!
//! Baselines learn only from what is not itself anomalous: a burst minute is
//! not folded into the rate, so an attacker cannot teach the baseline the
//! attack by repeating it. Until an agent or user has made `learning_requests`
//! requests its baseline only learns (no novelty, burst or hour signals).
//!
//! State is in memory, sharded, and flushed to the store's `behaviour` table by
//! [`Monitor::flush`] (the server does so every few seconds and on shutdown);
//! [`Monitor::load`] reads it back, so baselines survive a restart. A crash
//! loses at most the learning since the last flush, never a decision: the
//! decisions themselves are in the audit log.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

use parking_lot::Mutex;
use rusqlite::params;
use serde::{Deserialize, Serialize};
use zt4ai_core::inventory::verification::{QuarantineSettings, RiskSettings, Signal};
use zt4ai_core::{Label, RiskReport, SignalWeight};

use crate::{SessionStore, StoreError};

const SHARDS: usize = 16;
const KINDS: usize = Signal::ALL.len();
/// Denials remembered per agent (for probing and the quarantine trigger).
const MAX_DENIALS: usize = 256;
/// Hour-of-day counts are halved past this total, so old habits fade.
const MAX_HOURS: u32 = 10_000;
/// Active minutes after which the rate and volume statistics move as an
/// exponential average instead of a plain mean.
const STAT_HORIZON: u32 = 1_000;
/// Active minutes a rate or volume baseline needs before it judges bursts.
const STAT_MIN: u32 = 5;

/// One request, as continuous verification sees it before the decision.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The session.
    pub session: &'a str,
    /// The user the request is for.
    pub user: &'a str,
    /// The agent acting (the last of the chain), if any.
    pub agent: Option<&'a str>,
    /// The tool called, if any.
    pub tool: Option<&'a str>,
    /// Destinations the request reaches (sends and fetches).
    pub destinations: &'a [&'a str],
    /// Whether something is sent (not only fetched) to a destination outside
    /// the organisation.
    pub sends_out: bool,
    /// The session's confidentiality before the request.
    pub label: Label,
    /// Whether the request itself carries a prompt injection.
    pub injection: bool,
    /// Whether what it sends carries sensitive data.
    pub sensitive_egress: bool,
    /// The risk reported for the user (IdP or caller), 0–100.
    pub user_risk: Option<u8>,
}

/// What the decision was, for the feedback step.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The session.
    pub session: &'a str,
    /// The agent acting, if any.
    pub agent: Option<&'a str>,
    /// Whether the request was denied.
    pub denied: bool,
    /// Whether it was a refused send of confidential data.
    pub exfiltration: bool,
}

/// Why an agent must be quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The agent.
    pub agent: String,
    /// The trigger (`exfiltration`, `denials`, `risk`).
    pub kind: &'static str,
    /// What happened, for humans.
    pub detail: String,
}

/// Whose baseline a signal is about, formatted only when one fires.
#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Agent(&'a str),
    User(&'a str),
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Agent(a) => write!(f, "agent `{a}`"),
            Who::User(u) => write!(f, "user `{u}`"),
        }
    }
}

/// Exponentially weighted mean and variance of a per-minute quantity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stat {
    n: u32,
    mean: f64,
    var: f64,
}

impl Stat {
    fn add(&mut self, x: f64) {
        self.n = self.n.saturating_add(1);
        let alpha = 1.0 / f64::from(self.n.min(STAT_HORIZON));
        let d = x - self.mean;
        self.mean += alpha * d;
        self.var = (1.0 - alpha) * (self.var + alpha * d * d);
    }

    /// The value above which a minute is anomalous: well outside the usual
    /// spread, at least `factor` times the mean, and above `floor` in any case.
    fn threshold(&self, factor: f64, floor: f64) -> Option<f64> {
        (self.n >= STAT_MIN)
            .then(|| (self.mean + 4.0 * self.var.sqrt()).max(factor * self.mean) + floor)
    }
}

/// The behaviour baseline of one agent or user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Baseline {
    first_seen: i64,
    requests: u64,
    /// The current minute (Unix minutes) and what happened in it so far.
    minute: i64,
    count: u32,
    bytes: u64,
    /// Signals already fired this minute (bit per signal).
    fired: u16,
    rate: Stat,
    volume: Stat,
    tools: HashMap<Box<str>, i64>,
    destinations: HashMap<Box<str>, i64>,
    hours: [u32; 24],
    /// The hour (Unix hours) in which `unusual_hour` last fired.
    hour_fired: i64,
}

impl Baseline {
    fn mature(&self, s: &RiskSettings) -> bool {
        self.requests >= s.learning_requests
    }

    /// Moves to the minute of `now`, folding the finished one into the
    /// statistics unless it was itself anomalous.
    fn roll(&mut self, now: i64) {
        let minute = now.div_euclid(60);
        if minute == self.minute {
            return;
        }
        if self.count > 0 && self.fired & bit(Signal::RateBurst) == 0 {
            self.rate.add(f64::from(self.count));
        }
        if self.bytes > 0 && self.fired & bit(Signal::VolumeSpike) == 0 {
            #[expect(clippy::cast_precision_loss, reason = "a byte count as a statistic")]
            self.volume.add(self.bytes as f64);
        }
        self.minute = minute;
        self.count = 0;
        self.bytes = 0;
        self.fired = 0;
    }

    /// Judges one request against the baseline, then learns it.
    fn observe(
        &mut self,
        who: Who<'_>,
        tool: Option<&str>,
        destinations: &[&str],
        s: &RiskSettings,
        now: i64,
        fire: &mut Vec<(Signal, String)>,
    ) {
        if self.requests == 0 {
            self.first_seen = now;
        }
        self.roll(now);
        let mature = self.mature(s);
        self.count = self.count.saturating_add(1);
        if mature
            && self.fired & bit(Signal::RateBurst) == 0
            && let Some(t) = self.rate.threshold(2.0, 5.0)
            && f64::from(self.count) > t
        {
            self.fired |= bit(Signal::RateBurst);
            fire.push((
                Signal::RateBurst,
                format!(
                    "{who}: {} requests this minute; usually {:.1}",
                    self.count, self.rate.mean
                ),
            ));
        }
        if let Some(t) = tool {
            let known = seen(&mut self.tools, t, now);
            if mature && !known {
                fire.push((Signal::NewTool, format!("{who}: first call of tool `{t}`")));
            }
        }
        for d in destinations {
            let known = seen(&mut self.destinations, d, now);
            if mature && !known {
                fire.push((
                    Signal::NewDestination,
                    format!("{who}: first contact with destination `{d}`"),
                ));
            }
        }
        let hour_index = now.div_euclid(3600);
        let hour = usize::try_from(hour_index.rem_euclid(24)).unwrap_or(0);
        let total: u32 = self.hours.iter().sum();
        if mature
            && self.hour_fired != hour_index
            && u64::from(self.hours[hour]) * 100 < u64::from(total)
        {
            self.hour_fired = hour_index;
            fire.push((
                Signal::UnusualHour,
                format!("{who}: active at {hour:02}:00 UTC, an hour it is rarely active"),
            ));
        }
        self.hours[hour] = self.hours[hour].saturating_add(1);
        if total + 1 > MAX_HOURS {
            for h in &mut self.hours {
                *h /= 2;
            }
        }
        self.requests = self.requests.saturating_add(1);
    }

    /// Adds tool output read; returns the volume-spike detail if it fires.
    fn read(&mut self, who: Who<'_>, bytes: u64, s: &RiskSettings, now: i64) -> Option<String> {
        self.roll(now);
        self.bytes = self.bytes.saturating_add(bytes);
        #[expect(clippy::cast_precision_loss, reason = "a byte count as a statistic")]
        let read = self.bytes as f64;
        if self.mature(s)
            && self.fired & bit(Signal::VolumeSpike) == 0
            && let Some(t) = self.volume.threshold(3.0, 4096.0)
            && read > t
        {
            self.fired |= bit(Signal::VolumeSpike);
            return Some(format!(
                "{who}: read {} bytes of tool output this minute; usually {:.0}",
                self.bytes, self.volume.mean
            ));
        }
        None
    }

    /// Forgets tools and destinations not seen within the window.
    fn prune(&mut self, cutoff: i64) {
        self.tools.retain(|_, seen| *seen >= cutoff);
        self.destinations.retain(|_, seen| *seen >= cutoff);
    }
}

/// Marks `key` seen at `now`; whether it was known (no allocation if so).
fn seen(map: &mut HashMap<Box<str>, i64>, key: &str, now: i64) -> bool {
    if let Some(at) = map.get_mut(key) {
        *at = now;
        return true;
    }
    map.insert(key.into(), now);
    false
}

fn bit(s: Signal) -> u16 {
    1 << s.index()
}

/// Decaying risk: what each signal has contributed, as of `at`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Risk {
    acc: [f32; KINDS],
    at: i64,
    /// The last detail of each signal.
    detail: [Option<Box<str>>; KINDS],
}

impl Risk {
    fn decay(&mut self, now: i64, s: &RiskSettings) {
        if now <= self.at {
            return;
        }
        #[expect(clippy::cast_precision_loss, reason = "seconds as a ratio")]
        let halves = (now - self.at) as f64 / s.half_life.as_secs_f64().max(1.0);
        #[expect(clippy::cast_possible_truncation, reason = "a factor in 0..=1")]
        let factor = (-halves).exp2() as f32;
        for a in &mut self.acc {
            *a *= factor;
            if *a < 0.01 {
                *a = 0.0;
            }
        }
        self.at = now;
    }

    /// Decays to `now`, then adds each fired signal's weight.
    fn fire(&mut self, fire: &[(Signal, String)], s: &RiskSettings, now: i64) {
        self.decay(now, s);
        for (k, d) in fire {
            self.acc[k.index()] += f32::from(s.weight(*k));
            self.detail[k.index()] = Some(d.as_str().into());
        }
    }

    fn total(&self) -> f32 {
        self.acc.iter().sum()
    }

    /// The signals that contribute, in signal order (no allocation when none do).
    fn signals(&self) -> Vec<SignalWeight> {
        Signal::ALL
            .iter()
            .filter(|k| self.acc[k.index()] >= 0.05)
            .map(|k| SignalWeight {
                signal: k.as_str().to_owned(),
                weight: round1(self.acc[k.index()]),
                detail: self.detail[k.index()].as_deref().unwrap_or("").to_owned(),
            })
            .collect()
    }

    fn is_idle(&self) -> bool {
        self.total() < 0.5
    }
}

/// An agent or user: its baseline, and (for agents) its risk and recent denials.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tracked {
    baseline: Baseline,
    risk: Risk,
    denials: VecDeque<i64>,
    #[serde(skip)]
    dirty: bool,
}

/// A session's risk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionRisk {
    risk: Risk,
    /// Signals that fire at most once per session (bit per signal).
    #[serde(default)]
    once: u16,
    #[serde(skip)]
    dirty: bool,
    /// Whether the store holds a row for it.
    #[serde(skip)]
    stored: bool,
}

struct Sharded<V> {
    shards: Vec<Mutex<HashMap<Box<str>, V>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<V: Default> Sharded<V> {
    fn new() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<Box<str>, V>> {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        let i = usize::try_from(std::hash::Hasher::finish(&h) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    fn with<R>(&self, key: &str, f: impl FnOnce(&mut V) -> R) -> R {
        let mut shard = self.shard(key).lock();
        if let Some(v) = shard.get_mut(key) {
            return f(v);
        }
        f(shard.entry(key.into()).or_default())
    }

    /// `f` on the entry of `key` if there is one; nothing is created.
    fn peek<R>(&self, key: &str, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.shard(key).lock().get_mut(key).map(f)
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// Continuous verification state for a whole deployment.
pub struct Monitor {
    settings: RiskSettings,
    quarantine: QuarantineSettings,
    agents: Sharded<Tracked>,
    users: Sharded<Tracked>,
    sessions: Sharded<SessionRisk>,
    /// Agents quarantined here → whether the registry holds the quarantine.
    quarantined: Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("agents", &self.agents.len())
            .field("users", &self.users.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The risk a request is decided with.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The score (0–100) the policies see.
    pub score: u8,
    /// The report for the verdict.
    pub report: RiskReport,
    /// The signals this request fired (for metrics).
    pub fired: Vec<Signal>,
}

/// What feeding back a verdict did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// The agent must now be quarantined.
    pub trigger: Option<Trigger>,
    /// The signals it fired (`repeated_denials`).
    pub fired: Vec<Signal>,
}

impl Monitor {
    /// An empty monitor.
    pub fn new(settings: RiskSettings, quarantine: QuarantineSettings) -> Self {
        Monitor {
            settings,
            quarantine,
            agents: Sharded::new(),
            users: Sharded::new(),
            sessions: Sharded::new(),
            quarantined: Mutex::new(HashMap::new()),
        }
    }

    /// A monitor with the state flushed to `store` before.
    pub fn load(
        settings: RiskSettings,
        quarantine: QuarantineSettings,
        store: &SessionStore,
    ) -> Result<Self, StoreError> {
        let m = Monitor::new(settings, quarantine);
        let db = store.db();
        let mut stmt = db.prepare("SELECT subject, state FROM behaviour")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (subject, state) = row?;
            let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                what: "behaviour state",
                session: subject.clone(),
                value: e.to_string(),
            };
            if let Some(id) = subject.strip_prefix("agent:") {
                let t: Tracked = serde_json::from_str(&state).map_err(corrupt)?;
                m.agents.with(id, |v| *v = t);
            } else if let Some(id) = subject.strip_prefix("user:") {
                let t: Tracked = serde_json::from_str(&state).map_err(corrupt)?;
                m.users.with(id, |v| *v = t);
            } else if let Some(id) = subject.strip_prefix("session:") {
                let mut s: SessionRisk = serde_json::from_str(&state).map_err(corrupt)?;
                s.stored = true;
                m.sessions.with(id, |v| *v = s);
            }
        }
        Ok(m)
    }

    /// The risk settings.
    pub fn settings(&self) -> &RiskSettings {
        &self.settings
    }

    /// Judges a request before it is decided: fires its signals, adds them to
    /// the session's and agent's risk, and returns the score to decide with.
    pub fn assess(&self, o: &Observation<'_>, now: i64) -> Assessment {
        let s = &self.settings;
        let mut fire: Vec<(Signal, String)> = Vec::new();
        if let Some(agent) = o.agent {
            self.agents.with(agent, |t| {
                t.baseline
                    .observe(Who::Agent(agent), o.tool, o.destinations, s, now, &mut fire);
                t.dirty = true;
            });
        }
        let before = fire.len();
        self.users.with(o.user, |t| {
            t.baseline
                .observe(Who::User(o.user), o.tool, o.destinations, s, now, &mut fire);
            t.dirty = true;
        });
        // The same novelty seen by both baselines counts once: the agent's.
        if o.agent.is_some() {
            let agent_kinds: Vec<Signal> = fire[..before].iter().map(|(k, _)| *k).collect();
            let mut i = before;
            while i < fire.len() {
                if agent_kinds.contains(&fire[i].0) {
                    fire.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        // The pattern is the session's: it counts once, however many sends
        // follow (refused ones count as denials).
        if o.sends_out
            && o.label >= Label::Confidential
            && !self
                .sessions
                .peek(o.session, |r| {
                    r.once & bit(Signal::ConfidentialThenSend) != 0
                })
                .unwrap_or(false)
        {
            fire.push((
                Signal::ConfidentialThenSend,
                format!(
                    "a send out of the organisation from a session holding {} data{}",
                    o.label,
                    if o.destinations.is_empty() {
                        String::new()
                    } else {
                        format!(" (to {})", o.destinations.join(", "))
                    }
                ),
            ));
        }
        if o.injection {
            fire.push((
                Signal::Injection,
                "the request carries a prompt injection".into(),
            ));
        }
        if o.sensitive_egress {
            fire.push((
                Signal::SensitiveEgress,
                "what the request sends carries sensitive data".into(),
            ));
        }
        self.apply(o.session, o.agent, &fire, now);
        let mut a = self.score(o.session, o.agent, o.user_risk, now);
        a.fired = fire.iter().map(|(k, _)| *k).collect();
        a
    }

    /// Adds fired signals to the session's and the agent's risk.
    fn apply(&self, session: &str, agent: Option<&str>, fire: &[(Signal, String)], now: i64) {
        let s = &self.settings;
        if fire.is_empty() {
            return;
        }
        self.sessions.with(session, |r| {
            r.risk.fire(fire, s, now);
            if fire.iter().any(|(k, _)| *k == Signal::ConfidentialThenSend) {
                r.once |= bit(Signal::ConfidentialThenSend);
            }
            r.dirty = true;
        });
        if let Some(agent) = agent {
            self.agents.with(agent, |t| {
                t.risk.fire(fire, s, now);
                t.dirty = true;
            });
        }
    }

    /// The score of a session and agent now, with the user's reported risk.
    pub fn score(
        &self,
        session: &str,
        agent: Option<&str>,
        user_risk: Option<u8>,
        now: i64,
    ) -> Assessment {
        let s = &self.settings;
        // A session without risk has no entry: it is not created here.
        let (st, session_signals) = self
            .sessions
            .peek(session, |r| {
                r.risk.decay(now, s);
                (r.risk.total(), r.risk.signals())
            })
            .unwrap_or_default();
        let (at, agent_signals) = agent.map_or((0.0, Vec::new()), |a| {
            self.agents.with(a, |t| {
                t.risk.decay(now, s);
                (t.risk.total(), t.risk.signals())
            })
        });
        let mut signals = if at > st {
            agent_signals
        } else {
            session_signals
        };
        let mut total = st.max(at);
        if let Some(r) = user_risk.filter(|r| *r > 0) {
            let w = f32::from(r.min(100)) * f32::from(s.weight(Signal::UserRisk)) / 100.0;
            if w > 0.0 {
                total += w;
                signals.push(SignalWeight {
                    signal: Signal::UserRisk.as_str().to_owned(),
                    weight: round1(w),
                    detail: format!("the risk reported for the user is {r}"),
                });
            }
        }
        signals.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        let score = clamp(total);
        Assessment {
            score,
            report: RiskReport {
                score,
                session: clamp(st),
                agent: clamp(at),
                signals,
            },
            fired: Vec::new(),
        }
    }

    /// Feeds back a decision: denials count towards probing; says whether
    /// the agent must now be quarantined.
    pub fn outcome(&self, o: &Outcome<'_>, now: i64) -> Feedback {
        let Some(agent) = o.agent else {
            return Feedback::default();
        };
        let s = &self.settings;
        let q = &self.quarantine;
        let mut fire = Vec::new();
        let recent = self.agents.with(agent, |t| {
            if o.denied {
                t.denials.push_back(now);
                if t.denials.len() > MAX_DENIALS {
                    t.denials.pop_front();
                }
                t.dirty = true;
            }
            let window = i64::try_from(s.denials_window.as_secs()).unwrap_or(i64::MAX);
            let in_window = t.denials.iter().filter(|d| now - **d < window).count();
            if o.denied && in_window >= s.denials_threshold as usize {
                fire.push((
                    Signal::RepeatedDenials,
                    format!(
                        "agent `{agent}`: {in_window} denials in the last {} s",
                        s.denials_window.as_secs()
                    ),
                ));
            }
            q.denials.map(|(_, within)| {
                let w = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
                t.denials.iter().filter(|d| now - **d < w).count()
            })
        });
        if !fire.is_empty() {
            self.apply(o.session, Some(agent), &fire, now);
        }
        let fired = fire.iter().map(|(k, _)| *k).collect();
        if self.quarantined.lock().contains_key(agent) {
            return Feedback {
                trigger: None,
                fired,
            };
        }
        let trigger = if o.exfiltration && q.on_exfiltration {
            Some((
                "exfiltration",
                "a send of confidential data out of its clearance was refused".to_owned(),
            ))
        } else if let (Some((count, within)), Some(n)) = (q.denials, recent)
            && o.denied
            && n >= count as usize
        {
            Some((
                "denials",
                format!("{n} denials within {} s", within.as_secs()),
            ))
        } else if let Some(at) = q.at_risk {
            let score = self.agents.with(agent, |t| {
                t.risk.decay(now, s);
                clamp(t.risk.total())
            });
            (score >= at).then(|| {
                (
                    "risk",
                    format!("risk {score} reached the quarantine threshold {at}"),
                )
            })
        } else {
            None
        };
        // Not marked here: a what-if decision reports a trigger without acting
        // on it; the pipeline marks the agent when it quarantines it.
        Feedback {
            trigger: trigger.map(|(kind, detail)| Trigger {
                agent: agent.to_owned(),
                kind,
                detail,
            }),
            fired,
        }
    }

    /// Feeds back what a tool returned: its size counts towards the volume
    /// baseline; an injection in it is a signal. Returns the signals fired.
    pub fn output(
        &self,
        session: &str,
        user: &str,
        agent: Option<&str>,
        bytes: u64,
        injection: bool,
        now: i64,
    ) -> Vec<Signal> {
        let s = &self.settings;
        let mut fire = Vec::new();
        if let Some(agent) = agent
            && let Some(d) = self.agents.with(agent, |t| {
                t.dirty = true;
                t.baseline.read(Who::Agent(agent), bytes, s, now)
            })
        {
            fire.push((Signal::VolumeSpike, d));
        }
        if let Some(d) = self.users.with(user, |t| {
            t.dirty = true;
            t.baseline.read(Who::User(user), bytes, s, now)
        }) && fire.is_empty()
        {
            fire.push((Signal::VolumeSpike, d));
        }
        if injection {
            fire.push((
                Signal::Injection,
                "a tool's output carried a prompt injection".into(),
            ));
        }
        if !fire.is_empty() {
            self.apply(session, agent, &fire, now);
        }
        fire.into_iter().map(|(k, _)| k).collect()
    }

    /// Whether the monitor has quarantined `agent` and no one has released it.
    pub fn is_quarantined(&self, agent: &str) -> bool {
        self.quarantined.lock().contains_key(agent)
    }

    /// Whether the quarantine of `agent` is held by the registry (`false`
    /// while storing it has failed, so it must be retried, and a registry
    /// still showing the agent active does not mean a human resumed it).
    pub fn quarantine_stored(&self, agent: &str) -> bool {
        self.quarantined.lock().get(agent).copied().unwrap_or(false)
    }

    /// Marks `agent` as quarantined; `stored` says whether the registry holds it.
    pub fn mark_quarantined(&self, agent: &str, stored: bool) {
        self.quarantined.lock().insert(agent.to_owned(), stored);
    }

    /// A human resumed `agent`: it starts again with no risk and no denials
    /// (its baseline stays).
    pub fn release(&self, agent: &str) {
        self.quarantined.lock().remove(agent);
        self.agents.with(agent, |t| {
            t.risk = Risk::default();
            t.denials.clear();
            t.dirty = true;
        });
    }

    /// How many agents, users and sessions are tracked.
    pub fn tracked(&self) -> (usize, usize, usize) {
        (self.agents.len(), self.users.len(), self.sessions.len())
    }

    /// Writes what changed since the last flush to the store, in one
    /// transaction; forgets sessions whose risk has faded and tools and
    /// destinations not seen within the window. Returns the rows written.
    pub fn flush(&self, store: &SessionStore, now: i64) -> Result<usize, StoreError> {
        let s = &self.settings;
        let cutoff = now - i64::try_from(s.baseline_window.as_secs()).unwrap_or(i64::MAX);
        let mut rows: Vec<(String, Option<String>)> = Vec::new();
        for (prefix, map) in [("agent:", &self.agents), ("user:", &self.users)] {
            for shard in &map.shards {
                let mut shard = shard.lock();
                for (id, t) in shard.iter_mut() {
                    if t.dirty {
                        t.baseline.prune(cutoff);
                        t.risk.decay(now, s);
                        t.dirty = false;
                        rows.push((format!("{prefix}{id}"), Some(json(t))));
                    }
                }
            }
        }
        for shard in &self.sessions.shards {
            let mut shard = shard.lock();
            shard.retain(|id, r| {
                r.risk.decay(now, s);
                if r.risk.is_idle() {
                    if r.stored {
                        rows.push((format!("session:{id}"), None));
                    }
                    return false;
                }
                if r.dirty {
                    r.dirty = false;
                    r.stored = true;
                    rows.push((format!("session:{id}"), Some(json(r))));
                }
                true
            });
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let mut db = store.db();
        let tx = db.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO behaviour (subject, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (subject) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM behaviour WHERE subject = ?1")?;
            for (subject, state) in &rows {
                match state {
                    Some(state) => put.execute(params![subject, state, now])?,
                    None => del.execute([subject])?,
                };
            }
        }
        tx.commit()?;
        Ok(rows.len())
    }
}

/// JSON of a state document (serialising these plain types cannot fail).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn round1(x: f32) -> f64 {
    (f64::from(x) * 10.0).round() / 10.0
}

fn clamp(x: f32) -> u8 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=100 first"
    )]
    let v = x.round().clamp(0.0, 100.0) as u8;
    v
}

#[cfg(test)]
mod tests;
