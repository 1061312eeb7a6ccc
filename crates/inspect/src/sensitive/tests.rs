//! The scanner as the pipeline uses it: every type end to end, overlaps,
//! digests, what a finding carries, and arbitrary input.

use base64::Engine as _;

use super::*;

const B62: &str = "Zq8Xk2Lm9Pn4Rs7Tv1Wy3Ab5Cd6Ef0GhIjKoMnOpQrStUvWxYzaBcDeFgHiJkLmNoPqRsTuVwXyZ";

fn scanner() -> SensitiveScanner {
    SensitiveScanner::new(
        vec![Dictionary {
            name: "customer_name".into(),
            category: "customer".into(),
            terms: vec!["Contoso".into(), "Northwind Traders".into()],
            case_sensitive: false,
        }],
        [1; 32],
    )
    .unwrap()
}

fn found(s: &SensitiveScanner, text: &str) -> Vec<(String, String)> {
    s.scan(text)
        .into_iter()
        .map(|f| {
            let FindingKind::Sensitive(kind) = f.kind else {
                panic!("not a sensitive finding")
            };
            (kind, text[f.span.start..f.span.end].to_owned())
        })
        .collect()
}

fn b62(n: usize) -> String {
    B62.chars().cycle().take(n).collect()
}

/// One valid example of every type: (kind, text, the value it must span).
fn examples() -> Vec<(&'static str, String, String)> {
    let jwt = {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            e(r#"{"alg":"RS256","typ":"JWT"}"#),
            e(r#"{"sub":"42","iat":1716000000}"#),
            b62(86)
        )
    };
    let pem = format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n{}\n-----END EC PRIVATE KEY-----",
        b62(64),
        b62(20)
    );
    let storage_key = format!("{}==", b62(86));
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=acme1;AccountKey={storage_key};EndpointSuffix=core.windows.net"
    );
    let sa_key = format!(
        "\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n\"",
        b62(64)
    );
    let v = |s: &str| s.to_owned();
    vec![
        (
            "email",
            v("Write to jane.doe@example.com today."),
            v("jane.doe@example.com"),
        ),
        ("phone", v("Call +44 20 7946 0958."), v("+44 20 7946 0958")),
        (
            "payment_card",
            v("Card 4111 1111 1111 1111 exp 09/27"),
            v("4111 1111 1111 1111"),
        ),
        (
            "iban",
            v("IBAN DE89 3704 0044 0532 0130 00"),
            v("DE89 3704 0044 0532 0130 00"),
        ),
        ("us_ssn", v("SSN: 123-45-6789"), v("123-45-6789")),
        (
            "ip_address",
            v("from 203.0.113.9 port 22"),
            v("203.0.113.9"),
        ),
        ("ip_address", v("peer [2001:db8::7]:443"), v("2001:db8::7")),
        (
            "aws_access_key",
            v("id AKIAZ7Q2L4M9N8P3R6ST"),
            v("AKIAZ7Q2L4M9N8P3R6ST"),
        ),
        (
            "aws_secret_key",
            v("aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYzKEYq1b2C3d4"),
            v("wJalrXUtnFEMIK7MDENGbPxRfiCYzKEYq1b2C3d4"),
        ),
        (
            "gcp_api_key",
            format!("key=AIza{}", b62(35)),
            format!("AIza{}", b62(35)),
        ),
        (
            "gcp_service_account",
            format!("{{{sa_key}}}"),
            sa_key.clone(),
        ),
        (
            "google_oauth_secret",
            format!("GOCSPX-{}", b62(28)),
            format!("GOCSPX-{}", b62(28)),
        ),
        (
            "azure_storage_key",
            format!("AccountKey={storage_key}"),
            storage_key.clone(),
        ),
        (
            "azure_connection_string",
            format!("\"{conn}\""),
            conn.clone(),
        ),
        (
            "azure_client_secret",
            v("AZURE_CLIENT_SECRET=abC8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789a"),
            v("abC8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789a"),
        ),
        (
            "github_token",
            format!("token ghp_{}", b62(36)),
            format!("ghp_{}", b62(36)),
        ),
        (
            "gitlab_token",
            format!("glpat-{}", b62(20)),
            format!("glpat-{}", b62(20)),
        ),
        (
            "slack_token",
            v("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
            v("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
        ),
        (
            "slack_webhook",
            v("POST https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/AbCdEfGhIjKlMnOpQrStUvWx"),
            v("https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/AbCdEfGhIjKlMnOpQrStUvWx"),
        ),
        (
            "stripe_key",
            format!("sk_live_{}", b62(30)),
            format!("sk_live_{}", b62(30)),
        ),
        (
            "openai_key",
            format!("sk-proj-{}", b62(80)),
            format!("sk-proj-{}", b62(80)),
        ),
        (
            "anthropic_key",
            format!("sk-ant-api03-{}AA", b62(93)),
            format!("sk-ant-api03-{}AA", b62(93)),
        ),
        (
            "npm_token",
            format!("npm_{}", b62(36)),
            format!("npm_{}", b62(36)),
        ),
        (
            "pypi_token",
            format!("pypi-AgEIcHlwaS5vcmc{}", b62(70)),
            format!("pypi-AgEIcHlwaS5vcmc{}", b62(70)),
        ),
        (
            "sendgrid_key",
            format!("SG.{}.{}", b62(22), b62(43)),
            format!("SG.{}.{}", b62(22), b62(43)),
        ),
        (
            "twilio_key",
            v("SK0123456789abcdef0123456789abcdef"),
            v("SK0123456789abcdef0123456789abcdef"),
        ),
        ("private_key", format!("key:\n{pem}\n"), pem.clone()),
        ("jwt", format!("Authorization: Bearer {jwt}"), jwt.clone()),
        (
            "generic_secret",
            v("DB_PASSWORD=Xk9#mP2$vL7qW"),
            v("Xk9#mP2$vL7qW"),
        ),
        (
            "classification_top_secret",
            v("TOP SECRET//NOFORN\nbody"),
            v("TOP SECRET//NOFORN"),
        ),
        (
            "classification_confidential",
            v("Page 2 | CONFIDENTIAL"),
            v("CONFIDENTIAL"),
        ),
        ("classification_tlp_amber", v("TLP:AMBER"), v("TLP:AMBER")),
        (
            "customer_name",
            v("Renewal with CONTOSO next week"),
            v("CONTOSO"),
        ),
    ]
}

#[test]
fn every_type_is_found_with_its_span_and_nothing_else() {
    let s = scanner();
    for (kind, text, value) in examples() {
        assert_eq!(found(&s, &text), [(kind.to_owned(), value)], "{text}");
    }
}

#[test]
fn near_misses_of_every_type_are_not_found() {
    let s = scanner();
    for text in [
        "user@localhost and logo@2x.png and lodash@4.17.21",
        "released 2024-03-15, build 1.24.3, order ORD-2024-0057731",
        "4111 1111 1111 1112 and 1234 5678 9012 3452",
        "DE88 3704 0044 0532 0130 00",
        "666-12-3456, 000-12-3456, 912-34-5678 and order 123456789",
        "256.1.1.1, 1.2.3.4.5, v1.2.3.4 and 12:34:56",
        "AKIAIOSFODNN7EXAMPLE and AKIAZ7Q2L4M9N8P3R6S",
        "pk_live_Zq8Xk2Lm9Pn4Rs7Tv1Wy3Ab5Cd6Ef and sk_live_<your-key>",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "-----BEGIN PUBLIC KEY-----\nZq8Xk2Lm9Pn4Rs7Tv1Wy3Ab5Cd6Ef0GhIjKoMnOpQrStUvWxYz\n-----END PUBLIC KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        "password=<your-password> token: ${API_TOKEN} secret: changeme",
        "Please keep this confidential. The secret to good bread is time.",
        "Contosoft and Northwind",
    ] {
        assert!(found(&s, text).is_empty(), "{text}: {:?}", found(&s, text));
    }
}

#[test]
fn a_token_in_a_secret_field_is_reported_once_as_its_provider() {
    let s = scanner();
    let token = format!("ghp_{}", b62(36));
    assert_eq!(
        found(&s, &format!("{{\"token\": \"{token}\"}}")),
        [("github_token".to_owned(), token)]
    );
}

#[test]
fn a_private_key_inside_a_key_file_is_reported_as_the_key_file() {
    let s = scanner();
    let (_, text, value) = examples()
        .into_iter()
        .find(|(k, _, _)| *k == "gcp_service_account")
        .unwrap();
    assert_eq!(
        found(&s, &text),
        [("gcp_service_account".to_owned(), value)]
    );
}

#[test]
fn digests_are_stable_per_key_differ_across_keys_and_ignore_layout() {
    let a = SensitiveScanner::new(vec![], [1; 32]).unwrap();
    let b = SensitiveScanner::new(vec![], [1; 32]).unwrap();
    let c = SensitiveScanner::new(vec![], [2; 32]).unwrap();
    let digest = |s: &SensitiveScanner, text: &str| s.scan(text)[0].digest.clone().unwrap();
    let text = "card 4111 1111 1111 1111";
    assert_eq!(digest(&a, text), digest(&b, text));
    assert_ne!(digest(&a, text), digest(&c, text));
    assert_eq!(digest(&a, text), digest(&a, "pan=4111-1111-1111-1111;"));
    assert_ne!(digest(&a, text), digest(&a, "card 5500 0000 0000 0004"));
    let d = digest(&a, text);
    assert_eq!(d.len(), 32);
    assert!(
        d.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(d, a.digest(b"4111111111111111"));
    assert_eq!(
        digest(&a, "Mail Jane.Doe@Example.com"),
        digest(&a, "mail jane.doe@example.com")
    );
}

#[test]
fn findings_never_carry_the_matched_text() {
    let s = scanner();
    for (_, text, value) in examples() {
        for finding in s.scan(&text) {
            let json = serde_json::to_string(&finding).unwrap();
            assert!(!json.contains(&value), "{json}");
            // Nor any long piece of it.
            let probe: String = value.chars().skip(4).take(12).collect();
            assert!(probe.len() < 8 || !json.contains(&probe), "{json}");
        }
    }
}

#[test]
fn findings_are_ordered_by_position_and_reached_via_text() {
    let s = scanner();
    let text = "a@b.example ghp_zzz 203.0.113.9 SSN 123-45-6789 x@y.example";
    let findings = s.scan(text);
    assert_eq!(findings.len(), 4);
    assert!(
        findings
            .windows(2)
            .all(|w| w[0].span.start < w[1].span.start)
    );
    assert!(findings.iter().all(|f| f.via == Via::Text));
    assert!(findings.iter().all(|f| (0.0..=1.0).contains(&f.score)));
}

#[test]
fn classify_covers_builtin_and_dictionary_kinds() {
    let s = scanner();
    assert_eq!(
        s.classify("customer_name"),
        Some(("customer", "confidential"))
    );
    assert_eq!(s.classify("iban"), Some(("pii", "confidential")));
    assert_eq!(
        s.classify("private_key"),
        Some(("credentials", "highly_confidential"))
    );
    assert_eq!(s.classify("project_codename"), None);
    assert_eq!(classify("customer_name"), None);
}

#[test]
fn the_scanner_is_shared_across_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<SensitiveScanner>();
}

#[test]
fn the_debug_output_hides_the_digest_key() {
    let s = SensitiveScanner::new(vec![], [0xab; 32]).unwrap();
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("171") && !debug.to_lowercase().contains("abab"),
        "{debug}"
    );
}

