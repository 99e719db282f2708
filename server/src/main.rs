use std::process::ExitCode;

use clap::Parser;
use vypusk_server::cli::{Cli, Command, admin, bundle, demo, publish, remote, resources};
use vypusk_server::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Held to the end: dropping it writes the buffered log lines.
    let _log = vypusk_server::logging::init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2 usage, 3 server unreachable, 4 refused by the server (cli::remote), else 1.
            ExitCode::from(remote::exit_code(&e))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that talk to a server need no settings of their own.
    let command = match cli.command {
        Command::Publish(args) => return publish::run(args).await,
        Command::Distribution { remote, command } => {
            return resources::distribution(&remote, command).await;
        }
        Command::Release { remote, command } => return resources::release(&remote, command).await,
        Command::ApiKey { remote, command } if remote.key().is_some() => {
            return resources::api_key(&remote, command).await;
        }
        // Without an API key every license command but `import` is a usage error (it says so).
        Command::License { remote, command }
            if remote.key().is_some()
                || !matches!(command, resources::LicenseCommand::Import { .. }) =>
        {
            return resources::license(&remote, command).await;
        }
        other => other,
    };
    let settings = Settings::load(&cli.settings, |k| std::env::var(k).ok())?;
    match command {
        Command::Serve => {
            let listener = vypusk_server::bind(settings.listen_addr()?).await?;
            vypusk_server::launch(settings, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let db = vypusk_server::db::connect(&settings.database_url()).await?;
            vypusk_server::db::migrate(&db).await?;
            println!("migrations applied to {}", settings.database_url());
            Ok(())
        }
        Command::Demo => demo::run(&settings).await,
        Command::SigningKey => {
            // The key the instances on this database share (created if this is the first).
            std::fs::create_dir_all(&settings.data_dir)?;
            let db = vypusk_server::db::connect(&settings.database_url()).await?;
            vypusk_server::db::migrate(&db).await?;
            let identity = vypusk_server::identity::load(&db, &settings).await?;
            print!("{}", identity.signer.public_key_pem());
            Ok(())
        }
        Command::Bundle(args) => bundle::run(&settings, args).await,
        // Without an API key: on the data directory directly (the first key is made this way).
        Command::ApiKey { remote, command } => {
            admin::say_direct(&settings, &remote.server);
            admin::api_key(&settings, command, remote.json).await
        }
        Command::License { remote, command } => match command {
            resources::LicenseCommand::Import { file } => {
                admin::say_direct(&settings, &remote.server);
                admin::license_import(&settings, &file, remote.json).await
            }
            command => resources::license(&remote, command).await,
        },
        Command::AdminPassword => admin::admin_password(&settings).await,
        Command::Backup { dir } => vypusk_server::backup::backup(&settings, &dir).await,
        Command::Restore { dir, force } => {
            vypusk_server::backup::restore(&settings, &dir, force).await
        }
        Command::Publish(_) | Command::Distribution { .. } | Command::Release { .. } => {
            unreachable!("handled above")
        }
    }
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight downloads finish, write queued events.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
