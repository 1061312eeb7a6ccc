//! Budgets and rate limits per agent and per user: model calls and tokens per
//! minute and per UTC day, in fixed windows.
//!
//! A call is admitted while every window of the agent and of the user has
//! room left; it is charged an estimate at once (so that concurrent calls see
//! each other), and the provider's reported usage (or, for a stream without
//! it, a local estimate) replaces the estimate when the call ends. The last
//! call admitted into a window may therefore overshoot it by its own size;
//! the next one waits. Counters live in this process: replicas each count
//! their own.

use std::collections::HashMap;

use parking_lot::Mutex;
use zt4ai_core::inventory::llm::{Budget, Budgets};

/// Who a budget belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Agent(String),
    User(String),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Agent(a) => write!(f, "agent `{a}`"),
            Holder::User(u) => write!(f, "user `{u}`"),
        }
    }
}

/// The counters of one holder.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    /// The minute (Unix seconds / 60) the minute counters are for.
    minute: i64,
    requests_minute: u64,
    tokens_minute: u64,
    /// The UTC day (Unix seconds / 86,400) the day counters are for.
    day: i64,
    requests_day: u64,
    tokens_day: u64,
}

impl Counters {
    fn roll(&mut self, now: i64) {
        let minute = now.div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.requests_minute = 0;
            self.tokens_minute = 0;
        }
        let day = now.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.requests_day = 0;
            self.tokens_day = 0;
        }
    }

    /// The first limit `budget` has no room left in, with the seconds until
    /// its window ends.
    fn exhausted(&self, budget: &Budget, now: i64) -> Option<(&'static str, u64, u64)> {
        let to_minute = u64::try_from(60 - now.rem_euclid(60)).unwrap_or(60);
        let to_day = u64::try_from(86_400 - now.rem_euclid(86_400)).unwrap_or(86_400);
        let full = |used: u64, limit: Option<u64>| limit.filter(|l| used >= *l);
        if let Some(l) = full(self.requests_day, budget.requests_per_day) {
            return Some(("requests_per_day", l, to_day));
        }
        if let Some(l) = full(self.tokens_day, budget.tokens_per_day) {
            return Some(("tokens_per_day", l, to_day));
        }
        if let Some(l) = full(self.requests_minute, budget.requests_per_minute) {
            return Some(("requests_per_minute", l, to_minute));
        }
        if let Some(l) = full(self.tokens_minute, budget.tokens_per_minute) {
            return Some(("tokens_per_minute", l, to_minute));
        }
        None
    }
}

/// A call refused for want of budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// Whose budget: ``agent `report-agent` `` or ``user `alice` ``.
    pub holder: String,
    /// Which limit (`tokens_per_minute`, …).
    pub limit: &'static str,
    /// Its value.
    pub value: u64,
    /// Seconds until the window ends (the `Retry-After`).
    pub retry_after: u64,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the LLM budget of {} is used up: {} is {}; retry in {} s",
            self.holder, self.limit, self.value, self.retry_after
        )
    }
}

/// The budget counters of every agent and user that has a limit.
#[derive(Debug, Default)]
pub struct Meter {
    counters: Mutex<HashMap<Holder, Counters>>,
}

/// The holders one call is charged to, and the estimate charged so far
/// (the default charges nobody).
#[derive(Debug, Clone, Default)]
pub struct Charge {
    holders: Vec<(Holder, Budget)>,
    charged: u64,
}

impl Meter {
    /// Admits a call by `agent` for `user` estimated at `estimate` tokens,
    /// charging the call and the estimate; or says which budget is used up.
    /// Only holders with a limit are counted (and kept in memory).
    pub fn admit(
        &self,
        budgets: &Budgets,
        agent: Option<&str>,
        user: &str,
        estimate: u64,
        now: i64,
    ) -> Result<Charge, Exhausted> {
        let mut holders = Vec::with_capacity(2);
        if let Some(a) = agent {
            let b = budgets.for_agent(a);
            if !b.is_unlimited() {
                holders.push((Holder::Agent(a.to_owned()), b));
            }
        }
        let b = budgets.for_user(user);
        if !b.is_unlimited() {
            holders.push((Holder::User(user.to_owned()), b));
        }
        if holders.is_empty() {
            return Ok(Charge {
                holders,
                charged: 0,
            });
        }
        let mut counters = self.counters.lock();
        // Every holder is checked before any is charged.
        for (h, b) in &holders {
            let c = counters.entry(h.clone()).or_default();
            c.roll(now);
            if let Some((limit, value, retry_after)) = c.exhausted(b, now) {
                return Err(Exhausted {
                    holder: h.to_string(),
                    limit,
                    value,
                    retry_after,
                });
            }
        }
        for (h, _) in &holders {
            let c = counters.entry(h.clone()).or_default();
            c.requests_minute += 1;
            c.requests_day += 1;
            c.tokens_minute = c.tokens_minute.saturating_add(estimate);
            c.tokens_day = c.tokens_day.saturating_add(estimate);
        }
        Ok(Charge {
            holders,
            charged: estimate,
        })
    }

