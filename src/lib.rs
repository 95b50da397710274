//! ipsecmon: watch IPsec from the wire.
//!
//! The data flow follows the modules: [`capture`] reads frames, [`wire`] decodes them,
//! [`track`] follows every security association, [`diagnose`] explains failures, and
//! [`view`] and [`export`] render [`snapshot`]s. [`policy`] holds the Windows 2000 policy
//! model, [`enforce`] and [`lab`] apply it to real hosts.

pub mod capture;
pub mod cleartext;
pub mod cli;
pub mod decrypt;
pub mod diagnose;
pub mod enforce;
pub mod engine;
pub mod export;
pub mod keys;
pub mod lab;
pub mod policy;
pub mod runner;
pub mod snapshot;
pub mod track;
pub mod view;
pub mod wire;
