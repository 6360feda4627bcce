//! What stands between the website's account forms and the password hash: per-address and
//! per-account log-in throttles counted as attempts start, sign-up limits per address and for the
//! whole site, and a bound on password hashes computed at once. Sign-up is open by default, so
//! every one of these is reachable by anyone.
//!
//! The per-account limit slows a guesser spread over many addresses without handing them the
//! owner's account to lock: once an account is throttled, the browsers and addresses that logged
//! in to it before may still try (OWASP's "device cookie": a random cookie set at each successful
//! log-in; both are remembered in memory, a few per account, so a restart forgets them).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boltstream_shared::username::Username;
use hashlink::LinkedHashMap;
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::limits::{address_group, Throttle, Verdict, MAX_TRACKED};

/// Failed log-ins per address group per minute.
const LOGIN_FAILURES_PER_ADDRESS: u32 = 5;
/// Addresses remembered per account as having logged in to it.
const KNOWN_PER_ACCOUNT: usize = 4;
/// How long a request waits for a password-hash permit before it is told to retry.
const HASH_WAIT: Duration = Duration::from_secs(5);

/// Why an attempt is refused before any work.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This address made too many attempts. `first`: log it (once per window).
    Address {
        /// First refusal in the window.
        first: bool,
    },
    /// Too many failed log-ins to this account from addresses it does not know.
    Account {
        /// First refusal in the window.
        first: bool,
    },
    /// The site accepted as many sign-ups as it takes per minute.
    Site {
        /// First refusal in the window.
        first: bool,
    },
}

/// See the module documentation.
pub struct AccountGuard {
    login_per_address: Throttle<IpAddr>,
    login_per_account: Throttle<Username>,
    known: Mutex<LinkedHashMap<Username, Known>>,
    signup_per_address: Throttle<IpAddr>,
    signup_per_site: Throttle<()>,
    hashing: Arc<Semaphore>,
}

/// What logged in to one account before: address groups and device-cookie hashes, newest last.
#[derive(Default)]
struct Known {
    addresses: Vec<IpAddr>,
    devices: Vec<String>,
}

fn remember<T: PartialEq>(list: &mut Vec<T>, item: T) {
    list.retain(|k| *k != item);
    if list.len() == KNOWN_PER_ACCOUNT {
        list.remove(0);
    }
    list.push(item);
}

fn refused(verdict: Verdict, make: impl FnOnce(bool) -> Refusal) -> Result<(), Refusal> {
    match verdict {
        Verdict::Allow => Ok(()),
        Verdict::Throttled { first } => Err(make(first)),
    }
}

impl AccountGuard {
    /// Limits from the settings.
    pub fn new(settings: &Settings) -> Self {
        Self {
            login_per_address: Throttle::new(LOGIN_FAILURES_PER_ADDRESS),
            login_per_account: Throttle::per(
                settings.login_failures_per_account,
                Duration::from_secs(60),
            ),
            known: Mutex::new(LinkedHashMap::new()),
            signup_per_address: Throttle::per(
                settings.signups_per_address,
                Duration::from_secs(3600),
            ),
            signup_per_site: Throttle::per(settings.signups_per_minute, Duration::from_secs(60)),
            hashing: Arc::new(Semaphore::new(settings.password_hashes_at_once)),
        }
    }

