//! The client's address behind trusted proxies.
//!
//! Behind a load balancer every request comes from the balancer's address, so lock-outs by
//! address would lump every client together. With `--trusted-proxies` (CIDRs), a request from
//! a trusted peer is attributed to the address its proxies report: RFC 7239 `Forwarded: for=`,
//! else `X-Forwarded-For`, read **from the right** (the nearest proxy's entry first), skipping
//! addresses that are themselves trusted proxies. The first untrusted address is the client —
//! an address a client wrote into the header itself sits further left and is never reached
//! while a trusted proxy appended the real one. A request from an untrusted peer is always
//! attributed to the peer, whatever headers it sends.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The address to attribute a request from `peer` to.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
    let Some(hops) = hops else {
        return peer;
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = *ip,
            Some(ip) => return *ip,
            // An unparseable or obfuscated entry: stop at the last address we trust.
            None => return client,
        }
    }
    client
}

/// The `for=` addresses of every `Forwarded` element, in order (`None` for ones that are not
/// plain addresses, such as `unknown` or obfuscated identifiers).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let text = value.to_str().ok()?;
        for element in text.split(',') {
            let found = element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            });
            if let Some(ip) = found {
                hops.push(ip);
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        hops.extend(text.split(',').map(|h| parse_node(h.trim())));
    }
    (!hops.is_empty()).then_some(hops)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// Parses `--trusted-proxies`: comma-separated CIDRs or single addresses.
pub fn parse_trusted(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    "--trusted-proxies: each entry must be a CIDR such as 10.0.0.0/8 or an address"
                        .to_string()
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_themselves_whatever_they_send() {
        let trusted = parse_trusted("10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_address(ip("8.8.8.8"), &h, &trusted), ip("8.8.8.8"));
        assert_eq!(client_address(ip("8.8.8.8"), &h, &[]), ip("8.8.8.8"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = parse_trusted("10.0.0.0/8, 192.168.1.7").unwrap();
        // The client wrote a fake entry; the proxies appended the real address and their own.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.9")
        );
        let h = headers(&[(
            "forwarded",
            r#"for="[2001:db8::7]:4711";proto=https, for=10.2.2.2"#,
        )]);
        assert_eq!(
            client_address(ip("192.168.1.7"), &h, &trusted),
            ip("2001:db8::7")
        );
        // Forwarded wins over X-Forwarded-For; no header at all means the proxy itself.
        let h = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        // An obfuscated hop stops the walk at the last trusted address.
        let h = headers(&[("forwarded", "for=_hidden, for=10.3.3.3")]);
        assert_eq!(client_address(ip("10.0.0.2"), &h, &trusted), ip("10.3.3.3"));
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("nope").is_err());
        assert_eq!(parse_trusted("").unwrap(), vec![]);
    }
}
