//! # siprouter
//!
//! The server binary's library half: the table of in-tree modules, the
//! command line, logging setup and the main loop, so that tests can start
//! the same server the binary runs.

pub mod cli;
pub mod ctl;
pub mod db_cmd;
pub mod logging;
pub mod malloc_tuning;
pub mod modules;

pub use modules::in_tree;

use std::path::PathBuf;

/// Options for starting the server from code (tests, tools).
pub fn options(config: impl Into<PathBuf>) -> sr_core::Options {
    sr_core::Options {
        config: config.into(),
        in_tree: in_tree(),
        external: Some(sr_abi::loader()),
        ..Default::default()
    }
}
