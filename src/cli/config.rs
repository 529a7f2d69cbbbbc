//! `mk8 config aws`: store AWS credentials for mk8 (checked with STS GetCallerIdentity), show
//! them redacted, remove them, or copy them into the EKS credentials Secret of a cluster.

pub mod store;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use store::AwsKeys;

/// Arguments of `mk8 config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Store AWS credentials for mk8 (from the environment, a ~/.aws profile, or prompts).
    Aws(AwsArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AwsArgs {
    #[command(subcommand)]
    action: Option<AwsAction>,
    /// Take AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION.
    #[arg(long, conflicts_with_all = ["profile", "prompt"])]
    from_env: bool,
    /// Take the static keys of this profile of ~/.aws/credentials and ~/.aws/config.
    #[arg(long, conflicts_with = "prompt")]
    profile: Option<String>,
    /// Ask for the keys (the default when stdin is a terminal).
    #[arg(long)]
    prompt: bool,
    /// Region to store (default: the source's region).
    #[arg(long)]
    region: Option<String>,
    /// Send the STS check to this endpoint (a local AWS-protocol server).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AwsAction {
    /// Print the stored credentials, redacted (the secret key never).
    Show,
    /// Delete the stored credentials.
    Remove,
    /// Write the stored credentials into a cluster as the Secret spec.eks.credentialsSecretRef names.
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// Kubeconfig context of the management cluster.
    #[arg(long)]
    context: Option<String>,
    /// Kubeconfig file (default: KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the Secret.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Name of the Secret.
    #[arg(long)]
    secret: String,
}

/// Field manager of the Secrets `mk8 config aws sync` applies.
const FIELD_MANAGER: &str = "mk8-config";

/// Run `mk8 config`.
pub async fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let ConfigCommand::Aws(aws) = args.command;
    match aws.action {
        Some(AwsAction::Show) => {
            let keys = load()?.context("no AWS credentials stored: run mk8 config aws")?;
            println!("file: {}\n{}", store::path().display(), keys.redacted());
            Ok(())
        }
        Some(AwsAction::Remove) => remove(),
        Some(AwsAction::Sync(sync_args)) => sync(sync_args).await,
        None => store_keys(aws).await,
    }
}

/// The credentials `mk8 config aws` stored, if any.
pub fn load() -> anyhow::Result<Option<AwsKeys>> {
    let path = store::path();
    match std::fs::read_to_string(&path) {
        Ok(text) => AwsKeys::from_ini(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{} {e}: run mk8 config aws again", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn remove() -> anyhow::Result<()> {
    let path = store::path();
    match std::fs::remove_file(&path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("no AWS credentials stored at {}", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    Ok(())
}

async fn store_keys(args: AwsArgs) -> anyhow::Result<()> {
    let mut keys = if args.from_env {
        from_env()?
    } else if let Some(profile) = &args.profile {
        from_profile(profile)?
    } else if args.prompt || std::io::stdin().is_terminal() {
        prompt()?
    } else {
        bail!(
            "stdin is not a terminal: use mk8 config aws --from-env or --profile NAME to store AWS credentials"
        );
    };
    if args.region.is_some() {
        keys.region = args.region.clone();
    }
    eprintln!("checking the credentials with AWS STS GetCallerIdentity…");
    let identity = caller_identity(&keys, args.endpoint_url.as_deref()).await?;
    let path = store::path();
    crate::files::write_private(&path, keys.to_ini().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "account: {}\narn: {}\nstored in {} (0600)",
        identity.0,
        identity.1,
        path.display()
    );
    Ok(())
}

fn from_env() -> anyhow::Result<AwsKeys> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(access_key_id), Some(secret_access_key)) =
        (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    else {
        bail!(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set: export them, or use --profile NAME"
        );
    };
    Ok(AwsKeys {
        access_key_id,
        secret_access_key,
        session_token: var("AWS_SESSION_TOKEN"),
        region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
    })
}

fn from_profile(name: &str) -> anyhow::Result<AwsKeys> {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".aws");
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(default))
    };
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let config = read(file("AWS_CONFIG_FILE", "config"));
    AwsKeys::from_profile(name, &credentials, &config).map_err(anyhow::Error::msg)
}

fn prompt() -> anyhow::Result<AwsKeys> {
    let access_key_id = ask("AWS access key id: ", false)?;
    let secret_access_key = ask("AWS secret access key (hidden): ", true)?;
    let session_token =
        Some(ask("AWS session token (hidden, empty if none): ", true)?).filter(|t| !t.is_empty());
    let region = Some(ask("AWS region (empty for none): ", false)?).filter(|r| !r.is_empty());
    if access_key_id.is_empty() || secret_access_key.is_empty() {
        bail!("an access key id and a secret access key are both needed");
    }
    Ok(AwsKeys {
        access_key_id,
        secret_access_key,
        session_token,
        region,
    })
}

