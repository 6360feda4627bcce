//! The plugin configuration, given as JSON in Envoy's `configuration` field. Parsed once in the root
//! context; anything invalid makes the plugin refuse to start, because a silently permissive edge
//! filter is worse than none.

use std::fmt;

use boltstream_shared::policy::{Policy, DEFAULT_PLAYLIST_MAX_AGE};
use boltstream_shared::token::Secret;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_max_age")]
    playlist_max_age: u32,
    #[serde(default)]
    blocked_path_prefixes: Vec<String>,
    #[serde(default)]
    origin_path_prefix: String,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    playback_secrets: Vec<RawSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    id: u8,
    /// Hex, as `boltstream playback-secret filter-config` prints it.
    secret: String,
}

/// Secrets accepted at once: the current one and the one being retired.
pub const MAX_PLAYBACK_SECRETS: usize = 2;

/// Which half of the work this instance of the filter does. With Envoy's cache, one instance runs
/// on the listener (rewrite and refuse, before the cache computes its key) and one as an upstream
/// filter of the origin cluster (headers, before the cache stores the response); splitting the
/// roles means a cache hit costs one host call, not a header-map round trip that changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Requests and responses (a single instance, no cache).
    #[default]
    Both,
    /// Request rewriting and refusals only.
    Request,
    /// Response headers only.
    Response,
}

fn default_max_age() -> u32 {
    DEFAULT_PLAYLIST_MAX_AGE
}

/// The validated configuration.
#[derive(Clone, Debug, Default)]
pub struct FilterConfig {
    /// Header policy, including the playlist max-age.
    pub policy: Policy,
    /// Extra path prefixes refused at the edge (lowercased; compared case-insensitively).
    pub blocked_path_prefixes: Vec<String>,
    /// Prepended to canonical live paths when the origin is mounted below a prefix (`""` for none).
    pub origin_path_prefix: String,
    /// Which half of the work this instance does.
    pub role: Role,
    /// The secrets playback tokens are verified with; none means every private playlist and key
    /// is refused (an edge that cannot check must not let through).
    pub playback_secrets: Vec<Secret>,
}

impl PartialEq for FilterConfig {
    fn eq(&self, other: &Self) -> bool {
        let ids = |c: &Self| {
            c.playback_secrets
                .iter()
                .map(Secret::id)
                .collect::<Vec<_>>()
        };
        self.policy == other.policy
            && self.blocked_path_prefixes == other.blocked_path_prefixes
            && self.origin_path_prefix == other.origin_path_prefix
            && self.role == other.role
            && ids(self) == ids(other)
    }
}

