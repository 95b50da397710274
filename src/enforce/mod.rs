//! Enforcing a policy on a real host: rendering it to strongSwan's `swanctl.conf` and to an
//! nftables ruleset, and loading both into a running charon and the kernel.
//!
//! Two halves, kept apart:
//!
//! - [`render`] is pure: a loaded [`Policy`] and [`RenderOptions`] in, a [`Rendered`] set of
//!   files out (`swanctl.conf`, the nft ruleset, a `strongswan.conf` fragment with the
//!   daemon settings the data plane needs, and for certificate rules a `pki.sh` that makes
//!   the lab's certificates). Nothing on the system is read or changed.
//! - [`apply()`] and [`remove()`] touch the system: they load the rendered connections and
//!   secrets into charon over its VICI socket and the ruleset with `nft -f`, optionally
//!   inside a network namespace, and take away exactly what they loaded.
//!
//! How the Windows 2000 model maps onto strongSwan and nftables:
//!
//! - every remote IKE peer of the policy's negotiating rules becomes one connection (one
//!   IKE SA, the Windows "main mode" SA), named `NAME-RULE` after its first rule;
//! - every filter of such a rule becomes one child (one quick-mode SA pair) whose traffic
//!   selectors carry the filter's protocol and ports, oriented so that `me` is local; the
//!   child covers both directions, as every IKE selector pair does (RFC 7296 §2.9);
//! - children use `start_action = trap`, so the first matching packet starts the
//!   negotiation (the "Negotiating IP security" moment);
//! - the nftables table enforces what charon does not: Block and Permit, and dropping
//!   cleartext that a Negotiate action wants protected (unless `accept_unsecured` or
//!   `allow_fallback_to_clear` say otherwise); IKE (UDP 500 and 4500) and ESP/AH always
//!   pass. Rules appear most specific first, in the order [`crate::policy::matching`]
//!   documents, so the packet filter and `policy explain` agree.

pub mod acquire;
pub mod apply;
pub mod conf;
mod nft;
mod swanctl;
pub mod vici;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::policy::Policy;

pub use apply::{apply, remove, ApplyOptions, ApplyReport, RemoveReport};

/// Which IKE version (and exchange) the connections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IkeVersion {
    /// IKEv1 Main Mode and Quick Mode, as Windows 2000 negotiated.
    V1,
    /// IKEv1 Aggressive Mode and Quick Mode (a lab failure mode; charon needs
    /// `i_dont_care_about_security_and_use_aggressive_mode_psk`, which the rendered
    /// `strongswan.conf` fragment sets).
    V1Aggressive,
    /// IKEv2.
    #[default]
    V2,
}

impl IkeVersion {
    /// The `version` value of swanctl.conf.
    pub fn number(self) -> u8 {
        match self {
            IkeVersion::V1 | IkeVersion::V1Aggressive => 1,
            IkeVersion::V2 => 2,
        }
    }
}

/// Where charon's ESP runs, which decides the mode, the routing and how the packet filter
/// recognises protected traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DataPlane {
    /// The kernel's XFRM with ESP/AH (`kernel-netlink`): transport mode where the rule has
    /// no tunnel; the packet filter tells protected packets by `meta ipsec exists` (input)
    /// and `rt ipsec exists` (output).
    #[default]
    Kernel,
    /// strongSwan's userspace ESP (`kernel-libipsec`, package libcharon-extra-plugins) over
    /// a TUN device, for kernels without ESP.
    ///
    /// It changes four things. It has tunnel mode only, so host-to-host rules are rendered
    /// in tunnel mode with the same host selectors. It forces UDP encapsulation, rendered as
    /// `encap = yes`. Its routes send traffic for a remote selector into the TUN device,
    /// and a selector naming the peer itself would route IKE there too. So the rendered
    /// `strongswan.conf` fragment sets `kernel-libipsec.allow_peer_ts` and
    /// `kernel-netlink.fwmark`, which makes charon's routing table apply only to packets
    /// carrying `fwmark`; the nftables table sets that mark on exactly the packets a
    /// Negotiate filter covers, and never on IKE. Protected packets are then those leaving
    /// by or arriving on the TUN device.
    ///
    /// Limitation: libipsec before strongSwan 5.9.11 raises no acquire, so a trap policy
    /// alone never starts a negotiation. Set [`RenderOptions::initiate`] on at least one
    /// of the two hosts, or run [`acquire::run`] beside charon: the rendered table logs
    /// what it needs.
    Libipsec {
        /// The TUN device's name (charon's default is `ipsec0`).
        tun: String,
        /// The firewall mark that sends a packet into charon's routing table.
        fwmark: u32,
    },
}

