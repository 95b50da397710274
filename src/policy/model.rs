//! The policy model's types, as the Windows 2000 IP Security Policy snap-in presented them.
//!
//! A [`Policy`] holds [`Rule`]s; each rule links one [`FilterList`] (which traffic) to one
//! [`FilterAction`] (what to do with it) and carries the rule's own [`AuthMethod`]s,
//! [`ConnectionType`] and optional tunnel endpoint. Everything here is already resolved and
//! checked: names are indexes, DNS names carry their addresses, key files are read. The
//! `enforce` renderer reads these types directly.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// A loaded, resolved and validated IPsec policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The policy's name ("Alice's IPSec").
    pub name: String,
    /// Free text, shown by `policy show`.
    pub description: Option<String>,
    /// Where the policy came from: a file path or `builtin:NAME`.
    pub origin: String,
    /// What `me` (My IP address) stands for, and where that came from.
    pub me: LocalAddresses,
    /// The default response rule, when activated (the wizard's check box).
    pub default_response: Option<DefaultResponse>,
    /// Rules in file order; that order breaks specificity ties in matching.
    pub rules: Vec<Rule>,
    /// Every filter list of the file, referenced by [`Rule::filter_list`].
    pub filter_lists: Vec<FilterList>,
    /// Every filter action of the file, referenced by [`Rule::filter_action`].
    pub filter_actions: Vec<FilterAction>,
    /// The key exchange security methods that protect the IKE SA itself, most preferred
    /// first (the General tab's Key Exchange Settings, Methods). Never empty: a file
    /// without them gets [`KeyExchangeMethod::WINDOWS_DEFAULT`].
    ///
    /// Limitation: the dialog's master key PFS and master key lifetimes (minutes,
    /// sessions) are not read; the IKE daemon's defaults apply.
    pub key_exchange: Vec<KeyExchangeMethod>,
    /// Other policies this file names by path (for `policy diff`), resolved against the
    /// file's directory.
    pub other_policies: Vec<PathBuf>,
    /// Warnings found while loading; a policy with errors does not load at all.
    pub warnings: Vec<super::Diagnostic>,
}

/// The addresses `me` stands for. Taken once at load time: an address the host gains later
/// is not `me` until the policy is loaded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddresses {
    /// The addresses.
    pub addresses: Vec<IpAddr>,
    /// Where they came from: `command line`, `file`, `this host`.
    pub from: &'static str,
}

/// The default response rule: answer any peer that asks for security, with these methods.
#[derive(Debug, Clone)]
pub struct DefaultResponse {
    /// Authentication methods in order of preference.
    pub authentication: Vec<AuthMethod>,
    /// Security methods in order of preference.
    pub security_methods: Vec<SecurityMethod>,
}

/// A rule: a filter list linked to a filter action.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name; the file may omit it, then it is "LIST / ACTION".
    pub name: String,
    /// Index into [`Policy::filter_lists`].
    pub filter_list: usize,
    /// Index into [`Policy::filter_actions`].
    pub filter_action: usize,
    /// Authentication methods in order of preference (the rule's "Authentication Methods" tab).
    pub authentication: Vec<AuthMethod>,
    /// The network types the rule applies to. Matching ignores it: a flow does not say
    /// which kind of connection carried it.
    pub connection_type: ConnectionType,
    /// The far end of a tunnel; `None` is transport mode ("This rule does not specify a
    /// tunnel").
    pub tunnel_endpoint: Option<IpAddr>,
    /// A cleared check box in the policy's rule list: the rule exists but does not apply.
    pub enabled: bool,
    /// Line of the rule in its file (0 for built-in policies).
    pub line: usize,
}

/// A named list of filters.
#[derive(Debug, Clone)]
pub struct FilterList {
    /// The list's name ("Abczz to Bob's PC").
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The filters in file order.
    pub filters: Vec<Filter>,
    /// Line of the list in its file.
    pub line: usize,
}

