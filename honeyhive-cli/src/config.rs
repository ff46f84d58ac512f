//! The connection settings every command that talks to the API shares:
//! flags with the library's environment variables as fallbacks.

use honeyhive::{Client, ClientBuilder, Error};

use crate::{Exit, Fail};

/// API settings: each flag falls back to the variable the library reads.
#[derive(clap::Args, Debug, Clone)]
pub struct Api {
    /// API key (Settings > API keys). Never printed.
    #[arg(long, env = "HH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Base URL of the API.
    #[arg(long, env = "HH_API_URL", value_name = "URL")]
    url: Option<String>,
    /// Project given to events that name none.
    #[arg(long, env = "HH_PROJECT")]
    project: Option<String>,
    /// Source (such as production) given to events that name none.
    #[arg(long, env = "HH_SOURCE")]
    source: Option<String>,
    /// Seconds one attempt may take.
    #[arg(long, env = "HH_API_TIMEOUT", value_name = "SECONDS")]
    timeout: Option<String>,
    /// Retries after the first attempt.
    #[arg(long, env = "HH_MAX_RETRIES", value_name = "N")]
    max_retries: Option<String>,
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
                _ => &None,
            }
            .clone()
        };
        ClientBuilder::from_lookup(lookup).map_err(config_error)
    }

    pub fn client(&self) -> Result<Client, Fail> {
        self.builder()?.build().map_err(config_error)
    }
}

/// A setting the library refused: exit 3, with its explanation (which
/// names the setting and never shows the key).
pub fn config_error(error: Error) -> Fail {
    Fail::new(Exit::Config, format!("configuration: {error}"))
}
