//! `xmppd serve`: wire storage, modules, TLS and listeners together, run
//! until SIGTERM/SIGINT, then shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xmppd_c2s::{C2sContext, TlsContext};
use xmppd_core::{Config, Server, ServerBuilder};
use xmppd_sasl::SaslConfig;

use crate::{certs, storage};

/// Runs the server with a validated configuration.
pub async fn run(config: Config) -> Result<(), String> {
    init_logging(&config)?;
    crate::install_crypto_provider();
    std::fs::create_dir_all(&config.server.data_dir)
        .map_err(|e| format!("server.data_dir: cannot create {}: {e}", config.server.data_dir.display()))?;
    let certified = certs::load_or_generate(&config)?;
    for problem in certs::inspect(&certified, &config.server.hosts) {
        tracing::warn!("{problem}");
    }
    let tls =
        TlsContext::new(certified.chain, certified.key, config.tls.tls13_only).map_err(|e| format!("tls: {e}"))?;
    // Unknown users get fake SCRAM parameters that look like real ones.
    let sasl = SaslConfig::with_random_secret().with_fake_iterations(config.auth.scram_iterations);
    let context = Arc::new(C2sContext { tls, sasl });
    let stores = storage::open(&config).await?;
    let config = Arc::new(config);
    let server = ServerBuilder::new(config.clone(), stores)
        .modules(&crate::modules())
        .build()
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(config.c2s.max_connections));
    let listeners = config
        .listen
        .c2s
        .iter()
        .map(|addr| (addr, false))
        .chain(config.listen.c2s_direct_tls.iter().map(|addr| (addr, true)));
    for (addr, direct_tls) in listeners {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            let key = if direct_tls { "listen.c2s_direct_tls" } else { "listen.c2s" };
            format!("{key}: cannot listen on {addr}: {e}")
        })?;
        tracing::info!(%addr, direct_tls, "listening for clients");
        tracker.spawn(accept_loop(
            listener,
            direct_tls,
            server.clone(),
            context.clone(),
            connections.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    tracing::info!(hosts = ?config.server.hosts, "xmppd started");

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    tracker.close();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some sessions did not close within {grace:?}");
    }
    drop(server);
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    direct_tls: bool,
    server: Arc<Server>,
    context: Arc<C2sContext>,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, _peer)) => {
                let server = server.clone();
                let context = context.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    xmppd_c2s::run(server, context, socket, direct_tls, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(value).map_err(|e| format!("RUST_LOG: {e}"))?,
        _ => EnvFilter::try_new(&config.log.level).map_err(|e| format!("log.level: {e}"))?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| format!("logging: {e}"))
}
