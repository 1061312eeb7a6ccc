//! Generators for personal and financial data, markings and dictionary terms.

use super::carriers::{embed, filler};
use super::secrets;
use super::{DIGITS, Doc, HEX, Rng, UPPER};

pub(crate) const FIRST: [&str; 20] = [
    "jane", "john", "maria", "li", "ahmed", "olga", "pierre", "sofia", "kenji", "amara", "lucas",
    "emma", "noah", "chloe", "mateo", "ines", "oskar", "yuki", "fatima", "raj",
];
pub(crate) const LAST: [&str; 20] = [
    "doe", "smith", "garcia", "wang", "khan", "ivanova", "martin", "rossi", "tanaka", "okafor",
    "silva", "muller", "nowak", "jensen", "dubois", "kim", "patel", "cohen", "haddad", "berg",
];
pub(crate) const COMPANIES: [&str; 14] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "hooli",
    "vandelay",
    "soylent",
    "cyberdyne",
    "tyrell",
    "wonka",
    "gringotts",
    "oceanic",
];
const TLDS: [&str; 16] = [
    "com", "org", "net", "io", "de", "fr", "co.uk", "com.au", "nl", "ch", "dev", "app", "info",
    "eu", "ca", "jp",
];

/// Terms of the `customer_name` evaluation dictionary (case-insensitive).
pub(crate) const CUSTOMERS: [&str; 8] = [
    "Northwind Traders",
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Adventure Works",
    "Zürich Versicherung",
    "Wide World Importers",
    "Litware",
];

/// Terms of the `project_codename` evaluation dictionary (case-sensitive).
pub(crate) const CODENAMES: [&str; 3] = ["BLUEBIRD", "Nightjar", "KESTREL-7"];

/// One example of `family`.
pub(crate) fn make(family: &str, r: &mut Rng, positive: bool) -> Doc {
    let mut d = Doc::default();
    match family {
        "email" => email(r, &mut d, positive),
        "phone" => phone(r, &mut d, positive),
        "payment_card" => card(r, &mut d, positive),
        "iban" => iban(r, &mut d, positive),
        "us_ssn" => ssn(r, &mut d, positive),
        "ip_address" => ip(r, &mut d, positive),
        "classification_marking" => marking(r, &mut d, positive),
        "customer_name" => customer(r, &mut d, positive),
        "project_codename" => codename(r, &mut d, positive),
        other => secrets::make(other, r, &mut d, positive),
    }
    d
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- e-mail

fn email_address(r: &mut Rng) -> String {
    let f = *r.pick(&FIRST);
    let l = *r.pick(&LAST);
    let (f, l) = if r.chance(20) {
        (capitalize(f), capitalize(l))
    } else {
        (f.to_owned(), l.to_owned())
    };
    let local = match r.below(8) {
        0 => format!("{f}.{l}"),
        1 => format!("{f}{l}"),
        2 => format!("{f}_{l}"),
        3 => format!("{}{l}", &f[..1]),
        4 => format!("{f}.{l}{}", r.range(1, 99)),
        5 => format!("{f}+{}", r.pick(&["billing", "news", "jira", "dev"])),
        6 => format!("{f}-{l}"),
        _ => format!("{l}.{f}{}", r.range(1960, 2005)),
    };
    let company = *r.pick(&COMPANIES);
    let tld = *r.pick(&TLDS);
    let domain = match r.below(5) {
        0 => format!("mail.{company}.{tld}"),
        1 => format!("{company}-{}.{tld}", r.pick(&["group", "labs", "corp"])),
        _ => format!("{company}.{tld}"),
    };
    format!("{local}@{domain}")
}

fn email(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 9] = [
        ("Please contact ", " for access."),
        ("Forwarded by ", " on Monday."),
        ("cc: ", "\n"),
        ("Reply-To: ", "\n"),
        ("Send the invoice to ", ", thanks!"),
        ("The account owner (", ") approved it."),
        ("<a href=\"mailto:", "\">Email us</a>"),
        ("From: Jane Roe <", ">\n"),
        ("Questions? Write to ", ""),
    ];
    const FIELDS: [&str; 5] = ["email", "contact", "owner_email", "reply_to", "user"];
    if positive {
        let addr = email_address(r);
        let field = *r.pick(&FIELDS);
        embed(r, d, Some("email"), field, &addr, &PROSE);
        return;
    }
    let f = *r.pick(&FIRST);
    let l = *r.pick(&LAST);
    let company = *r.pick(&COMPANIES);
    let (value, prose): (String, &[(&str, &str)]) = match r.below(9) {
        0 => (format!("{f}@{company}"), &[("ssh ", " and check the logs")]),
        1 => (format!("{f}@localhost"), &[("logged in as ", " yesterday")]),
        2 => (format!("@{f}{l}"), &[("Follow ", " for updates.")]),
        3 => (
            format!(
                "{}@{}x.{}",
                r.pick(&["logo", "icon", "hero", "avatar"]),
                r.range(2, 3),
                r.pick(&["png", "jpg", "svg", "webp"])
            ),
            &[("<img src=\"/static/", "\">")],
        ),
        4 => (
            format!(
                "{}@{}.{}.{}",
                r.pick(&["react", "lodash", "express", "typescript"]),
                r.range(1, 20),
                r.range(0, 30),
                r.range(0, 40)
            ),
            &[("npm install ", " --save")],
        ),
        5 => (
            format!("@{company}/{}", r.pick(&["ui", "core", "utils"])),
            &[("import x from '", "';")],
        ),
        6 => (
            format!("{f}@{company}.{}", r.range(10, 999)),
            &[("bad address ", " rejected")],
        ),
        7 => (format!("{f}@@{company}.com"), &[("typo in ", " fixed")]),
        _ => (format!("{f}.{l}@{company}"), &[("user ", " on host")]),
    };
    embed(r, d, None, "handle", &value, prose);
}

