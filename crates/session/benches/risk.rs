//! What continuous verification adds to each decision, and what it holds in
//! memory per tracked agent and session.
//!
//! Population: 1,000 agents (each with its user), every baseline mature
//! (a simulated fortnight: 20 tools and 5 destinations per agent, hours,
//! rates, volumes). Then, on one core:
//!
//! * **usual request** — `assess` + `outcome` for a request its agent makes
//!   every day (known tool and destination, normal rate): the common case;
//! * **a signal fires** — the same with a first-seen tool each time (a signal
//!   fires, its detail is written, the session and agent risk move);
//! * **score only** — `score`, what an approval retry or a what-if reads.
//!
//! Each call is timed on its own (two `Instant::now()` around it, about 40 ns
//! of the figures). Memory is the process's resident set (`/proc/self/statm`)
//! before and after: 1,000 mature agents (and their users), then 100,000
//! sessions that each carry some risk.
//!
//! Run: `taskset -c 0 cargo bench -p zt4ai-session --bench risk`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::time::Instant;

use zt4ai_core::Label;
use zt4ai_core::inventory::verification::{QuarantineSettings, RiskSettings};
use zt4ai_session::SessionStore;
use zt4ai_session::risk::{Monitor, Observation, Outcome};

const AGENTS: usize = 1_000;
const TOOLS: usize = 20;
const DESTINATIONS: usize = 5;
const SESSIONS: usize = 100_000;
const CALLS: usize = 1_000_000;
const DAY: i64 = 86_400;
/// 2025-12-01, 00:00 UTC.
const START: i64 = 1_764_547_200;

struct Names {
    agents: Vec<String>,
    users: Vec<String>,
    tools: Vec<String>,
    destinations: Vec<String>,
}

fn names() -> Names {
    Names {
        agents: (0..AGENTS).map(|i| format!("agent-{i:04}")).collect(),
        users: (0..AGENTS).map(|i| format!("user-{i:04}")).collect(),
        tools: (0..TOOLS * 3)
            .map(|i| format!("server-{}.tool-{i:03}", i % 7))
            .collect(),
        destinations: (0..DESTINATIONS)
            .map(|i| format!("destination-{i}"))
            .collect(),
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A request of agent `a` (acting for its user) in `session`.
fn request<'a>(
    n: &'a Names,
    a: usize,
    session: &'a str,
    tool: &'a str,
    destinations: &'a [&'a str],
) -> Observation<'a> {
    Observation {
        session,
        user: &n.users[a],
        agent: Some(&n.agents[a]),
        tool: Some(tool),
        destinations,
        sends_out: false,
        label: Label::Internal,
        injection: false,
        sensitive_egress: false,
        user_risk: None,
    }
}

