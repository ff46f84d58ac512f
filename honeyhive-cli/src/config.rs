//! The connection settings every command that talks to the API shares:
//! flags with the library's environment variables as fallbacks.

use honeyhive::{Client, ClientBuilder, Error, Fix, Redactor};

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
        format!("configuration: {}", for_the_shell(&error)),
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
    Fail::new(exit, for_the_shell(&error))
}

/// The library's sentence for `error`, its fix said at the shell (a flag
/// or a variable, where the library names its Rust API). Every message
/// the command prints from a library error goes through here.
pub fn for_the_shell(error: &Error) -> String {
    error.to_string_with(at_the_shell)
}

/// What fixes an error, in the command's terms.
pub fn at_the_shell(fix: Fix) -> &'static str {
    match fix {
        Fix::ApiKey => "set HH_API_KEY or pass --api-key",
        Fix::AllowInsecureHttp => "use https://, or --allow-insecure-http if you mean it",
        Fix::MaxBodyBytes => "trim it",
        Fix::RootCertificate => {
            "if your own certificate authority signed it, point SSL_CERT_FILE at that \
             authority's PEM file"
        }
        Fix::NewSessionId => "to start a new session, use a new id (such as a UUID)",
        Fix::EventType => {
            "give the event an \"event_type\": \"model\", \"tool\", \"chain\" or \"session\""
        }
        other => other.in_rust(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_hints_come_out_as_flags_and_variables() {
        let unset = ClientBuilder::default().build().unwrap_err();
        assert_eq!(
            for_the_shell(&unset),
            "invalid api_key: is not set; set HH_API_KEY or pass --api-key"
        );
        let insecure = Client::builder()
            .api_key("k")
            .base_url("http://example.com")
            .build()
            .unwrap_err();
        let shown = for_the_shell(&insecure);
        assert!(
            shown.ends_with("; use https://, or --allow-insecure-http if you mean it"),
            "{shown}"
        );
        // Every fix the library names has words at the shell.
        for fix in [
            Fix::ApiKey,
            Fix::AllowInsecureHttp,
            Fix::MaxBodyBytes,
            Fix::RootCertificate,
            Fix::NewSessionId,
            Fix::EventType,
        ] {
            assert!(!at_the_shell(fix).contains("::"), "{fix:?}");
        }
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