// ---------------------------------------------------------------- phone

fn nxx(r: &mut Rng) -> String {
    format!("{}{}", r.range(2, 9), r.digits(2))
}

fn phone_number(r: &mut Rng) -> String {
    let d = |r: &mut Rng, n: usize| r.digits(n);
    match r.below(34) {
        0 => format!("+1 {}-{}-{}", nxx(r), nxx(r), d(r, 4)),
        1 => format!("+1 ({}) {}-{}", nxx(r), nxx(r), d(r, 4)),
        2 => format!("({}) {}-{}", nxx(r), nxx(r), d(r, 4)),
        3 => format!("{}-{}-{}", nxx(r), nxx(r), d(r, 4)),
        4 => format!("{}.{}.{}", nxx(r), nxx(r), d(r, 4)),
        5 => format!(
            "1-{}-{}-{}",
            r.pick(&["800", "888", "877"]),
            nxx(r),
            d(r, 4)
        ),
        6 => format!("+1{}{}{}", nxx(r), nxx(r), d(r, 4)),
        7 => format!("{} {} {}", nxx(r), nxx(r), d(r, 4)),
        8 => format!("{} {}-{}", nxx(r), nxx(r), d(r, 4)),
        9 => format!("+44 20 {} {}", d(r, 4), d(r, 4)),
        10 => format!("+44 (0)20 {} {}", d(r, 4), d(r, 4)),
        11 => format!("020 {} {}", d(r, 4), d(r, 4)),
        12 => format!("07{} {}", d(r, 3), d(r, 6)),
        13 => format!("+44 7{} {}", d(r, 3), d(r, 6)),
        14 => format!("+447{}{}", d(r, 3), d(r, 6)),
        15 => format!("+49 30 {}", d(r, 8)),
        16 => format!("030 {}", d(r, 8)),
        17 => format!("030/{}", d(r, 7)),
        18 => format!("+49 171 {}", d(r, 7)),
        19 => format!("0171 {}", d(r, 7)),
        20 => format!(
            "+33 {} {} {} {} {}",
            r.range(1, 9),
            d(r, 2),
            d(r, 2),
            d(r, 2),
            d(r, 2)
        ),
        21 => format!(
            "0{} {} {} {} {}",
            r.range(1, 9),
            d(r, 2),
            d(r, 2),
            d(r, 2),
            d(r, 2)
        ),
        22 => format!(
            "0{}.{}.{}.{}.{}",
            r.range(6, 7),
            d(r, 2),
            d(r, 2),
            d(r, 2),
            d(r, 2)
        ),
        23 => format!("+91 9{} {}", d(r, 4), d(r, 5)),
        24 => format!("+81 3-{}-{}", d(r, 4), d(r, 4)),
        25 => format!("090-{}-{}", d(r, 4), d(r, 4)),
        26 => format!("+61 2 {} {}", d(r, 4), d(r, 4)),
        27 => format!("(02) {} {}", d(r, 4), d(r, 4)),
        28 => format!("04{} {} {}", d(r, 2), d(r, 3), d(r, 3)),
        29 => format!("+55 11 9{}-{}", d(r, 4), d(r, 4)),
        30 => format!("(11) 9{}-{}", d(r, 4), d(r, 4)),
        31 => format!("+31 20 {} {}", d(r, 3), d(r, 4)),
        32 => format!("+34 9{} {} {}", d(r, 2), d(r, 3), d(r, 3)),
        _ => format!("0044 20 {} {}", d(r, 4), d(r, 4)),
    }
}

