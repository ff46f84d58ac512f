//! Where requests go: the base URL's checks and the session id as a path
//! segment.

use std::net::IpAddr;

use super::ClientBuilder;
use crate::error::Fix;
use crate::{error::Error, session::SessionId};

/// A checked base URL: what requests are built on, and the host to name in
/// transport errors.
#[derive(Debug)]
pub(super) struct BaseUrl {
    /// Scheme, host, port and path, without a trailing slash.
    pub(super) url: String,
    /// The same, parsed: requests are built on it without parsing the host
    /// again.
    pub(super) parsed: reqwest::Url,
    /// Host and port (when not the scheme's default).
    pub(super) host: String,
}

/// `raw` checked as a base URL; errors name `field`, where it was given
/// (`base_url`, or `HH_API_URL`).
pub(super) fn checked_base_url(
    raw: &str,
    allow_insecure_http: bool,
    field: &str,
) -> Result<BaseUrl, Error> {
    // Error messages show the URL without anything that may be a password.
    let shown = without_user_info(raw.trim());
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        Error::invalid(
            field,
            format!(
                "{shown:?} is not a URL ({e}); use a full URL such as {}",
                ClientBuilder::DEFAULT_BASE_URL
            ),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_fixed_by(
            field,
            format!(
                "{shown:?} has a user name or password in it, which HTTP would send instead of \
                 the API key; give only scheme, host, port and path here, and the key apart"
            ),
            Fix::ApiKey,
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            field,
            format!("{shown:?} has a query or fragment; give only scheme, host, port and path"),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::invalid_fixed_by(
                field,
                format!(
                    "{shown:?} is plain http on a host that is not loopback, so the API key would \
                     travel unencrypted"
                ),
                Fix::AllowInsecureHttp,
            ));
        }
        other => {
            return Err(Error::invalid(
                field,
                format!(
                    "{shown:?} has scheme {other:?}; use https:// (or http:// to a loopback host)"
                ),
            ));
        }
    }
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    };
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Ok(BaseUrl {
        parsed: url,
        url: trimmed,
        host,
    })
}

/// `raw` with whatever stands before an `@` in its authority replaced, so
/// that a message can quote the URL even when it does not parse.
fn without_user_info(raw: &str) -> String {
    let after_scheme = raw.find("://").map_or(0, |at| at + 3);
    let authority_end = raw[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |at| after_scheme + at);
    match raw[after_scheme..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..after_scheme], &raw[after_scheme + at..]),
        None => raw.to_owned(),
    }
}

/// Refuses a session id that cannot name a session in the request path:
/// empty, only whitespace, or `.`/`..`, which URLs read as steps in the
/// path even percent-encoded (`%2E%2E` is `..` to a URL parser), so the
/// request would go to another endpoint.
pub(crate) fn check_session_id(id: &SessionId) -> Result<(), Error> {
    let text = id.as_str();
    let problem = if text.is_empty() {
        "is empty; pass the id of an existing session".to_owned()
    } else if text.trim().is_empty() {
        "is only whitespace; pass the id of an existing session".to_owned()
    } else if text == "." || text == ".." {
        format!(
            "is {text:?}, which a URL reads as a step in the path (even percent-encoded), so the \
             request would not reach the session endpoint; use another id"
        )
    } else {
        return Ok(());
    };
    Err(Error::invalid_fixed_by(
        "session_id",
        problem,
        Fix::NewSessionId,
    ))
}

/// The session id as one percent-encoded path segment.
pub(super) fn session_segment(id: &SessionId) -> Result<String, Error> {
    check_session_id(id)?;
    Ok(progenitor_client::encode_path(id.as_str()))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let url = |raw| {
            checked_base_url(raw, false, "base_url")
                .map(|b| (b.url, b.host))
                .unwrap()
        };
        assert_eq!(
            url("https://api.honeyhive.ai/"),
            ("https://api.honeyhive.ai".into(), "api.honeyhive.ai".into())
        );
        assert_eq!(
            url("http://127.0.0.1:4010"),
            ("http://127.0.0.1:4010".into(), "127.0.0.1:4010".into())
        );
        assert_eq!(
            url("http://[::1]:80/v1/"),
            ("http://[::1]/v1".into(), "[::1]".into())
        );
        assert!(checked_base_url("http://localhost:9", false, "base_url").is_ok());
        let err = checked_base_url("http://api.example.com", false, "base_url").unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(checked_base_url("http://api.example.com", true, "base_url").is_ok());
        assert!(checked_base_url("ftp://x", true, "base_url").is_err());
        assert!(checked_base_url("not a url", true, "base_url").is_err());
    }

    #[test]
    fn query_only_and_fragment_only_urls_are_refused() {
        for raw in [
            "https://api.honeyhive.ai/?",
            "https://api.honeyhive.ai/?a=1",
            "https://api.honeyhive.ai/#",
        ] {
            let err = checked_base_url(raw, false, "base_url").unwrap_err();
            assert!(
                err.to_string().contains("query or fragment"),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn user_info_is_refused_without_showing_the_password() {
        for raw in [
            "http://user:hunter2@127.0.0.1:9",
            "https://user:hunter2@api.honeyhive.ai",
            "https://hunter2@api.honeyhive.ai/v1",
            "https://user:hunter2@api.honeyhive.ai:notaport",
        ] {
            let err = checked_base_url(raw, true, "base_url").unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2"), "{raw}: {text}");
            assert!(text.contains("***@"), "{raw}: {text}");
        }
    }

    #[test]
    fn dot_segments_and_blank_ids_cannot_be_session_ids() {
        for id in ["", " ", "\t\n", ".", ".."] {
            let err = session_segment(&SessionId::from(id)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidInput { field, .. } if field == "session_id"),
                "{id:?}: {err}"
            );
        }
        for (id, segment) in [
            ("...", "..."),
            (".a", ".a"),
            ("%2e%2e", "%252e%252e"),
            ("a/b", "a%2Fb"),
        ] {
            assert_eq!(session_segment(&SessionId::from(id)).unwrap(), segment);
        }
    }
}
