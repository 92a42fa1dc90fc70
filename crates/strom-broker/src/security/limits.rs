//! `max.connections.per.ip` and `max.connections.per.ip.overrides`: how many connections one
//! client address may hold at once, so one host cannot take every connection slot
//! (`max.connections`). A connection over the limit is closed as soon as it is accepted, as in
//! Kafka.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct ConnectionsPerIp {
    default_limit: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct IpSlot {
    limits: Arc<ConnectionsPerIp>,
    ip: IpAddr,
}

impl ConnectionsPerIp {
    pub fn new(default_limit: usize, overrides: HashMap<IpAddr, usize>) -> Arc<Self> {
        Arc::new(Self {
            default_limit,
            overrides,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Parses `max.connections.per.ip.overrides`: `address:count` pairs, comma-separated
    /// (`127.0.0.1:200,[::1]:50`). Kafka also takes host names, which it resolves; Strom
    /// takes addresses only, so the limit cannot change with DNS.
    pub fn parse_overrides(text: &str) -> Result<HashMap<IpAddr, usize>, String> {
        let mut out = HashMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (host, count) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("{item}: expected ADDRESS:COUNT"))?;
            let ip: IpAddr = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("{item}: {host} is not an IP address"))?;
            let count: usize = count
                .parse()
                .map_err(|_| format!("{item}: {count} is not a count"))?;
            out.insert(ip, count);
        }
        Ok(out)
    }

    /// A place for a new connection from `ip`, or `None` when it holds its limit already.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let limit = self
            .overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.default_limit);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limits: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_its_limit_and_closing_frees_a_place() {
        let limits = ConnectionsPerIp::new(
            2,
            ConnectionsPerIp::parse_overrides("10.0.0.9:0,[::1]:3").unwrap(),
        );
        let a = ip("10.0.0.1");
        let first = limits.acquire(a).unwrap();
        let _second = limits.acquire(a).unwrap();
        assert!(limits.acquire(a).is_none());
        assert!(limits.acquire(ip("10.0.0.2")).is_some());
        drop(first);
        assert!(limits.acquire(a).is_some());
        assert!(
            limits.acquire(ip("10.0.0.9")).is_none(),
            "an override of 0 refuses all"
        );
        let v6: Vec<_> = (0..3).map(|_| limits.acquire(ip("::1")).unwrap()).collect();
        assert!(limits.acquire(ip("::1")).is_none());
        drop(v6);
        assert_eq!(limits.open(ip("::1")), 0);
    }

    #[test]
    fn bad_overrides_are_named() {
        assert!(ConnectionsPerIp::parse_overrides("host").is_err());
        assert!(ConnectionsPerIp::parse_overrides("example.com:5").is_err());
        assert!(ConnectionsPerIp::parse_overrides("1.2.3.4:x").is_err());
        assert!(ConnectionsPerIp::parse_overrides("").unwrap().is_empty());
    }
}