fn phone(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 8] = [
        ("Call me at ", " tomorrow."),
        ("Tel: ", "\n"),
        ("Phone: ", ""),
        ("You can reach the front desk on ", "."),
        ("Mobile: ", " (after 6pm)"),
        ("Please call ", " to reschedule."),
        ("TEL;TYPE=work,voice:", "\n"),
        ("Kontakt: Jane Roe, ", ""),
    ];
    const FIELDS: [&str; 5] = ["phone", "mobile", "tel", "phone_number", "contact_phone"];
    if positive {
        let number = phone_number(r);
        let field = *r.pick(&FIELDS);
        embed(r, d, Some("phone"), field, &number, &PROSE);
        return;
    }
    let y = r.range(2015, 2025);
    let (mo, da, h, mi, s) = (
        r.range(1, 12),
        r.range(1, 28),
        r.range(0, 23),
        r.range(0, 59),
        r.range(0, 59),
    );
    let (value, field) = match r.below(20) {
        0 => (format!("{y}-{mo:02}-{da:02}"), "date"),
        1 => (format!("{da:02}.{mo:02}.{y}"), "datum"),
        2 => (format!("{mo:02}/{da:02}/{y}"), "date"),
        3 => (
            format!("{y}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}"),
            "created",
        ),
        4 => (format!("{da:02}/{mo:02}/{y} {h:02}:{mi:02}"), "when"),
        5 => (
            format!("v{}.{}.{}", r.range(1, 20), r.range(0, 30), r.range(0, 99)),
            "version",
        ),
        6 => (
            format!("build {y}{mo:02}{da:02}.{}", r.range(1, 9)),
            "build",
        ),
        7 => (format!("ORD-{y}-{}", r.digits(6)), "order_id"),
        8 => (format!("INV-{}-{}", r.digits(8), r.digits(4)), "invoice"),
        9 => (format!("#{}", r.digits(10)), "order"),
        10 => (format!("17{}", r.digits(8)), "timestamp"),
        11 => (format!("17{}", r.digits(11)), "ts_ms"),
        12 => (
            format!(
                "{},{},{}.{}",
                r.range(1, 999),
                r.digits(3),
                r.digits(3),
                r.digits(2)
            ),
            "amount",
        ),
        13 => (
            format!("{} {} {}", r.range(1, 9), r.digits(3), r.digits(3)),
            "population",
        ),
        14 => (format!("{}-{}", r.digits(5), r.digits(4)), "zip"),
        15 => (
            format!(
                "978-{}-{}-{}-{}",
                r.range(0, 9),
                r.digits(2),
                r.digits(6),
                r.range(0, 9)
            ),
            "isbn",
        ),
        16 => (
            format!("{}-{}", r.range(100, 400), r.range(401, 900)),
            "pages",
        ),
        17 => (format!("555-{}", r.digits(4)), "ext"),
        18 => (format!("+{}", r.digits(17)), "sequence"),
        _ => (
            format!(
                "{}.{}, {}.{}",
                r.range(10, 60),
                r.digits(4),
                r.range(1, 30),
                r.digits(4)
            ),
            "coords",
        ),
    };
    embed(
        r,
        d,
        None,
        field,
        &value,
        &[
            ("Reference: ", ""),
            ("Recorded value ", " in the ledger."),
            ("(", ")"),
        ],
    );
}

// ---------------------------------------------------------------- cards