/// Why a configuration was refused; logged by the plugin when it refuses to start.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid boltstream filter configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl FilterConfig {
    /// Parses the plugin configuration; empty input means all defaults.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let raw: RawConfig =
            serde_json::from_slice(json).map_err(|e| ConfigError(e.to_string()))?;
        let policy = Policy::with_playlist_max_age(raw.playlist_max_age)
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut blocked = Vec::with_capacity(raw.blocked_path_prefixes.len());
        for prefix in raw.blocked_path_prefixes {
            if !prefix.starts_with('/') || prefix.len() < 2 {
                return Err(ConfigError(format!(
                    "blocked_path_prefixes entry {prefix:?} must start with '/' and name a path"
                )));
            }
            blocked.push(prefix.to_ascii_lowercase());
        }
        let origin = raw.origin_path_prefix;
        if !origin.is_empty()
            && (!origin.starts_with('/')
                || origin.ends_with('/')
                || origin.contains(['?', '#', '%', '\\'])
                || origin.split('/').any(|s| s == "." || s == ".."))
        {
            return Err(ConfigError(format!(
                "origin_path_prefix {origin:?} must look like \"/path\" (leading '/', no trailing '/', no '?', '#', '%', '\\\\', '.' or '..' segments)"
            )));
        }
        if raw.playback_secrets.len() > MAX_PLAYBACK_SECRETS {
            return Err(ConfigError(format!(
                "playback_secrets holds at most {MAX_PLAYBACK_SECRETS} (the current secret and the one being retired)"
            )));
        }
        let mut secrets: Vec<Secret> = Vec::with_capacity(raw.playback_secrets.len());
        for raw_secret in raw.playback_secrets {
            let bytes = decode_hex(&raw_secret.secret).ok_or_else(|| {
                ConfigError(format!(
                    "playback secret {} is not hex (its value is not shown)",
                    raw_secret.id
                ))
            })?;
            let secret = Secret::new(raw_secret.id, &bytes)
                .map_err(|e| ConfigError(format!("playback secret {}: {e}", raw_secret.id)))?;
            if secrets.iter().any(|s| s.id() == secret.id()) {
                return Err(ConfigError(format!(
                    "playback secret id {} is given twice",
                    secret.id()
                )));
            }
            secrets.push(secret);
        }
        Ok(Self {
            policy,
            blocked_path_prefixes: blocked,
            origin_path_prefix: origin,
            role: raw.role,
            playback_secrets: secrets,
        })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_defaults() {
        assert_eq!(FilterConfig::parse(b"").unwrap(), FilterConfig::default());
        assert_eq!(FilterConfig::parse(b"{}").unwrap(), FilterConfig::default());
    }

    #[test]
    fn full_config() {
        let c = FilterConfig::parse(
            br#"{"playlist_max_age": 2, "blocked_path_prefixes": ["/Admin"], "origin_path_prefix": "/origin"}"#,
        )
        .unwrap();
        assert_eq!(c.blocked_path_prefixes, vec!["/admin".to_string()]);
        assert_eq!(c.origin_path_prefix, "/origin");
        assert_eq!(c.policy, Policy::with_playlist_max_age(2).unwrap());
        assert_eq!(c.role, Role::Both);
        assert_eq!(
            FilterConfig::parse(br#"{"role": "request"}"#).unwrap().role,
            Role::Request
        );
    }

    #[test]
    fn two_playback_secrets_for_a_rotation() {
        let c = FilterConfig::parse(
            br#"{"playback_secrets": [{"id": 2, "secret": "2222222222222222222222222222222222222222222222222222222222222222"}, {"id": 1, "secret": "1111111111111111111111111111111111111111111111111111111111111111"}]}"#,
        )
        .unwrap();
        let ids: Vec<u8> = c.playback_secrets.iter().map(Secret::id).collect();
        assert_eq!(ids, vec![2, 1]);
    }

    #[test]
    fn refuses_bad_config() {
        for bad in [
            &br#"{"playlist_max_age": 99}"#[..],
            br#"{"playlist_max_age": -1}"#,
            br#"{"playlist_max_age": "1"}"#,
            br#"{"unknown": 1}"#,
            br#"{"blocked_path_prefixes": ["admin"]}"#,
            br#"{"origin_path_prefix": "/o/"}"#,
            br#"{"origin_path_prefix": "/o/../x"}"#,
            br#"{"role": "sideways"}"#,
            br#"{"playback_secrets": [{"id": 1, "secret": "abcd"}]}"#,
            br#"{"playback_secrets": [{"id": 10, "secret": "0000000000000000000000000000000000000000000000000000000000000000"}]}"#,
            br#"{"playback_secrets": [{"id": 1, "secret": "zz00000000000000000000000000000000000000000000000000000000000000"}]}"#,
            br#"{"playback_secrets": [{"id": 1, "secret": "0000000000000000000000000000000000000000000000000000000000000000"}, {"id": 1, "secret": "1100000000000000000000000000000000000000000000000000000000000000"}]}"#,
            br#"{"playback_secrets": [{"id": 1, "secret": "0000000000000000000000000000000000000000000000000000000000000000"}, {"id": 2, "secret": "1100000000000000000000000000000000000000000000000000000000000000"}, {"id": 3, "secret": "2200000000000000000000000000000000000000000000000000000000000000"}]}"#,
            br#"{"playback_secrets": [{"id": 1}]}"#,
            b"not json",
            b"[1,2]",
        ] {
            let err = FilterConfig::parse(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid boltstream filter configuration"),
                "{err}"
            );
            // A refused secret is never echoed back into Envoy's log.
            assert!(!err.to_string().contains("0000000000"), "{err}");
        }
    }
}
