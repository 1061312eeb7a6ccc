//! Parsing send targets: mail addresses, URLs and bare host names.
//!
//! A target is reduced to the one thing destinations match on, a lowercase domain
//! or host, using the `url` crate for URLs and IDNA, so that `Evil.COM.`, an
//! internationalised spelling, or a `user@host` prefix in a URL cannot slip a
//! target past its destination.

use std::fmt;

/// A parsed send target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mail address.
    Mail {
        /// The full address, as given (trimmed).
        address: String,
        /// Its domain, lowercase, ASCII (punycode).
        domain: String,
    },
    /// A URL or bare host name.
    Host {
        /// The host, lowercase, ASCII (punycode), or an IP address.
        host: String,
    },
}

impl Target {
    /// Parses a mail address (`a@b.com`, `Name <a@b.com>`), a URL or a host name.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if s.contains("://") {
            let url = url::Url::parse(s).map_err(|e| TargetError::Invalid {
                target: s.to_owned(),
                why: e.to_string(),
            })?;
            let host = url.host_str().ok_or_else(|| TargetError::Invalid {
                target: s.to_owned(),
                why: "the URL has no host".into(),
            })?;
            return Ok(Target::Host {
                host: normalise_host(host, s)?,
            });
        }
        // `Display Name <addr@domain>`: take the address in the last angle brackets.
        let addr = match (s.rfind('<'), s.rfind('>')) {
            (Some(open), Some(close)) if open < close => s[open + 1..close].trim(),
            _ => s,
        };
        if let Some(at) = addr.rfind('@') {
            let domain = &addr[at + 1..];
            if at == 0 || domain.is_empty() {
                return Err(TargetError::Invalid {
                    target: s.to_owned(),
                    why: "a mail address needs a local part and a domain".into(),
                });
            }
            return Ok(Target::Mail {
                address: addr.to_owned(),
                domain: normalise_host(domain, s)?,
            });
        }
        Ok(Target::Host {
            host: normalise_host(addr, s)?,
        })
    }

    /// The domain or host that destinations match on.
    pub fn host(&self) -> &str {
        match self {
            Target::Mail { domain, .. } => domain,
            Target::Host { host } => host,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Mail { address, .. } => f.write_str(address),
            Target::Host { host } => f.write_str(host),
        }
    }
}

fn normalise_host(host: &str, target: &str) -> Result<String, TargetError> {
    let h = host.trim().trim_end_matches('.');
    // `url` wants IPv6 literals in brackets, as they appear in URLs.
    let bracketed;
    let h = if h.contains(':') && !h.starts_with('[') {
        bracketed = format!("[{h}]");
        bracketed.as_str()
    } else {
        h
    };
    let parsed = url::Host::parse(h).map_err(|e| TargetError::Invalid {
        target: target.to_owned(),
        why: format!("`{host}` is not a valid host: {e}"),
    })?;
    Ok(match parsed {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

/// Why a send target could not be understood (the request is then denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing was given.
    #[error("empty send target")]
    Empty,
    /// The target is not a mail address, URL or host name.
    #[error("invalid send target `{target}`: {why}")]
    Invalid {
        /// The target as given.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// The inventory has no default destination (cannot happen once resolved).
    #[error("the inventory has no default destination")]
    NoDefault,
}

/// Whether a URL's host is a loopback address (`localhost`, `127.0.0.0/8`, `::1`).
pub(crate) fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> String {
        Target::parse(s).unwrap().host().to_owned()
    }

    #[test]
    fn mail_addresses_reduce_to_their_domain() {
        assert_eq!(host("bob@Competitor.COM"), "competitor.com");
        assert_eq!(host("Bob <bob@rival.example.>"), "rival.example");
        assert_eq!(host("\"a@acme.example\"@evil.example"), "evil.example");
        assert!(Target::parse("@evil.example").is_err());
        assert!(Target::parse("bob@").is_err());
        assert!(Target::parse("bob@exa mple.com").is_err());
    }

    #[test]
    fn urls_reduce_to_their_host() {
        assert_eq!(host("https://acme.example@evil.example/x"), "evil.example");
        assert_eq!(host("https://EVIL.example:8443/path?q=1"), "evil.example");
        assert_eq!(host("http://[::1]/"), "::1");
        assert_eq!(host("https://bücher.example/"), "xn--bcher-kva.example");
        assert!(Target::parse("file:///etc/passwd").is_err());
        assert_eq!(host("files.acme.example"), "files.acme.example");
    }
}
