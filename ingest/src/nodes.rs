//! The site's other nodes, as a viewer's request meets them: a live request that reaches a node
//! which does not hold the stream is fetched from the node that does (its claim in the shared
//! store: node id and internal URL) and answered as if it were local; so is a request for a past
//! broadcast another node keeps (the store's index of recordings).
//!
//! Why forwarding and not a redirect the edge follows: the edge's cache (Envoy's `cache_v2`, kept
//! because it collapses concurrent misses — every LL-HLS viewer blocks on the same part at once)
//! fetches its misses through Envoy's async HTTP client, which never follows an internal redirect:
//! tried, the 307 reached the viewer (BENCHMARKS.md "Several nodes"). Forwarding keeps the viewer's
//! URL, and so the edge's cache key, whichever node answered; needs nothing of the edge, so any
//! CDN works; and holds a blocking playlist request open on the holder like any other.
//!
//! The forwarded request carries `x-boltstream-node`; a request that carries it is never forwarded
//! again, so a node asked for a stream it lost a moment ago answers 404, not a loop.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boltstream_shared::username::Username;
use bytes::Bytes;
use hashlink::LinkedHashMap;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::respond::{self, Resp};
use crate::store::{Holder, Store};

/// The header a forwarded request carries: the id of the node it was forwarded to.
pub const NODE_HEADER: &str = "x-boltstream-node";

/// How long a node keeps what the store said about a channel's holder: requests for a channel
/// held elsewhere (or nowhere) cost one query per this, not one per request.
const HOLDER_TTL: Duration = Duration::from_secs(1);

/// Channels whose holder is remembered at once; past it the oldest is forgotten, so requests for
/// made-up names cannot grow memory.
const HOLDER_CACHE: usize = 4096;

/// Forwarded answers whose bodies are read at once; more wait. Each may hold one object in memory.
/// A request waiting for the holder's answer takes no permit: a blocking LL-HLS reload waits there
/// for up to a segment, and requests that wait must not keep the rest of the site's streams from
/// being forwarded (what bounds them is the node's connection limits, as for local requests).
const BODIES_AT_ONCE: usize = 64;

/// The longest a forwarded request may take: a blocking playlist request waits up to three target
/// durations (30 s at the longest target) on the holder.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(35);

/// The request headers a forwarded request keeps: what decides the answer (the playback cookie,
/// conditional GET) and what tells the holder who the viewer is.
const FORWARDED_HEADERS: [HeaderName; 4] = [
    header::COOKIE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    HeaderName::from_static("x-forwarded-proto"),
];

/// The address a request reached this node from (a request extension, set only on a site of
/// several nodes): a forwarded request's `X-Forwarded-For` ends with it, as any proxy's does, so
/// a holder that trusts this node names the viewer, not whoever wrote the header.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// This node among the site's nodes.
pub struct Nodes {
    store: Arc<Store>,
    node_id: String,
    /// What the store last said about channels' holders, and when.
    holders: Mutex<LinkedHashMap<Username, (Instant, Option<Holder>)>>,
    client: Client<HttpConnector, Full<Bytes>>,
    bodies: Semaphore,
    /// The most bytes one forwarded answer may have: the largest segment the node accepts.
    max_body: usize,
    /// Requests answered by another node, and of those the ones it did not answer.
    forwarded: AtomicU64,
    failed: AtomicU64,
}

impl Nodes {
    /// `node_id` is this node's; with a store that is not shared (SQLite) there are no other nodes
    /// and nothing is ever forwarded.
    pub fn new(store: Arc<Store>, node_id: String, max_body: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            store,
            node_id,
            holders: Mutex::new(LinkedHashMap::new()),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            bodies: Semaphore::new(BODIES_AT_ONCE),
            max_body,
            forwarded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Whether there are other nodes at all (the store is shared).
    pub fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    /// The holder's answer to a request for `user`'s live stream, when another node holds it and
    /// this request was not forwarded here already.
    pub async fn forward<B>(&self, user: &Username, req: &Request<B>) -> Option<Resp> {
        if !self.store.is_shared() || req.headers().contains_key(NODE_HEADER) {
            return None;
        }
        let holder = self.holder(user).await?;
        self.forward_to(holder, user, req).await
    }

    /// The answer of the node keeping `user`'s past broadcast `id`, when another node keeps it
    /// (the site's index of recordings says which) and this request was not forwarded here.
    pub async fn forward_recording<B>(
        &self,
        user: &Username,
        id: u64,
        req: &Request<B>,
    ) -> Option<Resp> {
        if !self.store.is_shared() || req.headers().contains_key(NODE_HEADER) {
            return None;
        }
        let (store, name) = (Arc::clone(&self.store), user.to_string());
        let holder = tokio::task::spawn_blocking(move || store.recording_holder(&name, id))
            .await
            .ok()?
            .ok()??;
        self.forward_to(holder, user, req).await
    }

    async fn forward_to<B>(
        &self,
        holder: Holder,
        user: &Username,
        req: &Request<B>,
    ) -> Option<Resp> {
        let Holder { node_id, url } = holder;
        if node_id == self.node_id {
            return None;
        }
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        Some(match self.fetch(&node_id, &url, req).await {
            Ok(response) => response,
            Err(why) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                warn!(user = %user, node = %node_id, error = %why, "the node holding a stream did not answer");
                respond::text(
                    StatusCode::BAD_GATEWAY,
                    "the node holding this stream did not answer\n",
                )
            }
        })
    }