/// The firewall mark [`DataPlane::libipsec`] uses.
pub const DEFAULT_FWMARK: u32 = 0x4950;

impl DataPlane {
    /// kernel-libipsec with charon's TUN device `ipsec0` and [`DEFAULT_FWMARK`].
    pub fn libipsec() -> DataPlane {
        DataPlane::Libipsec {
            tun: "ipsec0".into(),
            fwmark: DEFAULT_FWMARK,
        }
    }

    /// `kernel` or `libipsec`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DataPlane::Kernel => "kernel",
            DataPlane::Libipsec { .. } => "libipsec",
        }
    }
}

/// How to render a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// IKEv2 by default; IKEv1 Main Mode like Windows 2000, or Aggressive Mode.
    pub ike_version: IkeVersion,
    /// The local address `me` stands for in connections and selectors; `None` takes the
    /// policy's first `me` address.
    pub local: Option<IpAddr>,
    /// Names what `apply` owns: the nftables table `inet NAME`, the connections `NAME-…`
    /// and the secrets `ike-NAME-…`. Letters, digits, `-` and `_` only.
    pub name: String,
    /// The data plane charon runs with.
    pub data_plane: DataPlane,
    /// IKE proposals in strongSwan's syntax, in order of preference, overriding the
    /// policy's key exchange methods; empty renders the policy's.
    pub ike_proposals: Vec<String>,
    /// The Diffie-Hellman group appended to the ESP/AH proposals of a filter action with
    /// session key PFS (strongSwan's name, e.g. `modp1024`); empty takes the group of the
    /// policy's first key exchange method.
    pub pfs_group: String,
    /// Also start negotiating as soon as the configuration is loaded
    /// (`start_action = trap|start`), not only on the first packet.
    pub initiate: bool,
}

/// Windows 2000's default key exchange method: 3DES, SHA1, Diffie-Hellman group 2.
pub const DEFAULT_IKE_PROPOSAL: &str = "3des-sha1-modp1024";
/// The group of [`DEFAULT_IKE_PROPOSAL`], which Windows 2000 reused for session key PFS.
pub const DEFAULT_PFS_GROUP: &str = "modp1024";
/// The default of [`RenderOptions::name`].
pub const DEFAULT_NAME: &str = "ipsecmon";

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            ike_version: IkeVersion::V2,
            local: None,
            name: DEFAULT_NAME.into(),
            data_plane: DataPlane::Kernel,
            ike_proposals: Vec::new(),
            pfs_group: String::new(),
            initiate: false,
        }
    }
}