/// One filter: addresses, protocol and ports, in one direction (plus its mirror).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Source address.
    pub source: Address,
    /// Destination address.
    pub destination: Address,
    /// IP protocol.
    pub protocol: Protocol,
    /// Source port, `None` for any port (TCP and UDP only).
    pub source_port: Option<u16>,
    /// Destination port, `None` for any port (TCP and UDP only).
    pub destination_port: Option<u16>,
    /// Whether the reverse direction (addresses and ports swapped) also matches.
    pub mirrored: bool,
    /// Free text.
    pub description: Option<String>,
    /// Line of the filter in its file.
    pub line: usize,
}

impl Filter {
    /// The mirror of this filter: source and destination (addresses and ports) swapped.
    pub fn mirror(&self) -> Filter {
        Filter {
            source: self.destination.clone(),
            destination: self.source.clone(),
            source_port: self.destination_port,
            destination_port: self.source_port,
            ..self.clone()
        }
    }

    /// `SRC -> DST PROTO SPORT -> DPORT` in the words of the wizard.
    pub fn summary(&self) -> String {
        format!(
            "{} -> {}, {}, port {} -> {}",
            self.source,
            self.destination,
            self.protocol,
            port_text(self.source_port),
            port_text(self.destination_port)
        )
    }
}

/// A port or `any`.
pub fn port_text(port: Option<u16>) -> String {
    port.map_or_else(|| "any".to_string(), |p| p.to_string())
}

/// A filter's address, as the filter wizard offered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// My IP address: every address of the local host ([`Policy::me`]).
    Me,
    /// Any IP address.
    Any,
    /// A specific IP address.
    Ip(IpAddr),
    /// A specific IP subnet.
    Subnet(Subnet),
    /// A specific DNS name, resolved once when the policy was loaded (as the Windows 2000
    /// wizard did); later changes in DNS are not seen until the policy is loaded again.
    Dns {
        /// The name as written.
        name: String,
        /// The addresses it resolved to at load time.
        addresses: Vec<IpAddr>,
    },
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Me => f.write_str("me"),
            Address::Any => f.write_str("any"),
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Subnet(s) => write!(f, "{s}"),
            Address::Dns { name, addresses } => {
                let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                write!(f, "{name} ({})", list.join(", "))
            }
        }
    }
}

/// An IP subnet: a network address and a prefix length; host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// Network address.
    pub network: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Subnet {
    /// Whether `ip` lies inside the subnet (an IPv4 subnet never holds an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = prefix_mask_u32(self.prefix);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = prefix_mask_u128(self.prefix);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The IPv4 netmask of a prefix length (0..=32).
pub(crate) fn prefix_mask_u32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

/// The IPv6 netmask of a prefix length (0..=128).
pub(crate) fn prefix_mask_u128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// A filter's IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Any protocol.
    Any,
    /// One protocol number (6 TCP, 17 UDP, 1 ICMP, ...).
    Number(u8),
}

/// IANA protocol number of TCP.
pub const TCP: u8 = 6;
/// IANA protocol number of UDP.
pub const UDP: u8 = 17;
/// IANA protocol number of ICMP.
pub const ICMP: u8 = 1;

impl Protocol {
    /// Whether filters on this protocol may name ports (TCP and UDP only, as in the wizard).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Number(TCP) | Protocol::Number(UDP))
    }

    /// Whether a packet of protocol `number` matches.
    pub fn matches(self, number: u8) -> bool {
        match self {
            Protocol::Any => true,
            Protocol::Number(n) => n == number,
        }
    }
}

/// The name of an IP protocol number, or the number itself.
pub fn protocol_name(number: u8) -> String {
    match number {
        TCP => "tcp".into(),
        UDP => "udp".into(),
        ICMP => "icmp".into(),
        n => n.to_string(),
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Any => f.write_str("any"),
            Protocol::Number(n) => f.write_str(&protocol_name(*n)),
        }
    }
}

/// What a filter action does with matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let it pass in the clear.
    Permit,
    /// Drop it.
    Block,
    /// Negotiate security (IKE) and protect it with the security methods.
    Negotiate,
}

impl Action {
    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Permit => "permit",
            Action::Block => "block",
            Action::Negotiate => "negotiate",
        }
    }
}