/// The Luhn check digit for `body` (digits without the check digit).
fn luhn_digit(body: &[u8]) -> u8 {
    // Double every second digit from the right, counting the check digit as
    // the first: so the rightmost body digit is doubled.
    let mut sum = 0u32;
    for (i, &c) in body.iter().rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// A card number: issuer prefix, random digits, Luhn check digit.
fn card_digits(r: &mut Rng, prefix: &str, len: usize) -> String {
    let mut s = prefix.to_owned();
    while s.len() < len - 1 {
        s.push(char::from(*r.pick(DIGITS)));
    }
    let check = luhn_digit(s.as_bytes());
    s.push(char::from(check));
    s
}

fn brand_number(r: &mut Rng) -> String {
    match r.below(10) {
        0 | 1 => card_digits(r, "4", 16),
        2 => {
            let p = r.range(51, 55).to_string();
            card_digits(r, &p, 16)
        }
        3 => {
            let p = r.range(2221, 2720).to_string();
            card_digits(r, &p, 16)
        }
        4 => {
            let p = *r.pick(&["34", "37"]);
            card_digits(r, p, 15)
        }
        5 => {
            let p = match r.below(3) {
                0 => "6011".to_owned(),
                1 => "65".to_owned(),
                _ => r.range(644, 649).to_string(),
            };
            card_digits(r, &p, 16)
        }
        6 => {
            let p = r.range(3528, 3589).to_string();
            card_digits(r, &p, 16)
        }
        7 => {
            let p = if r.chance(50) {
                "36".to_owned()
            } else {
                r.range(300, 305).to_string()
            };
            card_digits(r, &p, 14)
        }
        8 => {
            let len = r.range(16, 19) as usize;
            card_digits(r, "62", len)
        }
        _ => card_digits(r, "4", 16),
    }
}

/// Lays a card number out the way people write it.
fn card_layout(r: &mut Rng, n: &str) -> String {
    let sep = match r.below(4) {
        0 => "",
        1 => "-",
        _ => " ",
    };
    if sep.is_empty() {
        return n.to_owned();
    }
    let groups: Vec<usize> = match n.len() {
        15 => vec![4, 6, 5],
        14 => vec![4, 6, 4],
        len => {
            let mut g = vec![4; len / 4];
            if len % 4 != 0 {
                g.push(len % 4);
            }
            g
        }
    };
    let mut out = String::new();
    let mut at = 0;
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&n[at..at + g]);
        at += g;
    }
    out
}

fn card(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 6] = [
        ("Card: ", " exp 09/27"),
        ("charged to card ", " on the 2nd."),
        ("Customer gave the full number ", " over the phone."),
        ("PAN ", "\n"),
        ("paid with ", ", CVV on file"),
        ("Please refund ", " today."),
    ];
    const FIELDS: [&str; 5] = ["card_number", "pan", "cc", "card", "payment_card"];
    let field = *r.pick(&FIELDS);
    if positive {
        let n = brand_number(r);
        let v = card_layout(r, &n);
        embed(r, d, Some("payment_card"), field, &v, &PROSE);
        return;
    }
    let n = match r.below(6) {
        // A typo: the check digit no longer matches.
        0 | 1 => {
            let mut n = brand_number(r).into_bytes();
            let last = n.len() - 1;
            n[last] = b'0' + (n[last] - b'0' + r.range(1, 9) as u8) % 10;
            String::from_utf8(n).unwrap_or_default()
        }
        // No issuer uses these prefixes.
        2 => {
            let p = r.pick(&["0", "1", "7", "8", "9"]).to_string();
            card_digits(r, &p, 16)
        }
        // Amex prefix, Visa length.
        3 => {
            let p = *r.pick(&["34", "37"]);
            card_digits(r, p, 16)
        }
        // Too short or too long.
        4 => {
            let len = if r.chance(50) { 12 } else { 20 };
            card_digits(r, "4", len)
        }
        _ => "0000000000000000".to_owned(),
    };
    let v = card_layout(r, &n);
    embed(r, d, None, field, &v, &PROSE);
}

// ---------------------------------------------------------------- IBAN

