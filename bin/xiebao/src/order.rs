//! `xiebao order hash|sign|verify`: offline EIP-712 order tools, compatible with iExec's SDK.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xiebao_types::order::{AnyOrder, Domain, OrderKind};
use xiebao_types::{Address, crypto};

/// `xiebao order …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OrderCommand {
    /// Print an order's EIP-712 typed-data hash.
    Hash(HashArgs),
    /// Print the order with `sign` filled in.
    Sign(SignArgs),
    /// Check that a signed order was signed by --signer (exit 0) or say why not (exit 1).
    Verify(VerifyArgs),
}

/// The order file and its EIP-712 domain.
#[derive(Debug, clap::Args)]
pub(crate) struct OrderInput {
    /// The order JSON (iExec SDK field names); `-` reads standard input.
    order: PathBuf,
    /// Chain id of the domain.
    #[arg(long)]
    chain_id: u64,
    /// The domain's verifyingContract.
    #[arg(long)]
    verifying_contract: Address,
    /// The order kind, when it cannot be told from the fields.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<OrderKind>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// `xiebao order hash`.
#[derive(Debug, clap::Args)]
pub(crate) struct HashArgs {
    #[command(flatten)]
    input: OrderInput,
}

/// `xiebao order sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    input: OrderInput,
    /// An Ethereum V3 keystore, or a file holding a hex private key.
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore's password (else the XIEBAO_PASSWORD environment variable).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

/// `xiebao order verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    input: OrderInput,
    /// Who must have signed.
    #[arg(long)]
    signer: Address,
}

fn parse_kind(text: &str) -> Result<OrderKind, String> {
    text.parse()
}

impl OrderInput {
    fn read(&self) -> anyhow::Result<(AnyOrder, Domain)> {
        let text = if self.order == Path::new("-") {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading the order from stdin")?;
            text
        } else {
            std::fs::read_to_string(&self.order)
                .with_context(|| format!("reading order file {}", self.order.display()))?
        };
        let order = AnyOrder::from_json(&text, self.kind)
            .with_context(|| format!("order {}", self.order.display()))?;
        Ok((order, Domain::new(self.chain_id, self.verifying_contract)))
    }
}

#[allow(clippy::print_stdout, reason = "the command's result is its output")]
pub(crate) fn run(command: &OrderCommand) -> anyhow::Result<()> {
    match command {
        OrderCommand::Hash(args) => {
            let (order, domain) = args.input.read()?;
            let hash = order.hash(&domain);
            if args.input.json {
                println!("{}", serde_json::json!({ "kind": order.kind(), "hash": hash }));
            } else {
                println!("{hash}");
            }
        }
        OrderCommand::Sign(args) => {
            let (mut order, domain) = args.input.read()?;
            let key = crate::secret::signing_key(&args.key_file, args.password_file.as_deref())?;
            order.sign_with(&domain, &key);
            let json = order.to_json();
            if args.input.json {
                println!("{json}");
            } else {
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
        }
        OrderCommand::Verify(args) => {
            let (order, domain) = args.input.read()?;
            let hash = order.hash(&domain);
            let outcome = if order.sign().is_empty() {
                Err("the order has no `sign` field (unsigned; presigned orders are checked on chain)".to_owned())
            } else {
                match crypto::recover(&hash, order.sign()) {
                    Ok(signer) if signer == args.signer => Ok(signer),
                    Ok(signer) => Err(format!("signed by {signer}, not by {}", args.signer)),
                    Err(error) => Err(format!("malformed signature: {error}")),
                }
            };
            if args.input.json {
                let (valid, signer, reason) = match &outcome {
                    Ok(signer) => (true, Some(signer.to_string()), None),
                    Err(reason) => (false, None, Some(reason.clone())),
                };
                println!(
                    "{}",
                    serde_json::json!({ "valid": valid, "hash": hash, "signer": signer, "reason": reason })
                );
            }
            match outcome {
                Ok(signer) if !args.input.json => println!("valid: signed by {signer}"),
                Ok(_) => {}
                Err(reason) => bail!("invalid {} order {hash}: {reason}", order.kind()),
            }
        }
    }
    Ok(())
}
