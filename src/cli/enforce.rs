//! `ipsecmon enforce`: render a policy for strongSwan and nftables, apply it to a running
//! charon and the kernel, and remove it again.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{EXIT_FINDING, EXIT_OK, EXIT_USAGE};
use crate::enforce::{
    self, vici, ApplyOptions, DataPlane, EnforceError, IkeVersion, RenderOptions, Rendered,
};
use crate::policy::{LoadOptions, Policy, SystemResolver};

/// Arguments of `ipsecmon enforce`.
#[derive(Debug, Args)]
pub struct EnforceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EnforceCommand,
}

/// The enforce subcommands.
#[derive(Debug, Subcommand)]
pub enum EnforceCommand {
    /// Write swanctl.conf, the nft ruleset and the charon settings for a policy into DIR.
    Render {
        /// What to render.
        #[command(flatten)]
        render: RenderArgs,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Render, then load into charon (VICI) and nftables; replaces an earlier apply.
    Apply {
        /// What to render.
        #[command(flatten)]
        render: RenderArgs,
        /// Where to load it.
        #[command(flatten)]
        target: TargetArgs,
        /// Where the rendered files are kept (default /run/ipsecmon/NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The lab CA's directory, for certificate rules (default DIR/../ca).
        #[arg(long)]
        ca_dir: Option<PathBuf>,
    },
    /// Start the negotiation a packet needs where charon cannot see the packet: read the
    /// acquire log of an applied kernel-libipsec policy (netfilter log group 18768) and
    /// initiate the child SA each logged packet names. Runs until SIGINT or SIGTERM; run
    /// it in the namespace the policy was applied in.
    Acquire {
        /// charon's VICI socket.
        #[arg(long, env = "IPSECMON_VICI", default_value = vici::DEFAULT_URI)]
        vici: String,
        /// The netfilter log group.
        #[arg(long, default_value_t = enforce::acquire::GROUP)]
        group: u16,
    },
    /// Unload every connection and secret apply loaded under NAME and delete its nft table.
    Remove {
        /// The name given to apply (`--name`).
        #[arg(long, default_value = enforce::DEFAULT_NAME)]
        name: String,
        /// Where it was loaded.
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// The data plane charon runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlaneArg {
    /// kernel ESP when the kernel has it (the esp4 module), else kernel-libipsec.
    Auto,
    /// The kernel's XFRM with ESP (kernel-netlink).
    Kernel,
    /// strongSwan's userspace ESP over the TUN device ipsec0 (kernel-libipsec).
    Libipsec,
}

/// Options that decide the rendering.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Policy file (TOML) or `builtin:NAME`.
    #[arg(long)]
    pub policy: String,
    /// What `me` stands for (default: the policy's local_addresses, else this host's).
    #[arg(long)]
    pub local: Option<IpAddr>,
    /// IKE version: 2, or 1 for Main Mode and Quick Mode like Windows 2000.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub ike_version: u8,
    /// With --ike-version 1: Aggressive Mode instead of Main Mode.
    #[arg(long)]
    pub aggressive: bool,
    /// The nft table `inet NAME` and the prefix of the connections and secrets.
    #[arg(long, default_value = enforce::DEFAULT_NAME)]
    pub name: String,
    /// The data plane charon runs with.
    #[arg(long, value_enum, default_value_t = PlaneArg::Auto)]
    pub data_plane: PlaneArg,
    /// IKE proposal (strongSwan syntax) instead of the policy's key exchange methods
    /// (3des-sha1-modp1024 when it has none); repeat for several, most preferred first.
    #[arg(long = "ike-proposal")]
    pub ike_proposals: Vec<String>,
    /// Diffie-Hellman group for session key PFS (strongSwan syntax) instead of the group
    /// of the policy's first key exchange method.
    #[arg(long)]
    pub pfs_group: Option<String>,
    /// Start negotiating when loaded, not only on the first packet (needed on one host
    /// with kernel-libipsec, which cannot start on a packet before strongSwan 5.9.11).
    #[arg(long)]
    pub initiate: bool,
}

/// Where apply and remove act.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Network namespace (`ip netns`) whose packet filter apply loads the rules into and
    /// remove deletes them from.
    #[arg(long)]
    pub netns: Option<String>,
    /// charon's VICI socket.
    #[arg(long, env = "IPSECMON_VICI", default_value = vici::DEFAULT_URI)]
    pub vici: String,
}

/// Runs the command; returns the exit code.
pub fn run(args: EnforceArgs) -> anyhow::Result<u8> {
    match args.command {
        EnforceCommand::Render { render, out } => render_cmd(&render, &out),
        EnforceCommand::Apply {
            render,
            target,
            dir,
            ca_dir,
        } => apply_cmd(&render, &target, dir, ca_dir),
        EnforceCommand::Remove { name, target } => remove_cmd(&name, &target),
        EnforceCommand::Acquire { vici, group } => {
            crate::runner::stop_on_signals();
            enforce::acquire::run(&enforce::acquire::AcquireOptions { vici, group })?;
            Ok(EXIT_OK)
        }
    }
}

