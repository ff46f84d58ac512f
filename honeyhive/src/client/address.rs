//! Where requests go: the base URL's checks.

use std::net::IpAddr;

use super::DEFAULT_BASE_URL;
use crate::Error;

pub(super) fn checked_base_url(raw: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        Error::invalid(
            "base_url",
            format!("{raw:?} is not a URL ({e}); use a full URL such as {DEFAULT_BASE_URL}"),
        )
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            "base_url",
            format!("{raw:?} has a query or fragment; give only scheme, host, port and path"),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::invalid(
                "base_url",
                format!(
                    "{raw:?} is plain http on a host that is not loopback, so the API key would \
                     travel unencrypted; use https://, or ClientBuilder::allow_insecure_http(true) \
                     if you mean it"
                ),
            ));
        }
        other => {
            return Err(Error::invalid(
                "base_url",
                format!("{raw:?} has scheme {other:?}; use https://"),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
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
        assert_eq!(
            checked_base_url("https://api.honeyhive.ai/", false).unwrap(),
            "https://api.honeyhive.ai"
        );
        assert_eq!(
            checked_base_url("http://127.0.0.1:4010", false).unwrap(),
            "http://127.0.0.1:4010"
        );
        assert_eq!(
            checked_base_url("http://[::1]:80/v1/", false).unwrap(),
            "http://[::1]/v1"
        );
        assert!(checked_base_url("http://localhost:9", false).is_ok());
        let err = checked_base_url("http://api.example.com", false).unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(checked_base_url("http://api.example.com", true).is_ok());
        assert!(checked_base_url("ftp://x", true).is_err());
        assert!(checked_base_url("not a url", true).is_err());
    }
}
