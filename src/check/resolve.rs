//! The health checks' view of DNS: one run's resolver over
//! [`crate::dns::query`], with the servers to try in order, a per-run
//! answer cache (the SPF walk, `FCrDNS` and the MX check ask the same names)
//! and a dead-server rule so a run against an unreachable resolver ends in
//! seconds, not after every query's timeout.
//!
//! Bounds: at most [`MAX_CACHED`] answers are kept (then new answers are
//! not cached; the run is short and bounded by its checks). It does not
//! read the clock except for socket deadlines.

use crate::dns::{Answer, Data, DnsError, Type};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Answers kept per run: a run asks a few hundred names at most.
pub const MAX_CACHED: usize = 1024;

/// Consecutive unanswered queries, with none answered yet in the run,
/// after which the servers count as unreachable and queries fail at once.
const DEAD_AFTER: u32 = 2;

/// What a name holds for one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Records of the type asked for.
    Found(Vec<Data>),
    /// The name exists without records of that type (NODATA).
    Empty,
    /// NXDOMAIN.
    NoName,
    /// The server answered with another RCODE (SERVFAIL, REFUSED, …).
    Error(u8),
}

impl Lookup {
    /// No records: NODATA or NXDOMAIN (an RFC 7208 "void lookup").
    pub fn void(&self) -> bool {
        matches!(self, Lookup::Empty | Lookup::NoName)
    }

    pub fn records(&self) -> &[Data] {
        match self {
            Lookup::Found(r) => r,
            _ => &[],
        }
    }

    /// The TXT strings found.
    pub fn txts(&self) -> Vec<&str> {
        self.records().iter().filter_map(|d| if let Data::Txt(s) = d { Some(s.as_str()) } else { None }).collect()
    }

    /// The names found (PTR, CNAME, NS).
    pub fn names(&self) -> Vec<&str> {
        self.records().iter().filter_map(|d| if let Data::Name(s) = d { Some(s.as_str()) } else { None }).collect()
    }

    /// The addresses found (A and AAAA).
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        self.records()
            .iter()
            .filter_map(|d| match d {
                Data::A(a) => Some((*a).into()),
                Data::Aaaa(a) => Some((*a).into()),
                _ => None,
            })
            .collect()
    }
}

/// One run's resolver.
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    cache: RefCell<HashMap<(String, Type), Lookup>>,
    answered: Cell<u32>,
    failed_in_a_row: Cell<u32>,
    last_error: RefCell<Option<String>>,
}

impl Resolver {
    /// `servers` are tried in order until one answers.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver {
            servers,
            timeout,
            cache: RefCell::new(HashMap::new()),
            answered: Cell::new(0),
            failed_in_a_row: Cell::new(0),
            last_error: RefCell::new(None),
        }
    }

    /// Did any server answer any question of this run?
    pub fn any_answer(&self) -> bool {
        self.answered.get() > 0
    }

    /// Were questions asked that no server answered, and none answered?
    pub fn unreachable(&self) -> Option<String> {
        if self.any_answer() { None } else { self.last_error.borrow().clone() }
    }

    fn dead(&self) -> bool {
        self.answered.get() == 0 && self.failed_in_a_row.get() >= DEAD_AFTER
    }

    /// `name`'s records of type `t`.
    ///
    /// # Errors
    /// No server answered (or the name is not a DNS name): the caller
    /// reports the check as not evaluated.
    pub fn lookup(&self, name: &str, t: Type) -> Result<Lookup, DnsError> {
        let key = (name.trim_end_matches('.').to_ascii_lowercase(), t);
        if let Some(l) = self.cache.borrow().get(&key) {
            return Ok(l.clone());
        }
        if !crate::dns::valid_name(&key.0) {
            return Err(DnsError::BadName(name.to_owned()));
        }
        if self.dead() {
            return Err(DnsError::NoServer);
        }
        let mut err = DnsError::NoServer;
        for &s in &self.servers {
            match crate::dns::query(s, &key.0, t, self.timeout) {
                Ok(a) => {
                    self.answered.set(self.answered.get() + 1);
                    self.failed_in_a_row.set(0);
                    let l = classify(a);
                    let mut c = self.cache.borrow_mut();
                    if c.len() < MAX_CACHED {
                        c.insert(key, l.clone());
                    }
                    return Ok(l);
                }
                Err(e @ DnsError::BadName(_)) => return Err(e),
                Err(e) => err = e,
            }
        }
        self.failed_in_a_row.set(self.failed_in_a_row.get() + 1);
        *self.last_error.borrow_mut() = Some(err.to_string());
        Err(err)
    }

    /// The A and AAAA addresses of `name` (NXDOMAIN and NODATA: none).
    ///
    /// # Errors
    /// No server answered either question.
    pub fn addresses(&self, name: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
        let a = self.lookup(name, Type::A);
        let aaaa = self.lookup(name, Type::Aaaa);
        match (a, aaaa) {
            (Err(e), Err(_)) => Err(e),
            (a, aaaa) => {
                let mut v = a.map(|l| l.ips()).unwrap_or_default();
                v.extend(aaaa.map(|l| l.ips()).unwrap_or_default());
                Ok(v)
            }
        }
    }
}

fn classify(a: Answer) -> Lookup {
    match a.rcode {
        0 if a.records.is_empty() => Lookup::Empty,
        0 => Lookup::Found(a.records),
        3 => Lookup::NoName,
        r => Lookup::Error(r),
    }
}
