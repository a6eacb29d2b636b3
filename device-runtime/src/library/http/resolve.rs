//! Host names to addresses without the C library: IP literals, `localhost`, `/etc/hosts`,
//! then one DNS query over UDP to the servers in `/etc/resolv.conf`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The addresses of `host`, without the C library's resolver.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lower = host.to_ascii_lowercase();
    let mut ips = hosts_file(&lower);
    if ips.is_empty() && (lower == "localhost" || lower.ends_with(".localhost")) {
        ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
    }
    if ips.is_empty() {
        ips = dns_query(&lower, timeout)?;
    }
    if ips.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cannot resolve host {host:?}"),
        ));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Addresses `/etc/hosts` gives `host` (lower-case), in file order.
fn hosts_file(host: &str) -> Vec<IpAddr> {
    let Ok(text) = std::fs::read_to_string("/etc/hosts") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(host)) {
            out.push(ip);
        }
    }
    out
}

/// IPv4 addresses of `host` from the first name server in `/etc/resolv.conf` that answers.
fn dns_query(host: &str, timeout: Duration) -> std::io::Result<Vec<IpAddr>> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<IpAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if host.len() > 253 || host.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad host name {host:?}"),
        ));
    }
    // Query: a fixed id, recursion desired, one question for an A record.
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = Vec::with_capacity(512);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in host.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("cannot resolve host {host:?}: no name server in /etc/resolv.conf"),
    );
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let attempt = (|| -> std::io::Result<Vec<IpAddr>> {
            let sock = UdpSocket::bind(bind)?;
            sock.set_read_timeout(Some(timeout))?;
            sock.connect((server, 53))?;
            sock.send(&q)?;
            let mut buf = [0u8; 1500];
            loop {
                let n = sock.recv(&mut buf)?;
                if n >= 12 && buf[..2] == id.to_be_bytes() {
                    return Ok(parse_dns_answer(&buf[..n]));
                }
            }
        })();
        match attempt {
            Ok(ips) if !ips.is_empty() => return Ok(ips),
            Ok(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("cannot resolve host {host:?}: no address from {server}"),
                )
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The A records of a DNS response (CNAME chains are followed by the recursive server).
fn parse_dns_answer(b: &[u8]) -> Vec<IpAddr> {
    let rd16 = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize)
    };
    let skip_name = |mut i: usize| -> Option<usize> {
        loop {
            let len = *b.get(i)? as usize;
            if len == 0 {
                return Some(i + 1);
            }
            if len & 0xC0 == 0xC0 {
                return Some(i + 2);
            }
            i += 1 + len;
        }
    };
    let mut out = Vec::new();
    let (Some(qd), Some(an)) = (rd16(4), rd16(6)) else {
        return out;
    };
    if b.get(3).is_none_or(|f| f & 0x0F != 0) {
        return out; // an error rcode
    }
    let mut i = 12;
    for _ in 0..qd {
        match skip_name(i) {
            Some(j) => i = j + 4,
            None => return out,
        }
    }
    for _ in 0..an {
        let Some(j) = skip_name(i) else { return out };
        let (Some(typ), Some(class), Some(rdlen)) = (rd16(j), rd16(j + 2), rd16(j + 8)) else {
            return out;
        };
        let data = j + 10;
        if typ == 1 && class == 1 && rdlen == 4 {
            if let Some(a) = b.get(data..data + 4) {
                out.push(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])));
            }
        }
        i = data + rdlen;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_without_libc() {
        let t = Duration::from_secs(1);
        assert_eq!(
            resolve("127.0.0.1", 5, t).unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 5))]
        );
        let l = resolve("localhost", 5, t).unwrap();
        assert!(l.iter().any(|a| a.ip().is_loopback()), "{l:?}");
    }

    #[test]
    fn dns_answers() {
        // id 1, response, 1 question (a.b A IN), 2 answers: a CNAME then an A record.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);
        assert_eq!(
            parse_dns_answer(&m),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))]
        );
        for cut in 0..m.len() {
            let _ = parse_dns_answer(&m[..cut]);
        }
        m[3] = 0x83; // NXDOMAIN
        assert!(parse_dns_answer(&m).is_empty());
    }
}
