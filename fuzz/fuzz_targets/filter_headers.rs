//! The edge filter's header handling: plugin configuration, request decision (path and playback
//! cookie) and response header changes on arbitrary input.
#![no_main]
use boltstream_filter::config::FilterConfig;
use boltstream_filter::decision::{decide_request, response_changes, RequestDecision, RequestFacts};
use libfuzzer_sys::fuzz_target;

struct Facts<'a>(&'a [u8]);

impl RequestFacts for Facts<'_> {
    fn cookies(&self) -> Vec<Vec<u8>> {
        vec![self.0.to_vec()]
    }
    fn now_s(&self) -> u64 {
        1_796_000_000
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (config, rest) = data.split_at(split);
    let cut = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
    let (cookie, path) = rest.split_at(cut);
    let config = FilterConfig::parse(config).unwrap_or_default();
    if let RequestDecision::Live { route, .. } = decide_request(path, &config, &Facts(cookie)) {
        let status = path.len() as u16 % 600;
        let changes = response_changes(&route, status, &config);
        assert!(changes.iter().any(|(name, _)| *name == "cache-control"));
    }
});