/// Why a policy could not be rendered, applied or removed.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// A rule can only authenticate with Kerberos.
    #[error("rule {rule:?} authenticates with Kerberos only, which strongSwan cannot do (Windows 2000's Kerberos for IKE needs both hosts in one Windows domain); add a preshared-key or certificate method to the rule")]
    KerberosOnly {
        /// The rule's name.
        rule: String,
    },
    /// `me` has no address to render with.
    #[error("the policy {policy:?} knows no local address for \"me\"; give one with --local ADDR or local_addresses in the file")]
    NoLocalAddress {
        /// The policy's origin.
        policy: String,
    },
    /// A security method asks for AH and ESP together.
    #[error("filter action {action:?}: a security method with both AH and ESP is an AH+ESP bundle, which strongSwan cannot negotiate; use AH or ESP in each method")]
    AhWithEsp {
        /// The filter action's name.
        action: String,
    },
    /// A filter names this host at both ends, so it has no peer.
    #[error("rule {rule:?}, filter {filter}: both ends are this host, so there is no peer to negotiate with; name the other computer in the filter")]
    NoPeer {
        /// The rule's name.
        rule: String,
        /// 1-based filter number in its list.
        filter: usize,
    },
    /// Two rules reach the same peer with different authentication.
    #[error("rules {first:?} and {second:?} both negotiate with {peer} but authenticate differently; one IKE SA per peer has one authentication, so give both rules the same method and key")]
    ConflictingAuth {
        /// The peer's address(es).
        peer: String,
        /// The rule rendered first.
        first: String,
        /// The rule that disagrees.
        second: String,
    },
    /// The options contradict each other or are malformed.
    #[error("{0}")]
    Options(String),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A program apply needs is not installed.
    #[error("{program} is not installed; install the Debian packages {packages}")]
    Missing {
        /// The program.
        program: String,
        /// The Debian packages that provide it and its companions.
        packages: &'static str,
    },
    /// A program ran and failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error (or exit status).
        output: String,
    },
    /// charon's VICI socket could not be used or refused a request.
    #[error("charon at {uri}: {reason}")]
    Vici {
        /// The socket's URI.
        uri: String,
        /// What went wrong, and what to do.
        reason: String,
    },
}

/// One file of a [`Rendered`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the output directory.
    pub path: &'static str,
    /// Contents.
    pub contents: String,
    /// Unix permission bits: 0600 for files holding secrets, 0755 for scripts.
    pub mode: u32,
}

/// A policy rendered for strongSwan and nftables.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The swanctl.conf tree: a `connections` and a `secrets` section (see
    /// [`Rendered::swanctl_conf`] for the text).
    pub swanctl: conf::Section,
    /// The nftables ruleset, loadable with `nft -f`; it replaces the table atomically.
    pub nft_ruleset: String,
    /// The nftables table, `inet NAME`.
    pub nft_table: String,
    /// Settings charon must start with (a strongswan.conf fragment to include).
    pub strongswan_conf: String,
    /// For certificate rules: a script that makes the lab's CA and this host's certificate
    /// with strongSwan's `pki` into `x509ca/`, `x509/` and `private/` beside swanctl.conf.
    pub pki_script: Option<String>,
    /// The connection names, in file order.
    pub connections: Vec<String>,
    /// The children of each connection, in file order.
    pub children: Vec<(String, Vec<String>)>,
    /// The shared secrets' ids.
    pub secrets: Vec<String>,
    /// What was left out or changed on the way (one sentence each), e.g. a Kerberos method
    /// skipped for the next one.
    pub notes: Vec<String>,
    /// The options used.
    pub options: RenderOptions,
}

/// swanctl.conf's file name.
pub const SWANCTL_CONF: &str = "swanctl.conf";
/// The nftables ruleset's file name.
pub const NFT_FILE: &str = "ipsecmon.nft";
/// The strongswan.conf fragment's file name.
pub const STRONGSWAN_CONF: &str = "strongswan.conf";
/// The certificate script's file name.
pub const PKI_SCRIPT: &str = "pki.sh";

