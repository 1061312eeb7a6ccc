//! Trains the injection model on the corpus built by `scripts/inspect-data`,
//! calibrates it on the dev split, writes it, and measures the whole detector
//! on the held-out test split.
//!
//! ```text
//! cargo run --release -p zt4ai-inspect --example train_injection -- \
//!     target/inspect-data/corpus.jsonl crates/inspect/model/injection.bin
//! ```
//!
//! Add `--eval-only` to measure the model file as it is without training.
//! The report (Markdown) goes to stdout.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Instant;

use zt4ai_inspect::injection::{self, InjectionDetector};
use zt4ai_inspect::model::{Model, Trainer, fit_platt};
use zt4ai_inspect::normalize;

#[derive(serde::Deserialize)]
struct Example {
    text: String,
    label: u8,
    kind: String,
    source: String,
    #[serde(default)]
    category: Option<String>,
    split: String,
}

/// The false-positive rate the operating thresholds are set for, on the dev
/// split's benign texts of each provenance: tool output and documents for
/// untrusted content, user requests for a principal's own words.
const DEV_FPR: f64 = 0.005;

/// Whether a benign text is a principal's own words (a user's request).
fn is_principal(category: Option<&str>) -> bool {
    category == Some("user_prompt")
}

/// Training hyper-parameters, chosen on the dev split (the environment
/// variables `ZT4AI_TRAIN_RATE`, `ZT4AI_TRAIN_L2` and `ZT4AI_TRAIN_EPOCHS`
/// override them for such experiments).
const EPOCHS: usize = 6;
const RATE: f32 = 0.2;
const L2: f32 = 3e-4;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let eval_only = args.iter().any(|a| a == "--eval-only");
    // `--split dev` reports on the dev split: what to tune against, so that
    // the test split stays unseen until the last run.
    let split = args
        .iter()
        .position(|a| a == "--split")
        .and_then(|i| args.get(i + 1))
        .map_or("test", String::as_str);
    let paths: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--split"))
        .map(|(_, a)| a)
        .collect();
    let [corpus, out] = paths.as_slice() else {
        anyhow::bail!("usage: train_injection CORPUS.jsonl MODEL.bin [--eval-only]");
    };
    let mut data = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(corpus)?).lines() {
        data.push(serde_json::from_str::<Example>(&line?)?);
    }
    eprintln!("{} examples", data.len());

    let model = if eval_only {
        Model::from_bytes(&std::fs::read(out)?)?
    } else {
        let m = train(&data)?;
        std::fs::write(out, m.to_bytes())?;
        eprintln!("wrote {out}");
        m
    };
    report(&data, model, split);
    Ok(())
}

fn view_features(text: &str, out: &mut Vec<u32>) {
    let views = normalize::views(text);
    let first = views.first().map_or(text, |v| v.text.as_str());
    injection::features_of(first, out);
}

