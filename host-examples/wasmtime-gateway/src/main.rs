//! `phantom-gateway --config phantom-edge.toml [--component edge|proxy] [--wasm PATH]`
//! `phantom-gateway split [--key-prefix P] < token.jwt`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use phantom_gateway::config::{GatewayConfig, referenced_env};
use phantom_gateway::engine::{ConfigFormat, Core, Loaded};
use phantom_gateway::gateway::{self, Gateway};
use phantom_gateway::proxy_mode;
use tokio::sync::watch;
use tracing::{error, info};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Host the phantom-edge library component; the gateway does the I/O (cache, admin API).
    Edge,
    /// Serve the wasi:http proxy component, one instance per request.
    Proxy,
}

/// The phantom-token gateway: opaque tokens in, JWTs to the upstream.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The config file (TOML): the core's sections plus [gateway] (listen, upstream, admin_listen).
    #[arg(long, short, required = true)]
    config: Option<PathBuf>,
    /// Which component to run.
    #[arg(long, value_enum, default_value_t = Mode::Edge)]
    component: Mode,
    /// The component file (default: next to this binary, then the workspace's target dir).
    #[arg(long, env = "PHANTOM_EDGE_WASM")]
    wasm: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Split a signed JWT, read from standard input (never an argument: argv is visible to other
    /// users), for the split-token pattern: prints one JSON object with `client_token` (what the
    /// client gets), `store_key`, `store_value` (sealed: no claims in the store) and
    /// `expires_at` (the JWT's exp), for an issuer to write to the shared store.
    Split {
        /// The edges' `split.key_prefix`.
        #[arg(long, default_value = phantom_edge_core::DEFAULT_SPLIT_KEY_PREFIX)]
        key_prefix: String,
    },
}

/// `phantom-gateway split`: stdin → one JSON line on stdout.
fn split(key_prefix: &str) -> ExitCode {
    let mut jwt = String::new();
    let mut stdin = std::io::Read::take(std::io::stdin(), 64 * 1024);
    if let Err(e) = std::io::Read::read_to_string(&mut stdin, &mut jwt) {
        eprintln!("phantom-gateway split: reading standard input: {e}");
        return ExitCode::from(2);
    }
    match phantom_edge_core::split_jwt(&jwt, key_prefix) {
        Ok(s) => {
            let out = serde_json::json!({
                "client_token": s.client_token,
                "store_key": s.store_key,
                "store_value": s.store_value,
                "expires_at": s.expires_at,
            });
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("phantom-gateway split: {e}");
            ExitCode::from(2)
        }
    }
}

fn find_wasm(mode: Mode, given: Option<PathBuf>) -> Result<PathBuf, String> {
    let name = match mode {
        Mode::Edge => "phantom_edge_component.wasm",
        Mode::Proxy => "phantom_edge_proxy.wasm",
    };
    if let Some(p) = given {
        return Ok(p);
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(name));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    candidates.push(target.join("wasm32-wasip2/release").join(name));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "component {name} not found (looked in {candidates:?}); build it with \
                 `cargo build --release --target wasm32-wasip2 -p phantom-edge-component -p phantom-edge-proxy` \
                 or pass --wasm"
            )
        })
}

fn seed() -> Result<[u8; 32], String> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("no entropy: {e}"))?;
    Ok(s)
}

async fn shutdown_signal(tx: watch::Sender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    info!("shutting down: no new connections; finishing in-flight requests");
    let _ = tx.send(true);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = args.config.ok_or("--config is required")?;
    let text = std::fs::read_to_string(&config)
        .map_err(|e| format!("reading {}: {e}", config.display()))?;
    let cfg = GatewayConfig::from_toml(&text)?;
    let wasm = find_wasm(args.component, args.wasm)?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(shutdown_signal(tx));
    match args.component {
        Mode::Edge => {
            let loaded = Loaded::from_file(&wasm)?;
            let env = referenced_env(&text, |n| std::env::var(n).ok());
            let core = Core::new(
                &loaded,
                &text,
                ConfigFormat::Toml,
                &env,
                seed()?,
                gateway::now_ms(),
            )
            .map_err(|e| e.to_string())?;
            let gw = Gateway::new(core, cfg)?;
            gateway::serve(gw, rx).await
        }
        Mode::Proxy => proxy_mode::serve(&wasm, cfg, text, rx).await,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Split { key_prefix }) = &args.command {
        return split(key_prefix);
    }
    // Logs go through a writer thread so a request never waits on stderr; lossless (when its
    // queue is full, logging waits rather than drops audit lines). Flushed when `_guard` drops.
    let (writer, _guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_writer(writer)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("phantom-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "phantom-gateway stopped");
            eprintln!("phantom-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
