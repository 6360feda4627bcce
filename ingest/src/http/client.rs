//! Who a request is from. Behind the edge every request comes from the edge's address, so per-address
//! limits would count all viewers as one client: for a request from a trusted proxy the client is
//! taken from `X-Forwarded-For`, as the right-most address that is not itself a trusted proxy —
//! never the left part of the header, which the client writes itself.

use std::net::IpAddr;

use hyper::header::HeaderMap;
use ipnet::IpNet;

/// The client of a request that arrived from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it received the request from; several header lines are one
    // list in order. Walked from the right, without collecting: this runs for every request.
    let hops = (headers.get_all("x-forwarded-for").iter().rev())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .map(str::trim);
    let mut client = peer;
    for hop in hops {
        // An entry that is not an address ends the walk: what is left of it is the client's own
        // writing, and the last proxy we trust is the best that can be said.
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let edge: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Envoy appended the viewer's address; the viewer forged one to its left.
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(client_ip(edge, &h, &trusted), ip("203.0.113.7"));
        // Two trusted hops (edge → mid-tier → origin).
        let h = headers(&["203.0.113.7", "10.1.1.1"]);
        assert_eq!(client_ip(edge, &h, &trusted), ip("203.0.113.7"));
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        // No header, or garbage to the right: the proxy itself.
        assert_eq!(client_ip(edge, &HeaderMap::new(), &trusted), edge);
        let h = headers(&["203.0.113.7, not-an-ip"]);
        assert_eq!(client_ip(edge, &h, &trusted), edge);
        // IPv6 clients.
        let h = headers(&["2001:db8::1"]);
        assert_eq!(client_ip(edge, &h, &trusted), ip("2001:db8::1"));
        // Nothing trusted: the peer, whatever the header says.
        assert_eq!(client_ip(edge, &headers(&["1.2.3.4"]), &[]), edge);
    }
}