/// A filter action.
#[derive(Debug, Clone)]
pub struct FilterAction {
    /// The action's name ("Encrypt Abczz").
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Permit, block or negotiate.
    pub action: Action,
    /// Security methods in order of preference (negotiate only).
    pub security_methods: Vec<SecurityMethod>,
    /// "Accept unsecured communication, but always respond using IPSec": the first inbound
    /// packet may arrive in the clear; the answer is protected.
    pub accept_unsecured: bool,
    /// "Allow unsecured communication with non IPSec-aware computer": fall back to the clear
    /// when the peer does not answer IKE.
    pub allow_fallback_to_clear: bool,
    /// "Session key Perfect Forward Secrecy": a fresh Diffie-Hellman exchange per quick mode.
    pub session_key_pfs: bool,
    /// Line of the action in its file.
    pub line: usize,
}

/// One security method: what protects the traffic, and for how long a key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityMethod {
    /// `high`, `medium`, or `custom`.
    pub label: String,
    /// AH with this integrity algorithm ("Data and address integrity without encryption").
    pub ah: Option<Integrity>,
    /// ESP ("Data integrity and encryption").
    pub esp: Option<EspMethod>,
    /// Session key lifetime in kilobytes.
    pub lifetime_kb: u64,
    /// Session key lifetime in seconds.
    pub lifetime_seconds: u64,
}

/// Session key lifetime in kilobytes the Windows 2000 security method dialog proposed.
pub const DEFAULT_LIFETIME_KB: u64 = 100_000;
/// Session key lifetime in seconds the Windows 2000 security method dialog proposed.
pub const DEFAULT_LIFETIME_SECONDS: u64 = 900;

impl SecurityMethod {
    /// `high`: ESP with 3DES and SHA1.
    pub fn high() -> SecurityMethod {
        SecurityMethod {
            label: "high".into(),
            ah: None,
            esp: Some(EspMethod {
                integrity: Some(Integrity::Sha1),
                encryption: Some(Encryption::TripleDes),
            }),
            lifetime_kb: DEFAULT_LIFETIME_KB,
            lifetime_seconds: DEFAULT_LIFETIME_SECONDS,
        }
    }

    /// `medium`: AH with SHA1, no encryption.
    pub fn medium() -> SecurityMethod {
        SecurityMethod {
            label: "medium".into(),
            ah: Some(Integrity::Sha1),
            esp: None,
            lifetime_kb: DEFAULT_LIFETIME_KB,
            lifetime_seconds: DEFAULT_LIFETIME_SECONDS,
        }
    }

    /// `AH SHA1 + ESP 3DES/SHA1, 100000 KB / 900 s`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = self.ah {
            parts.push(format!("AH {}", i.as_str()));
        }
        if let Some(esp) = &self.esp {
            parts.push(format!("ESP {}", esp.summary()));
        }
        format!(
            "{}, {} KB / {} s",
            parts.join(" + "),
            self.lifetime_kb,
            self.lifetime_seconds
        )
    }
}

/// ESP's algorithms; at least one is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspMethod {
    /// Integrity algorithm; `None` with an AEAD cipher or for encryption without integrity.
    pub integrity: Option<Integrity>,
    /// Encryption algorithm; `None` is ESP with NULL encryption (RFC 2410).
    pub encryption: Option<Encryption>,
}

impl EspMethod {
    /// `3des/sha1`, `aes128-gcm`, `null/sha1`.
    pub fn summary(&self) -> String {
        let enc = self.encryption.map_or("null", Encryption::as_str);
        match self.integrity {
            Some(i) => format!("{enc}/{}", i.as_str()),
            None => enc.to_string(),
        }
    }
}

/// Integrity (hash) algorithms of AH and ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// HMAC-MD5-96 (RFC 2403).
    Md5,
    /// HMAC-SHA1-96 (RFC 2404).
    Sha1,
    /// HMAC-SHA2-256-128 (RFC 4868).
    Sha2_256,
    /// HMAC-SHA2-384-192 (RFC 4868).
    Sha2_384,
    /// HMAC-SHA2-512-256 (RFC 4868).
    Sha2_512,
}