impl RenderArgs {
    fn options(&self) -> anyhow::Result<RenderOptions> {
        let ike_version = match (self.ike_version, self.aggressive) {
            (2, false) => IkeVersion::V2,
            (2, true) => anyhow::bail!("--aggressive needs --ike-version 1"),
            (_, false) => IkeVersion::V1,
            (_, true) => IkeVersion::V1Aggressive,
        };
        Ok(RenderOptions {
            ike_version,
            local: self.local,
            name: self.name.clone(),
            data_plane: data_plane(self.data_plane),
            ike_proposals: self.ike_proposals.clone(),
            pfs_group: self.pfs_group.clone().unwrap_or_default(),
            initiate: self.initiate,
        })
    }
}

fn data_plane(arg: PlaneArg) -> DataPlane {
    let kernel_esp = std::path::Path::new("/sys/module/esp4").exists();
    match arg {
        PlaneArg::Kernel => DataPlane::Kernel,
        PlaneArg::Libipsec => DataPlane::libipsec(),
        PlaneArg::Auto if kernel_esp => DataPlane::Kernel,
        PlaneArg::Auto => DataPlane::libipsec(),
    }
}

/// Loads and renders; `Err(code)` after printing why (exit 2: the policy or the options).
fn load_and_render(args: &RenderArgs) -> Result<Rendered, u8> {
    let me: Vec<IpAddr> = args.local.into_iter().collect();
    let opts = LoadOptions {
        resolver: &SystemResolver,
        me: (!me.is_empty()).then_some(me.as_slice()),
    };
    let policy = Policy::load_with(&args.policy, opts).map_err(|e| {
        eprintln!("ipsecmon: {e}");
        EXIT_USAGE
    })?;
    for w in &policy.warnings {
        eprintln!("{w}");
    }
    let options = args.options().map_err(|e| {
        eprintln!("ipsecmon: {e}");
        EXIT_USAGE
    })?;
    let rendered = enforce::render(&policy, &options).map_err(|e| {
        eprintln!("ipsecmon: {}: {e}", args.policy);
        EXIT_USAGE
    })?;
    tracing::info!(policy = %policy.name, data_plane = options.data_plane.as_str(), "rendered");
    for note in &rendered.notes {
        eprintln!("{}: note: {note}", args.policy);
    }
    Ok(rendered)
}

fn render_cmd(args: &RenderArgs, out: &std::path::Path) -> anyhow::Result<u8> {
    let rendered = match load_and_render(args) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    for path in rendered.write_to(out)? {
        println!("wrote {}", path.display());
    }
    Ok(EXIT_OK)
}

/// A failure while touching the system: one line, exit 1; a missing program exits 2 too
/// only when it is a usage problem, which it is not.
fn system_failure(e: EnforceError) -> anyhow::Result<u8> {
    eprintln!("ipsecmon: {e}");
    Ok(EXIT_FINDING)
}

fn apply_cmd(
    args: &RenderArgs,
    target: &TargetArgs,
    dir: Option<PathBuf>,
    ca_dir: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let rendered = match load_and_render(args) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from("/run/ipsecmon").join(&args.name));
    let ca_dir = ca_dir.unwrap_or_else(|| dir.join("..").join("ca"));
    let opts = ApplyOptions {
        vici: target.vici.clone(),
        netns: target.netns.clone(),
        dir,
        ca_dir,
    };
    let report = match enforce::apply(&rendered, &opts) {
        Ok(r) => r,
        Err(e) => return system_failure(e),
    };
    for c in &report.loaded_connections {
        println!("loaded connection {c}");
    }
    for s in &report.loaded_secrets {
        println!("loaded secret {s}");
    }
    for u in &report.unloaded {
        println!("unloaded {u} (no longer in the policy)");
    }
    println!("loaded nft table {}", report.nft_table);
    Ok(EXIT_OK)
}

fn remove_cmd(name: &str, target: &TargetArgs) -> anyhow::Result<u8> {
    let opts = ApplyOptions {
        vici: target.vici.clone(),
        netns: target.netns.clone(),
        dir: PathBuf::new(),
        ca_dir: PathBuf::new(),
    };
    let report = match enforce::remove(name, &opts) {
        Ok(r) => r,
        Err(e) => return system_failure(e),
    };
    if !report.charon_reachable {
        println!(
            "charon is not running at {}: no connections to unload",
            target.vici
        );
    }
    for u in &report.unloaded {
        println!("unloaded {u}");
    }
    if report.terminated > 0 {
        println!("terminated {} IKE SA(s)", report.terminated);
    }
    println!("deleted nft table {}", report.nft_table);
    Ok(EXIT_OK)
}
