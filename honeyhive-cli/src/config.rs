//! The connection settings every command that talks to the API shares:
//! flags with the library's environment variables as fallbacks.

use honeyhive::{Client, ClientBuilder, Error, Redactor};

use crate::exit::{Exit, Fail};

/// API settings: each flag falls back to the variable the library reads.
#[derive(clap::Args, Clone)]
pub struct Api {
    /// API key (Settings > API keys). Never printed.
    #[arg(long, env = "HH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Base URL of the API.
    #[arg(long, env = "HH_API_URL", hide_env_values = true, value_name = "URL")]
    url: Option<String>,
    /// Project given to events that name none.
    #[arg(long, env = "HH_PROJECT", hide_env_values = true)]
    project: Option<String>,
    /// Source (such as production) given to events that name none.
    #[arg(long, env = "HH_SOURCE", hide_env_values = true)]
    source: Option<String>,
    /// Seconds one attempt may take.
    #[arg(
        long,
        env = "HH_API_TIMEOUT",
        hide_env_values = true,
        value_name = "SECONDS"
    )]
    timeout: Option<String>,
    /// Retries after the first attempt.
    #[arg(long, env = "HH_MAX_RETRIES", hide_env_values = true, value_name = "N")]
    max_retries: Option<String>,
    /// Allow a plain http:// URL to a host that is not loopback (the key
    /// then travels unencrypted).
    #[arg(long)]
    allow_insecure_http: bool,
    /// Fraction of sessions sent, 0 to 1, decided from the session id (the
    /// same sessions in every run and process); the others are counted as
    /// sampled out, not sent.
    #[arg(
        long = "sample",
        env = "HH_SAMPLE_RATE",
        hide_env_values = true,
        value_name = "RATE"
    )]
    sample_rate: Option<String>,
    /// Replace the values under these keys (any depth, any case, `-` as
    /// `_`) with [redacted], on top of bearer tokens, sk-... keys and
    /// e-mail addresses in text, which are always redacted once this is
    /// given. Comma-separated: --redact-keys password,api_key
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    redact_keys: Vec<String>,
}

/// The key is never shown, not even by `{:?}`.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("url", &self.url)
            .field("project", &self.project)
            .field("source", &self.source)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The builder the library would make from these values as variables,
    /// so flags and variables are checked (and explained) the same way.
    pub fn builder(&self) -> Result<ClientBuilder, Fail> {
        let lookup = |name: &str| {
            match name {
                "HH_API_KEY" => &self.api_key,
                "HH_API_URL" => &self.url,
                "HH_PROJECT" => &self.project,
                "HH_SOURCE" => &self.source,
                "HH_API_TIMEOUT" => &self.timeout,
                "HH_MAX_RETRIES" => &self.max_retries,
                "HH_SAMPLE_RATE" => &self.sample_rate,
                _ => &None,
            }
            .clone()
        };
        let mut builder = ClientBuilder::from_lookup(lookup)
            .map_err(config_error)?
            .allow_insecure_http(self.allow_insecure_http);
        let keys: Vec<&str> = self
            .redact_keys
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .collect();
        if !keys.is_empty() {
            builder = builder.mask(Redactor::new().keys(keys));
        }
        Ok(builder)
    }

    /// Whether the number of retries was given (flag or variable).
    pub fn max_retries_given(&self) -> bool {
        self.max_retries.is_some()
    }

    /// The API key given (flag or `HH_API_KEY`), to scrub from text that
    /// other programs wrote.
    pub fn key(&self) -> Option<&str> {
        self.api_key.as_deref().filter(|k| !k.is_empty())
    }

    pub fn client(&self) -> Result<Client, Fail> {
        self.builder()?.build().map_err(config_error)
    }
}

/// A setting the library refused: exit 3, with its explanation (which
/// names the setting and never shows the key).
pub fn config_error(error: Error) -> Fail {
    Fail::new(
        Exit::Config,
        format!("configuration: {}", for_the_shell(&error.to_string())),
    )
}

/// A failed call's exit code and message: bad input 2, the key refused 3,
/// no answer 4, any other answer 1.
pub fn api_error(error: Error) -> Fail {
    let exit = match &error {
        Error::InvalidInput { .. } => Exit::Usage,
        Error::Unauthorized { .. } => return config_error(error),
        error if error.status().is_none() => Exit::Unreachable,
        _ => Exit::Partial,
    };
    Fail::new(exit, for_the_shell(&error.to_string()))
}

/// The library's hints name its Rust API; at the shell the same fix is a
/// flag or a variable. Every message the command prints from the library
/// goes through here.
pub fn for_the_shell(message: &str) -> String {
    const SAID_IN_RUST: [(&str, &str); 8] = [
        (" or give it to ClientBuilder::root_certificate_pem", ""),
        (
            "call ClientBuilder::api_key or set HH_API_KEY and use Client::from_env",
            "set HH_API_KEY or pass --api-key",
        ),
        (
            "ClientBuilder::api_key (or HH_API_KEY)",
            "HH_API_KEY (or --api-key)",
        ),
        (
            "HH_API_KEY or ClientBuilder::api_key",
            "HH_API_KEY (or --api-key)",
        ),
        (
            "ClientBuilder::allow_insecure_http(true)",
            "--allow-insecure-http",
        ),
        (", or raise ClientBuilder::max_body_bytes", ""),
        (
            "SessionId::new() to start one",
            "a new id (such as a UUID) to start one",
        ),
        ("such as SessionId::new()", "such as a UUID"),
    ];
    SAID_IN_RUST
        .iter()
        .fold(message.to_owned(), |text, (rust, shell)| {
            text.replace(rust, shell)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_hints_come_out_as_flags_and_variables() {
        for setting in [
            ClientBuilder::default().build(),
            Client::builder()
                .api_key("k")
                .base_url("http://example.com")
                .build(),
        ] {
            let shown = for_the_shell(&setting.unwrap_err().to_string());
            assert!(!shown.contains("::"), "{shown}");
        }
        // Error::Unauthorized's sentence (its variants are the library's to
        // make); tests/cli.rs checks the one a refused key really gets.
        let refused = "the API refused the API key (HTTP 401): check HH_API_KEY or \
                       ClientBuilder::api_key";
        assert!(!for_the_shell(refused).contains("::"));
    }

    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Command {
        #[command(flatten)]
        api: Api,
    }

    #[test]
    fn debug_never_shows_the_key() {
        let parsed = Command::try_parse_from([
            "x",
            "--api-key",
            "hh-secret-123",
            "--url",
            "http://127.0.0.1:9",
        ])
        .unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("hh-secret-123"), "{shown}");
        assert!(
            shown.contains("<hidden>") && shown.contains("127.0.0.1:9"),
            "{shown}"
        );
    }
}