/// The feedback of an allowed request.
fn allowed<'a>(n: &'a Names, a: usize, session: &'a str) -> Outcome<'a> {
    Outcome {
        session,
        agent: Some(&n.agents[a]),
        denied: false,
        exfiltration: false,
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn percentiles(mut ns: Vec<u64>) -> (f64, f64, f64, f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    (at(0.5), at(0.9), at(0.99), at(0.999), mean)
}

fn row(what: &str, ns: Vec<u64>) {
    let (p50, p90, p99, p999, mean) = percentiles(ns);
    println!("| {what} | {p50:.2} | {p90:.2} | {p99:.2} | {p999:.2} | {mean:.2} |");
}

fn main() {
    let n = names();
    let settings = RiskSettings::default();
    let rss0 = rss_bytes();
    let m = Monitor::new(settings, QuarantineSettings::default());
    // A fortnight of working hours: every agent 16 requests a day, 08:00–16:00.
    let mut rng = Rng(0x5eed);
    for day in 0..14 {
        for (a, agent) in n.agents.iter().enumerate() {
            for r in 0..16 {
                let now = START + day * DAY + 8 * 3600 + r * 1800 + (a as i64 % 60);
                let tool = &n.tools[(a + r as usize) % TOOLS];
                let dest = [n.destinations[rng.below(DESTINATIONS)].as_str()];
                let session = format!("warm-{a}-{day}");
                let o = request(&n, a, &session, tool, &dest);
                black_box(m.assess(&o, now));
                m.output(&session, &n.users[a], Some(agent), 2_000, false, now);
            }
        }
    }
    let rss_agents = rss_bytes();
    let (agents, users, sessions) = m.tracked();
    assert_eq!((agents, users), (AGENTS, AGENTS));

    // Steady state, within working hours of the next day.
    let base = START + 15 * DAY + 10 * 3600;
    let mut usual = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let a = rng.below(AGENTS);
        let tool = &n.tools[rng.below(TOOLS)];
        let dest = [n.destinations[rng.below(DESTINATIONS)].as_str()];
        let session = &n.agents[a]; // one live session per agent
        let t = base + (i / 2_000) as i64;
        let o = request(&n, a, session, tool, &dest);
        let out = allowed(&n, a, session);
        let started = Instant::now();
        let r = m.assess(&o, t);
        black_box(m.outcome(&out, t));
        usual.push(started.elapsed().as_nanos() as u64);
        black_box(r);
    }

    // A first-seen tool on every call: the signal path.
    let mut novel = Vec::with_capacity(100_000);
    let mut fresh: Vec<String> = (0..100_000).map(|i| format!("new.tool-{i}")).collect();
    for (i, tool) in fresh.iter().enumerate() {
        let a = rng.below(AGENTS);
        let session = &n.agents[a];
        let t = base + 600 + (i / 2_000) as i64;
        let dest = [n.destinations[0].as_str()];
        let o = request(&n, a, session, tool, &dest);
        let out = allowed(&n, a, session);
        let started = Instant::now();
        let r = m.assess(&o, t);
        black_box(m.outcome(&out, t));
        novel.push(started.elapsed().as_nanos() as u64);
        assert!(r.report.signals.iter().any(|s| s.signal == "new_tool"));
    }
    fresh.clear();

    let mut scores = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let a = rng.below(AGENTS);
        let t = base + 1200 + (i / 2_000) as i64;
        let started = Instant::now();
        black_box(m.score(&n.agents[a], Some(&n.agents[a]), Some(10), t));
        scores.push(started.elapsed().as_nanos() as u64);
    }

    println!(
        "\n| µs per call ({AGENTS} mature agents, one core) | p50 | p90 | p99 | p99.9 | mean |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    row("usual request: assess + outcome", usual);
    row("first-seen tool: assess + outcome (a signal fires)", novel);
    row("score only", scores);

    // Sessions that carry risk: each fires one signal.
    let before_sessions = rss_bytes();
    let (_, _, sessions_before) = m.tracked();
    for i in 0..SESSIONS {
        let a = i % AGENTS;
        let session = format!("risky-session-{i:06}");
        let dest = [n.destinations[0].as_str()];
        let o = Observation {
            injection: true,
            ..request(&n, a, &session, &n.tools[0], &dest)
        };
        black_box(m.assess(&o, base + 1800));
    }
    let after_sessions = rss_bytes();
    let (_, _, sessions_after) = m.tracked();
    let added = sessions_after - sessions_before;
    println!(
        "\nresident memory: {:.1} MiB for {AGENTS} mature agents and their {AGENTS} users \
         ({:.1} KiB per agent with its user; {TOOLS} tools, {DESTINATIONS} destinations each; \
         {sessions} warm-up sessions with no risk hold no entry)",
        (rss_agents - rss0) as f64 / 1_048_576.0,
        (rss_agents - rss0) as f64 / 1024.0 / AGENTS as f64,
    );
    println!(
        "resident memory: {:.1} MiB for {added} sessions with risk ({:.0} bytes per session)",
        (after_sessions - before_sessions) as f64 / 1_048_576.0,
        (after_sessions - before_sessions) as f64 / added as f64,
    );

    // Saving what changed: every agent, user and risky session is dirty.
    let store = SessionStore::open_in_memory().unwrap();
    let started = Instant::now();
    let rows = m.flush(&store, base + 1801).unwrap();
    println!(
        "flush of {rows} changed baselines and risks to SQLite (in memory): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}
