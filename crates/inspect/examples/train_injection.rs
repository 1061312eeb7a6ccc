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

/// The false-positive rate the operating threshold is set for, on the dev
/// split's benign texts.
const DEV_FPR: f64 = 0.005;
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
    let mut benign: Vec<f32> = data
        .iter()
        .filter(|e| e.split == "dev" && e.label == 0)
        .map(|e| detector.score(&e.text))
        .collect();
    benign.sort_by(f32::total_cmp);
    let idx = ((1.0 - DEV_FPR) * benign.len() as f64).ceil() as usize;
    let threshold = benign
        .get(idx.min(benign.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.5)
        .clamp(0.05, 0.99);
    // Just above the quantile, so that at most DEV_FPR of dev benign texts reach it.
    model.calibrate(a, b, next_up(threshold));
    eprintln!(
        "platt a={a:.4} b={b:.4}; threshold {:.4} ({:.1?})",
        model.threshold(),
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
        "Operating threshold {threshold:.4} (set on the dev split for {:.1}% false positives on its benign texts).\n",
        DEV_FPR * 100.0
    );
    let benign: Vec<usize> = (0..scored.len()).filter(|&i| !scored[i].label).collect();
    println!(
        "| test set | malicious | benign | ROC AUC | TPR at 1% FPR | TPR at threshold | FPR at threshold | patterns only: TPR / FPR |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for kind in ["indirect", "direct"] {
        let mal: Vec<usize> = (0..scored.len())
            .filter(|&i| scored[i].label && scored[i].kind == kind)
            .collect();
        if mal.is_empty() {
            continue;
        }
        let s = |ix: &[usize]| ix.iter().map(|&i| scored[i].score).collect::<Vec<_>>();
        let (m, b) = (s(&mal), s(&benign));
        let p = |ix: &[usize]| ix.iter().map(|&i| pat[i]).collect::<Vec<_>>();
        let (pm, pb) = (p(&mal), p(&benign));
        println!(
            "| {kind} | {} | {} | {:.4} | {:.1}% | {:.1}% | {:.2}% | {:.1}% / {:.2}% |",
            m.len(),
            b.len(),
            auc(&m, &b),
            100.0 * tpr_at_fpr(&m, &b, 0.01),
            100.0 * rate(&m, threshold),
            100.0 * rate(&b, threshold),
            100.0 * rate(&pm, 0.5),
            100.0 * rate(&pb, 0.5),
        );
    }
    println!("\n### By test source (malicious), detection rate at the threshold\n");
    println!("| kind | source | texts | detected |");
    println!("|---|---|---:|---:|");
    let mut by: BTreeMap<(String, String), Vec<f32>> = BTreeMap::new();
    for s in scored.iter().filter(|s| s.label) {
        by.entry((s.kind.clone(), s.source.clone()))
            .or_default()
            .push(s.score);
    }
    for ((k, src), v) in &by {
        println!(
            "| {k} | {src} | {} | {:.1}% |",
            v.len(),
            100.0 * rate(v, threshold)
        );
    }
    println!("\n### Benign tool output (test split), false positives at the threshold\n");
    println!("| category | texts | false positives | FPR |");
    println!("|---|---:|---:|---:|");
    let mut cats: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for s in scored.iter().filter(|s| !s.label) {
        cats.entry(s.category.clone().unwrap_or_else(|| s.source.clone()))
            .or_default()
            .push(s.score);
    }
    let mut all = Vec::new();
    for (c, v) in &cats {
        let fp = v.iter().filter(|&&x| x >= threshold).count();
        println!(
            "| {c} | {} | {fp} | {:.2}% |",
            v.len(),
            100.0 * fp as f64 / v.len() as f64
        );
        all.extend_from_slice(v);
    }
    let fp = all.iter().filter(|&&x| x >= threshold).count();
    println!(
        "| **all** | {} | {fp} | {:.2}% |",
        all.len(),
        100.0 * fp as f64 / all.len().max(1) as f64
    );
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
