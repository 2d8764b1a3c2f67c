//! The `causeway` command line.

use anyhow::Context;
use causeway::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "causeway",
    version,
    about = "An XMPP gateway component for Discord and Matrix"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[arg(short, long, env = "CAUSEWAY_CONFIG", default_value = "causeway.toml")]
        config: PathBuf,
    },
    /// Check a config file; print every problem with the key that has it.
    CheckConfig {
        #[arg(env = "CAUSEWAY_CONFIG", default_value = "causeway.toml")]
        config: PathBuf,
    },
    /// Create or upgrade the store's schema, then exit.
    Migrate {
        #[arg(short, long, env = "CAUSEWAY_CONFIG", default_value = "causeway.toml")]
        config: PathBuf,
    },
    /// Print what the store holds and, if the HTTP listener answers, the live health.
    Status {
        #[arg(short, long, env = "CAUSEWAY_CONFIG", default_value = "causeway.toml")]
        config: PathBuf,
    },
    /// Write the Matrix appservice registration (fresh tokens) where
    /// `networks.matrix.registration` says; give that file to the homeserver.
    GenRegistration {
        #[arg(short, long, env = "CAUSEWAY_CONFIG", default_value = "causeway.toml")]
        config: PathBuf,
        /// Replace an existing registration (the homeserver must then load the new one).
        #[arg(long)]
        force: bool,
    },
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Run { config } = &cli.command {
        let config = load(config)?;
        init_logging(&config.log.level);
        let rt =
            causeway::runtime(config.runtime.worker_threads).context("starting the runtime")?;
        return rt.block_on(async {
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stopping");
                s.cancel();
            });
            causeway::run(config, shutdown)
                .await
                .context("causeway stopped with an error")
        });
    }
    causeway::runtime(1)
        .context("starting the runtime")?
        .block_on(command(cli.command))
}

/// Every command but `run`.
async fn command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(c) => match causeway::networks::build(&c) {
                Ok(_) => {
                    println!(
                        "{}: ok ({} component(s))",
                        config.display(),
                        c.xmpp.components.len()
                    );
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{}:\n{e}", config.display());
                    std::process::exit(1)
                }
            },
            Err(e) => {
                eprintln!("{}:\n{e}", config.display());
                std::process::exit(1)
            }
        },
        Command::GenRegistration { config, force } => {
            let c = load(&config)?;
            let (path, yaml) = causeway::networks::matrix_registration(&c)
                .map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            if path.exists() && !force {
                anyhow::bail!(
                    "{} exists; --force replaces it (and its tokens)",
                    path.display()
                );
            }
            causeway::private::write(&path, yaml.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Run { .. } => {
            anyhow::bail!("internal: `run` is started by main on its own runtime")
        }
        Command::Migrate { config } => {
            let config = load(&config)?;
            causeway::store::Store::open(&config.store.url, 1)
                .await
                .with_context(|| {
                    format!("store {}", causeway::store::redact_url(&config.store.url))
                })?;
            println!(
                "store {} is up to date",
                causeway::store::redact_url(&config.store.url)
            );
            Ok(())
        }
        Command::Status { config } => {
            let config = load(&config)?;
            let store = causeway::store::Store::open(&config.store.url, 1).await?;
            println!("store: {}", causeway::store::redact_url(&config.store.url));
            for c in &config.xmpp.components {
                let n = store
                    .count_portals(&causeway_api::NetworkId::new(c.network.clone()))
                    .await?;
                println!("component {} ({}): {n} portal(s)", c.domain, c.network);
            }
            println!("puppets: {}", store.count_puppets().await?);
            println!("messages: {}", store.count_messages().await?);
            println!("outbox (unacknowledged): {}", store.outbox_depth().await?);
            if !config.http.listen.is_empty() {
                match http_get(&config.http.listen, "/health").await {
                    Ok(body) => println!("live: {}", body.trim()),
                    Err(e) => println!("live: not reachable at {} ({e})", config.http.listen),
                }
            }
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A minimal HTTP/1.0 GET, enough to read our own /health.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::TcpStream::connect(addr),
    )
    .await??;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    Ok(buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// Causeway allocates per stanza (elements, strings): mimalloc took 12 % less CPU per bridged
/// message than glibc's allocator in the bridge bench (BENCHMARKS.md, 2026-12-01).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