impl Integrity {
    /// Every value, for parsing and help texts.
    pub const ALL: [Integrity; 5] = [
        Integrity::Md5,
        Integrity::Sha1,
        Integrity::Sha2_256,
        Integrity::Sha2_384,
        Integrity::Sha2_512,
    ];

    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::Md5 => "md5",
            Integrity::Sha1 => "sha1",
            Integrity::Sha2_256 => "sha2-256",
            Integrity::Sha2_384 => "sha2-384",
            Integrity::Sha2_512 => "sha2-512",
        }
    }

    /// strongSwan's proposal keyword (swanctl.conf `esp_proposals`).
    pub fn strongswan_name(self) -> &'static str {
        match self {
            Integrity::Md5 => "md5",
            Integrity::Sha1 => "sha1",
            Integrity::Sha2_256 => "sha256",
            Integrity::Sha2_384 => "sha384",
            Integrity::Sha2_512 => "sha512",
        }
    }
}

/// ESP encryption algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// DES-CBC (RFC 2405); broken, kept because Windows 2000 offered it.
    Des,
    /// 3DES-CBC (RFC 2451).
    TripleDes,
    /// AES-128-CBC (RFC 3602).
    Aes128Cbc,
    /// AES-192-CBC (RFC 3602).
    Aes192Cbc,
    /// AES-256-CBC (RFC 3602).
    Aes256Cbc,
    /// AES-128-GCM with a 16-byte tag (RFC 4106); needs no separate integrity.
    Aes128Gcm,
    /// AES-256-GCM with a 16-byte tag (RFC 4106); needs no separate integrity.
    Aes256Gcm,
}

impl Encryption {
    /// Every value, for parsing and help texts.
    pub const ALL: [Encryption; 7] = [
        Encryption::Des,
        Encryption::TripleDes,
        Encryption::Aes128Cbc,
        Encryption::Aes192Cbc,
        Encryption::Aes256Cbc,
        Encryption::Aes128Gcm,
        Encryption::Aes256Gcm,
    ];

    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
            Encryption::Aes128Cbc => "aes128-cbc",
            Encryption::Aes192Cbc => "aes192-cbc",
            Encryption::Aes256Cbc => "aes256-cbc",
            Encryption::Aes128Gcm => "aes128-gcm",
            Encryption::Aes256Gcm => "aes256-gcm",
        }
    }

    /// strongSwan's proposal keyword (swanctl.conf `esp_proposals`).
    pub fn strongswan_name(self) -> &'static str {
        match self {
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
            Encryption::Aes128Cbc => "aes128",
            Encryption::Aes192Cbc => "aes192",
            Encryption::Aes256Cbc => "aes256",
            Encryption::Aes128Gcm => "aes128gcm16",
            Encryption::Aes256Gcm => "aes256gcm16",
        }
    }

    /// Whether the cipher authenticates by itself (AEAD).
    pub fn is_aead(self) -> bool {
        matches!(self, Encryption::Aes128Gcm | Encryption::Aes256Gcm)
    }
}

/// One key exchange security method: how IKE protects its own messages (Main Mode or
/// IKE_SA_INIT/IKE_AUTH) and which Diffie-Hellman group makes the master key. Windows 2000
/// offered 3DES or DES, SHA1 or MD5, and group 2 (Medium) or 1 (Low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyExchangeMethod {
    /// The cipher of the IKE SA.
    pub encryption: Encryption,
    /// Its integrity algorithm; with an AEAD cipher it only names the pseudo-random
    /// function.
    pub integrity: Integrity,
    /// The Diffie-Hellman group of the key exchange.
    pub dh_group: DhGroup,
}

impl KeyExchangeMethod {
    /// Windows 2000's first key exchange method: 3DES, SHA1, group 2 (Medium).
    pub const WINDOWS_DEFAULT: KeyExchangeMethod = KeyExchangeMethod {
        encryption: Encryption::TripleDes,
        integrity: Integrity::Sha1,
        dh_group: DhGroup::Modp1024,
    };

