//! URLs of the libraries a device installs from: `http://` and `https://` only, parsed,
//! printed, and followed to where a redirect's `Location` points.

use crate::error::{Error, Result};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        }
    }
}

/// A parsed `http://host[:port]/path` or `https://...` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (80 or 443 when not given).
    pub port: u16,
    /// Path, starting with `/` (with the query, if any).
    pub path: String,
}

impl Url {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |problem: &str| Error::Http {
            url: s.to_string(),
            problem: problem.to_string(),
        };
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("http://") {
            (Scheme::Http, &s[7..])
        } else if lower.starts_with("https://") {
            if !cfg!(feature = "tls") {
                return Err(bad(
                    "https:// needs a romlib-device built with the tls feature (this one is http-only)",
                ));
            }
            (Scheme::Https, &s[8..])
        } else {
            return Err(bad("not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("user names in URLs are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("bad IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => scheme.default_port(),
        };
        if host.is_empty() || port == 0 {
            return Err(bad("no host"));
        }
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
            path: path.split('#').next().unwrap_or("/").to_string(),
        })
    }

    /// `rel` (a relative path without a leading `/`) resolved against this URL as a folder.
    pub fn join(&self, rel: &str) -> Url {
        let mut path = self.path.clone();
        if !path.ends_with('/') {
            path.push('/');
        }
        for seg in rel.split('/') {
            path.push_str(&percent_encode(seg));
            path.push('/');
        }
        path.pop();
        Url {
            path,
            ..self.clone()
        }
    }

    /// `host[:port]` as a `Host` header gives it (the port only when not the default).
    pub fn authority(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }

    /// What a kept connection is for: scheme, host and port.
    pub(super) fn origin(&self) -> String {
        format!("{}{}", self.scheme.prefix(), self.authority())
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.scheme.prefix(),
            self.authority(),
            self.path
        )
    }
}

fn percent_encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a redirect from `from` to `location` goes: an absolute `http://` or `https://`
/// URL (never from `https://` down to `http://`), a scheme-relative `//host/path`, an
/// absolute path or a path relative to `from`'s folder.
pub(super) fn redirect(from: &Url, location: &str) -> std::result::Result<Url, String> {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    let to = if lower.starts_with("http://") || lower.starts_with("https://") {
        Url::parse(location).map_err(|e| match e {
            Error::Http { problem, .. } => format!("redirect to {location:?}: {problem}"),
            e => e.to_string(),
        })?
    } else if let Some(rest) = location.strip_prefix("//") {
        return redirect(from, &format!("{}{rest}", from.scheme.prefix()));
    } else if location
        .split(['/', '?'])
        .next()
        .is_some_and(|first| first.contains(':'))
    {
        return Err(format!(
            "redirect to {location:?}, which is not an http:// or https:// URL"
        ));
    } else {
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let dir = &from.path[..from.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Url {
            path,
            ..from.clone()
        }
    };
    if from.scheme == Scheme::Https && to.scheme == Scheme::Http {
        return Err(format!(
            "redirect from https:// down to {to} refused (the connection would lose its encryption)"
        ));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://localhost:8080/lib").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 8080, "/lib")
        );
        assert_eq!(
            u.join("games/a b.manifest").to_string(),
            "http://localhost:8080/lib/games/a%20b.manifest"
        );
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.join("x").to_string(), "http://[::1]/x");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        for bad in [
            "ftp://h",
            "http://",
            "http://h:x/",
            "http://u@h/",
            "http://h:0/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let from = Url::parse("http://h:1/a/b/c").unwrap();
        assert_eq!(redirect(&from, "/x").unwrap().to_string(), "http://h:1/x");
        assert_eq!(
            redirect(&from, "d").unwrap().to_string(),
            "http://h:1/a/b/d"
        );
        assert_eq!(
            redirect(&from, "http://o/p").unwrap().to_string(),
            "http://o/p"
        );
        assert_eq!(
            redirect(&from, "//o:8/p").unwrap().to_string(),
            "http://o:8/p"
        );
        for bad in [
            "ftp://o/p",
            "file:///etc/passwd",
            "javascript:x",
            "mailto:a@b",
        ] {
            assert!(
                redirect(&from, bad).unwrap_err().contains("not an http"),
                "{bad}"
            );
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_urls_and_redirects() {
        let u = Url::parse("https://h/x").unwrap();
        assert_eq!((u.port, u.to_string().as_str()), (443, "https://h/x"));
        assert_eq!(
            Url::parse("HTTPS://h:8443/").unwrap().to_string(),
            "https://h:8443/"
        );
        let from = Url::parse("http://h:1/a/b/c").unwrap();
        assert_eq!(
            redirect(&from, "https://o/p").unwrap().to_string(),
            "https://o/p"
        );
        let secure = Url::parse("https://h/a").unwrap();
        assert!(redirect(&secure, "http://h/a")
            .unwrap_err()
            .contains("refused"));
        assert!(redirect(&secure, "//o/a")
            .unwrap()
            .to_string()
            .starts_with("https://"));
        assert_eq!(redirect(&secure, "/b").unwrap().to_string(), "https://h/b");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        let e = Url::parse("https://h/x").unwrap_err().to_string();
        assert!(e.contains("tls feature"), "{e}");
    }
}
