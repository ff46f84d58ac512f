//! The one hand-written piece the generated code needs: how the generated
//! [`Client`](crate::Client) sends a request.
//!
//! progenitor generates the client with an inner value of type [`Hooks`]
//! and requires an `impl ClientHooks<Hooks> for Client` (the orphan rule puts
//! it in this crate). The impl hands every request to the [`Exec`] the hooks
//! carry, so the `honeyhive` crate can apply its retries, deadline and key
//! scrubbing to generated calls too; [`Hooks::default`] sends each request
//! once, as plain progenitor would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use progenitor_client::{ClientHooks, OperationInfo};

/// The future an [`Exec`] returns.
pub type ExecFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

/// Sends one request of the generated client and returns its answer.
///
/// Implemented by the `honeyhive` crate; `operation_id` is the spec's
/// operation (such as `log_event`), for logs.
pub trait Exec: Send + Sync + 'static {
    /// Sends `request` with `http` (the generated client's own
    /// `reqwest::Client`).
    fn exec<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> ExecFuture<'a>;
}

/// What the generated client sends requests through: an [`Exec`], or
/// nothing (each request sent once).
#[derive(Clone, Default)]
pub struct Hooks {
    pub(crate) exec: Option<Arc<dyn Exec>>,
}

impl Hooks {
    /// Hooks that send every request through `exec`.
    ///
    /// Hidden: `honeyhive` builds the client's hooks (retries, deadline, key
    /// scrubbing); this is public only because that crate is another one.
    #[doc(hidden)]
    pub fn new(exec: impl Exec) -> Self {
        Hooks {
            exec: Some(Arc::new(exec)),
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("exec", &self.exec.as_ref().map(|_| "set"))
            .finish()
    }
}

/// `impl ClientHooks<Hooks>` for a generated `Client` type: this crate's,
/// and in `xtask/import-check` each client generated there.
macro_rules! client_hooks {
    ($client:ty) => {
        impl ClientHooks<Hooks> for $client {
            async fn exec(
                &self,
                request: reqwest::Request,
                info: &OperationInfo,
            ) -> reqwest::Result<reqwest::Response> {
                match &self.inner.exec {
                    Some(exec) => exec.exec(&self.client, request, info.operation_id).await,
                    None => self.client.execute(request).await,
                }
            }
        }
    };
}

client_hooks!(crate::Client);