/// A xorshift generator for the garbage tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_spans(s: &SensitiveScanner, text: &str) {
    for f in s.scan(text) {
        assert!(
            f.span.start < f.span.end && f.span.end <= text.len(),
            "{f:?} in {text:?}"
        );
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
        assert!(f.digest.as_ref().is_some_and(|d| d.len() == 32));
    }
}

#[test]
fn random_bytes_never_panic_and_spans_fall_on_char_boundaries() {
    let s = scanner();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..400 {
        let len = (rng.next() % 3000) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                // Mostly the bytes the detectors care about, some of anything.
                const NUMERIC: &[u8] = b"0123456789 -.()+/:@=_\n\"'";
                const LETTERS: &[u8] = b"AKIASGskxoabcdefXYZQ~|#*";
                match r % 4 {
                    0 => NUMERIC[(r >> 8) as usize % NUMERIC.len()],
                    1 => LETTERS[(r >> 8) as usize % LETTERS.len()],
                    _ => (r >> 16) as u8,
                }
            })
            .collect();
        check_spans(&s, &String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn fragments_of_every_format_in_random_order_never_panic() {
    const FRAGMENTS: [&str; 40] = [
        "AKIA",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "sk-",
        "sk-ant-",
        "sk_live_",
        "SG.",
        "SK",
        "AIza",
        "GOCSPX-",
        "npm_",
        "pypi-AgEIcHlwaS5vcmc",
        "glpat-",
        "-----BEGIN ",
        "PRIVATE KEY-----",
        "-----END ",
        "eyJ",
        "AccountKey=",
        "8Q~",
        "service_account",
        "\"private_key\": \"",
        "password=",
        "token: \"",
        "Bearer ",
        "SECRET//",
        "CONFIDENTIAL",
        "TLP:",
        "+44 ",
        "(415) ",
        "4111 ",
        "DE89 ",
        "123-45-",
        "::",
        "10.0.",
        "@",
        "é",
        "€",
        "\\n",
        "hooks.slack.com/services/",
    ];
    let s = scanner();
    let mut rng = XorShift(42);
    for _ in 0..2000 {
        let mut text = String::new();
        for _ in 0..(rng.next() % 12) {
            text.push_str(FRAGMENTS[(rng.next() % 40) as usize]);
            if rng.next().is_multiple_of(2) {
                let n = (rng.next() % 70) as usize;
                text.push_str(&b62(n)[..n]);
            }
        }
        check_spans(&s, &text);
    }
}
