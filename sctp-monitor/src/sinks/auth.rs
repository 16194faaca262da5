//! Basic authentication of the listener's requests against the
//! `basic_auth_users` of the web configuration (bcrypt hashes).
//!
//! bcrypt is slow by design (tens of milliseconds at cost 10): the check
//! runs on tokio's blocking pool, never on the agent's one thread, at most
//! [`VERIFY_AT_ONCE`] at a time (a client guessing passwords on every
//! connection it may open takes that much CPU from the host, no more), and
//! a success is remembered so that a scraper's every request does not pay it
//! again (exporter-toolkit does the same). The cache holds SHA-256 digests
//! of user, hash and password, never the password, and at most
//! [`CACHE_MAX`] of them, the oldest dropped first. A user name that does
//! not exist costs the same bcrypt as one that does (against a fixed hash),
//! so the time of a refusal does not tell which names exist.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use ring::digest;

/// Successful verifications remembered.
pub const CACHE_MAX: usize = 256;

/// bcrypt verifications running at once; the others wait their turn.
pub const VERIFY_AT_ONCE: usize = 2;

/// What an unknown user's password is checked against: a bcrypt hash at
/// cost 10, the cost `htpasswd -B` and exporter-toolkit's docs use.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// The `WWW-Authenticate` header of a 401.
pub const CHALLENGE: &str = "Basic realm=\"sctp-monitor\", charset=\"UTF-8\"";

type Key = [u8; 32];

#[derive(Default)]
struct Cache {
    keys: HashSet<Key>,
    order: VecDeque<Key>,
}

/// The users and the cache of their verified credentials.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    cache: Mutex<Cache>,
    verifying: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// `None` when there are no users: then nothing is asked for.
    pub fn new(users: BTreeMap<String, String>) -> Option<Arc<BasicAuth>> {
        (!users.is_empty()).then(|| {
            Arc::new(BasicAuth {
                users,
                cache: Mutex::new(Cache::default()),
                verifying: tokio::sync::Semaphore::new(VERIFY_AT_ONCE),
            })
        })
    }

    /// Whether the `Authorization` header value names a user and its
    /// password.
    pub async fn check(self: &Arc<Self>, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else { return false };
        let (known, hash) = match self.users.get(&user) {
            Some(h) => (true, h.clone()),
            None => (false, UNKNOWN_USER_HASH.to_string()),
        };
        let key = cache_key(&user, &hash, &password);
        if known && self.cached(&key) {
            return true;
        }
        let Ok(_turn) = self.verifying.acquire().await else { return false };
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        let ok = known && verified;
        if ok {
            self.remember(key);
        }
        ok
    }

    fn cached(&self, key: &Key) -> bool {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).keys.contains(key)
    }

    fn remember(&self, key: Key) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if !c.keys.insert(key) {
            return;
        }
        c.order.push_back(key);
        while c.order.len() > CACHE_MAX {
            if let Some(old) = c.order.pop_front() {
                c.keys.remove(&old);
            }
        }
    }

    /// Credentials remembered (for tests).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).keys.len()
    }
}

/// SHA-256 over the length-prefixed parts, so that no two different
/// triples give the same input.
fn cache_key(user: &str, hash: &str, password: &[u8]) -> Key {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [user.as_bytes(), hash.as_bytes(), password] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// `Basic base64(user:password)` as user and password.
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))).into_bytes()
    }

    #[tokio::test]
    async fn checks_users_and_remembers_successes_only() {
        let users = BTreeMap::from([("prom".to_string(), bcrypt::hash("pa:ss word", 4).unwrap())]);
        let auth = BasicAuth::new(users).unwrap();
        assert!(auth.check(Some(&header("prom", "pa:ss word"))).await, "a password may hold ':' and spaces");
        assert_eq!(auth.cached_len(), 1);
        assert!(auth.check(Some(&header("prom", "pa:ss word"))).await, "again, from the cache");
        assert_eq!(auth.cached_len(), 1);
        assert!(!auth.check(Some(&header("prom", "wrong"))).await);
        assert!(!auth.check(Some(&header("nobody", "pa:ss word"))).await);
        assert!(!auth.check(None).await);
        assert!(!auth.check(Some(b"Bearer abc")).await);
        assert!(!auth.check(Some(b"Basic !!!")).await);
        assert_eq!(auth.cached_len(), 1, "failures are not remembered");
        assert!(BasicAuth::new(BTreeMap::new()).is_none());
    }

    #[tokio::test]
    async fn concurrent_checks_take_turns_and_all_get_their_answer() {
        let users = BTreeMap::from([("prom".to_string(), bcrypt::hash("right", 4).unwrap())]);
        let auth = BasicAuth::new(users).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let auth = auth.clone();
                let pw = if i % 4 == 0 { "right" } else { "wrong" };
                tokio::spawn(async move { (pw, auth.check(Some(&header("prom", pw))).await) })
            })
            .collect();
        for t in tasks {
            let (pw, ok) = t.await.unwrap();
            assert_eq!(ok, pw == "right", "{pw}");
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let auth = BasicAuth::new(BTreeMap::from([("u".to_string(), "h".to_string())])).unwrap();
        for i in 0..CACHE_MAX + 10 {
            auth.remember(cache_key("u", "h", i.to_string().as_bytes()));
        }
        assert_eq!(auth.cached_len(), CACHE_MAX);
        assert!(!auth.cached(&cache_key("u", "h", b"0")), "the oldest went first");
        assert!(auth.cached(&cache_key("u", "h", (CACHE_MAX + 9).to_string().as_bytes())));
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(parse_basic(&header("a", "b:c")), Some(("a".into(), b"b:c".to_vec())));
        assert_eq!(parse_basic(b"basic YTpi"), Some(("a".into(), b"b".to_vec())), "the scheme is case-insensitive");
        assert_eq!(parse_basic(b"Basic YWI="), None, "no colon");
    }
}