fn train(data: &[Example]) -> anyhow::Result<Model> {
    let t0 = Instant::now();
    let mut train: Vec<(Vec<u32>, bool)> = Vec::new();
    let mut f = Vec::new();
    for e in data.iter().filter(|e| e.split == "train") {
        view_features(&e.text, &mut f);
        train.push((f.clone(), e.label == 1));
    }
    let pos = train.iter().filter(|x| x.1).count();
    let neg = train.len() - pos;
    anyhow::ensure!(pos > 0 && neg > 0, "the train split needs both classes");
    let (wp, wn) = (
        train.len() as f32 / (2.0 * pos as f32),
        train.len() as f32 / (2.0 * neg as f32),
    );
    eprintln!("train: {pos} malicious, {neg} benign");
    let env = |k: &str, d: f32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut t = Trainer::new(env("ZT4AI_TRAIN_RATE", RATE), env("ZT4AI_TRAIN_L2", L2));
    let epochs = env("ZT4AI_TRAIN_EPOCHS", EPOCHS as f32) as usize;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for epoch in 0..epochs {
        // Fisher–Yates with xorshift: deterministic across runs.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let (f, y) = &train[i];
            t.step(f, *y, if *y { wp } else { wn });
        }
        eprintln!("epoch {epoch} done ({:.1?})", t0.elapsed());
    }
    let mut model = t.model();
    // Calibrate on dev with the quantised model, as it will run.
    let mut dev = Vec::new();
    for e in data.iter().filter(|e| e.split == "dev") {
        view_features(&e.text, &mut f);
        dev.push((model.raw(&f), e.label == 1));
    }
    let (a, b) = fit_platt(&dev);
    model.calibrate(a, b, 0.5);
    // The threshold is set on the whole detector's score, as it runs: the
    // highest probability over every view and window, patterns included.
    let detector = InjectionDetector::with_model(model.clone());
    let threshold_of = |principal: bool| {
        let mut benign: Vec<f32> = data
            .iter()
            .filter(|e| {
                e.split == "dev" && e.label == 0 && is_principal(e.category.as_deref()) == principal
            })
            .map(|e| detector.score(&e.text))
            .collect();
        benign.sort_by(f32::total_cmp);
        let idx = ((1.0 - DEV_FPR) * benign.len() as f64).ceil() as usize;
        let t = benign
            .get(idx.min(benign.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.5)
            .clamp(0.05, 0.99);
        // Just above the quantile, so that at most DEV_FPR of those texts reach it.
        (next_up(t), benign.len())
    };
    let (untrusted, n_untrusted) = threshold_of(false);
    let (principal, n_principal) = threshold_of(true);
    anyhow::ensure!(
        n_principal > 0,
        "the dev split has no benign user requests to set the principal threshold on"
    );
    model.calibrate(a, b, untrusted);
    // A principal's words are never held to a lower bar than untrusted content.
    model.set_principal_threshold(principal.max(untrusted));
    eprintln!(
        "platt a={a:.4} b={b:.4}; threshold {:.4} on {n_untrusted} texts, principal {:.4} on {n_principal} ({:.1?})",
        model.threshold(),
        model.principal_threshold(),
        t0.elapsed()
    );
    Ok(model)
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

struct Scored {
    score: f32,
    label: bool,
    kind: String,
    source: String,
    category: Option<String>,
}

fn report(data: &[Example], model: Model, split: &str) {
    let threshold = model.threshold();
    let principal_t = model.principal_threshold();
    let full = InjectionDetector::with_model(model);
    let patterns = InjectionDetector::patterns_only();
    let test: Vec<&Example> = data.iter().filter(|e| e.split == split).collect();
    let t0 = Instant::now();
    let scored: Vec<Scored> = test
        .iter()
        .map(|e| Scored {
            score: full.score(&e.text),
            label: e.label == 1,
            kind: e.kind.clone(),
            source: e.source.clone(),
            category: e.category.clone(),
        })
        .collect();
    let bytes: usize = test.iter().map(|e| e.text.len()).sum();
    let secs = t0.elapsed().as_secs_f64();
    let pat: Vec<f32> = test.iter().map(|e| patterns.score(&e.text)).collect();

    println!("## Prompt-injection detector on the held-out {split} sources\n");
    println!(
        "Operating thresholds {threshold:.4} for untrusted content and {principal_t:.4} for a principal's own words (each set on the dev split for {:.1}% false positives on its benign texts of that provenance: tool output and documents, and user requests).\n",
        DEV_FPR * 100.0
    );
    let benign_of = |p: bool| -> Vec<usize> {
        (0..scored.len())
            .filter(|&i| !scored[i].label && is_principal(scored[i].category.as_deref()) == p)
            .collect()
    };
    let (tool_output, requests) = (benign_of(false), benign_of(true));
    println!(
        "| test set | malicious | benign | ROC AUC | TPR at 1% FPR | threshold | TPR at threshold | FPR at threshold | patterns only: TPR / FPR |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = [
        (
            "indirect",
            "indirect, against tool output",
            &tool_output,
            threshold,
        ),
        (
            "direct",
            "direct, against tool output",
            &tool_output,
            threshold,
        ),
        (
            "direct",
            "direct, as a principal's words, against user requests",
            &requests,
            principal_t,
        ),
    ];
    for (kind, name, benign, t) in rows {
        let mal: Vec<usize> = (0..scored.len())
            .filter(|&i| scored[i].label && scored[i].kind == kind)
            .collect();
        if mal.is_empty() || benign.is_empty() {
            continue;
        }
        let s = |ix: &[usize]| ix.iter().map(|&i| scored[i].score).collect::<Vec<_>>();
        let (m, b) = (s(&mal), s(benign));
        let p = |ix: &[usize]| ix.iter().map(|&i| pat[i]).collect::<Vec<_>>();
        let (pm, pb) = (p(&mal), p(benign));
        println!(
            "| {name} | {} | {} | {:.4} | {:.1}% | {t:.4} | {:.1}% | {:.2}% | {:.1}% / {:.2}% |",
            m.len(),
            b.len(),
            auc(&m, &b),
            100.0 * tpr_at_fpr(&m, &b, 0.01),
            100.0 * rate(&m, t),
            100.0 * rate(&b, t),
            100.0 * rate(&pm, 0.5),
            100.0 * rate(&pb, 0.5),
        );
    }
    println!("\n### By {split} source (malicious), detection rate at the thresholds\n");
    println!("| kind | source | texts | detected | as a principal's words |");
    println!("|---|---|---:|---:|---:|");
    let mut by: BTreeMap<(String, String), Vec<f32>> = BTreeMap::new();
    for s in scored.iter().filter(|s| s.label) {
        by.entry((s.kind.clone(), s.source.clone()))
            .or_default()
            .push(s.score);
    }
    for ((k, src), v) in &by {
        let as_principal = if k == "direct" {
            format!("{:.1}%", 100.0 * rate(v, principal_t))
        } else {
            "".to_owned()
        };
        println!(
            "| {k} | {src} | {} | {:.1}% | {as_principal} |",
            v.len(),
            100.0 * rate(v, threshold)
        );
    }
    println!(
        "\n### Benign texts ({split} split), false positives at the threshold of their provenance\n"
    );
    println!("| category | texts | threshold | false positives | FPR |");
    println!("|---|---:|---:|---:|---:|");
    // Keyed by provenance first: each row is scored at its own threshold.
    let mut cats: BTreeMap<(bool, String), Vec<f32>> = BTreeMap::new();
    for s in scored.iter().filter(|s| !s.label) {
        let principal = is_principal(s.category.as_deref());
        let mut c = s.category.clone().unwrap_or_else(|| s.source.clone());
        if principal {
            // Third-party requests and the generated ones apart.
            let from = s.source.split(':').next().unwrap_or_default();
            c = format!("{c} ({from})");
        }
        cats.entry((principal, c)).or_default().push(s.score);
    }
    let row = |name: &str, v: &[f32], t: f32| {
        let fp = v.iter().filter(|&&x| x >= t).count();
        println!(
            "| {name} | {} | {t:.4} | {fp} | {:.2}% |",
            v.len(),
            100.0 * fp as f64 / v.len().max(1) as f64
        );
    };
    let at = |principal: bool| if principal { principal_t } else { threshold };
    for ((p, c), v) in &cats {
        row(c, v, at(*p));
    }
    let scores = |ix: &[usize]| ix.iter().map(|&i| scored[i].score).collect::<Vec<_>>();
    row(
        "**all tool output and documents**",
        &scores(&tool_output),
        threshold,
    );
    row("**all user requests**", &scores(&requests), principal_t);
    println!(
        "\nScored {} texts ({:.1} MB) in {secs:.2} s with the whole detector (normalisation, every view, patterns and model): {:.1} MB/s on one core.",
        test.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
}

fn rate(v: &[f32], t: f32) -> f64 {
    v.iter().filter(|&&x| x >= t).count() as f64 / v.len().max(1) as f64
}

/// ROC AUC as the probability that a random malicious text outscores a random
/// benign one (ties count half).
fn auc(pos: &[f32], neg: &[f32]) -> f64 {
    let mut all: Vec<(f32, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        rank_sum += avg * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (pos.len() as f64, neg.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n).max(1.0)
}

/// The share of malicious texts at or above the lowest threshold that keeps
/// the benign false-positive rate at most `fpr`.
fn tpr_at_fpr(pos: &[f32], neg: &[f32], fpr: f64) -> f64 {
    let mut n = neg.to_vec();
    n.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fpr * n.len() as f64).floor() as usize;
    // Threshold strictly above the (allowed+1)-th highest benign score.
    let t = n.get(allowed).map_or(f32::NEG_INFINITY, |&x| next_up(x));
    rate(pos, t)
}
