#![cfg_attr(feature = "noop", allow(dead_code))]
//! proxy-wasm glue: the only code that talks to the host. Kept thin; see [`crate::decision`].

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

use crate::config::{FilterConfig, Role};
use crate::decision::{
    decide_request, refusal_body, updates_needed, RequestDecision, RequestFacts,
};
use boltstream_shared::route::Route;

#[cfg(not(feature = "noop"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(EdgeRoot::default()) });
}}

#[cfg(feature = "noop")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

/// The benchmark floor: an HTTP filter whose callbacks return at once, with no host calls.
#[cfg(feature = "noop")]
struct NoopRoot;

#[cfg(feature = "noop")]
impl Context for NoopRoot {}

#[cfg(feature = "noop")]
impl RootContext for NoopRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[cfg(feature = "noop")]
struct NoopRequest;

#[cfg(feature = "noop")]
impl Context for NoopRequest {}

#[cfg(all(feature = "noop", not(feature = "readpath")))]
impl HttpContext for NoopRequest {}

/// With `readpath`: the one host call any path-based filter needs, and nothing else.
#[cfg(feature = "readpath")]
impl HttpContext for NoopRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header_bytes(":path");
        core::hint::black_box(path);
        Action::Continue
    }
}

/// Holds the configuration, parsed once per plugin (re)configuration.
#[derive(Default)]
struct EdgeRoot {
    config: Rc<FilterConfig>,
}

impl Context for EdgeRoot {}

impl RootContext for EdgeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match FilterConfig::parse(&raw) {
            Ok(config) => {
                self.config = Rc::new(config);
                true
            }
            Err(err) => {
                proxy_wasm::hostcalls::log(LogLevel::Critical, &err.to_string()).ok();
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EdgeRequest {
            config: Rc::clone(&self.config),
            live: None,
            answered_locally: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct EdgeRequest {
    config: Rc<FilterConfig>,
    live: Option<Route>,
    answered_locally: bool,
}

impl Context for EdgeRequest {}

impl RequestFacts for EdgeRequest {
    /// One host call for the one header: Envoy joins an HTTP/2 request's cookie crumbs into a
    /// single `cookie` header (RFC 9113 §8.2.3), so there is never a second to look for — and
    /// reading the whole map instead cost more than the HMAC.
    fn cookies(&self) -> Vec<Vec<u8>> {
        self.get_http_request_header_bytes("cookie")
            .into_iter()
            .collect()
    }

    fn now_s(&self) -> u64 {
        self.get_current_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

impl HttpContext for EdgeRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let path = self
            .get_http_request_header_bytes(":path")
            .unwrap_or_default();
        let config = Rc::clone(&self.config);
        match decide_request(&path, &config, self) {
            RequestDecision::Pass => Action::Continue,
            RequestDecision::Live {
                route,
                rewrite,
                strip_cookies,
            } => {
                if let Some(path) = rewrite {
                    self.set_http_request_header(":path", Some(&path));
                }
                if strip_cookies {
                    self.set_http_request_header("cookie", None);
                }
                if self.config.role != Role::Request {
                    self.live = Some(route);
                }
                Action::Continue
            }
            RequestDecision::Refuse(status) => {
                self.answered_locally = true;
                self.send_http_response(
                    u32::from(status),
                    vec![
                        ("cache-control", "no-store"),
                        ("content-type", "text/plain"),
                    ],
                    Some(refusal_body(status)),
                );
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // Local refusals pass through here too: they must keep their own no-store header.
        if self.answered_locally {
            return Action::Continue;
        }
        let Some(route) = &self.live else {
            return Action::Continue;
        };
        // One call for the whole map, then calls only for what differs from the policy.
        let current = self.get_http_response_headers_bytes();
        for (name, value) in updates_needed(&current, route, &self.config) {
            self.set_http_response_header(name, value);
        }
        Action::Continue
    }
}
