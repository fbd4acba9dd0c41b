//! The basics of `ansible.utils`' IP filters, as its `ipaddr_utils.py` defines them over
//! netaddr: `ipaddr(query)` (and `ipv4`, `ipv6`), `ipwrap`, and the tests `ip`, `ipv4`,
//! `ipv6`, `ip_address`, `ipv4_address`, `ipv6_address`. Addresses are parsed by the
//! standard library (dotted quads and RFC 4291 text; a `/prefix` or a v4 `/netmask`), so
//! netaddr's looser forms are not read. Queries that need netaddr's registry of special
//! ranges (`private`, `public`) are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error};

use super::invalid;

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("ipaddr", |v: &Value, q: Option<Value>| filter(v, q, None, "ipaddr"));
    env.add_filter("ipv4", |v: &Value, q: Option<Value>| filter(v, q, Some(4), "ipv4"));
    env.add_filter("ipv6", |v: &Value, q: Option<Value>| filter(v, q, Some(6), "ipv6"));
    env.add_filter("ipwrap", ipwrap);
    env.add_test("ip", |v: &Value| is(v, None, false));
    env.add_test("ipv4", |v: &Value| is(v, Some(4), false));
    env.add_test("ipv6", |v: &Value| is(v, Some(6), false));
    env.add_test("ip_address", |v: &Value| is(v, None, true));
    env.add_test("ipv4_address", |v: &Value| is(v, Some(4), true));
    env.add_test("ipv6_address", |v: &Value| is(v, Some(6), true));
}

/// netaddr's `IPNetwork`: an address with a prefix (32 or 128 when none was given).
#[derive(Clone, Copy)]
struct Net {
    ip: u128,
    prefix: u32,
    v6: bool,
}

impl Net {
    fn bits(&self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }
    fn version(&self) -> u8 {
        if self.v6 { 6 } else { 4 }
    }
    fn hostmask(&self) -> u128 {
        let host_bits = self.bits() - self.prefix;
        if host_bits == 0 { 0 } else { u128::MAX >> (128 - host_bits) }
    }
    fn netmask(&self) -> u128 {
        let all = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        all & !self.hostmask()
    }
    fn network(&self) -> u128 {
        self.ip & self.netmask()
    }
    fn last(&self) -> u128 {
        self.network() | self.hostmask()
    }
    fn size(&self) -> u128 {
        self.hostmask().wrapping_add(1)
    }
    /// None for /31 and /32 (/127 and /128), as in netaddr.
    fn broadcast(&self) -> Option<u128> {
        (self.bits() - self.prefix > 1).then(|| self.last())
    }
    fn fmt(&self, n: u128) -> String {
        if self.v6 { Ipv6Addr::from(n).to_string() } else { Ipv4Addr::from(n as u32).to_string() }
    }
    fn cidr(&self, n: u128) -> String {
        format!("{}/{}", self.fmt(n), self.prefix)
    }
}

/// How the value was written: an address alone, or with a prefix.
#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Address,
    Network,
}

fn parse(s: &str) -> Option<(Net, Kind)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let (ip, v6) = match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, false),
        IpAddr::V6(a) => (u128::from(a), true),
    };
    let bits = if v6 { 128 } else { 32 };
    let prefix = match prefix {
        None => return Some((Net { ip, prefix: bits, v6 }, Kind::Address)),
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => p.parse().ok()?,
        Some(mask) if !v6 => {
            let m = u32::from(mask.parse::<Ipv4Addr>().ok()?);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return None;
            }
            m.leading_ones()
        }
        Some(_) => return None,
    };
    (prefix <= bits).then_some((Net { ip, prefix, v6 }, Kind::Network))
}

/// The value as ipaddr reads it: a string, or an integer (IPv4 when it fits).
fn read(v: &Value, version: Option<u8>) -> Option<(Net, Kind)> {
    if v.is_integer() {
        let n = u128::try_from(v.clone()).ok()?;
        let v6 = version == Some(6) || n > u32::MAX as u128;
        let net = Net { ip: n, prefix: if v6 { 128 } else { 32 }, v6 };
        return Some((net, Kind::Address));
    }
    parse(v.as_str()?)
}