/// BBAN structures from the ISO 13616 registry: count and kind of characters
/// (`n` digits, `a` upper-case letters, `c` either).
const IBAN_SPECS: [(&str, &str); 34] = [
    ("DE", "18n"),
    ("GB", "4a14n"),
    ("FR", "10n11c2n"),
    ("NL", "4a10n"),
    ("ES", "20n"),
    ("IT", "1a10n12c"),
    ("BE", "12n"),
    ("AT", "16n"),
    ("CH", "5n12c"),
    ("PL", "24n"),
    ("SE", "20n"),
    ("IE", "4a14n"),
    ("PT", "21n"),
    ("FI", "14n"),
    ("DK", "14n"),
    ("NO", "11n"),
    ("LU", "3n13c"),
    ("CZ", "20n"),
    ("GR", "7n16c"),
    ("HU", "24n"),
    ("RO", "4a16c"),
    ("LT", "16n"),
    ("LV", "4a13c"),
    ("EE", "16n"),
    ("SK", "20n"),
    ("SI", "15n"),
    ("HR", "17n"),
    ("BG", "4a6n8c"),
    ("MT", "4a5n18c"),
    ("CY", "8n16c"),
    ("LI", "5n12c"),
    ("IS", "22n"),
    ("MC", "10n11c2n"),
    ("SM", "1a10n12c"),
];

fn bban(r: &mut Rng, spec: &str) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    for c in spec.chars() {
        if let Some(d) = c.to_digit(10) {
            count = count * 10 + d as usize;
            continue;
        }
        for _ in 0..count {
            let alphabet: &[u8] = match c {
                'n' => DIGITS,
                'a' => UPPER,
                _ if r.chance(70) => DIGITS,
                _ => UPPER,
            };
            out.push(char::from(*r.pick(alphabet)));
        }
        count = 0;
    }
    out
}

/// ISO 7064 MOD 97-10 remainder of `s` read as a number with letters as
/// 10–35, computed over 7-digit pieces of its decimal expansion.
fn mod97_of(s: &str) -> u64 {
    let mut expanded = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            expanded.push(c);
        } else {
            expanded.push_str(&(u32::from(c) - u32::from('A') + 10).to_string());
        }
    }
    let mut rem = 0u64;
    for piece in expanded.as_bytes().chunks(7) {
        for &b in piece {
            rem = rem * 10 + u64::from(b - b'0');
        }
        rem %= 97;
    }
    rem
}

fn iban_with_check(cc: &str, bban: &str) -> (String, u64) {
    let check = 98 - mod97_of(&format!("{bban}{cc}00"));
    (format!("{cc}{check:02}{bban}"), check)
}

fn iban_layout(r: &mut Rng, iban: &str) -> String {
    if r.chance(50) {
        return iban.to_owned();
    }
    let chars: Vec<char> = iban.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn iban(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 6] = [
        ("IBAN: ", ""),
        ("Please transfer the deposit to ", " by Friday."),
        ("Kontoinhaber: Jane Roe, IBAN ", ", BIC DEUTDEFFXXX"),
        ("Beneficiary account ", "\n"),
        ("New bank details: ", " (effective immediately)"),
        ("Pay to ", "."),
    ];
    const FIELDS: [&str; 4] = ["iban", "account", "beneficiary_iban", "bank_account"];
    let (cc, spec) = *r.pick(&IBAN_SPECS);
    let b = bban(r, spec);
    let (valid, check) = iban_with_check(cc, &b);
    let field = *r.pick(&FIELDS);
    if positive {
        let v = iban_layout(r, &valid);
        embed(r, d, Some("iban"), field, &v, &PROSE);
        return;
    }
    let wrong = match r.below(5) {
        0 | 1 => {
            let mut other = r.range(2, 98) as u64;
            if other == check {
                other = if check == 98 { 2 } else { check + 1 };
            }
            format!("{cc}{other:02}{b}")
        }
        // A typo in the account part.
        2 => {
            let mut chars: Vec<char> = valid.chars().collect();
            let i = 4 + r.below(chars.len() - 4);
            chars[i] = match chars[i] {
                '9' => '0',
                c if c.is_ascii_digit() => char::from(c as u8 + 1),
                'Z' => 'A',
                c => char::from(c as u8 + 1),
            };
            chars.into_iter().collect()
        }
        // One character missing.
        3 => valid[..valid.len() - 1].to_owned(),
        // Not a registered country code.
        _ => {
            let fake = *r.pick(&["UK", "ZZ", "QX", "XA"]);
            let (v, _) = iban_with_check(fake, &b);
            v
        }
    };
    let v = iban_layout(r, &wrong);
    embed(r, d, None, field, &v, &PROSE);
}

// ---------------------------------------------------------------- SSN

