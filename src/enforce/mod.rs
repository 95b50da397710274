//! Rendering a policy to strongSwan's swanctl.conf and to nftables rules, and applying them.
