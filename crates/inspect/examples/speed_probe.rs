//! Temporary: where the time goes.
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let mut texts = Vec::new();
    for line in std::fs::read_to_string(&path).unwrap_or_default().lines().take(3000) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(t) = v["text"].as_str() { texts.push(t.to_owned()); }
    }
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let mb = bytes as f64 / 1e6;
    let t = Instant::now();
    let mut n = 0;
    for x in &texts { n += zt4ai_inspect::normalize::views(x).len(); }
    println!("views: {:.1} MB/s ({n} views)", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    for x in &texts { n += zt4ai_inspect::injection::pattern_hits(x).len(); }
    println!("patterns: {:.1} MB/s", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let (mut s, mut f) = (String::new(), Vec::new());
    for x in &texts { zt4ai_inspect::model::features(x, &[], &mut s, &mut f); n += f.len(); }
    println!("features: {:.1} MB/s", mb / t.elapsed().as_secs_f64());
    let d = zt4ai_inspect::injection::InjectionDetector::builtin().unwrap_or_else(|_| zt4ai_inspect::injection::InjectionDetector::patterns_only());
    let t = Instant::now();
    for x in &texts { n += d.scan(x).len(); }
    println!("scan: {:.1} MB/s {n}", mb / t.elapsed().as_secs_f64());
}
