//! `xiebao wallet create|import|list|show`: accounts as Ethereum V3 keystore files.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xiebao_sdk::wallet;
use xiebao_types::Address;

use crate::common as secret;

/// Where keystores live and how to unlock them.
#[derive(Debug, clap::Args)]
pub(crate) struct WalletArgs {
    /// Keystore directory (default: $HOME/.xiebao/wallets).
    #[arg(long, env = "XIEBAO_WALLET_DIR", global = true)]
    wallet_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WalletCommand {
    /// Create a new random account and store it as an encrypted keystore.
    Create {
        /// File holding the new keystore's password (else XIEBAO_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Import an account from a private key or a BIP-39 mnemonic into an encrypted keystore.
    Import {
        /// File holding a hex private key.
        #[arg(long, conflicts_with = "mnemonic_file", required_unless_present = "mnemonic_file")]
        private_key_file: Option<PathBuf>,
        /// File holding a BIP-39 mnemonic (account m/44'/60'/0'/0/INDEX).
        #[arg(long)]
        mnemonic_file: Option<PathBuf>,
        /// Account index in the mnemonic.
        #[arg(long, default_value_t = 0, requires = "mnemonic_file")]
        index: u32,
        /// File holding the new keystore's password (else XIEBAO_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the accounts in the keystore directory.
    List,
    /// Show one account's keystore.
    Show {
        /// The account's address.
        address: Address,
    },
}

fn default_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --wallet-dir")?;
    Ok(PathBuf::from(home).join(".xiebao").join("wallets"))
}

#[allow(clippy::print_stdout, reason = "the command's result is its output")]
pub(crate) fn run(args: &WalletArgs) -> anyhow::Result<()> {
    let dir = match &args.wallet_dir {
        Some(dir) => dir.clone(),
        None => default_dir()?,
    };
    let report = |verb: &str, address: Address, path: &std::path::Path| {
        if args.json {
            println!("{}", serde_json::json!({ "address": address.to_string(), "keystore": path }));
        } else {
            println!("{verb} {address}\nkeystore: {}", path.display());
        }
    };
    match &args.command {
        WalletCommand::Create { password_file } => {
            let password = secret::password(password_file.as_deref(), true)?;
            let key = wallet::generate_key();
            let path = wallet::create_keystore(&key, &password, &dir)?;
            report("created", key.address(), &path);
        }
        WalletCommand::Import { private_key_file, mnemonic_file, index, password_file } => {
            let key = match (private_key_file, mnemonic_file) {
                (Some(file), _) => {
                    if wallet::key_file_kind(file)? != wallet::KeyFileKind::HexKey {
                        bail!(
                            "{} is a keystore already; copy it into {} instead",
                            file.display(),
                            dir.display()
                        );
                    }
                    wallet::load_key(file, None)?
                }
                (None, Some(file)) => {
                    let phrase = std::fs::read_to_string(file)
                        .with_context(|| format!("reading mnemonic file {}", file.display()))?;
                    wallet::key_from_mnemonic(&phrase, *index)?
                }
                (None, None) => unreachable!("clap requires one of them"),
            };
            let password = secret::password(password_file.as_deref(), true)?;
            let path = wallet::create_keystore(&key, &password, &dir)?;
            report("imported", key.address(), &path);
        }
        WalletCommand::List => {
            let accounts = wallet::list_keystores(&dir)?;
            if args.json {
                let list: Vec<_> = accounts
                    .iter()
                    .map(|(a, p)| serde_json::json!({ "address": a.to_string(), "keystore": p }))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if accounts.is_empty() {
                println!(
                    "no accounts in {}; create one with `xiebao wallet create`",
                    dir.display()
                );
            } else {
                for (address, path) in accounts {
                    println!("{address}  {}", path.display());
                }
            }
        }
        WalletCommand::Show { address } => {
            let accounts = wallet::list_keystores(&dir)?;
            let Some((_, path)) = accounts.iter().find(|(a, _)| a == address) else {
                bail!(
                    "no keystore for {address} in {} ({} accounts there; `xiebao wallet list` shows them)",
                    dir.display(),
                    accounts.len()
                );
            };
            report("account", *address, path);
        }
    }
    Ok(())
}