fn filter(
    v: &Value,
    query: Option<Value>,
    version: Option<u8>,
    alias: &str,
) -> Result<Value, Error> {
    if matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) {
        let mut out = Vec::new();
        for item in v.try_iter()? {
            let r = filter(&item, query.clone(), version, alias)?;
            if r.is_true() {
                out.push(r);
            }
        }
        return Ok(Value::from(out));
    }
    if !v.is_true() || v.kind() == ValueKind::Bool {
        return Ok(Value::from(false));
    }
    let Some((net, kind)) = read(v, version) else {
        return Ok(Value::from(false));
    };
    if version.is_some_and(|want| want != net.version()) {
        return Ok(Value::from(false));
    }
    query_value(v, net, kind, query.unwrap_or_else(|| Value::from("")), alias)
}

fn query_value(v: &Value, net: Net, kind: Kind, query: Value, alias: &str) -> Result<Value, Error> {
    let none = Value::from(());
    let s = |t: String| Value::from(t);
    let q = if query.is_integer() {
        query.to_string()
    } else {
        query.as_str().unwrap_or("").to_string()
    };
    let (ip, network) = (net.ip, net.network());
    let not_network = || Err(invalid(alias, "Not a network address"));
    Ok(match q.as_str() {
        "" => match kind {
            Kind::Address => s(net.fmt(ip)),
            Kind::Network => s(net.cidr(ip)),
        },
        "address" | "ip" => {
            if net.size() == 1 || ip != network || net.broadcast().is_none() || net.v6 {
                s(net.fmt(ip))
            } else {
                none
            }
        }
        "bool" => Value::from(true),
        "broadcast" => net.broadcast().filter(|_| net.size() > 2).map_or(none, |b| s(net.fmt(b))),
        "cidr" => s(net.cidr(ip)),
        "subnet" | "network/prefix" => s(net.cidr(network)),
        "host" => {
            if net.size() == 1 || ip != network || net.broadcast().is_none() {
                s(net.cidr(ip))
            } else {
                none
            }
        }
        "hostmask" | "wildcard" => s(net.fmt(net.hostmask())),
        "ip/prefix" => {
            if net.size() == 2 || (net.size() > 1 && ip != network) {
                s(net.cidr(ip))
            } else {
                none
            }
        }
        "net" => {
            if net.size() > 1 && ip == network {
                s(net.cidr(network))
            } else {
                none
            }
        }
        "netmask" => s(net.fmt(net.netmask())),
        "network" | "network_id" => s(net.fmt(network)),
        "network_netmask" => s(format!("{} {}", net.fmt(network), net.fmt(net.netmask()))),
        "prefix" => Value::from(net.prefix),
        "size" => Value::from(net.size()),
        "size_usable" => Value::from(match net.size() {
            1 => 0,
            2 => 2,
            n => n - 2,
        }),
        "first_usable" | "last_usable" | "range_usable" if kind == Kind::Address => {
            return not_network();
        }
        "first_usable" | "last_usable" | "range_usable" if net.size() > 1 => {
            let (first, last) =
                if net.size() == 2 { (network, net.last()) } else { (network + 1, net.last() - 1) };
            match q.as_str() {
                "first_usable" => s(net.fmt(first)),
                "last_usable" => s(net.fmt(last)),
                _ => s(format!("{}-{}", net.fmt(first), net.fmt(last))),
            }
        }
        "first_usable" | "last_usable" | "range_usable" => none,
        "type" => s(if net.size() == 1 || ip != network { "address" } else { "network" }.into()),
        "version" => Value::from(net.version()),
        "wrap" if net.v6 => match kind {
            Kind::Address => s(format!("[{}]", net.fmt(ip))),
            Kind::Network => s(format!("[{}]/{}", net.fmt(ip), net.prefix)),
        },
        "wrap" => v.clone(),
        "loopback" | "lo" => {
            let lo = if net.v6 { ip == 1 } else { ip >> 24 == 127 };
            if lo { v.clone() } else { none }
        }
        "multicast" => {
            let mc = if net.v6 { ip >> 120 == 0xff } else { ip >> 28 == 0xe };
            if mc { v.clone() } else { none }
        }
        "link-local" => {
            let ll = if net.v6 { ip >> 118 == 0x3fa } else { ip >> 16 == 0xa9fe };
            if ll { v.clone() } else { none }
        }
        n if n.parse::<i128>().is_ok() => {
            let n: i128 = n.parse().expect("checked");
            if net.size() == 1 {
                match kind {
                    Kind::Address => s(net.fmt(ip)),
                    Kind::Network => s(net.cidr(ip)),
                }
            } else {
                let size = net.size() as i128;
                let index = if n < 0 { size + n } else { n };
                if (0..size).contains(&index) {
                    s(net.cidr(network + index as u128))
                } else {
                    Value::from(false)
                }
            }
        }
        other => match parse(other) {
            // A network as the query: the value if it lies inside it.
            Some((within, Kind::Network)) if within.v6 == net.v6 => {
                let inside = network >= within.network() && net.last() <= within.last();
                if inside { v.clone() } else { none }
            }
            Some(_) => none,
            None => return Err(invalid(alias, format!("unknown filter type: {other}"))),
        },
    })
}

