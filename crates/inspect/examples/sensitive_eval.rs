//! Precision and recall of the sensitive-data detectors on the generated,
//! labelled corpus (`zt4ai_inspect::sensitive::corpus`).
//!
//! ```sh
//! cargo run --release -p zt4ai-inspect --features sensitive-corpus --example sensitive_eval -- [PER_TYPE] [SEED] [--misses N]
//! ```
//!
//! For every type it generates `PER_TYPE` positives and `PER_TYPE`
//! near-misses (default 500 each, seed 1), scans them all with one scanner,
//! and prints a Markdown table of precision and recall per type and overall.
//! `--misses N` also prints up to N false positives and misses per type.

use std::time::Instant;

use zt4ai_inspect::sensitive::SensitiveScanner;
use zt4ai_inspect::sensitive::corpus::{dictionaries, evaluate, generate, markdown};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut per_type = 500usize;
    let mut seed = 1u64;
    let mut show_misses = 0usize;
    let mut positional = 0;
    while let Some(arg) = args.next() {
        if arg == "--misses" {
            show_misses = args.next().ok_or("`--misses` needs a number")?.parse()?;
            continue;
        }
        match positional {
            0 => per_type = arg.parse()?,
            1 => seed = arg.parse()?,
            _ => return Err(format!("unexpected argument `{arg}`").into()),
        }
        positional += 1;
    }

    let scanner = SensitiveScanner::new(dictionaries(), [0x5a; 32])?;
    let examples = generate(seed, per_type, per_type);
    let bytes: usize = examples.iter().map(|e| e.text.len()).sum();
    let started = Instant::now();
    let (table, misses) = evaluate(&scanner, &examples);
    let elapsed = started.elapsed();

    println!(
        "{} examples ({per_type} positives + {per_type} near-misses per type, seed {seed}), {:.1} KiB, scanned in {:.1} ms\n",
        examples.len(),
        bytes as f64 / 1024.0,
        elapsed.as_secs_f64() * 1000.0
    );
    println!("{}", markdown(&table));
    if show_misses > 0 {
        let mut shown = std::collections::BTreeMap::<(String, &str), usize>::new();
        for m in &misses {
            let n = shown.entry((m.family.clone(), m.what)).or_default();
            if *n < show_misses {
                *n += 1;
                let value = m.text.get(m.span.start..m.span.end).unwrap_or("");
                println!("- {} {}: {value:?}\n  in {:?}", m.family, m.what, m.text);
            }
        }
    }
    Ok(())
}
