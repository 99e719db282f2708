//! Who the client is, behind a TLS proxy (SPEC §8 `trusted_proxies`).
//!
//! Every deployment terminates TLS in a proxy, so the TCP peer is the proxy. When — and only
//! when — the peer is inside a `trusted_proxies` CIDR, the client address is taken from
//! `X-Forwarded-For` (the rightmost address that is not itself a trusted proxy, so a client
//! cannot choose its address by sending the header itself) or, without it, from
//! `Forwarded: for=`. That one address feeds the rate limiters, `prerelease_networks`, the
//! statistics hash and the logs. Headers from untrusted peers are ignored. Links never come
//! from request headers: they are built from `public_url`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address, as described above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn from_parts(parts: &Parts, trusted: &[IpNet]) -> ClientAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        ClientAddr(client_address(peer, &parts.headers, trusted))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::from_parts(parts, &state.trusted_proxies))
    }
}

/// Whether the client reached the proxy over HTTPS, as a trusted proxy says; decides the
/// `Secure` flag of cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedHttps(pub bool);

impl FromRequestParts<AppState> for ForwardedHttps {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ForwardedHttps(forwarded_https(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`: a dual-stack listener reports IPv4 peers that way.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client address of a request from `peer` with `headers` (pure, for tests).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops = forwarded_for(headers);
    // Right to left: every hop a trusted proxy appended is believed; the first address that is
    // not a trusted proxy is the client. Anything left of it was written by the client.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else {
            // Garbage where an address should be: stop at the last believable hop.
            return client;
        };
        client = canonical(*ip);
        if !is_trusted(client, trusted) {
            return client;
        }
    }
    client
}

/// Whether a trusted proxy says the client spoke HTTPS (`X-Forwarded-Proto: https` or
/// `Forwarded: proto=https`); informs logs and the `Secure` flag of cookies only.
pub fn forwarded_https(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> bool {
    if !is_trusted(canonical(peer), trusted) {
        return false;
    }
    let value = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let xfp = value("x-forwarded-proto");
    if let Some(last) = xfp.rsplit(',').next().filter(|s| !s.trim().is_empty()) {
        return last.trim().eq_ignore_ascii_case("https");
    }
    let forwarded = value("forwarded");
    forwarded
        .rsplit(',')
        .next()
        .into_iter()
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("proto")
                && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
        })
}

/// The addresses of `X-Forwarded-For` (all its headers, in order) or, without it, the `for=`
/// parameters of `Forwarded`; `None` for an entry that is not an address (`unknown`, an
/// obfuscated name, garbage).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !xff.is_empty() {
        return xff.into_iter().map(parse_node).collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map(|(_, v)| parse_node(v.trim().trim_matches('"')))
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let h = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(client_address(ip("127.0.0.5"), &h, &[]), ip("127.0.0.5"));
        let trusted = nets(&["127.0.0.2/32"]);
        assert_eq!(
            client_address(ip("127.0.0.5"), &h, &trusted),
            ip("127.0.0.5")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["127.0.0.2/32", "10.0.0.0/8"]);
        // The client forged the first entry; nginx appended the real one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 127.0.0.3")]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("127.0.0.3")
        );
        // Two proxies: the inner one appended the outer one's address.
        let h = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.1.1")]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("203.0.113.7")
        );
        // Several headers are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "127.0.0.4"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("127.0.0.4")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("127.0.0.2"), &HeaderMap::new(), &trusted),
            ip("127.0.0.2")
        );
        // Garbage stops the walk at the last believable hop.
        let h = headers(&[("x-forwarded-for", "127.0.0.3, nonsense")]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("127.0.0.2")
        );
        // IPv4-mapped peers are IPv4.
        let h = headers(&[("x-forwarded-for", "127.0.0.3")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.2"), &h, &trusted),
            ip("127.0.0.3")
        );
    }

    #[test]
    fn forwarded_header_when_there_is_no_x_forwarded_for() {
        let trusted = nets(&["127.0.0.2/32"]);
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::1]:4711\";proto=https",
        )]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("2001:db8::1")
        );
        assert!(forwarded_https(ip("127.0.0.2"), &h, &trusted));
        assert!(!forwarded_https(ip("127.0.0.9"), &h, &trusted));
        let h = headers(&[("forwarded", "for=192.0.2.60:80;by=x")]);
        assert_eq!(
            client_address(ip("127.0.0.2"), &h, &trusted),
            ip("192.0.2.60")
        );
        let h = headers(&[("x-forwarded-proto", "https")]);
        assert!(forwarded_https(ip("127.0.0.2"), &h, &trusted));
    }
}