    async fn fetch<B>(&self, holder: &str, url: &str, req: &Request<B>) -> Result<Resp, String> {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut forwarded = Request::builder()
            .method(if req.method() == Method::HEAD {
                Method::HEAD
            } else {
                Method::GET
            })
            .uri(format!("{url}{path}"))
            .header(NODE_HEADER, holder);
        for name in &FORWARDED_HEADERS {
            for value in req.headers().get_all(name) {
                forwarded = forwarded.header(name, value);
            }
        }
        if let Some(chain) = forwarded_for(req.headers(), req.extensions().get::<Peer>()) {
            forwarded = forwarded.header("x-forwarded-for", chain);
        }
        let forwarded = forwarded
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(FORWARD_TIMEOUT, async {
            let response = (self.client.request(forwarded).await).map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let _permit = self.bodies.acquire().await.map_err(|e| e.to_string())?;
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((parts, body))
        })
        .await
        .map_err(|_| "timed out".to_string())??;
        let (parts, body) = answer;
        let mut response = Response::new(respond::full(body));
        *response.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) {
                response.headers_mut().append(name, value.clone());
            }
        }
        Ok(response)
    }

    /// The forwarding counters in Prometheus' text format.
    pub fn metrics(&self) -> String {
        format!(
            "# TYPE boltstream_forwarded_requests_total counter\nboltstream_forwarded_requests_total {}\n\
             # TYPE boltstream_forward_failures_total counter\nboltstream_forward_failures_total {}\n",
            self.forwarded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// The node holding `user`'s live stream, from the store at most once a second.
    async fn holder(&self, user: &Username) -> Option<Holder> {
        let now = Instant::now();
        {
            let holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, holder)) = holders.get(user) {
                if now.duration_since(*at) < HOLDER_TTL {
                    return holder.clone();
                }
            }
        }
        let (store, name) = (Arc::clone(&self.store), user.to_string());
        let holder = tokio::task::spawn_blocking(move || store.holder(&name))
            .await
            .ok()?
            .ok()?;
        let mut holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
        holders.replace(user.clone(), (now, holder.clone()));
        while holders.len() > HOLDER_CACHE {
            holders.pop_front();
        }
        holder
    }
}

/// The `X-Forwarded-For` a forwarded request carries: the one received, with the address it came
/// from appended.
fn forwarded_for(headers: &HeaderMap, peer: Option<&Peer>) -> Option<HeaderValue> {
    let mut chain: Vec<String> = (headers.get_all("x-forwarded-for").iter())
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    chain.extend(peer.map(|p| p.0.to_string()));
    HeaderValue::from_str(&chain.join(", "))
        .ok()
        .filter(|v| !v.is_empty())
}

/// Headers that describe one connection, not the answer (RFC 9110 §7.6.1); the length is set
/// again for the body as it is sent.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        HeaderName::from_static("keep-alive"),
    ]
    .contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests for ever new made-up channel names (each a holder lookup) leave at most
    /// `HOLDER_CACHE` remembered, the newest.
    #[tokio::test]
    async fn made_up_names_cannot_grow_the_holder_cache() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let nodes = Nodes::new(store, "a".into(), 1 << 20);
        let names: Vec<Username> = (0..HOLDER_CACHE + 500)
            .map(|i| Username::parse(&format!("nobody{i}")).unwrap())
            .collect();
        for name in &names {
            assert_eq!(nodes.holder(name).await, None);
        }
        let holders = nodes.holders.lock().unwrap();
        assert_eq!(holders.len(), HOLDER_CACHE);
        assert!(holders.contains_key(names.last().unwrap()));
        assert!(!holders.contains_key(&names[0]), "the oldest is forgotten");
    }

    #[test]
    fn the_forwarded_for_chain_ends_with_the_address_the_request_came_from() {
        let peer = Peer("198.51.100.7".parse().unwrap());
        let mut headers = HeaderMap::new();
        assert_eq!(
            forwarded_for(&headers, Some(&peer)).unwrap(),
            "198.51.100.7"
        );
        assert_eq!(forwarded_for(&headers, None), None);
        // What a client wrote stays to the left of what this node saw, where a holder that trusts
        // only this node does not believe it.
        headers.append("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        assert_eq!(
            forwarded_for(&headers, Some(&peer)).unwrap(),
            "10.9.9.9, 203.0.113.1, 198.51.100.7"
        );
    }

    #[test]
    fn connection_headers_are_not_passed_on() {
        assert!(is_hop_by_hop(&header::CONNECTION));
        assert!(is_hop_by_hop(&header::CONTENT_LENGTH));
        assert!(!is_hop_by_hop(&header::CACHE_CONTROL));
        assert!(!is_hop_by_hop(&header::ETAG));
    }
}