impl Rendered {
    /// The swanctl.conf text: connections, then secrets.
    pub fn swanctl_conf(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# strongSwan configuration rendered by ipsecmon ({} data plane).\n\
             # Load it with: swanctl --load-all --file swanctl.conf\n",
            self.options.data_plane.as_str()
        ));
        for s in self.swanctl.sections() {
            out.push_str(&s.to_conf());
        }
        out
    }

    /// Every file to write, in order.
    pub fn files(&self) -> Vec<RenderedFile> {
        let mut files = vec![
            RenderedFile {
                path: SWANCTL_CONF,
                contents: self.swanctl_conf(),
                mode: 0o600,
            },
            RenderedFile {
                path: NFT_FILE,
                contents: self.nft_ruleset.clone(),
                mode: 0o644,
            },
            RenderedFile {
                path: STRONGSWAN_CONF,
                contents: self.strongswan_conf.clone(),
                mode: 0o644,
            },
        ];
        if let Some(script) = &self.pki_script {
            files.push(RenderedFile {
                path: PKI_SCRIPT,
                contents: script.clone(),
                mode: 0o755,
            });
        }
        files
    }

    /// Writes every file into `dir` (created if missing), with its permission bits.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, EnforceError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EnforceError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut written = Vec::new();
        for f in self.files() {
            let path = dir.join(f.path);
            std::fs::write(&path, &f.contents).map_err(io(&path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))
                .map_err(io(&path))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Renders a policy for strongSwan and nftables (see the module documentation for the
/// mapping). Errors name the rule or filter action that cannot be rendered and what to do.
///
/// Limitations, each where strongSwan or the kernel has no equivalent:
/// - a rule offers only its first authentication method strongSwan can use (one
///   authentication round per connection); Kerberos is skipped with a note, and a rule with
///   nothing else is refused;
/// - a child has one lifetime, the first security method's;
/// - `allow_fallback_to_clear` only relaxes the packet filter: charon has no fallback to
///   the clear, so outbound traffic still waits for its SA;
/// - with [`DataPlane::Kernel`], a child's XFRM policies cover both directions, so a filter
///   that is not mirrored still protects its reverse direction, and the kernel's inbound
///   policy still rejects cleartext that `accept_unsecured` would let in; kernel-libipsec,
///   where the packet filter alone decides, reproduces both.
pub fn render(policy: &Policy, options: &RenderOptions) -> Result<Rendered, EnforceError> {
    check_options(options)?;
    let effective = from_policy(policy, options);
    let options = &effective;
    let local = options
        .local
        .or_else(|| policy.me.addresses.first().copied())
        .ok_or_else(|| EnforceError::NoLocalAddress {
            policy: policy.origin.clone(),
        })?;
    let plan = swanctl::plan(policy, options, local)?;
    let nft_ruleset = nft::ruleset(policy, options, &plan.child_of);
    Ok(Rendered {
        swanctl: plan.tree,
        nft_table: format!("inet {}", options.name),
        nft_ruleset,
        strongswan_conf: swanctl::charon_settings(policy, options),
        pki_script: plan.pki_script,
        connections: plan.connections,
        children: plan.children,
        secrets: plan.secrets,
        notes: with_plane_note(plan.notes, options),
        options: options.clone(),
    })
}

/// The notes, and for kernel-libipsec without `initiate` how negotiation gets started.
fn with_plane_note(mut notes: Vec<String>, o: &RenderOptions) -> Vec<String> {
    if matches!(o.data_plane, DataPlane::Libipsec { .. }) && !o.initiate {
        notes.push(
            "kernel-libipsec before strongSwan 5.9.11 starts no negotiation on a packet: run \
             `ipsecmon enforce acquire` beside charon for on-demand negotiation, or render \
             with --initiate"
                .into(),
        );
    }
    notes
}

/// The options with what they leave to the policy filled in from its key exchange
/// methods: the IKE proposals, and the session key PFS group, which Windows 2000 took
/// from the first key exchange method.
fn from_policy(policy: &Policy, options: &RenderOptions) -> RenderOptions {
    let mut o = options.clone();
    if o.ike_proposals.is_empty() {
        o.ike_proposals = policy
            .key_exchange
            .iter()
            .map(|m| m.strongswan_proposal())
            .collect();
    }
    if o.pfs_group.is_empty() {
        let first = policy.key_exchange.first();
        o.pfs_group = first
            .map_or(DEFAULT_PFS_GROUP, |m| m.dh_group.strongswan_name())
            .to_string();
    }
    o
}

fn check_options(o: &RenderOptions) -> Result<(), EnforceError> {
    let name_ok = !o.name.is_empty()
        && o.name.len() <= 32
        && o.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(EnforceError::Options(format!(
            "name {:?}: use 1-32 letters, digits, '-' or '_' (it names the nft table and the connections)",
            o.name
        )));
    }
    if let DataPlane::Libipsec { tun, fwmark } = &o.data_plane {
        if tun.is_empty() || *fwmark == 0 {
            return Err(EnforceError::Options(
                "kernel-libipsec needs a TUN device name and a non-zero fwmark".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