fn ssn(r: &mut Rng, d: &mut Doc, positive: bool) {
    const KEYED: [(&str, &str); 6] = [
        ("SSN: ", ""),
        ("Social Security Number: ", "\n"),
        ("Her SSN is ", "."),
        ("ssn=", " verified"),
        ("Applicant SSN ", " (on file)"),
        ("SSN#: ", ", DOB 1984-03-02"),
    ];
    const PLAIN: [(&str, &str); 3] = [
        ("Employee record: Jane Roe, ", ", hired 2019."),
        ("ID on file: ", ""),
        ("Verified ", " against the registry."),
    ];
    if positive {
        let mut area = r.range(1, 899);
        if area == 666 {
            area = 665;
        }
        let group = r.range(1, 99);
        let serial = r.range(1, 9999);
        match r.below(10) {
            0..=6 => {
                let v = format!("{area:03}-{group:02}-{serial:04}");
                let prose: &[(&str, &str)] = if r.chance(50) { &KEYED } else { &PLAIN };
                let field = *r.pick(&["ssn", "social_security_number", "SSN"]);
                embed(r, d, Some("us_ssn"), field, &v, prose);
            }
            7 | 8 => {
                let v = format!("{area:03} {group:02} {serial:04}");
                let field = *r.pick(&["ssn", "social_security_number"]);
                embed(r, d, Some("us_ssn"), field, &v, &KEYED);
            }
            _ => {
                let v = format!("{area:03}{group:02}{serial:04}");
                let field = *r.pick(&["ssn", "social_security_number", "SSN"]);
                embed(r, d, Some("us_ssn"), field, &v, &KEYED);
            }
        }
        return;
    }
    let v = match r.below(7) {
        0 => format!("000-{:02}-{:04}", r.range(1, 99), r.range(1, 9999)),
        1 => format!("666-{:02}-{:04}", r.range(1, 99), r.range(1, 9999)),
        2 => format!(
            "{}-{:02}-{:04}",
            r.range(900, 999),
            r.range(1, 99),
            r.range(1, 9999)
        ),
        3 => format!("{:03}-00-{:04}", r.range(1, 899), r.range(1, 9999)),
        4 => format!("{:03}-{:02}-0000", r.range(1, 899), r.range(1, 99)),
        5 => {
            // Nine digits with no SSN word near: an order or tracking number.
            let v = format!("{}{}", r.range(1, 8), r.digits(8));
            embed(
                r,
                d,
                None,
                "order_id",
                &v,
                &[("Order ", " shipped."), ("Tracking number ", "")],
            );
            return;
        }
        _ => format!(
            "{:03}-{:02}-{:05}",
            r.range(1, 899),
            r.range(1, 99),
            r.range(10000, 99999)
        ),
    };
    embed(r, d, None, "ssn", &v, &KEYED);
}

// ---------------------------------------------------------------- IP

fn ipv4(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!(
            "10.{}.{}.{}",
            r.range(0, 255),
            r.range(0, 255),
            r.range(1, 254)
        ),
        1 => format!("192.168.{}.{}", r.range(0, 255), r.range(1, 254)),
        _ => format!(
            "{}.{}.{}.{}",
            r.range(1, 223),
            r.range(0, 255),
            r.range(0, 255),
            r.range(1, 254)
        ),
    }
}

