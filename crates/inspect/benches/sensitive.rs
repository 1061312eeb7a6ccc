//! Throughput of the sensitive-data scanner on one core.
//!
//! ```sh
//! taskset -c 0 cargo bench -p zt4ai-inspect --bench sensitive
//! ```
//!
//! Four 64 KiB inputs, the kinds of text tool results are made of: English
//! prose with a few numbers and identifiers, a JSON API response, application
//! logs (with the odd IP address and e-mail, as real logs have), and a dense
//! input where every line holds something to report. A fifth case scans a
//! 256-byte tool result, to show the fixed cost of a call. Criterion reports
//! the throughput in bytes per second.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zt4ai_inspect::sensitive::{Dictionary, SensitiveScanner};

const SIZE: usize = 64 * 1024;

const PROSE: [&str; 16] = [
    "The quarterly review covered revenue, hiring and the roadmap for the second half of the year.",
    "Our team shipped version 2.4.1 of the client on March 3rd, fixing 17 bugs reported by customers.",
    "Latency at the 99th percentile dropped from 840 ms to 310 ms after the cache was moved closer to the database.",
    "In 2023 the company opened offices in Lisbon and Toronto, bringing the headcount to 412 people.",
    "She argued that the secret to a good migration is a rollback plan that has actually been tested.",
    "The committee will meet again on Thursday to discuss the budget, which grew by 12 percent.",
    "Please keep the notes confidential until the announcement goes out next week.",
    "Section 4.2 describes how tokens are counted; the limit is 128000 tokens per request.",
    "Authentication now uses short-lived credentials, and the old password reset flow was removed.",
    "The report lists 3 open incidents, 2 of them rated severity 2, and none older than 14 days.",
    "A new index on the orders table reduced the nightly batch from 95 minutes to 11.",
    "Customers in the EU can now choose to store their data in Frankfurt or Dublin.",
    "The design document, now at revision 7, explains why we chose a write-ahead log over snapshots.",
    "Support answered 1,284 tickets in May, with a median first response time of 42 minutes.",
    "The API returns HTTP 429 when a client exceeds 600 requests per minute.",
    "Next quarter we plan to retire the legacy importer and move every job to the new scheduler.",
];

fn prose() -> String {
    let mut s = String::with_capacity(SIZE + 512);
    let mut i = 0usize;
    while s.len() < SIZE {
        s.push_str(PROSE[i % PROSE.len()]);
        s.push(if i % 5 == 4 { '\n' } else { ' ' });
        i += 1;
    }
    s
}

fn json() -> String {
    let mut s = String::with_capacity(SIZE + 1024);
    s.push_str("{\"data\":[");
    let mut i = 0u64;
    while s.len() < SIZE {
        let _ = write!(
            s,
            "{{\"id\":{},\"sku\":\"WID-{:05}\",\"name\":\"Widget model {}\",\"price\":{}.{:02},\"currency\":\"EUR\",\
             \"stock\":{},\"created_at\":\"2024-0{}-1{}T0{}:2{}:33Z\",\"tags\":[\"hardware\",\"tier-{}\"],\
             \"owner\":{{\"id\":{},\"username\":\"user{}\",\"active\":{}}},\"rating\":{}.{},\
             \"description\":\"Durable widget for industrial use, revision {}.\"}},",
            100_000 + i * 37,
            i * 7 % 100_000,
            i % 90,
            i % 500,
            i % 100,
            i * 13 % 1000,
            1 + i % 9,
            i % 10,
            i % 10,
            i % 10,
            i % 4,
            5000 + i % 300,
            5000 + i % 300,
            i.is_multiple_of(2),
            3 + i % 2,
            i % 10,
            i % 12
        );
        i += 1;
    }
    s.push_str("{}],\"page\":1,\"per_page\":100,\"total\":48213}");
    s
}

fn logs() -> String {
    const PATHS: [&str; 6] = [
        "/api/v1/items",
        "/api/v1/orders/search",
        "/health",
        "/api/v2/users/me",
        "/static/app.js",
        "/api/v1/reports/daily",
    ];
    let mut s = String::with_capacity(SIZE + 512);
    let mut i = 0u64;
    while s.len() < SIZE {
        let level = ["INFO", "INFO", "INFO", "DEBUG", "WARN"][(i % 5) as usize];
        let _ = write!(
            s,
            "2024-05-14T09:{:02}:{:02}.{:03}Z {level} [api-{}] {} {} status={} duration_ms={} req_id={:016x}",
            i / 60 % 60,
            i % 60,
            i * 7 % 1000,
            i % 4,
            if i.is_multiple_of(3) { "POST" } else { "GET" },
            PATHS[(i % 6) as usize],
            [200, 200, 201, 304, 404][(i % 5) as usize],
            i * 13 % 900,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        if i.is_multiple_of(10) {
            let _ = write!(s, " client=203.0.{}.{}", i % 256, (i * 7) % 254 + 1);
        }
        if i.is_multiple_of(25) {
            let _ = write!(s, " user=user{}@example.com", i % 1000);
        }
        s.push('\n');
        i += 1;
    }
    s
}

fn dense() -> String {
    let mut s = String::with_capacity(SIZE + 512);
    let mut i = 0u64;
    while s.len() < SIZE {
        let _ = match i % 8 {
            0 => writeln!(
                s,
                "Contact jane.doe{i}@example.com or call +44 20 7946 {:04}.",
                i % 10_000
            ),
            1 => writeln!(
                s,
                "{{\"card\": \"4111 1111 1111 1111\", \"iban\": \"DE89 3704 0044 0532 0130 00\"}}"
            ),
            2 => writeln!(
                s,
                "SSN: 123-45-{:04} from 198.51.100.{}",
                1 + i % 9000,
                i % 250 + 1
            ),
            3 => writeln!(s, "AWS_ACCESS_KEY_ID=AKIAZ7Q2L4M9N8P3R6{:02}", i % 100),
            4 => writeln!(
                s,
                "token: ghp_Zq8Xk2Lm9Pn4Rs7Tv1Wy3Ab5Cd6Ef0GhIj{:04}",
                i % 10_000
            ),
            5 => writeln!(s, "DB_PASSWORD=Xk9#mP2$vL7qW{i}"),
            6 => writeln!(s, "CONFIDENTIAL - Renewal with Contoso, account {i}"),
            _ => writeln!(
                s,
                "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
            ),
        };
        i += 1;
    }
    s
}

fn short() -> String {
    let mut s = String::from(
        "{\"result\":{\"id\":4821,\"title\":\"Quarterly planning\",\"owner\":\"jane.doe@example.com\",\
         \"updated\":\"2024-05-14T09:21:33Z\",\"summary\":\"Budget approved; next review in June.\"}}",
    );
    while s.len() < 256 {
        s.push(' ');
    }
    s
}

fn bench(c: &mut Criterion) {
    let scanner = match SensitiveScanner::new(
        vec![Dictionary {
            name: "customer_name".into(),
            category: "customer".into(),
            terms: vec![
                "Contoso".into(),
                "Northwind Traders".into(),
                "Fabrikam".into(),
            ],
            case_sensitive: false,
        }],
        [7; 32],
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot build the scanner: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("sensitive_scan");
    for (name, text) in [
        ("prose_64k", prose()),
        ("json_64k", json()),
        ("logs_64k", logs()),
        ("dense_64k", dense()),
        ("short_256b", short()),
    ] {
        let findings = scanner.scan(&text).len();
        eprintln!("{name}: {} bytes, {findings} findings", text.len());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| scanner.scan(black_box(&text))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