    /// strongSwan's IKE proposal: `3des-sha1-modp1024`, or `aes128gcm16-prfsha256-ecp256`
    /// for an AEAD cipher.
    pub fn strongswan_proposal(&self) -> String {
        let enc = self.encryption.strongswan_name();
        let int = self.integrity.strongswan_name();
        let group = self.dh_group.strongswan_name();
        if self.encryption.is_aead() {
            format!("{enc}-prf{int}-{group}")
        } else {
            format!("{enc}-{int}-{group}")
        }
    }
}

impl fmt::Display for KeyExchangeMethod {
    /// `3des, sha1, Diffie-Hellman group 2 (modp1024)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, Diffie-Hellman group {} ({})",
            self.encryption.as_str(),
            self.integrity.as_str(),
            self.dh_group.number(),
            self.dh_group.strongswan_name()
        )
    }
}

/// Diffie-Hellman groups (IANA "Transform Type 4" numbers, RFC 7296 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhGroup {
    /// Group 1, 768-bit MODP (RFC 2409): Windows 2000's "Low"; broken.
    Modp768,
    /// Group 2, 1024-bit MODP (RFC 2409): Windows 2000's "Medium".
    Modp1024,
    /// Group 5, 1536-bit MODP (RFC 3526).
    Modp1536,
    /// Group 14, 2048-bit MODP (RFC 3526).
    Modp2048,
    /// Group 15, 3072-bit MODP (RFC 3526).
    Modp3072,
    /// Group 16, 4096-bit MODP (RFC 3526).
    Modp4096,
    /// Group 19, 256-bit random ECP (RFC 5903).
    Ecp256,
    /// Group 20, 384-bit random ECP (RFC 5903).
    Ecp384,
    /// Group 21, 521-bit random ECP (RFC 5903).
    Ecp521,
    /// Group 31, Curve25519 (RFC 8031).
    Curve25519,
}

impl DhGroup {
    /// Every value, for parsing and help texts.
    pub const ALL: [DhGroup; 10] = [
        DhGroup::Modp768,
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Ecp521,
        DhGroup::Curve25519,
    ];

    /// The IANA number, which the file uses.
    pub fn number(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Ecp521 => 21,
            DhGroup::Curve25519 => 31,
        }
    }

    /// strongSwan's proposal keyword.
    pub fn strongswan_name(self) -> &'static str {
        match self {
            DhGroup::Modp768 => "modp768",
            DhGroup::Modp1024 => "modp1024",
            DhGroup::Modp1536 => "modp1536",
            DhGroup::Modp2048 => "modp2048",
            DhGroup::Modp3072 => "modp3072",
            DhGroup::Modp4096 => "modp4096",
            DhGroup::Ecp256 => "ecp256",
            DhGroup::Ecp384 => "ecp384",
            DhGroup::Ecp521 => "ecp521",
            DhGroup::Curve25519 => "curve25519",
        }
    }
}

/// One authentication method of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// Windows 2000 default: Kerberos V5; both hosts must be in one domain.
    Kerberos,
    /// A certificate issued by this certification authority.
    Certificate {
        /// The CA's name (a distinguished name) or a path to its certificate.
        ca: String,
    },
    /// A preshared key.
    PresharedKey(PresharedKey),
}

impl AuthMethod {
    /// The file's spelling of the method.
    pub fn method_name(&self) -> &'static str {
        match self {
            AuthMethod::Kerberos => "kerberos",
            AuthMethod::Certificate { .. } => "certificate",
            AuthMethod::PresharedKey(_) => "preshared-key",
        }
    }
}

impl fmt::Display for AuthMethod {
    /// Never shows a key: a key file by its path, an inline key by its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Kerberos => f.write_str("kerberos"),
            AuthMethod::Certificate { ca } => write!(f, "certificate, ca = {ca:?}"),
            AuthMethod::PresharedKey(k) => write!(f, "preshared-key, {k}"),
        }
    }
}

/// A preshared key and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey {
    /// The key file as written (relative to the policy file), `None` for an inline key.
    pub key_file: Option<PathBuf>,
    /// The key itself. Never print it.
    pub secret: Secret,
}

