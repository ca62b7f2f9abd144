//! Warm instances: started processors kept after a run for the next run of the same processor,
//! image, runtime, mode and secrets, so a run skips the start (a process spawn, a container
//! start, the wait for `/healthz`). `theory serve` keeps them; `theory run`, one run per
//! process, does not.
//!
//! An instance serves one run at a time. It goes back to the pool only when its session ended
//! with the processor's own `RunResult` (a success or an error it reported); one that crashed,
//! broke the protocol, timed out or was cancelled is stopped. Before it is reused it must answer
//! `/healthz`, and an instance idle longer than the idle timeout is stopped
//! ([`WarmPool::reap`]); a pool holds at most `max_idle_per_processor` idle instances of one
//! processor. [`WarmPool::drain`] stops them all (a shutdown).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Instance, Launch, Plan};

/// How long a warm instance has to answer `/healthz` before it is replaced.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
/// An instance back from a run this recently is taken without asking `/healthz` again (its
/// session just ended with its own answer; one that died since fails its next session, which
/// is retried on a fresh instance, and the reaper looks every second).
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// How a pool keeps instances.
#[derive(Debug, Clone, Copy)]
pub struct WarmSettings {
    /// An instance idle this long is stopped.
    pub idle_timeout: Duration,
    /// The most idle instances of one processor kept.
    pub max_idle_per_processor: usize,
}

struct Idle {
    instance: Box<dyn Instance>,
    since: Instant,
}

/// Which instances may serve a run: the same processor, adapter, runtime, image, target, mode
/// and secrets (by digest: the values never sit in the key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WarmKey {
    processor: String,
    identity: String,
}

impl WarmKey {
    pub(crate) fn of(processor: &str, adapter: &str, plan: &Plan, launch: &Launch) -> WarmKey {
        let mut secrets = blake3::Hasher::new();
        let mut pairs: Vec<_> = launch.secrets.iter().collect();
        pairs.sort();
        for (name, value) in pairs {
            secrets.update(name.as_bytes());
            secrets.update(&[0]);
            secrets.update(value.as_bytes());
            secrets.update(&[0]);
        }
        for name in &launch.withheld {
            secrets.update(name.as_bytes());
            secrets.update(&[1]);
        }
        for (name, value) in &launch.config {
            secrets.update(name.as_bytes());
            secrets.update(&[2]);
            secrets.update(value.as_bytes());
            secrets.update(&[2]);
        }
        WarmKey {
            processor: processor.to_owned(),
            identity: format!(
                "{adapter}|{}|{}|{}|{}|{}",
                plan.runtime,
                plan.image_identity,
                plan.target,
                launch.mode.as_str(),
                secrets.finalize().to_hex()
            ),
        }
    }
}

/// Started instances kept for the next run.
pub struct WarmPool {
    settings: WarmSettings,
    idle: Mutex<HashMap<WarmKey, Vec<Idle>>>,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("settings", &self.settings)
            .field("idle", &self.len())
            .finish()
    }
}