fn hex4(r: &mut Rng) -> String {
    let n = r.range(1, 4) as usize;
    let s = r.string(n, HEX);
    let s = s.trim_start_matches('0');
    if s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

fn ipv6(r: &mut Rng) -> String {
    match r.below(6) {
        0 => (0..8)
            .map(|_| r.string(4, HEX))
            .collect::<Vec<_>>()
            .join(":"),
        1 => format!("2001:db8:{}::{}", hex4(r), hex4(r)),
        2 => format!("fe80::{}:{}:{}:{}", hex4(r), hex4(r), hex4(r), hex4(r)),
        3 => "::1".to_owned(),
        4 => format!("2a00:{}:{}:{}::{}", hex4(r), hex4(r), hex4(r), hex4(r)),
        _ => format!(
            "::ffff:{}.{}.{}.{}",
            r.range(1, 223),
            r.range(0, 255),
            r.range(0, 255),
            r.range(1, 254)
        ),
    }
}

fn ip(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 5] = [
        ("client ", " connected"),
        ("Connection from ", " port 51234"),
        ("Blocked IP ", " after 5 failed logins."),
        ("The host resolved to ", "."),
        ("X-Forwarded-For: ", "\n"),
    ];
    const FIELDS: [&str; 5] = ["ip", "remote_addr", "client_ip", "source_ip", "host"];
    if positive {
        let v6 = r.chance(35);
        let addr = if v6 { ipv6(r) } else { ipv4(r) };
        match r.below(6) {
            0 if !v6 => {
                let port = r.range(1024, 65535);
                d.s("GET http://")
                    .v(Some("ip_address"), &addr)
                    .s(&format!(":{port}/health 200\n"));
            }
            0 => {
                d.s("curl https://[")
                    .v(Some("ip_address"), &addr)
                    .s("]:8443/status");
            }
            1 => {
                let ts = r.range(1, 28);
                d.v(Some("ip_address"), &addr).s(&format!(
                    " - - [{ts:02}/May/2024:09:21:33 +0000] \"GET /api/v1/items HTTP/1.1\" 200 512\n"
                ));
            }
            _ => {
                let field = *r.pick(&FIELDS);
                embed(r, d, Some("ip_address"), field, &addr, &PROSE);
            }
        }
        return;
    }
    let (v, field) = match r.below(10) {
        0 => (
            format!(
                "{}.{}.{}.{}",
                r.range(256, 999),
                r.range(0, 255),
                r.range(0, 255),
                r.range(0, 255)
            ),
            "ip",
        ),
        1 => (
            format!(
                "{}.{}.{}.{}.{}",
                r.range(1, 9),
                r.range(0, 9),
                r.range(0, 20),
                r.range(0, 9),
                r.range(0, 99)
            ),
            "version",
        ),
        2 => (
            format!(
                "v{}.{}.{}.{}",
                r.range(1, 9),
                r.range(0, 9),
                r.range(0, 20),
                r.range(0, 99)
            ),
            "version",
        ),
        3 => (
            format!("{}.{}.{}", r.range(1, 20), r.range(0, 30), r.range(0, 99)),
            "version",
        ),
        4 => (
            format!("1.3.6.1.4.1.{}.{}", r.range(1, 60000), r.range(1, 9)),
            "oid",
        ),
        5 => (
            format!(
                "{:02}:{:02}:{:02}",
                r.range(0, 23),
                r.range(0, 59),
                r.range(0, 59)
            ),
            "time",
        ),
        6 => (
            (0..6)
                .map(|_| r.string(2, HEX))
                .collect::<Vec<_>>()
                .join(":"),
            "mac",
        ),
        7 => (
            (*r.pick(&["std::vector<int>", "Foo::bar()", "crate::sensitive", "a::b"])).to_owned(),
            "symbol",
        ),
        8 => (format!("10.0.0.{}", r.range(256, 999)), "ip"),
        _ => (format!("2001:db8:{}", hex4(r)), "prefix"),
    };
    embed(
        r,
        d,
        None,
        field,
        &v,
        &[("Reference: ", ""), ("see ", " for details"), ("(", ")")],
    );
}

// ---------------------------------------------------------------- markings

