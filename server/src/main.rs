//! The `headwater` binary: glue between the command line, the config and
//! the crates. It parses the command line, loads and validates the config
//! before binding anything (a bad one exits 64), installs logging, and
//! hands off: `serve` to the data plane, ingest and the control API; the
//! operator commands (`token sign`, `probe`, `check-config`) to small
//! functions here.

#![forbid(unsafe_code)]

mod cli;
mod live;
mod logfilter;
mod logging;
mod notify;
mod probe;
mod reload;
mod serve;
mod signals;
mod upgrade;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use headwater_origin::Config;

use crate::cli::{Cli, Command, EX_CONFIG, ServeArgs, SignArgs, TokenCommand, config_error};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Token {
            command: TokenCommand::Sign(args),
        } => sign(args),
        Command::Probe {
            files,
            segment_duration,
        } => probe_files(&files, segment_duration),
        Command::CheckConfig { file } => check_config(&file),
    }
}

/// `headwater serve`.
fn serve(args: ServeArgs) -> ExitCode {
    let source = match args.source() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("headwater: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let cfg = match source.load() {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let set_log_level = logging::init_tracing(&cfg);
    serve::run(cfg, args.admin_token, source, set_log_level)
}

/// `headwater token sign`: a token signed with the catalog's current key.
fn sign(args: SignArgs) -> ExitCode {
    let mut cfg = match args.config.as_deref().map(Config::from_file).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return config_error(&e),
    };
    if let Some(root) = args.media_root {
        cfg.media.root = root;
    }
    if let Some(d) = args.database {
        cfg.catalog.database = d;
    }
    let scope = match (&args.asset, &args.stream) {
        (Some(a), _) => headwater_common::token::Scope::Asset(a),
        (None, Some(s)) => headwater_common::token::Scope::Stream(s),
        (None, None) => unreachable!("clap requires one"),
    };
    let signed = headwater_control_api::sign_offline(
        &cfg.catalog.database,
        &serve::control_root(&cfg),
        scope,
        args.ttl,
        args.client_ip,
    );
    match signed {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("headwater: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `headwater probe`.
fn probe_files(files: &[PathBuf], segment_duration: f64) -> ExitCode {
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let config = headwater_packager::PackagingConfig {
        target_duration: segment_duration,
    };
    match probe::describe(&paths, &config) {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("headwater: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `headwater check-config`.
fn check_config(file: &Path) -> ExitCode {
    match Config::from_file(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
}