impl WarmPool {
    /// An empty pool.
    pub fn new(settings: WarmSettings) -> WarmPool {
        WarmPool { settings, idle: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WarmKey, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many idle instances the pool holds.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Whether the pool holds no instance.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A healthy idle instance for `key`, the most recently used first; those that do not
    /// answer are stopped on the way.
    pub(crate) async fn take(&self, key: &WarmKey) -> Option<Box<dyn Instance>> {
        loop {
            let idle = {
                let mut pool = self.lock();
                let list = pool.get_mut(key)?;
                let idle = list.pop();
                if list.is_empty() {
                    pool.remove(key);
                }
                idle?
            };
            let idle_for = idle.since.elapsed();
            if idle_for < self.settings.idle_timeout
                && (idle_for < TRUSTED_FOR || healthy(idle.instance.endpoint()).await)
            {
                return Some(idle.instance);
            }
            tracing::info!(
                endpoint = idle.instance.endpoint(),
                "a warm instance did not answer; stopping it"
            );
            idle.instance.stop().await;
        }
    }

    /// Keeps an instance whose run ended cleanly, or stops it when the pool is full.
    pub(crate) async fn put(&self, key: WarmKey, instance: Box<dyn Instance>) {
        let refused = {
            let mut pool = self.lock();
            let list = pool.entry(key).or_default();
            if list.len() < self.settings.max_idle_per_processor {
                list.push(Idle { instance, since: Instant::now() });
                None
            } else {
                Some(instance)
            }
        };
        if let Some(instance) = refused {
            instance.stop().await;
        }
    }

    /// Stops the instances idle longer than the idle timeout, and those that no longer answer
    /// `/healthz`; the others stay, with the time they became idle kept.
    pub async fn reap(&self) {
        // Those back from a run within the last second stay where they are, for the next run.
        let all: Vec<(WarmKey, Idle)> = {
            let mut pool = self.lock();
            let mut out = Vec::new();
            for (key, list) in pool.iter_mut() {
                let (recent, old): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                    .into_iter()
                    .partition(|idle| idle.since.elapsed() < TRUSTED_FOR);
                *list = recent;
                out.extend(old.into_iter().map(|idle| (key.clone(), idle)));
            }
            pool.retain(|_, list| !list.is_empty());
            out
        };
        let mut keep = Vec::with_capacity(all.len());
        for (key, idle) in all {
            let fresh = idle.since.elapsed() < self.settings.idle_timeout;
            if fresh && healthy(idle.instance.endpoint()).await {
                keep.push((key, idle));
            } else {
                tracing::debug!(
                    endpoint = idle.instance.endpoint(),
                    fresh,
                    "stopping a warm instance"
                );
                idle.instance.stop().await;
            }
        }
        // Runs ended meanwhile may have filled the pool again: beyond the cap, stop the oldest.
        let mut surplus = Vec::new();
        {
            let mut pool = self.lock();
            for (key, idle) in keep {
                let list = pool.entry(key).or_default();
                list.push(idle);
                list.sort_by_key(|idle| std::cmp::Reverse(idle.since));
                while list.len() > self.settings.max_idle_per_processor {
                    surplus.extend(list.pop());
                }
                list.sort_by_key(|idle| idle.since);
            }
        }
        for idle in surplus {
            idle.instance.stop().await;
        }
    }

    /// Stops every idle instance.
    pub async fn drain(&self) {
        let all: Vec<Idle> = self.lock().drain().flat_map(|(_, list)| list).collect();
        for idle in all {
            idle.instance.stop().await;
        }
    }
}

/// Whether the processor at `endpoint` answers `GET /healthz` with 200 `{"ok":true}` (an
/// `https` endpoint, a remote deployment, is taken as healthy: its platform keeps it so).
async fn healthy(endpoint: &str) -> bool {
    let Some(authority) = endpoint.strip_prefix("http://") else { return true };
    let authority = authority.trim_end_matches('/');
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::with_capacity(256);
        stream.take(4096).read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        Some(text.starts_with("HTTP/1.1 200") && text.contains(theory_protocol::HEALTHZ_BODY))
    };
    tokio::time::timeout(HEALTH_TIMEOUT, check).await.ok().flatten().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// An instance that counts its stops; `https` endpoints are taken as healthy.
    struct Counted(Arc<AtomicUsize>);

    #[async_trait]
    impl Instance for Counted {
        fn endpoint(&self) -> &'static str {
            "https://remote.example"
        }

        async fn stop(self: Box<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn key(name: &str) -> WarmKey {
        WarmKey { processor: name.to_owned(), identity: "i".to_owned() }
    }

    #[tokio::test]
    async fn instances_idle_past_the_timeout_are_stopped_newest_included_and_the_cap_holds() {
        let stopped = Arc::new(AtomicUsize::new(0));
        let pool = WarmPool::new(WarmSettings {
            idle_timeout: Duration::from_millis(1200),
            max_idle_per_processor: 2,
        });
        for _ in 0..3 {
            pool.put(key("a"), Box::new(Counted(Arc::clone(&stopped)))).await;
        }
        assert_eq!(
            (pool.len(), stopped.load(Ordering::SeqCst)),
            (2, 1),
            "the third is over the cap"
        );
        let taken = pool.take(&key("a")).await.expect("a warm instance");
        pool.put(key("a"), taken).await;
        assert!(pool.take(&key("b")).await.is_none());
        // Reaping within the timeout keeps them; past it, every one goes, the newest too.
        tokio::time::sleep(Duration::from_millis(1050)).await;
        pool.reap().await;
        assert_eq!(pool.len(), 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        pool.reap().await;
        assert_eq!((pool.len(), stopped.load(Ordering::SeqCst)), (0, 3));
        pool.put(key("a"), Box::new(Counted(Arc::clone(&stopped)))).await;
        pool.drain().await;
        assert_eq!((pool.len(), stopped.load(Ordering::SeqCst)), (0, 4));
    }
}