    fn knows(&self, account: &Username, ip: IpAddr, device: Option<&str>) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let device = device.map(boltstream_shared::key::storage_hash);
        known.get(account).is_some_and(|k| {
            k.addresses.contains(&address_group(ip))
                || device.as_ref().is_some_and(|d| k.devices.contains(d))
        })
    }

    /// Counts a log-in attempt to `name` from `ip` (with the browser's device cookie, if any) as
    /// it starts, or refuses it.
    pub fn begin_login(
        &self,
        ip: IpAddr,
        name: &str,
        device: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        refused(self.login_per_address.begin_ip(ip, now), |first| {
            Refusal::Address { first }
        })?;
        // A name that is not a username cannot be an account; it is counted per address only.
        let Ok(account) = Username::parse(name) else {
            return Ok(());
        };
        if self.knows(&account, ip, device) {
            return Ok(());
        }
        let verdict = self.login_per_account.begin(&account, now);
        if verdict != Verdict::Allow {
            // Refused before any work: not an attempt this address made.
            self.login_per_address.succeeded_ip(ip);
        }
        refused(verdict, |first| Refusal::Account { first })
    }

    /// The log-in succeeded: its attempt is given back, and the address and the browser's device
    /// cookie are remembered for the account. Returns a new device cookie value when the browser
    /// had none.
    pub fn login_succeeded(&self, ip: IpAddr, name: &str, device: Option<&str>) -> Option<String> {
        self.login_per_address.succeeded_ip(ip);
        let account = Username::parse(name).ok()?;
        self.login_per_account.succeeded(&account);
        let fresh = device.is_none().then(crate::store::random_token);
        let device = device.or(fresh.as_deref())?;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if !known.contains_key(&account) && known.len() >= MAX_TRACKED {
            known.pop_front();
        }
        let k = known.entry(account.clone()).or_insert_with(Known::default);
        remember(&mut k.addresses, address_group(ip));
        remember(&mut k.devices, boltstream_shared::key::storage_hash(device));
        known.to_back(&account);
        fresh
    }

    /// Counts a sign-up from `ip` as it starts, or refuses it.
    pub fn begin_signup(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        refused(self.signup_per_address.begin_ip(ip, now), |first| {
            Refusal::Address { first }
        })?;
        refused(self.signup_per_site.begin(&(), now), |first| {
            Refusal::Site { first }
        })
    }

    /// Runs `hash` (a store call that hashes a password) on the blocking pool once one of the
    /// few hashing permits is free; `None` when none was free within a few seconds, so a flood
    /// of log-ins queues here, holding neither memory nor a blocking thread per request, and
    /// the blocking pool stays free for publish authentication.
    pub async fn hashing<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = tokio::time::timeout(HASH_WAIT, Arc::clone(&self.hashing).acquire_owned())
            .await
            .ok()?
            .ok()?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash()
        })
        .await;
        Some(result.expect("a password hash panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> AccountGuard {
        let settings = Settings::resolve(
            crate::config::Options {
                login_failures_per_account: Some(3),
                signups_per_address: Some(2),
                signups_per_minute: Some(3),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        AccountGuard::new(&settings)
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_account_under_attack_stays_open_to_addresses_it_knows() {
        let g = guard();
        let now = Instant::now();
        // The owner logged in from .1 once; their browser got a device cookie.
        g.begin_login(ip(1), "alice", None, now).unwrap();
        let device = g
            .login_succeeded(ip(1), "alice", None)
            .expect("a device cookie");
        // Guesses from three other addresses use up the account's allowance.
        for i in 10..13 {
            g.begin_login(ip(i), "alice", None, now).unwrap();
        }
        assert_eq!(
            g.begin_login(ip(13), "alice", None, now),
            Err(Refusal::Account { first: true })
        );
        // Another account, the owner's own address, and the owner's browser on a new address
        // are unaffected; a forged device cookie is not.
        assert!(g.begin_login(ip(13), "bob", None, now).is_ok());
        assert!(g.begin_login(ip(1), "ALICE", None, now).is_ok());
        assert!(g.begin_login(ip(99), "alice", Some(&device), now).is_ok());
        assert!(g.begin_login(ip(98), "alice", Some("forged"), now).is_err());
        // Refused for the account, .13 still has its own attempts left: five, one used on bob.
        for name in ["carol", "dan", "erin", "frank"] {
            assert!(g.begin_login(ip(13), name, None, now).is_ok(), "{name}");
        }
        assert_eq!(
            g.begin_login(ip(13), "dave", None, now),
            Err(Refusal::Address { first: true })
        );
    }

    #[test]
    fn sign_ups_are_limited_per_address_and_for_the_site() {
        let g = guard();
        let now = Instant::now();
        assert!(g.begin_signup(ip(1), now).is_ok());
        assert!(g.begin_signup(ip(1), now).is_ok());
        assert_eq!(
            g.begin_signup(ip(1), now),
            Err(Refusal::Address { first: true })
        );
        assert!(g.begin_signup(ip(2), now).is_ok());
        assert_eq!(
            g.begin_signup(ip(3), now),
            Err(Refusal::Site { first: true })
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_hashes_are_bounded() {
        let g = Arc::new(guard());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (g, running, most) = (Arc::clone(&g), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    g.hashing(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_some());
        }
        let allowed = Settings::default().password_hashes_at_once;
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=allowed).contains(&most),
            "{most} at once, {allowed} allowed"
        );
    }
}