fn marking(r: &mut Rng, d: &mut Doc, positive: bool) {
    if !positive {
        const NEAR: [&str; 14] = [
            "Please keep this confidential.",
            "The secret to good bread is time.",
            "Access is restricted to staff on weekends.",
            "This is a top-secret recipe, my grandmother said.",
            "Confidential information includes customer lists and pricing.",
            "Restricted Stock Units vest over four years.",
            "CONFIDENTIALITY AGREEMENT",
            "This document is NON-CONFIDENTIAL.",
            "SECRET SANTA SIGNUPS ARE OPEN",
            "Our internal-only wiki moved to a new host.",
            "The CUI program office published new guidance.",
            "A Secret Service agent was quoted.",
            "For internal use, see the handbook.",
            "SECRETS MANAGER ROTATION COMPLETED",
        ];
        d.s(filler(r))
            .s(" ")
            .s(r.pick::<&str>(&NEAR))
            .s(" ")
            .s(filler(r));
        return;
    }
    const LEVELS: [(&str, &str); 16] = [
        ("TOP SECRET", "classification_top_secret"),
        ("SECRET", "classification_secret"),
        (
            "STRICTLY CONFIDENTIAL",
            "classification_strictly_confidential",
        ),
        (
            "HIGHLY CONFIDENTIAL",
            "classification_strictly_confidential",
        ),
        ("CONFIDENTIAL", "classification_confidential"),
        ("COMPANY CONFIDENTIAL", "classification_confidential"),
        ("RESTRICTED", "classification_restricted"),
        ("CUI", "classification_cui"),
        ("FOR OFFICIAL USE ONLY", "classification_official_use_only"),
        ("FOUO", "classification_official_use_only"),
        ("INTERNAL USE ONLY", "classification_internal_use_only"),
        ("FOR INTERNAL USE ONLY", "classification_internal_use_only"),
        ("INTERNAL ONLY", "classification_internal_use_only"),
        ("TLP:RED", "classification_tlp_red"),
        ("TLP:AMBER", "classification_tlp_amber"),
        ("TLP:GREEN", "classification_tlp_green"),
    ];
    let (text, kind) = *r.pick(&LEVELS);
    let mut text = text.to_owned();
    if matches!(kind, "classification_top_secret" | "classification_secret") && r.chance(40) {
        text.push_str(r.pick::<&str>(&["//NOFORN", "//REL TO USA, FVEY", "//ORCON"]));
    }
    if kind == "classification_cui" && r.chance(50) {
        text.push_str(r.pick::<&str>(&["//SP-PRVCY", "//NOFORN"]));
    }
    if text == "TLP:AMBER" && r.chance(30) {
        text.push_str("+STRICT");
    }
    let k = Some(kind);
    match r.below(11) {
        0 => {
            d.v(k, &text).s("\n\n").s(filler(r)).s(" ").s(filler(r));
        }
        1 => {
            d.s(filler(r))
                .s("\n")
                .s(filler(r))
                .s("\n\n")
                .v(k, &text)
                .s("\n");
        }
        2 => {
            d.s("=== ").v(k, &text).s(" ===\n").s(filler(r));
        }
        3 => {
            d.s("**").v(k, &text).s("**\n\n").s(filler(r));
        }
        4 => {
            d.s("# ").v(k, &text).s("\n").s(filler(r));
        }
        5 => {
            d.s("[").v(k, &text).s("] Q3 planning notes\n").s(filler(r));
        }
        6 => {
            d.v(k, &text).s(" - do not forward\n").s(filler(r));
        }
        7 => {
            let n = r.range(1, 9);
            d.s(filler(r))
                .s(&format!("\nPage {n} of 12 | "))
                .v(k, &text)
                .s("\n");
        }
        8 => {
            d.s(r.pick::<&str>(&["Classification: ", "classification=", "Security level: "]))
                .v(k, &text)
                .s("\n")
                .s(filler(r));
        }
        9 => {
            d.s("{\"title\": \"Board minutes\", \"classification\": \"")
                .v(k, &text)
                .s("\", \"pages\": 14}");
        }
        _ => {
            d.s("<div class=\"banner\">")
                .v(k, &text)
                .s("</div>\n<p>")
                .s(filler(r))
                .s("</p>");
        }
    }
}

// ---------------------------------------------------------------- dictionaries

fn customer(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 5] = [
        ("Renewal call with ", " is on Tuesday."),
        ("The ", " account is up for review."),
        ("Notes: ", " asked for a discount."),
        ("Escalated by ", "'s procurement team."),
        ("Customer: ", "\n"),
    ];
    if positive {
        let term = *r.pick(&CUSTOMERS);
        let v = match r.below(4) {
            0 => term.to_uppercase(),
            1 => term.to_lowercase(),
            _ => term.to_owned(),
        };
        embed(r, d, Some("customer_name"), "customer", &v, &PROSE);
        return;
    }
    let v = *r.pick(&[
        "Contosoft",
        "Fabrikamation",
        "Litwareh",
        "NorthwindTraders",
        "TailspinToys",
        "AdventureWorksDB",
        "WideWorld Imports",
        "Zürich",
    ]);
    embed(r, d, None, "vendor", v, &PROSE);
}

fn codename(r: &mut Rng, d: &mut Doc, positive: bool) {
    const PROSE: [(&str, &str); 4] = [
        ("Status update on ", ": on track."),
        ("Do not mention ", " outside the team."),
        ("Milestone 3 of ", " slipped a week."),
        ("Tagged ", " in the tracker."),
    ];
    if positive {
        let v = *r.pick(&CODENAMES);
        embed(r, d, Some("project_codename"), "project", v, &PROSE);
        return;
    }
    let v = *r.pick(&[
        "a bluebird on the fence",
        "Bluebird",
        "nightjar",
        "NIGHTJAR",
        "KESTREL-70",
        "KESTREL",
    ]);
    embed(r, d, None, "note", v, &PROSE);
}
