//! The Windows 2000 IPsec policy model: policies, rules, filter lists, filters, filter actions, authentication and security methods; its TOML file, validation, and matching a flow to its rule.