/// One line from the terminal; `hidden` turns echo off with `stty` for its duration.
fn ask(question: &str, hidden: bool) -> anyhow::Result<String> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    if hidden {
        stty("-echo").context("turning terminal echo off (stty)")?;
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        let _ = stty("echo");
        eprintln!();
    }
    read.context("reading the terminal")?;
    Ok(line.trim().to_string())
}

/// Why STS refused, as a sentence naming the fix.
pub fn refusal_message(code: Option<&str>, message: Option<&str>) -> String {
    let code = code.unwrap_or("unknown error");
    let fix = match code {
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" => {
            "check the access key and secret key, or run mk8 config aws --profile NAME"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the session token has expired: get fresh credentials and run mk8 config aws again"
        }
        "AccessDenied" | "AccessDeniedException" => {
            "the identity may not call sts:GetCallerIdentity: check its IAM policy"
        }
        _ => "check the credentials and the network, then run mk8 config aws again",
    };
    match message {
        Some(m) if !m.is_empty() => format!("AWS refused these credentials ({code}: {m}): {fix}"),
        _ => format!("AWS refused these credentials ({code}): {fix}"),
    }
}

#[cfg(feature = "eks")]
async fn caller_identity(
    keys: &AwsKeys,
    endpoint_url: Option<&str>,
) -> anyhow::Result<(String, String)> {
    use aws_sdk_sts::error::ProvideErrorMetadata as _;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let region = keys.region.clone().unwrap_or_else(|| "us-east-1".into());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .http_client(http)
        .credentials_provider(aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            keys.session_token.clone(),
            None,
            "mk8-config-aws",
        ));
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let answer = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(service) => anyhow::anyhow!(refusal_message(service.code(), service.message())),
            None => anyhow::anyhow!(
                "could not reach AWS STS ({}): check the network or --endpoint-url",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ),
        })?;
    Ok((
        answer.account().unwrap_or_default().to_string(),
        answer.arn().unwrap_or_default().to_string(),
    ))
}

#[cfg(not(feature = "eks"))]
async fn caller_identity(_: &AwsKeys, _: Option<&str>) -> anyhow::Result<(String, String)> {
    bail!("this mk8 was built without the eks feature: AWS credentials cannot be checked")
}

#[cfg(feature = "eks")]
async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    use crate::providers::eks::shared::keys;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, Patch, PatchParams};
    let stored = load()?.context("no AWS credentials stored: run mk8 config aws first")?;
    let client =
        super::fleet::hub_client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let mut data = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        data.insert(
            k.to_string(),
            k8s_openapi::ByteString(v.as_bytes().to_vec()),
        );
    };
    put(keys::ACCESS_KEY_ID, &stored.access_key_id);
    put(keys::SECRET_ACCESS_KEY, &stored.secret_access_key);
    if let Some(token) = &stored.session_token {
        put(keys::SESSION_TOKEN, token);
    }
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(args.secret.clone()),
            namespace: Some(args.namespace.clone()),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client, &args.namespace)
        .patch(
            &args.secret,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(|e| anyhow::anyhow!("applying Secret {}/{}: {e} (does the namespace exist, and may you write Secrets there?)", args.namespace, args.secret))?;
    println!(
        "wrote Secret {}/{} (keys {}, {}{}); name it in spec.eks.credentialsSecretRef",
        args.namespace,
        args.secret,
        keys::ACCESS_KEY_ID,
        keys::SECRET_ACCESS_KEY,
        if stored.session_token.is_some() {
            ", sessionToken"
        } else {
            ""
        }
    );
    Ok(())
}

#[cfg(not(feature = "eks"))]
async fn sync(_: SyncArgs) -> anyhow::Result<()> {
    bail!("this mk8 was built without the eks feature: there is no EKS credentials Secret to write")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_refusals_name_the_fix() {
        let bad = refusal_message(
            Some("InvalidClientTokenId"),
            Some("The security token included in the request is invalid."),
        );
        assert!(
            bad.starts_with("AWS refused these credentials (InvalidClientTokenId"),
            "{bad}"
        );
        assert!(bad.contains("mk8 config aws --profile NAME"), "{bad}");
        assert!(refusal_message(Some("ExpiredToken"), None).contains("expired"));
        assert!(refusal_message(None, None).contains("unknown error"));
    }
}