fn ipwrap(v: &Value, query: Option<Value>) -> Result<Value, Error> {
    let wrap = |item: &Value| -> Value {
        match filter(item, query.clone(), None, "ipwrap") {
            Ok(r) if r.is_true() => filter(&r, Some(Value::from("wrap")), None, "ipwrap")
                .unwrap_or_else(|_| item.clone()),
            _ => item.clone(),
        }
    };
    if matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Ok(Value::from(v.try_iter()?.map(|i| wrap(&i)).collect::<Vec<_>>()));
    }
    Ok(wrap(v))
}

fn is(v: &Value, version: Option<u8>, address_only: bool) -> bool {
    let Some((net, kind)) = v.as_str().and_then(parse) else {
        return false;
    };
    version.is_none_or(|want| want == net.version()) && (!address_only || kind == Kind::Address)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok};

    #[test]
    fn ipaddr_queries() {
        assert_eq!(
            ok("{{ '10.0.0.1' | ipaddr }} {{ 'x' | ipaddr }} {{ '10.0.0.1/24' | ipaddr }}"),
            "10.0.0.1 False 10.0.0.1/24"
        );
        assert_eq!(
            ok("{{ '10.0.0.1/24' | ipaddr('address') }} {{ '10.0.0.0/24' | ipaddr('address') }}"),
            "10.0.0.1 None"
        );
        assert_eq!(
            ok(
                "{{ '10.0.0.7/24' | ipaddr('network') }} {{ '10.0.0.7/24' | ipaddr('netmask') }} {{ '10.0.0.7/24' | ipaddr('prefix') }} {{ '10.0.0.7/24' | ipaddr('broadcast') }}"
            ),
            "10.0.0.0 255.255.255.0 24 10.0.0.255"
        );
        assert_eq!(
            ok(
                "{{ '10.0.0.7/255.255.0.0' | ipaddr('subnet') }} {{ '10.0.0.0/24' | ipaddr('1') }} {{ '10.0.0.0/24' | ipaddr(-2) }}"
            ),
            "10.0.0.0/16 10.0.0.1/24 10.0.0.254/24"
        );
        assert_eq!(
            ok("{{ '10.1.2.3' | ipaddr('10.0.0.0/8') }} {{ '11.1.2.3' | ipaddr('10.0.0.0/8') }}"),
            "10.1.2.3 None"
        );
        assert_eq!(
            ok("{{ ['10.0.0.1', 'x', 'fe80::1'] | ipaddr }} {{ ['10.0.0.1', 'fe80::1'] | ipv6 }}"),
            "['10.0.0.1', 'fe80::1'] ['fe80::1']"
        );
        assert_eq!(
            ok(
                "{{ '2001:DB8::1/64' | ipaddr('network') }} {{ '10.0.0.0/30' | ipaddr('range_usable') }}"
            ),
            "2001:db8:: 10.0.0.1-10.0.0.2"
        );
        assert!(err("{{ '10.0.0.1' | ipaddr('nonsense') }}").contains("unknown filter type"));
    }

    #[test]
    fn ipwrap_brackets_ipv6_only() {
        assert_eq!(
            ok(
                "{{ 'fe80::1' | ipwrap }} {{ '10.0.0.1' | ipwrap }} {{ 'db.example' | ipwrap }} {{ 'fe80::1/64' | ipwrap }}"
            ),
            "[fe80::1] 10.0.0.1 db.example [fe80::1]/64"
        );
    }

    #[test]
    fn ip_tests() {
        assert_eq!(
            ok(
                "{{ '10.0.0.1' is ipv4 }} {{ '10.0.0.1' is ipv6 }} {{ '::1' is ipv6 }} {{ '10.0.0.0/8' is ipv4_address }} {{ 'x' is ip }}"
            ),
            "True False True False False"
        );
    }
}