impl fmt::Display for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key_file {
            Some(path) => write!(f, "key_file = {}", path.display()),
            None => write!(f, "key = (hidden, {} chars)", self.secret.len()),
        }
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresharedKey({self})")
    }
}

/// Secret bytes whose `Debug` shows only the length, so no log or panic message leaks them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(key: String) -> Secret {
        Secret(key)
    }

    /// The key, for the renderer that must write it into the IKE daemon's secrets.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(hidden, {} chars)", self.len())
    }
}

/// The network types a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionType {
    /// Local area network connections.
    Lan,
    /// Remote access (dial-up, VPN) connections.
    RemoteAccess,
    /// All network connections.
    All,
}

impl ConnectionType {
    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Lan => "lan",
            ConnectionType::RemoteAccess => "remote-access",
            ConnectionType::All => "all",
        }
    }
}

impl Policy {
    /// The filter list a rule uses. Panics if the rule's index is out of range, which never
    /// happens for a loaded policy.
    pub fn filter_list_of(&self, rule: &Rule) -> &FilterList {
        &self.filter_lists[rule.filter_list]
    }

    /// The filter action a rule uses. Panics if the rule's index is out of range, which
    /// never happens for a loaded policy.
    pub fn filter_action_of(&self, rule: &Rule) -> &FilterAction {
        &self.filter_actions[rule.filter_action]
    }

    /// Whether `ip` is one of the addresses `me` stands for.
    pub fn is_me(&self, ip: IpAddr) -> bool {
        self.me.addresses.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_contain_their_addresses_only() {
        let v4 = Subnet {
            network: "192.0.2.0".parse().unwrap(),
            prefix: 24,
        };
        let v6 = Subnet {
            network: "2001:db8::".parse().unwrap(),
            prefix: 32,
        };
        let all = Subnet {
            network: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        let cases = [
            (v4, "192.0.2.255", true),
            (v4, "192.0.3.0", false),
            (v4, "2001:db8::1", false),
            (v6, "2001:db8:ffff::1", true),
            (v6, "2001:db9::1", false),
            (all, "203.0.113.1", true),
        ];
        for (net, ip, inside) in cases {
            assert_eq!(net.contains(ip.parse().unwrap()), inside, "{net} {ip}");
        }
    }

    #[test]
    fn masks_cover_the_edges() {
        assert_eq!(prefix_mask_u32(0), 0);
        assert_eq!(prefix_mask_u32(24), 0xffff_ff00);
        assert_eq!(prefix_mask_u32(32), u32::MAX);
        assert_eq!(prefix_mask_u128(0), 0);
        assert_eq!(prefix_mask_u128(128), u128::MAX);
    }

    #[test]
    fn secrets_show_only_their_length() {
        let inline = PresharedKey {
            key_file: None,
            secret: Secret::new("swordfish".into()),
        };
        let filed = PresharedKey {
            key_file: Some("k.psk".into()),
            secret: Secret::new("swordfish".into()),
        };
        for shown in [format!("{inline:?} {inline}"), format!("{filed:?} {filed}")] {
            assert!(!shown.contains("swordfish"), "{shown}");
        }
        assert_eq!(inline.to_string(), "key = (hidden, 9 chars)");
        assert_eq!(filed.to_string(), "key_file = k.psk");
    }

    #[test]
    fn the_mirror_swaps_addresses_and_ports() {
        let f = Filter {
            source: Address::Me,
            destination: Address::Ip("192.0.2.2".parse().unwrap()),
            protocol: Protocol::Number(TCP),
            source_port: None,
            destination_port: Some(6667),
            mirrored: true,
            description: None,
            line: 7,
        };
        assert_eq!(
            f.mirror().summary(),
            "192.0.2.2 -> me, tcp, port 6667 -> any"
        );
        assert_eq!(f.mirror().mirror(), f);
    }

    #[test]
    fn named_security_methods() {
        assert_eq!(
            SecurityMethod::high().summary(),
            "ESP 3des/sha1, 100000 KB / 900 s"
        );
        assert_eq!(
            SecurityMethod::medium().summary(),
            "AH sha1, 100000 KB / 900 s"
        );
    }
}