    /// Replaces the estimate charged for a call with `actual` tokens (`0`
    /// refunds it: the call never reached the provider).
    pub fn settle(&self, charge: &mut Charge, actual: u64, now: i64) {
        if charge.holders.is_empty() || charge.charged == actual {
            return;
        }
        let mut counters = self.counters.lock();
        for (h, _) in &charge.holders {
            let c = counters.entry(h.clone()).or_default();
            let (minute, day) = (c.minute, c.day);
            c.roll(now);
            // A window that rolled over since the charge starts from zero:
            // only the part of the call charged to the current window moves.
            let same_minute = c.minute == minute;
            let same_day = c.day == day;
            if actual >= charge.charged {
                let more = actual - charge.charged;
                c.tokens_minute = c.tokens_minute.saturating_add(more);
                c.tokens_day = c.tokens_day.saturating_add(more);
            } else {
                let less = charge.charged - actual;
                if same_minute {
                    c.tokens_minute = c.tokens_minute.saturating_sub(less);
                }
                if same_day {
                    c.tokens_day = c.tokens_day.saturating_sub(less);
                }
            }
        }
        charge.charged = actual;
    }
}

/// A local estimate of the tokens in `bytes` bytes of text: one per four
/// bytes, at least one.
pub fn estimate_tokens(bytes: usize) -> u64 {
    u64::try_from(bytes / 4).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn budgets(agent: Budget, user: Budget) -> Budgets {
        Budgets {
            agent,
            user,
            ..Budgets::default()
        }
    }

    #[test]
    fn requests_per_minute_refuse_then_roll_over() {
        let b = budgets(
            Budget {
                requests_per_minute: Some(2),
                ..Budget::default()
            },
            Budget::default(),
        );
        let m = Meter::default();
        // The start of a minute (1_000_020 = 16_667 × 60).
        let t = 1_000_020;
        m.admit(&b, Some("a"), "u", 1, t).unwrap();
        m.admit(&b, Some("a"), "u", 1, t).unwrap();
        let e = m.admit(&b, Some("a"), "u", 1, t + 21).unwrap_err();
        assert_eq!(e.limit, "requests_per_minute");
        assert_eq!(e.holder, "agent `a`");
        // 21 s into the minute: 39 s to go.
        assert_eq!(e.retry_after, 39);
        // Another agent has its own budget.
        m.admit(&b, Some("b"), "u", 1, t).unwrap();
        // The next minute starts afresh.
        m.admit(&b, Some("a"), "u", 1, t + 60).unwrap();
    }

    #[test]
    fn tokens_are_settled_to_the_actual_usage() {
        let b = budgets(
            Budget::default(),
            Budget {
                tokens_per_day: Some(100),
                ..Budget::default()
            },
        );
        let m = Meter::default();
        let t = 86_400 * 20_000 + 5;
        let mut c = m.admit(&b, Some("a"), "u", 10, t).unwrap();
        m.settle(&mut c, 120, t);
        let e = m.admit(&b, Some("a"), "u", 10, t).unwrap_err();
        assert_eq!((e.limit, e.value), ("tokens_per_day", 100));
        assert_eq!(e.holder, "user `u`");
        assert_eq!(e.retry_after, 86_395);
        // A refund (the call never reached the provider) gives the room back.
        m.settle(&mut c, 0, t);
        m.admit(&b, Some("a"), "u", 10, t).unwrap();
    }

    #[test]
    fn unlimited_holders_are_not_tracked() {
        let m = Meter::default();
        for i in 0..100 {
            m.admit(&Budgets::default(), Some(&format!("a{i}")), "u", 5, 0)
                .unwrap();
        }
        assert!(m.counters.lock().is_empty());
    }
}
