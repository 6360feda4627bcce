//! The edge filter's header handling: plugin configuration, request decision and response header
//! changes on arbitrary input.
#![no_main]
use boltstream_filter::config::FilterConfig;
use boltstream_filter::decision::{decide_request, response_changes, RequestDecision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (config, path) = data.split_at(split);
    let config = FilterConfig::parse(config).unwrap_or_default();
    if let RequestDecision::Live { route, .. } = decide_request(path, &config) {
        let status = path.len() as u16 % 600;
        let changes = response_changes(&route, status, &config);
        assert!(changes.iter().any(|(name, _)| *name == "cache-control"));
    }
});
