//! Turning the file's address words into addresses: `me`, `any`, an address, a subnet, or a
//! DNS name. Names are resolved once, when the policy is loaded, as the Windows 2000 filter
//! wizard did; the addresses found are kept and shown.
//!
//! Resolution goes through the [`Resolver`] trait so that tests use a fixed table and never
//! touch the network. [`SystemResolver`] asks the operating system's resolver (which may
//! send DNS queries) and lists the host's interface addresses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use super::model::{prefix_mask_u128, prefix_mask_u32, Address, Subnet};

/// Looks up names and the local host's addresses.
pub trait Resolver {
    /// The addresses of a DNS name, in the order the resolver gives them.
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>>;

    /// The addresses of this host (what `me` stands for when neither the command line nor
    /// the file says).
    fn local_addresses(&self) -> Vec<IpAddr>;
}

/// The operating system's resolver and interface list.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = Vec::new();
        for sa in (name, 0u16).to_socket_addrs()? {
            if !out.contains(&sa.ip()) {
                out.push(sa.ip());
            }
        }
        Ok(out)
    }

    fn local_addresses(&self) -> Vec<IpAddr> {
        interface_addresses()
    }
}

/// A fixed name table, for tests and for reading a policy away from its host.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    /// Name → addresses.
    pub names: Vec<(String, Vec<IpAddr>)>,
    /// What `me` stands for.
    pub local: Vec<IpAddr>,
}

impl Resolver for StaticResolver {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        self.names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name not in the table"))
    }

    fn local_addresses(&self) -> Vec<IpAddr> {
        self.local.clone()
    }
}

/// The addresses of every interface that is up, from `getifaddrs(3)`.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; on failure we return empty.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned and has not been freed.
        let ifa = unsafe { &*cur };
        if let Some(ip) = sockaddr_ip(ifa.ifa_addr) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The IP address inside a `sockaddr`, when it is IPv4 or IPv6.
fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: a non-null ifa_addr points at a sockaddr whose family tells its real type.
    let family = i32::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET => {
            // SAFETY: the family is AF_INET, so the storage is a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family is AF_INET6, so the storage is a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// What an address word turned into, with any remark worth a warning.
#[derive(Debug)]
pub struct Resolved {
    /// The address.
    pub address: Address,
    /// A remark (host bits cleared from a subnet), shown as a warning.
    pub note: Option<String>,
}

/// Parses and resolves one address word of a filter.
pub fn resolve_address(word: &str, resolver: &dyn Resolver) -> Result<Resolved, String> {
    let word = word.trim();
    let plain = |address| {
        Ok(Resolved {
            address,
            note: None,
        })
    };
    if word.eq_ignore_ascii_case("me") {
        return plain(Address::Me);
    }
    if word.eq_ignore_ascii_case("any") {
        return plain(Address::Any);
    }
    if let Ok(ip) = word.parse::<IpAddr>() {
        return plain(Address::Ip(ip));
    }
    if let Some((net, mask)) = word.split_once('/') {
        return parse_subnet(word, net, mask);
    }
    resolve_name(word, resolver)
}

fn parse_subnet(word: &str, net: &str, mask: &str) -> Result<Resolved, String> {
    let network: IpAddr = net
        .parse()
        .map_err(|_| format!("{word:?}: {net:?} is not an IP address"))?;
    let prefix = parse_prefix(network, mask).ok_or_else(|| {
        format!("{word:?}: {mask:?} is neither a prefix length nor a contiguous netmask")
    })?;
    let masked = mask_address(network, prefix);
    let note = (masked != network)
        .then(|| format!("subnet {word} has host bits set; it is read as {masked}/{prefix}"));
    Ok(Resolved {
        address: Address::Subnet(Subnet {
            network: masked,
            prefix,
        }),
        note,
    })
}

/// A prefix length (`24`) or, for IPv4, a dotted netmask (`255.255.255.0`).
fn parse_prefix(network: IpAddr, mask: &str) -> Option<u8> {
    let max = if network.is_ipv4() { 32 } else { 128 };
    if let Ok(p) = mask.parse::<u8>() {
        return (p <= max).then_some(p);
    }
    let m: Ipv4Addr = mask.parse().ok().filter(|_| network.is_ipv4())?;
    let bits = u32::from(m);
    let prefix = bits.leading_ones();
    (bits.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

fn mask_address(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::from(Ipv4Addr::from(u32::from(a) & prefix_mask_u32(prefix))),
        IpAddr::V6(a) => IpAddr::from(Ipv6Addr::from(u128::from(a) & prefix_mask_u128(prefix))),
    }
}

fn resolve_name(word: &str, resolver: &dyn Resolver) -> Result<Resolved, String> {
    let valid = !word.is_empty()
        && word.len() <= 253
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !valid {
        return Err(format!(
            "{word:?} is not me, any, an IP address, a subnet (ADDR/PREFIX) or a DNS name"
        ));
    }
    let addresses = resolver
        .lookup(word)
        .map_err(|e| format!("the DNS name {word:?} does not resolve ({e}); use its address"))?;
    if addresses.is_empty() {
        return Err(format!("the DNS name {word:?} resolves to no address"));
    }
    Ok(Resolved {
        address: Address::Dns {
            name: word.to_string(),
            addresses,
        },
        note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StaticResolver {
        StaticResolver {
            names: vec![("bobslap".into(), vec!["192.0.2.2".parse().unwrap()])],
            local: vec!["192.0.2.1".parse().unwrap()],
        }
    }

    #[test]
    fn words() {
        let r = table();
        let cases: &[(&str, &str)] = &[
            ("me", "me"),
            ("ANY", "any"),
            ("192.0.2.2", "192.0.2.2"),
            ("2001:db8::1", "2001:db8::1"),
            ("192.0.2.0/24", "192.0.2.0/24"),
            ("192.0.2.0/255.255.255.0", "192.0.2.0/24"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("Bobslap", "Bobslap (192.0.2.2)"),
        ];
        for (word, shown) in cases {
            let got = resolve_address(word, &r).unwrap();
            assert_eq!(got.address.to_string(), *shown, "{word}");
            assert!(got.note.is_none(), "{word}");
        }
    }

    #[test]
    fn host_bits_are_cleared_with_a_note() {
        let got = resolve_address("192.0.2.77/24", &table()).unwrap();
        assert_eq!(got.address.to_string(), "192.0.2.0/24");
        assert!(got.note.unwrap().contains("host bits"));
    }

    #[test]
    fn bad_words() {
        let r = table();
        for word in [
            "192.0.2.0/33",
            "192.0.2.0/255.0.255.0",
            "nothere",
            "a b",
            "x/24",
        ] {
            assert!(resolve_address(word, &r).is_err(), "{word}");
        }
    }

    #[test]
    fn localhost_resolves_through_the_system_without_the_network() {
        let got = resolve_address("localhost", &SystemResolver).unwrap();
        match got.address {
            Address::Dns { addresses, .. } => assert!(addresses.iter().all(|a| a.is_loopback())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn system_lists_loopback_among_local_addresses() {
        let local = SystemResolver.local_addresses();
        assert!(local.iter().any(|a| a.is_loopback()), "{local:?}");
    }
}
