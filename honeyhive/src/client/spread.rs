//! Spreading requests over more than one HTTP/2 connection.
//!
//! reqwest (hyper's pool) keeps one HTTP/2 connection per host and queues
//! streams beyond the server's limit on it, so a few hundred requests in
//! flight share one connection and one connection task on each side. Here a
//! client holds up to `max` reqwest clients (each with its own pool, made on
//! first use) and gives a request to the first one with fewer than
//! `streams` requests in flight: a second connection opens only when the
//! first carries `streams` requests at once, and so on. When all are that
//! busy, the least busy one takes it.
//!
//! Over HTTP/1.1 nothing changes in effect: every request in flight has its
//! own connection either way, now drawn from one pool or another.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Makes one more reqwest client with the same settings.
pub(super) type Make = Box<dyn Fn() -> Option<reqwest::Client> + Send + Sync>;

pub(super) struct Spread {
    /// Made when the client is built; also in the first pool.
    first: reqwest::Client,
    /// The first is set at once; the rest are made on first use.
    pools: Box<[Pool]>,
    streams: usize,
    make: Make,
}

struct Pool {
    http: OnceLock<reqwest::Client>,
    in_flight: AtomicUsize,
}

/// A request's place on one of the clients; gives it back when dropped.
pub(super) struct Lease<'a> {
    pub(super) http: &'a reqwest::Client,
    in_flight: &'a AtomicUsize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Spread {
    /// `first` and up to `max - 1` more made by `make`, each given up to
    /// `streams` requests before the next is used. `max` and `streams` are
    /// at least 1 (checked by the builder).
    pub(super) fn new(first: reqwest::Client, max: usize, streams: usize, make: Make) -> Spread {
        let pools: Box<[Pool]> = (0..max.max(1))
            .map(|_| Pool {
                http: OnceLock::new(),
                in_flight: AtomicUsize::new(0),
            })
            .collect();
        let _ = pools[0].http.set(first.clone());
        Spread {
            first,
            pools,
            streams: streams.max(1),
            make,
        }
    }

    /// The first client: the one the generated client shares.
    pub(super) fn first(&self) -> &reqwest::Client {
        &self.first
    }

    /// A client for one request: the first with room, else the least busy.
    pub(super) fn lease(&self) -> Lease<'_> {
        let pool = self
            .pools
            .iter()
            .find(|pool| {
                // Taken only when there is room, never counted up and back
                // down: a passing over-count would make a pool with room
                // look full to a request leasing at the same moment, which
                // would then open a connection it did not need.
                pool.in_flight
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < self.streams).then_some(n + 1)
                    })
                    .is_ok()
            })
            .unwrap_or_else(|| {
                let least = self
                    .pools
                    .iter()
                    .min_by_key(|pool| pool.in_flight.load(Ordering::Relaxed))
                    .unwrap_or(&self.pools[0]);
                least.in_flight.fetch_add(1, Ordering::Relaxed);
                least
            });
        // A client that cannot be made (its settings were already accepted
        // once, so this is not expected) leaves the request on the first.
        let http = pool
            .http
            .get_or_init(|| (self.make)().unwrap_or_else(|| self.first().clone()));
        Lease {
            http,
            in_flight: &pool.in_flight,
        }
    }

    /// How many of the clients have been made.
    #[cfg(test)]
    fn made(&self) -> usize {
        self.pools.iter().filter(|s| s.http.get().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(max: usize, streams: usize) -> Spread {
        let make = || {
            #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .build()
                .ok()
        };
        Spread::new(make().unwrap(), max, streams, Box::new(make))
    }

    fn in_flight(spread: &Spread) -> Vec<usize> {
        spread
            .pools
            .iter()
            .map(|s| s.in_flight.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn a_second_client_is_made_only_when_the_first_is_full() {
        let spread = spread(4, 3);
        let first: Vec<_> = (0..3).map(|_| spread.lease()).collect();
        assert_eq!(spread.made(), 1);
        assert_eq!(in_flight(&spread), [3, 0, 0, 0]);
        let fourth = spread.lease();
        assert_eq!(spread.made(), 2);
        assert_eq!(in_flight(&spread), [3, 1, 0, 0]);
        drop(first);
        drop(fourth);
        assert_eq!(in_flight(&spread), [0, 0, 0, 0]);
        // Room on the first again: it is used first.
        let _again = spread.lease();
        assert_eq!(in_flight(&spread), [1, 0, 0, 0]);
        assert_eq!(spread.made(), 2);
    }

    #[test]
    fn when_every_client_is_full_the_least_busy_takes_the_request() {
        let spread = spread(2, 2);
        let mut leases: Vec<_> = (0..4).map(|_| spread.lease()).collect();
        assert_eq!(in_flight(&spread), [2, 2]);
        leases.push(spread.lease());
        leases.push(spread.lease());
        assert_eq!(in_flight(&spread), [3, 3]);
        // [pool 0, pool 0, pool 1, pool 1, pool 0, pool 1]: free one on pool 1.
        leases.remove(2);
        assert_eq!(in_flight(&spread), [3, 2]);
        // Both still have their 2: the least busy takes the next.
        leases.push(spread.lease());
        assert_eq!(in_flight(&spread), [3, 3]);
        assert_eq!(spread.made(), 2);
    }

    #[test]
    fn one_client_takes_everything_when_the_limit_is_one_connection() {
        let spread = spread(1, 2);
        let _leases: Vec<_> = (0..5).map(|_| spread.lease()).collect();
        assert_eq!(in_flight(&spread), [5]);
        assert_eq!(spread.made(), 1);
    }
}
