//! IP addresses. IPv4 addresses come out of the digit-run pass
//! ([`super::numeric`]), which hands their octets here to be rated; IPv6
//! addresses are found from their colons (located with `memchr`), expanded to
//! the surrounding hex-and-colon token and parsed with the standard library.
//!
//! Private, loopback and link-local addresses are reported with a lower
//! confidence (rules `ipv4_private`, `ipv6_local`): they reveal network layout
//! rather than a person or host on the internet. Addresses that name no host
//! (`0.0.0.0`, `255.x.x.x` broadcast and netmasks, `::`) are not reported.

use std::net::Ipv6Addr;
use std::str::FromStr;

use super::text::{word_end, word_start};
use super::{Hit, SensitiveType};

/// The longest textual IPv6 address (with an embedded IPv4 address).
const MAX_IPV6: usize = 45;

/// The confidence and rule for an IPv4 address, or `None` for one that names
/// no host.
pub(super) fn ipv4_score(o: [u8; 4]) -> Option<(f32, &'static str)> {
    if o[0] == 0 || o[0] == 255 {
        return None;
    }
    let local = o[0] == 10
        || o[0] == 127
        || (o[0] == 172 && (16..=31).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 100 && (64..=127).contains(&o[1]));
    Some(if local {
        (0.6, "ipv4_private")
    } else {
        (0.9, "ipv4")
    })
}

/// Every IPv6 address in `bytes`.
pub(super) fn scan_ipv6(bytes: &[u8], out: &mut Vec<Hit>) {
    let mut next_free = 0;
    for colon in memchr::memchr_iter(b':', bytes) {
        if colon < next_free {
            continue;
        }
        // `"key":value` and `12:30` end here: an address has hex or a colon
        // on both sides of a colon, or starts with `::`.
        let next = bytes.get(colon + 1).copied().unwrap_or(b' ');
        let prev = colon.checked_sub(1).map_or(b' ', |p| bytes[p]);
        if !(next == b':'
            || (next.is_ascii_hexdigit() && (prev.is_ascii_hexdigit() || prev == b':')))
        {
            continue;
        }
        let mut start = colon;
        while start > 0 && colon - start < MAX_IPV6 && is_v6(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = colon;
        while end < bytes.len()
            && end - start < MAX_IPV6 + 8
            && (is_v6(bytes[end]) || bytes[end] == b'.')
        {
            end += 1;
        }
        next_free = end;
        // A trailing dot ends a sentence.
        while end > colon && bytes[end - 1] == b'.' {
            end -= 1;
        }
        if !word_start(bytes, start) || !word_end(bytes, end) || end - start > MAX_IPV6 {
            continue;
        }
        if let Some((score, rule)) = ipv6(&bytes[start..end]) {
            out.push(Hit::new(SensitiveType::IpAddress, start, end, score, rule));
        }
    }
}

/// `[0-9A-Fa-f:]`.
fn is_v6(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':'
}

/// The confidence and rule for a candidate IPv6 address, or `None` if it is
/// not one (or names no host).
fn ipv6(candidate: &[u8]) -> Option<(f32, &'static str)> {
    if memchr::memchr_iter(b':', candidate).count() < 2 {
        return None;
    }
    // Compressed forms are short enough to be words (`add::fe`): require a
    // digit, which every address in use has.
    if !candidate.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let s = std::str::from_utf8(candidate).ok()?;
    let addr = Ipv6Addr::from_str(s).ok()?;
    if addr.is_unspecified() {
        return None;
    }
    let first = addr.segments()[0];
    let local = addr.is_loopback()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xfe00) == 0xfc00
        || addr.to_ipv4_mapped().is_some_and(|v4| {
            ipv4_score(v4.octets()).is_some_and(|(_, rule)| rule == "ipv4_private")
        });
    Some(if local {
        (0.6, "ipv6_local")
    } else {
        (0.85, "ipv6")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        scan_ipv6(text.as_bytes(), &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn full_and_compressed_ipv6_addresses_are_found() {
        assert_eq!(
            found("src=2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok"),
            ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
        );
        assert_eq!(found("connect [2001:db8::1]:8443"), ["2001:db8::1"]);
        assert_eq!(found("listening on ::1."), ["::1"]);
        assert_eq!(
            found("mapped ::ffff:192.0.2.128 here"),
            ["::ffff:192.0.2.128"]
        );
        assert_eq!(
            found("fe80::1ff:fe23:4567:890a%eth0"),
            ["fe80::1ff:fe23:4567:890a"]
        );
    }

    #[test]
    fn times_macs_paths_and_json_are_not_ipv6() {
        for t in [
            "at 12:34:56 today",
            "mac 00:1a:2b:3c:4d:5e",
            "std::vector<int>",
            r#"{"a":1,"b":"c"}"#,
            "2024-01-15T10:30:00Z",
            "dead::beef",
            "bind :: any",
            "2001:db8 only",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn private_ranges_are_rated_lower() {
        assert_eq!(ipv4_score([10, 1, 2, 3]), Some((0.6, "ipv4_private")));
        assert_eq!(ipv4_score([8, 8, 8, 8]), Some((0.9, "ipv4")));
        assert_eq!(ipv4_score([255, 255, 255, 0]), None);
        assert_eq!(ipv6(b"fe80::1").map(|s| s.1), Some("ipv6_local"));
        assert_eq!(ipv6(b"2a00:1450::200e").map(|s| s.1), Some("ipv6"));
    }
}
